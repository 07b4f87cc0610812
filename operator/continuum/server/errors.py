"""Every error the model server answers with, one HTTP status each, under ``ServingError``.

``ServingError`` is the serving branch of ``continuum.errors.ContinuumError`` (the whole tree
is drawn there). The app has a single exception handler for ``ServingError``: it answers
``{"error": message}`` (the Open Inference Protocol's error body, which tritonclient reads)
with the class's ``status_code``. Client mistakes are 4xx by construction; only
``PredictionFailed`` and ``ServerUnavailable`` are 5xx, and neither is raised for a bad
request. A path that names no route is answered 404 by the router, not by a class here.

Tree::

    ServingError (500)
    ├── RequestInvalid (400)      the body is not JSON, or not an inference request at all
    ├── ModelNotFound (404)       unknown model name or version
    ├── PayloadTooLarge (413)     the body exceeds the server's byte limit
    ├── InputInvalid (422)        a well-formed request whose tensors do not fit the model:
    │                             unknown/missing feature, wrong shape, wrong datatype,
    │                             non-numeric value where a number is needed, ...
    ├── ServerUnavailable (503)   no verified model is loaded (yet), or the server is busy
    └── PredictionFailed (500)    the model failed on inputs that passed every check (a bug)
"""

# Leaves are named <Subject><Outcome> (see continuum.errors), so no "Error" suffix on them.
# ruff: noqa: N818

from __future__ import annotations

from typing import ClassVar

from continuum.errors import ContinuumError

__all__ = [
    "InputInvalid",
    "ModelNotFound",
    "PayloadTooLarge",
    "PredictionFailed",
    "RequestInvalid",
    "ServerUnavailable",
    "ServingError",
]


class ServingError(ContinuumError):
    """Base of every error the server turns into an HTTP answer."""

    status_code: ClassVar[int] = 500


class RequestInvalid(ServingError):
    status_code = 400


class ModelNotFound(ServingError):
    status_code = 404


class PayloadTooLarge(ServingError):
    status_code = 413


class InputInvalid(ServingError):
    status_code = 422


class ServerUnavailable(ServingError):
    status_code = 503


class PredictionFailed(ServingError):
    status_code = 500
