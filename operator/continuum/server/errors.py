"""Every error the model server answers with, in one hierarchy with one HTTP status each.

The app has a single exception handler for ``ServingError``: it answers
``{"error": message}`` (the Open Inference Protocol's error body, which tritonclient reads)
with the class's ``status_code``. Client mistakes are 4xx by construction; only
``PredictionFailed`` and ``NotReady`` are 5xx, and neither is raised for a bad request.

Tree::

    ServingError (500)
    ├── BadRequest (400)          the body is not JSON, or not an inference request at all
    ├── NotFound (404)            unknown model name or version, or the route does not exist
    ├── PayloadTooLarge (413)     the body exceeds the server's byte limit
    ├── InvalidInput (422)        a well-formed request whose tensors do not fit the model:
    │                             unknown/missing feature, wrong shape, wrong datatype,
    │                             non-numeric value where a number is needed, ...
    ├── NotReady (503)            no verified model is loaded (yet), or the server is busy
    └── PredictionFailed (500)    the model failed on inputs that passed every check (a bug)
"""

# Names read as outcomes ("NotFound"), like continuum.errors, so no "Error" suffix on leaves.
# ruff: noqa: N818

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadRequest",
    "InvalidInput",
    "NotFound",
    "NotReady",
    "PayloadTooLarge",
    "PredictionFailed",
    "ServingError",
]


class ServingError(Exception):
    """Base of every error the server turns into an HTTP answer."""

    status_code: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ServingError):
    status_code = 400


class NotFound(ServingError):
    status_code = 404


class PayloadTooLarge(ServingError):
    status_code = 413


class InvalidInput(ServingError):
    status_code = 422


class NotReady(ServingError):
    status_code = 503


class PredictionFailed(ServingError):
    status_code = 500
