"""Errors of the Kubernetes gateway: API failures mapped to a small hierarchy.

Messages carry the HTTP status, the API server's reason and its message, never a request
body (which could hold data the caller did not mean to log).
"""

# ruff: noqa: N818
from __future__ import annotations

import json

from continuum.errors import ContinuumError

__all__ = [
    "KubeError",
    "RequestForbidden",
    "ResourceConflict",
    "ResourceInvalid",
    "ResourceNotFound",
    "error_for",
]


class KubeError(ContinuumError):
    """A Kubernetes API request failed."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class ResourceNotFound(KubeError):
    """The object (or its kind) does not exist (HTTP 404)."""


class ResourceConflict(KubeError):
    """The object already exists, or changed since it was read (HTTP 409)."""


class RequestForbidden(KubeError):
    """RBAC refused the request (HTTP 403)."""


class ResourceInvalid(KubeError):
    """The API server rejected the object (HTTP 400 or 422)."""


_BY_STATUS: dict[int, type[KubeError]] = {
    400: ResourceInvalid,
    403: RequestForbidden,
    404: ResourceNotFound,
    409: ResourceConflict,
    422: ResourceInvalid,
}


def error_for(status: int, body: bytes | str | None, what: str) -> KubeError:
    """The error for an HTTP ``status`` with a ``metav1.Status`` ``body``, about ``what``."""
    reason, message = _status_fields(body)
    cls = _BY_STATUS.get(status, KubeError)
    text = f"{what}: HTTP {status} {reason}: {message}".rstrip(": ")
    return cls(text, status=status, reason=reason)


def _status_fields(body: bytes | str | None) -> tuple[str, str]:
    try:
        data = json.loads(body or "")
    except ValueError:
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    return str(data.get("reason", "")), str(data.get("message", ""))
