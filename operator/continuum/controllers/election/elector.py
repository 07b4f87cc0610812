"""One candidate for the leader Lease: acquire it, renew it while leading, release it at the end.

The decisions are ``decision.py``'s; this module does the calls, the waiting, the logging and
the metrics. A leader that cannot renew within the renew deadline, or finds the Lease held by
someone else, exits the process at once (``os._exit``, after one log line): a half-stopped
operator could still be writing while the new leader starts, and the kubelet restarts the
container as a standby anyway. The deadline is also watched from a thread, so a leader whose
event loop is stuck (a handler hogging it) exits as surely as one whose requests fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import aiohttp

from continuum.controllers.election import decision
from continuum.controllers.election.decision import Sighting, Step, Timings
from continuum.controllers.election.metrics import IS_LEADER, LEADER_CHANGES
from continuum.kube.errors import KubeError, ResourceConflict, ResourceNotFound
from continuum.kube.leases import LeaseRecord, Leases

logger = logging.getLogger(__name__)

LEASE_NAME = "continuum-operator"
NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
LOST_EXIT_CODE = 1
WATCHDOG_PERIOD = 0.25  # seconds between the watchdog thread's looks at the last renewal
# Failures worth another try: API errors (RBAC may be fixed, the API server may come back),
# and requests that got no answer or timed out.
RETRYABLE = (KubeError, aiohttp.ClientError, TimeoutError, OSError)


class _LeadershipLost(Exception):  # noqa: N818
    """The Lease is gone or held by someone else while this process leads (a control-flow
    signal caught in this module: it ends the process)."""


def default_namespace() -> str | None:
    """``$POD_NAMESPACE`` (the chart sets it), else the pod's service account namespace."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    with contextlib.suppress(OSError):
        return NAMESPACE_FILE.read_text().strip() or None
    return None


