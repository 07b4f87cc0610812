"""The decisions of leader election, as pure functions of what was observed and when.

Given the Lease as last read, when this process first saw that version of it, the time now and
its own identity, a candidate either creates the Lease, takes it over, renews it, or waits.

Expiry is judged by the *local* clock, never by the ``renewTime`` written in the Lease: a
Lease is expired when this process has seen no new version of it for ``leaseDurationSeconds``
(``Sighting.since`` is when the version in hand was first read). A renewal changes the
``resourceVersion``, so a live leader keeps resetting every standby's clock; clock skew between
nodes cannot make a standby think a live Lease expired (client-go judges expiry the same way).

Why two leaders cannot overlap: a leader exits (``renew_overdue``) once ``renew_deadline``
has passed since it *sent* its last successful write; a standby saw that write no earlier than
it was applied, so it takes over no earlier than ``lease_duration`` after the send. With
``lease_duration`` > ``renew_deadline`` (15 s and 10 s by default) the old leader is gone 5 s
before the new one starts.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math

from continuum.kube.leases import LeaseRecord

# controller-runtime's defaults (leaseDuration, renewDeadline, retryPeriod).
LEASE_DURATION = 15.0
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0
RELEASED_DURATION = 1  # what a released Lease says (as client-go writes it)


@dataclasses.dataclass(frozen=True)
class Timings:
    """How long a Lease lasts, how long a leader may fail to renew, how often anyone tries.

    Takeover after the leader is killed (no release) takes between ``lease_duration -
    retry_period`` and ``lease_duration + 2 * retry_period`` (13-19 s by default): the leader
    last renewed up to one period before it died, the standby saw that renewal up to one
    period after it, and checks once a period after the lease ran out. After a graceful stop
    (the Lease released) it takes at most ``retry_period`` plus one request.
    """

    lease_duration: float = LEASE_DURATION
    renew_deadline: float = RENEW_DEADLINE
    retry_period: float = RETRY_PERIOD

    def problem(self) -> str | None:
        """What is wrong with these timings (None: they are consistent)."""
        if self.retry_period <= 0:
            return "the retry period must be positive"
        if self.renew_deadline <= self.retry_period:
            return "the renew deadline must exceed the retry period (a leader retries within it)"
        if self.lease_duration <= self.renew_deadline:
            return (
                "the lease duration must exceed the renew deadline "
                "(a leader that cannot renew must be gone before a standby takes over)"
            )
        return None

    @property
    def crash_takeover_bound(self) -> float:
        """Worst seconds from a leader killed without release to a standby holding the Lease."""
        return self.lease_duration + 2 * self.retry_period


class Step(enum.Enum):
    CREATE = "create"  # no Lease yet: create it, held by me
    ACQUIRE = "acquire"  # free (released) or expired: take it over
    RENEW = "renew"  # mine: renew it
    WAIT = "wait"  # held by another, still valid


@dataclasses.dataclass(frozen=True)
class Sighting:
    """A version of the Lease and the local (monotonic) time it was first read."""

    record: LeaseRecord
    since: float


def sight(previous: Sighting | None, record: LeaseRecord | None, now: float) -> Sighting | None:
    """The sighting after reading ``record`` at ``now``: the clock restarts on a new version."""
    if record is None:
        return None
    if previous is not None and previous.record.resource_version == record.resource_version:
        return previous
    return Sighting(record, now)


def decide(sighting: Sighting | None, me: str, now: float, timings: Timings) -> Step:
    """What the candidate ``me`` does about the Lease it sees."""
    if sighting is None:
        return Step.CREATE
    holder = sighting.record.holder
    if holder == me:
        return Step.RENEW
    if not holder or expired(sighting, now, timings):
        return Step.ACQUIRE
    return Step.WAIT


def expired(sighting: Sighting, now: float, timings: Timings) -> bool:
    """No new version for the Lease's own duration (ours when it states none)."""
    duration = sighting.record.duration_seconds or timings.lease_duration
    return now >= sighting.since + duration


def renew_overdue(last_renewed: float, now: float, timings: Timings) -> bool:
    """A leader whose last successful write was sent more than ``renew_deadline`` ago."""
    return now - last_renewed > timings.renew_deadline


def claim(
    record: LeaseRecord | None, me: str, wall_now: datetime.datetime, timings: Timings
) -> LeaseRecord:
    """``record`` held (or renewed) by ``me`` at ``wall_now``, guarded by its version.

    Taking it from someone else (or after a release) sets ``acquireTime`` and counts one more
    transition; a renewal moves ``renewTime`` only.
    """
    previous = record or LeaseRecord()
    taking = previous.holder != me
    return dataclasses.replace(
        previous,
        holder=me,
        duration_seconds=math.ceil(timings.lease_duration),
        acquire_time=wall_now if taking or previous.acquire_time is None else previous.acquire_time,
        renew_time=wall_now,
        transitions=previous.transitions + (1 if taking and record is not None else 0),
    )


def release(record: LeaseRecord, wall_now: datetime.datetime) -> LeaseRecord:
    """``record`` given up: no holder, so the next standby to look takes it at once."""
    return dataclasses.replace(
        record, holder="", duration_seconds=RELEASED_DURATION, renew_time=wall_now
    )
