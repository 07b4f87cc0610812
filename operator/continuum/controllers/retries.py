"""Retry later, in this process: one pending attempt per key, backing off while failures last.

kopf retries a handler that raises, but not an event handler, and a timer would need a
finalizer on every object it runs for. The one thing retried this way (a finished run whose
manifest cannot be read yet) needs neither: the attempt re-reads what it acts on, a restarted
operator's resume handler tries again by itself, and a key is forgotten as soon as its object
no longer waits (so nothing is kept for objects that are fine).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
log = logging.getLogger(__name__)


@dataclass
class _Slot:
    failures: int = 0
    pending: asyncio.Task[None] | None = None


class Retries(Generic[K]):
    """At most one scheduled attempt per key; the delay doubles from ``first`` up to ``cap``."""

    def __init__(self, *, first: float, cap: float) -> None:
        self.first, self.cap = first, cap
        self._slots: dict[K, _Slot] = {}

    def schedule(self, key: K, attempt: Callable[[], Awaitable[None]]) -> float | None:
        """Run ``attempt`` after the key's next delay; None if one is already pending."""
        slot = self._slots.setdefault(key, _Slot())
        if slot.pending is not None:
            return None
        delay = self.delay(slot.failures)
        slot.failures += 1
        slot.pending = asyncio.create_task(self._later(key, slot, delay, attempt))
        return delay

    def delay(self, failures: int) -> float:
        """Seconds before the attempt that follows ``failures`` failed ones."""
        return float(min(self.cap, self.first * 2 ** min(failures, 32)))

    def forget(self, key: K) -> None:
        """Drop the key: its pending attempt (if any) is cancelled, its backoff reset."""
        slot = self._slots.pop(key, None)
        if slot is not None and slot.pending is not None and slot.pending is not _current():
            slot.pending.cancel()

    def pending(self) -> int:
        """How many keys have an attempt scheduled."""
        return sum(1 for slot in self._slots.values() if slot.pending is not None)

    async def _later(
        self, key: K, slot: _Slot, delay: float, attempt: Callable[[], Awaitable[None]]
    ) -> None:
        await asyncio.sleep(delay)
        slot.pending = None  # the attempt may schedule the next one
        try:
            await attempt()
        except Exception:  # e.g. the API server is away: try again later, never give up
            log.exception("retry of %s failed; trying again later", key)
            if self._slots.get(key) is slot:
                self.schedule(key, attempt)


def _current() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None