def new_identity() -> str:
    """``$POD_NAME`` (or the host name) plus a random suffix: unique per process.

    A container restarted in the same pod is a new candidate, not the old leader resumed.
    """
    base = os.environ.get("POD_NAME") or socket.gethostname() or "continuum"
    return f"{base}_{os.urandom(4).hex()}"


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Elector:
    """This process as a candidate for ``namespace/name``."""

    def __init__(
        self,
        leases: Leases,
        *,
        namespace: str,
        name: str,
        identity: str,
        timings: Timings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.leases, self.namespace, self.name = leases, namespace, name
        self.identity, self.timings, self._clock = identity, timings, clock
        self._sighting: Sighting | None = None
        self._mine: LeaseRecord | None = None  # what this process last wrote, while it leads
        self._renewed_at = -float("inf")  # when that write was sent (monotonic)
        self._said = ""  # the last standby or complaint line, so each is logged once
        self._stopped = threading.Event()

    @property
    def lease(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    @property
    def holder(self) -> str:
        """Who holds the Lease, as last seen ("" for nobody or not read yet)."""
        return self._sighting.record.holder if self._sighting is not None else ""

    # -- standby ------------------------------------------------------------------------

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Try every retry period until this process holds the Lease (True) or ``stop`` is set."""
        IS_LEADER.set(0)
        while not stop.is_set():
            if await self._attempt():
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.timings.retry_period)
        return False

    async def _attempt(self) -> bool:
        try:
            return await self._try_acquire()
        except RETRYABLE as err:
            self._say(
                logging.WARNING,
                f"standby: cannot read or write {self.lease} ({err}); "
                f"trying again every {self.timings.retry_period:g} s",
            )
            return False

    async def _try_acquire(self) -> bool:
        record = await self.leases.read_lease(self.namespace, self.name)
        now = self._clock()
        self._note(record, now)
        step = decision.decide(self._sighting, self.identity, now, self.timings)
        if step is Step.WAIT:
            return False
        sent = self._clock()
        wanted = decision.claim(record, self.identity, utc_now(), self.timings)
        try:
            if step is Step.CREATE:
                written = await self.leases.create_lease(self.namespace, self.name, wanted)
            else:
                written = await self.leases.replace_lease(self.namespace, self.name, wanted)
        except (ResourceConflict, ResourceNotFound):
            return False  # another candidate wrote first: the next attempt reads who
        self._lead(written, sent, previous=record.holder if record else "")
        return True

    def _note(self, record: LeaseRecord | None, now: float) -> None:
        """Keep the sighting; count and log (once) a holder this process has not seen yet."""
        before = self.holder if self._sighting is not None else None
        self._sighting = decision.sight(self._sighting, record, now)
        holder = self.holder
        if before is not None and holder and holder != before:
            LEADER_CHANGES.inc()
        if holder and holder != self.identity:
            self._say(
                logging.INFO,
                f"standby: {self.lease} is held by {holder}; taking over if it is released, "
                f"or not renewed for {self._duration(record):g} s (checked every "
                f"{self.timings.retry_period:g} s)",
            )

    def _duration(self, record: LeaseRecord | None) -> float:
        stated = record.duration_seconds if record is not None else 0
        return stated or self.timings.lease_duration

    def _say(self, level: int, line: str) -> None:
        if line != self._said:
            self._said = line
            logger.log(level, line)

    # -- leader -------------------------------------------------------------------------

    def _lead(self, written: LeaseRecord, sent: float, previous: str) -> None:
        self._mine, self._renewed_at = written, sent
        self._sighting = Sighting(written, self._clock())
        IS_LEADER.set(1)
        LEADER_CHANGES.inc()
        taken = f" from {previous}" if previous else ""
        logger.info(
            f"leader: {self.identity} holds {self.lease}{taken} (transition "
            f"{written.transitions}); renewing every {self.timings.retry_period:g} s, exiting "
            f"if no renewal succeeds for {self.timings.renew_deadline:g} s"
        )
        self._stopped.clear()
        watchdog = threading.Thread(target=self._watch, name="lease watchdog", daemon=True)
        watchdog.start()

    async def hold(self) -> None:
        """Renew every retry period, until cancelled (or the process exits, see the module)."""
        while True:
            await asyncio.sleep(self.timings.retry_period)
            await self._renew_once()

    async def _renew_once(self) -> None:
        sent = self._clock()
        budget = self._renewed_at + self.timings.renew_deadline - sent
        try:
            written = await asyncio.wait_for(self._renew(), max(budget, 0.01))
        except _LeadershipLost as lost:
            self._exit(f"leader: {lost}; exiting so that only the new leader runs")
        except RETRYABLE as err:
            if decision.renew_overdue(self._renewed_at, self._clock(), self.timings):
                self._exit(self._overdue(f"last error: {err}"))
            left = self._renewed_at + self.timings.renew_deadline - self._clock()
            logger.warning(f"leader: could not renew {self.lease} ({err}); {left:.1f} s left")
            return
        self._mine, self._renewed_at = written, sent

    async def _renew(self) -> LeaseRecord:
        mine = self._mine
        if mine is None:
            raise _LeadershipLost(f"{self.lease} was released")
        try:
            return await self._replace(decision.claim(mine, self.identity, utc_now(), self.timings))
        except ResourceConflict:  # written by someone else since: whose is it now?
            current = await self.leases.read_lease(self.namespace, self.name)
            if current is None or current.holder != self.identity:
                holder = current.holder if current is not None else "nobody (deleted)"
                raise _LeadershipLost(f"{self.lease} is now held by {holder or 'nobody'}") from None
            return await self._replace(
                decision.claim(current, self.identity, utc_now(), self.timings)
            )

    async def _replace(self, record: LeaseRecord) -> LeaseRecord:
        try:
            return await self.leases.replace_lease(self.namespace, self.name, record)
        except ResourceNotFound:
            raise _LeadershipLost(f"{self.lease} was deleted") from None

    def _watch(self) -> None:
        """The watchdog thread: exit once the renew deadline has passed (loop stuck or not)."""
        while not self._stopped.wait(WATCHDOG_PERIOD):
            if decision.renew_overdue(self._renewed_at, self._clock(), self.timings):
                self._exit(self._overdue("seen by the watchdog thread"))

    def _overdue(self, detail: str) -> str:
        return (
            f"leader: no renewal of {self.lease} succeeded for {self.timings.renew_deadline:g} s "
            f"({detail}); exiting so that two operators never run at once "
            "(restarted, this process is a standby)"
        )

    def _exit(self, line: str) -> NoReturn:
        """One log line, then the process ends at once: nothing of the controllers runs on."""
        logger.critical(line)
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        sys.stderr.flush()
        os._exit(LOST_EXIT_CODE)

    async def release(self) -> None:
        """Give the Lease up (no holder): a standby takes it at its next try.

        Called once the controllers have stopped. When it cannot be written, a standby takes
        over when the Lease expires instead.
        """
        self._stopped.set()
        IS_LEADER.set(0)
        mine, self._mine = self._mine, None
        if mine is None:
            return
        try:
            await asyncio.wait_for(self._give_up(mine), self.timings.renew_deadline)
        except (*RETRYABLE, _LeadershipLost) as err:
            logger.warning(
                f"could not release {self.lease} ({err}); a standby takes over when it expires"
            )
            return
        logger.info(f"released {self.lease}: a standby takes over at its next try")

    async def _give_up(self, mine: LeaseRecord) -> None:
        try:
            await self._replace(decision.release(mine, utc_now()))
        except ResourceConflict:  # a renewal cancelled in flight may have landed: once more
            current = await self.leases.read_lease(self.namespace, self.name)
            if current is not None and current.holder == self.identity:
                await self._replace(decision.release(current, utc_now()))
