"""Riding out a short S3 outage: retry transient failures with capped exponential backoff.

botocore already retries each request a few times within a few seconds; that covers a dropped
connection, not a restarting MinIO or a minute-long outage. A :class:`RetryPolicy` keeps
retrying :class:`~continuum.errors.StorageUnavailable` failures (connection refused, timeouts,
5xx, throttling) until ``deadline_seconds`` have passed since the first attempt, then lets the
last error through. Every other error (missing object, wrong credentials, unknown host) is a
mistake a retry cannot fix and is raised at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from continuum.errors import StorageUnavailable

T = TypeVar("T")


@dataclass(frozen=True)
class RetryNotice:
    """What the caller is told before each wait (for its log)."""

    attempt: int  # the attempt that just failed, from 1
    delay: float  # seconds until the next attempt
    waited: float  # seconds since the first attempt started
    error: StorageUnavailable


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep retrying transient S3 failures, and how far apart."""

    deadline_seconds: float
    first_delay: float = 1.0
    max_delay: float = 10.0
    on_retry: Callable[[RetryNotice], None] | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def delays(self) -> Callable[[int], float]:
        """Delay before attempt ``n + 1`` after attempt ``n`` failed: doubling, capped."""
        return lambda attempt: min(self.max_delay, self.first_delay * 2 ** (attempt - 1))


def call_with_retry(operation: Callable[[], T], policy: RetryPolicy | None) -> T:
    """``operation()``, retried on StorageUnavailable within the policy's deadline."""
    if policy is None:
        return operation()
    start = policy.clock()
    delay_after = policy.delays()
    attempt = 1
    while True:
        try:
            return operation()
        except StorageUnavailable as error:
            delay = delay_after(attempt)
            waited = policy.clock() - start
            if waited + delay > policy.deadline_seconds:
                raise StorageUnavailable(
                    f"{error.message} (still failing after {attempt} attempts in {waited:.0f} s)"
                ) from error
            if policy.on_retry is not None:
                policy.on_retry(RetryNotice(attempt, delay, waited, error))
            policy.sleep(delay)
            attempt += 1
