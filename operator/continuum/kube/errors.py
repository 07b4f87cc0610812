"""Errors of the Kubernetes gateway: API failures mapped to a small hierarchy.

Messages carry the HTTP status, the API server's reason and its message, never a request
body (which could hold data the caller did not mean to log).

A throttled request (429, API Priority and Fairness) and a server-side failure (5xx) are
``retryable``: the same request may succeed later. Both carry ``retry_after``, the seconds
the API server asked the client to wait (its ``Retry-After`` header, else the Status body's
``details.retryAfterSeconds``; None when it asked for nothing). The gateway itself does not
retry: the controllers' work queue waits ``max(its own backoff, retry_after)`` and runs the
whole reconcile again, which is how kopf's own client treats a 429 (the server's delay
replaces its backoff when longer).
"""

# Leaves are named <Subject><Outcome> (see continuum.errors), so no "Error" suffix on them.
# ruff: noqa: N818
from __future__ import annotations

import json
import math
import re
import time
from email.utils import parsedate_to_datetime
from typing import ClassVar

from continuum.errors import ContinuumError

__all__ = [
    "KubeError",
    "KubeUnavailable",
    "RequestForbidden",
    "RequestThrottled",
    "ResourceConflict",
    "ResourceInvalid",
    "ResourceNotFound",
    "error_for",
    "retry_after_seconds",
]

THROTTLED = 429
# RFC 9110 delay-seconds is digits only; a fraction (which kopf also accepts) is taken as given.
_DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class KubeError(ContinuumError):
    """A Kubernetes API request failed."""

    retryable: ClassVar[bool] = False  # True: the same request may succeed if sent again later

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


class ResourceNotFound(KubeError):
    """The object (or its kind) does not exist (HTTP 404)."""


class ResourceConflict(KubeError):
    """The object already exists, or changed since it was read (HTTP 409)."""


class RequestForbidden(KubeError):
    """RBAC refused the request (HTTP 403)."""


class ResourceInvalid(KubeError):
    """The API server rejected the object (HTTP 400 or 422)."""


class RequestThrottled(KubeError):
    """The API server is shedding load and did not run the request (HTTP 429)."""

    retryable = True


class KubeUnavailable(KubeError):
    """The API server failed or could not answer (HTTP 5xx): it may succeed later."""

    retryable = True


_BY_STATUS: dict[int, type[KubeError]] = {
    400: ResourceInvalid,
    403: RequestForbidden,
    404: ResourceNotFound,
    409: ResourceConflict,
    422: ResourceInvalid,
    THROTTLED: RequestThrottled,
}


def error_for(
    status: int, body: bytes | str | None, what: str, retry_after: str | None = None
) -> KubeError:
    """The error for an HTTP ``status`` with a ``metav1.Status`` ``body``, about ``what``.

    ``retry_after`` is the response's ``Retry-After`` header, if it had one.
    """
    reason, message, asked = _status_fields(body)
    cls = _class_for(status)
    text = f"{what}: HTTP {status} {reason}: {message}".rstrip(": ")
    wait = _wait(retry_after, asked) if cls.retryable else None
    return cls(text, status=status, reason=reason, retry_after=wait)


def retry_after_seconds(header: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for: delay-seconds or an HTTP date (RFC 9110).

    A date in the past is 0; a missing or unreadable header is None (ask for nothing).
    """
    text = (header or "").strip()
    if not text:
        return None
    if _DELAY_SECONDS.fullmatch(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; an obsolete form may lack the zone
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _class_for(status: int) -> type[KubeError]:
    if 500 <= status <= 599:
        return KubeUnavailable
    return _BY_STATUS.get(status, KubeError)


def _wait(header: str | None, asked: float | None) -> float | None:
    """The header's delay, else the Status body's ``retryAfterSeconds``."""
    from_header = retry_after_seconds(header)
    return from_header if from_header is not None else asked


def _status_fields(body: bytes | str | None) -> tuple[str, str, float | None]:
    """Reason, message and ``details.retryAfterSeconds`` of a ``metav1.Status`` body."""
    try:
        data = json.loads(body or "")
    except ValueError:
        return "", "", None
    if not isinstance(data, dict):
        return "", "", None
    details = data.get("details")
    asked = details.get("retryAfterSeconds") if isinstance(details, dict) else None
    return str(data.get("reason", "")), str(data.get("message", "")), _seconds(asked)


def _seconds(value: object) -> float | None:
    """A non-negative finite number of seconds, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None
