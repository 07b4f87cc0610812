"""The queueing machinery every controller shares: one reconcile at a time per object, and a
retry with capped, jittered exponential backoff for every reconcile that fails.

kopf retries a failed *change* handler (create, update, resume) by writing progress
annotations on the object, but an *event* handler that raises is logged and dropped: a
transient API error while reacting to a child's or a related object's event was lost until
some unrelated event or a restart (e.g. a newly qualified TrainingJob never promoted). So no
controller lets kopf retry anything: every handler hands its work to :meth:`WorkQueue.run`,
which never raises; a failure schedules a full reconcile of the object's key after a backoff,
and that retry is retried in turn until it succeeds or the object is gone (the reconcile
returns quietly for an object that no longer exists).

Per key there is at most one pending retry and one lock, and both are dropped as soon as
nothing holds, waits for or schedules them, so 10,000 objects that are fine cost nothing here.

When the same object has failed ``FAILING_AFTER`` times in a row, its :class:`Reporter` (given
by the controller) says so on the object: a ``Reconciling`` condition with the last error and
one Warning Event for the whole streak, not one per retry; the first success afterwards clears
the condition and posts a Normal Event.

A controller may also ask to be called again later while its object waits on something outside
the API (a manifest S3 cannot serve yet): :meth:`WorkQueue.requeue`, with a backoff of its own
that :meth:`WorkQueue.settle` resets once the object no longer waits.

**News cuts a long wait short.** The backoff grows with the failures *since the last news*,
not with the whole streak: a trigger that is not a timer (an event of the object, of a child
or of a related object; see ``TIMERS``) runs its reconcile at once, and if that fails too the
retry comes after the *first* step again (about 1 s), replacing a pending retry that was due
later; if it succeeds, the pending retry is cancelled. An event that does no reconcile of its
own (the object itself changed, or was listed again after a watch broke) may :meth:`nudge` the
key: a retry due more than ``NUDGE_AFTER`` from now runs now. The streak itself
(``failures``, what the object shows after ``FAILING_AFTER``) keeps counting across news.

Under the fault test's API (30% of requests failing, 4-7 requests a reconcile, so 70-90% of
reconciles failing) the streak-long backoff reached its 5-minute cap within 9 failures and
left objects unconverged 8 minutes after their last change; the news that arrives meanwhile
(relists after broken watches, other objects' events) now gets them retried within seconds.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import kopf

from continuum.controllers.shared import kopf_events
from continuum.controllers.shared.metrics import COALESCED, ERRORS, RECONCILES
from continuum.errors import ContinuumError

K = TypeVar("K", bound=Hashable)
Attempt = Callable[[], Awaitable[None]]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """``first`` seconds, doubling per failure up to ``cap``, each spread by ±``jitter``.

    The jitter keeps objects that failed together (an API server outage) from all coming back
    in the same instant when it returns.
    """

    first: float
    cap: float
    jitter: float = 0.2

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after ``failures`` (≥ 1) failed attempts in a row."""
        base = min(self.cap, self.first * 2.0 ** min(max(failures - 1, 0), 32))
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base * (1 + spread))


# A failed reconcile is tried again after about 1 s, then 2, 4, ... at most every 5 minutes.
ERROR_BACKOFF = Backoff(first=1.0, cap=300.0)
# Failures in a row before the object itself shows them: 3 is about 7 s of retries (1 + 2 + 4),
# long enough that a single 409 or a blip of the API server stays out of `kubectl describe`.
FAILING_AFTER = 3
# Triggers that bring no news: the queue's own retries, the periodic resync, a kind's schedule.
# Every other trigger restarts the backoff (see the module).
TIMERS = frozenset({"retry", "resync", "schedule"})
# A nudge runs a pending retry now only when it is due later than this: the first retries after
# news (1, 2, 4, 8 s) are left alone, so the object's own events (a status write of the failing
# reconcile, the Reconciling condition of the streak) cannot turn the backoff into a busy loop.
NUDGE_AFTER = 10.0


class Reporter(Protocol):
    """Shows a failure streak on the object (see ``shared.streaks``); must not raise."""

    async def failing(self, error: Exception) -> None: ...

    async def recovered(self) -> bool: ...  # False: not cleared (the API refused), try again


