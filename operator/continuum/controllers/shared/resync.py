"""Periodic resync: every object of a kind is reconciled again once per period, whatever
happened to it, so that anything a lost event or a dropped retry left behind converges from
observed state within one period (controller-runtime's ``SyncPeriod``; default 10 minutes,
``--resync-seconds``).

The period is not one instant for all objects: each key fires at its own **phase**, a fixed
offset in ``[0, period)`` taken from a hash of the key, at the wall-clock times where
``time ≡ phase (mod period)``. 1,000 objects over 600 s are about 1.7 reconciles a second, not
1,000 at once; and the phase of a key is the same in every process and after a restart (a
new leader resyncs an object at the same moments the old one would have).

What fires is decided by pure functions (``phase_of``, ``due_between``) over a sorted list of
the tracked keys' phases, so a tick costs a bisection, not a pass over every object. The
controller tells the resync which keys exist (``track``/``forget``, from its event handlers:
kopf lists every object when the operator starts, so all are tracked from then on).

A key is skipped at its moment when its queue already has a call scheduled (an error retry, or
a requeue while it waits on something): that call is the reconcile. At most ``concurrency``
resyncs of a kind run at once, and a key whose previous resync still runs is skipped: under an
API outage, resyncs queue behind nothing and add at most that many requests in flight.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from contextlib import suppress
from typing import Generic, Protocol, TypeVar

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)
log = logging.getLogger(__name__)

DEFAULT_PERIOD = 600.0
TRIGGER = "resync"  # the handler label of its reconciles in continuum_reconciles_total
# How often the resync looks for keys whose moment came: 1,000 objects over 600 s fire in
# batches of about 2, and a key fires at most 1 s after its moment.
TICK_SECONDS = 1.0
# Resyncs of one kind in flight at once (each one is a full reconcile: 2-7 API requests).
CONCURRENCY = 4


class Scheduled(Protocol[K_contra]):
    """What the resync asks the kind's work queue: whether a call is already scheduled."""

    def scheduled(self, key: K_contra) -> bool: ...


def phase_of(key: Hashable, period: float) -> float:
    """The key's offset in ``[0, period)``: a hash of its ``repr``, the same in every process
    (Python's own ``hash`` of a string changes with each process's seed)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64 * period


def due_between(phases: list[float], start: float, end: float, period: float) -> list[int]:
    """Indices into the sorted ``phases`` of the keys whose moment falls in ``(start, end]``
    (wall-clock seconds); every key when that window spans a whole period or more."""
    if end <= start:
        return []
    if end - start >= period:
        return list(range(len(phases)))
    a, b = start % period, end % period
    if a < b:
        return list(range(bisect.bisect_right(phases, a), bisect.bisect_right(phases, b)))
    # the window wraps past a multiple of the period: (a, period) and [0, b]
    return [*range(bisect.bisect_right(phases, a), len(phases)),
            *range(0, bisect.bisect_right(phases, b))]  # fmt: skip


class Resync(Generic[K]):
    """The periodic resync of one kind (see the module): ``track``/``forget`` keys, ``start``
    the ticker with the kind's reconcile of one key."""

    def __init__(
        self,
        kind: str,
        queue: Scheduled[K],
        *,
        concurrency: int = CONCURRENCY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kind = kind
        self.queue = queue
        self.period = DEFAULT_PERIOD
        self._clock = clock
        self._keys: set[K] = set()
        self._order: tuple[list[float], list[K]] | None = ([], [])  # None: sort on next use
        self._running: set[K] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._concurrency = concurrency
        self._slots: asyncio.Semaphore | None = None  # made in the running loop
        self._last: float | None = None

    def track(self, key: K) -> None:
        """``key`` exists: resync it from now on."""
        if key not in self._keys:
            self._keys.add(key)
            self._order = None

    def forget(self, key: K) -> None:
        """``key`` is gone, or needs no resync any more."""
        if key in self._keys:
            self._keys.discard(key)
            self._order = None

    def __len__(self) -> int:
        return len(self._keys)

    def due(self, start: float, end: float) -> list[K]:
        """The tracked keys whose moment falls in ``(start, end]``, in phase order."""
        phases, keys = self._sorted()
        return [keys[i] for i in due_between(phases, start, end, self.period)]

    def start(
        self, period: float, reconcile: Callable[[K], Awaitable[object]]
    ) -> asyncio.Task[None]:
        """Tick every ``TICK_SECONDS`` from now on, reconciling the keys whose moment came;
        ``period`` ≤ 0 turns the resync off (the task returns at once)."""
        if period != self.period:
            self.period, self._order = period, None
        self._last, self._slots = self._clock(), None
        return asyncio.create_task(self._forever(reconcile), name=f"{self.kind} resync")

    async def stop(self, task: asyncio.Task[None]) -> None:
        """Cancel the ticker and the resyncs in flight."""
        for running in (task, *self._tasks):
            running.cancel()
        for running in (task, *list(self._tasks)):
            with suppress(asyncio.CancelledError):
                await running

    def tick(self, reconcile: Callable[[K], Awaitable[object]]) -> list[K]:
        """Start the resyncs whose moment came since the last tick; the keys started."""
        now = self._clock()
        start, self._last = (now if self._last is None else self._last), now
        return [key for key in self.due(start, now) if self._launch(key, reconcile)]

    async def _forever(self, reconcile: Callable[[K], Awaitable[object]]) -> None:
        if self.period <= 0:
            log.info("%s resync: off", self.kind)
            return
        log.info("%s resync: every %.0f s, spread by key", self.kind, self.period)
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self.tick(reconcile)

    def _launch(self, key: K, reconcile: Callable[[K], Awaitable[object]]) -> bool:
        if key in self._running or self.queue.scheduled(key):
            return False
        self._running.add(key)
        task = asyncio.create_task(self._one(key, reconcile))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _one(self, key: K, reconcile: Callable[[K], Awaitable[object]]) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._concurrency)
        try:
            async with self._slots:
                await reconcile(key)  # through the work queue: it never raises
        except Exception:
            log.exception("%s %s: resync failed", self.kind, key)
        finally:
            self._running.discard(key)

    def _sorted(self) -> tuple[list[float], list[K]]:
        """The tracked keys by phase (ties by ``repr``), sorted again only after a change."""
        if self._order is None:
            period = self.period if self.period > 0 else DEFAULT_PERIOD
            rows = sorted((phase_of(k, period), repr(k), k) for k in self._keys)
            self._order = ([p for p, _, _ in rows], [k for _, _, k in rows])
        return self._order