@dataclass
class _Slot:
    failures: int = 0  # failed reconciles in a row (the streak)
    tries: int = 0  # failed reconciles since the last news (the backoff's exponent)
    waits: int = 0  # requeues in a row while the object waits on something
    pending: asyncio.Task[None] | None = None
    due: float = 0.0  # loop time the pending call is due
    retrying: bool = False  # the pending call is an error retry (else a requeue)
    again: Attempt | None = None  # what the pending call runs (a nudge runs it sooner)
    deferred: tuple[float, Attempt] | None = None  # a requeue asked while a retry was pending
    reporter: Reporter | None = None  # the streak's, from the first trigger that gave one
    users: int = 0  # holders and waiters of the lock
    queued: Counter[Hashable] = field(default_factory=Counter)  # waiters, by coalescing token
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class WorkQueue(Generic[K]):
    """Serialises the reconciles of each key and retries the failed ones (see the module).

    Work is handed over as callables: ``work`` is what a trigger asks for (often the full
    reconcile, sometimes a narrower step such as syncing a TrainingJob from one Job event), and
    ``again`` is the full reconcile of the key from observed state, which is what a retry runs
    whatever failed.
    """

    def __init__(self, kind: str, *, backoff: Backoff = ERROR_BACKOFF) -> None:
        self.kind = kind
        self.backoff = backoff
        self._slots: dict[K, _Slot] = {}

    async def run(
        self,
        key: K,
        work: Attempt,
        *,
        again: Attempt,
        trigger: str,
        reporter: Reporter | None = None,
        coalesce: Hashable | None = None,
    ) -> bool:
        """Run ``work`` under the key's lock; True on success, never raises.

        ``coalesce``: a token saying ``work`` is the full reconcile of the key from a fresh
        read. When a run with the same token already waits for the lock (it has read nothing
        yet, so it will see everything this trigger saw), this one is folded into it and
        returns True at once: a relist of 1,000 qualified TrainingJobs is then 2 reconciles of
        their ModelDeployment (the one running, the one waiting), not 1,000
        (``continuum_reconciles_coalesced_total``).

        A failure is counted, logged and answered with ``again`` after the key's next backoff
        (or the delay the error asks for, e.g. a 429's ``Retry-After``, when longer). A
        ``kopf.PermanentError`` (an object the API types reject) is not retried: only a change
        of the object can fix it, and a change triggers a reconcile by itself. ``reporter``
        shows a streak of failures on the object (see the module).
        """
        waiting_slot = self._slots.get(key)
        if coalesce is not None and waiting_slot is not None and waiting_slot.queued[coalesce]:
            COALESCED.labels(kind=self.kind, handler=trigger).inc()
            return True
        RECONCILES.labels(kind=self.kind, handler=trigger).inc()
        kopf_events.remember()  # for the Events of reconciles our own tasks run
        news = trigger not in TIMERS
        async with self._locked(key, coalesce) as slot:
            slot.reporter = slot.reporter or reporter  # one per streak: one Warning Event
            if news:
                slot.tries = 0
            waiting = slot.pending if slot.retrying else None  # the retry this run may replace
            slot.deferred = None
            try:
                await work()
            except kopf.PermanentError as exc:
                self._report(
                    key, trigger, exc, "not retried: only a change of the object can fix it"
                )
                return False
            except Exception as exc:
                await self._failed(key, slot, exc, again, trigger)
                return False
            if waiting is not None and slot.pending is waiting and waiting is not _current():
                self._cancel(slot)  # succeeded since: nothing left to retry, but
                if slot.deferred is not None:  # the object still waits on something
                    self._schedule(key, slot, *slot.deferred, retrying=False)
            slot.deferred = None
            await self._succeeded(key, slot, again)
            return True

    def nudge(self, key: K) -> bool:
        """News for ``key`` that triggers no reconcile of its own (its object changed or was
        listed again): a retry due more than ``NUDGE_AFTER`` from now runs now (True), with the
        backoff restarted; the streak goes on counting."""
        slot = self._slots.get(key)
        if slot is None or slot.pending is None or not slot.retrying:
            return False
        if slot.due - _loop_time() <= NUDGE_AFTER:
            return False
        again = slot.again
        if again is None:
            return False
        self._cancel(slot)
        slot.tries = 0
        self._schedule(key, slot, 0.0, again, retrying=True)
        return True

    async def _failed(
        self, key: K, slot: _Slot, exc: Exception, again: Attempt, trigger: str
    ) -> None:
        slot.failures += 1
        slot.tries += 1
        delay = max(self.backoff.delay(slot.tries), _asked_delay(exc))
        if slot.pending is not None and slot.retrying and slot.due > _loop_time() + delay:
            self._cancel(slot)  # news came: the retry due later gives way to a sooner one
        scheduled = self._schedule(key, slot, delay, again, retrying=True)
        self._report(key, trigger, exc, _retry_note(scheduled))
        if slot.failures >= FAILING_AFTER and slot.reporter is not None:
            await slot.reporter.failing(exc)

    async def _succeeded(self, key: K, slot: _Slot, again: Attempt) -> None:
        streak, slot.failures, slot.tries = slot.failures, 0, 0
        shown = streak >= FAILING_AFTER and slot.reporter is not None
        if shown and slot.reporter is not None and not await slot.reporter.recovered():
            # The object still shows the streak: reconcile again soon, and the next success
            # clears it (the streak is kept for that).
            slot.failures = streak
            self._schedule(key, slot, self.backoff.delay(1), again, retrying=True)
            return
        slot.reporter = None

    def requeue(self, key: K, again: Attempt, backoff: Backoff) -> float | None:
        """Run ``again`` after the next delay of ``backoff`` (None: a call is already pending)."""
        slot = self._slots.setdefault(key, _Slot())
        slot.waits += 1
        delay = backoff.delay(slot.waits)
        if slot.pending is not None and slot.retrying:
            slot.deferred = (delay, again)  # if the run asking succeeds, it replaces the retry
        return self._schedule(key, slot, delay, again, retrying=False)

    def settle(self, key: K) -> None:
        """The object waits on nothing: cancel its pending call and reset its backoff."""
        slot = self._slots.get(key)
        if slot is None:
            return
        if slot.pending is not None and slot.pending is not _current():
            slot.pending.cancel()
        slot.pending, slot.waits = None, 0
        if slot.failures < FAILING_AFTER:  # else the next success still has a streak to clear
            slot.failures, slot.tries, slot.reporter = 0, 0, None
        self._prune(key, slot)

    def scheduled(self, key: K) -> bool:
        """Whether ``key`` has a call scheduled (a retry, or a requeue while it waits)."""
        slot = self._slots.get(key)
        return slot is not None and slot.pending is not None

    def pending(self) -> int:
        """How many keys have a reconcile scheduled."""
        return sum(1 for slot in self._slots.values() if slot.pending is not None)

    def failures(self, key: K) -> int:
        """Failed reconciles of ``key`` in a row (0 once one succeeded)."""
        slot = self._slots.get(key)
        return slot.failures if slot is not None else 0

    def __len__(self) -> int:
        """Keys this queue holds anything for (a lock in use, a pending call, a count)."""
        return len(self._slots)

    @asynccontextmanager
    async def _locked(self, key: K, token: Hashable | None = None) -> AsyncIterator[_Slot]:
        slot = self._slots.setdefault(key, _Slot())
        slot.users += 1
        waiting = token is not None
        if waiting:
            slot.queued[token] += 1
        try:
            async with slot.lock:
                if waiting:
                    waiting = False
                    _drop(slot.queued, token)
                yield slot
        finally:
            if waiting:  # cancelled while waiting
                _drop(slot.queued, token)
            slot.users -= 1
            self._prune(key, slot)

    def _schedule(
        self, key: K, slot: _Slot, delay: float, again: Attempt, *, retrying: bool
    ) -> float | None:
        if slot.pending is not None:
            return None
        slot.pending = asyncio.create_task(self._later(key, slot, delay, again))
        slot.due, slot.retrying, slot.again = _loop_time() + delay, retrying, again
        return delay

    def _cancel(self, slot: _Slot) -> None:
        if slot.pending is not None:
            slot.pending.cancel()
        slot.pending = None

    async def _later(self, key: K, slot: _Slot, delay: float, again: Attempt) -> None:
        await asyncio.sleep(delay)
        slot.pending = None  # the reconcile may schedule the next one
        await self.run(key, again, again=again, trigger="retry")

    def _prune(self, key: K, slot: _Slot) -> None:
        idle = not slot.users and slot.pending is None and not slot.failures and not slot.waits
        if idle and self._slots.get(key) is slot:
            del self._slots[key]

    def _report(self, key: K, trigger: str, exc: Exception, note: str) -> None:
        ERRORS.labels(kind=self.kind, handler=trigger, reason=reason_of(exc)).inc()
        expected = isinstance(exc, ContinuumError | kopf.TemporaryError | kopf.PermanentError)
        log.warning(
            "%s %s: reconcile (%s) failed: %s; %s", self.kind, key, trigger, exc, note,
            exc_info=None if expected else exc,  # a bug: keep its traceback in the log
        )  # fmt: skip


def reason_of(exc: BaseException) -> str:
    """The ``reason`` label of a failure: its class name (ours, kopf's or Python's), a small
    fixed set; the message, which names objects, stays in the log."""
    return type(exc).__name__


def _retry_note(delay: float | None) -> str:
    return "a retry is already scheduled" if delay is None else f"retrying in {delay:.1f} s"


def _asked_delay(exc: Exception) -> float:
    """The delay the failure itself asks for: ``Retry-After`` of a throttled request, or a
    ``kopf.TemporaryError``'s ``delay``; 0 when it asks for none."""
    for name in ("retry_after", "delay"):
        value = getattr(exc, name, None)
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return 0.0


def _drop(counter: Counter[Hashable], token: Hashable) -> None:
    counter[token] -= 1
    if counter[token] <= 0:
        del counter[token]


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


def _current() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None
