"""kopf's triggers of the DriftMonitor controller, and its schedule; each runs the one reconcile
through the controller's work queue (serialised per monitor, retried when it fails).

* ``driftmonitor``: any DriftMonitor event (created, changed, listed at start) → that one;
* ``driftmonitor-check``: a check Job finished → its owner;
* the schedule (a task): every ``TICK_SECONDS``, the monitors whose next check (or tick of
  ``retrain.triggers.schedule``) is due;
* the resync (``shared.resync``, ``--resync-seconds``): every DriftMonitor once per period.

No finalizer: a kopf timer would put kopf's finalizer on every DriftMonitor (so deleting one
would need the operator running). Instead the event handler keeps the last-seen body of every
DriftMonitor (event handlers store nothing on the object) and one operator-wide task, started
at startup, reconciles those whose next check is due. Children (check Jobs, retraining
TrainingJobs) carry owner references, so garbage collection removes them with the monitor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from continuum.api import GROUP, VERSION, DriftMonitor, load
from continuum.api.vocabulary import (
    COMPONENT,
    COMPONENT_DRIFT_CHECK,
    DRIFT_MONITOR,
    DRIFT_MONITORS,
    MANAGED_BY,
    OPERATOR,
)
from continuum.controllers.driftmonitor import controller, metrics
from continuum.controllers.driftmonitor.checks import is_due
from continuum.controllers.driftmonitor.controller import Key, queue
from continuum.controllers.driftmonitor.retrain import due_tick
from continuum.controllers.driftmonitor.verdicts import job_outcome
from continuum.controllers.lifecycle import image_of, kube_of, resync_with
from continuum.controllers.shared import resync as resyncs

TICK_SECONDS = 5.0
TASK = "driftmonitor-ticker"
# Last-seen body of every DriftMonitor, by (namespace, name): what the schedule looks at.
_known: dict[tuple[str, str], dict[str, Any]] = {}
# Every DriftMonitor, reconciled again once per --resync-seconds.
resync: resyncs.Resync[Key] = resyncs.Resync(DRIFT_MONITOR, queue)


@kopf.on.event(GROUP, VERSION, DRIFT_MONITORS, id="driftmonitor")
async def monitor_event_handler(
    type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    key = (str(body["metadata"]["namespace"]), str(body["metadata"]["name"]))
    if type == "DELETED":
        forget(*key)
        return
    _known[key] = dict(body)
    resync.track(key)
    await controller.run(kube_of(memo), image_of(memo), *key, trigger="event")


@kopf.on.event(
    "batch",
    "v1",
    "jobs",
    id="driftmonitor-check",
    labels={MANAGED_BY: OPERATOR, COMPONENT: COMPONENT_DRIFT_CHECK},
)
async def check_event_handler(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    owner = controller.controller_owner(body)
    if type == "DELETED" or owner is None or job_outcome(body) is None:
        return
    namespace = str(body["metadata"]["namespace"])
    await controller.run(
        kube_of(memo), image_of(memo), namespace, owner[0], uid=owner[1], trigger="check-event"
    )


@kopf.on.startup(id="driftmonitor-startup")
async def startup(memo: kopf.Memo, **_: Any) -> None:
    memo[TASK] = asyncio.create_task(tick_forever(memo), name=TASK)


@kopf.on.cleanup(id="driftmonitor-cleanup")
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    task = memo.get(TASK)
    if isinstance(task, asyncio.Task):
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def tick_forever(memo: kopf.Memo) -> None:
    """The schedule: every TICK_SECONDS, reconcile the monitors whose check is due."""
    while True:
        await asyncio.sleep(TICK_SECONDS)
        await tick(memo, datetime.now(UTC))


async def tick(memo: kopf.Memo, now: datetime) -> None:
    """Reconcile each known monitor with a check due (one's failure is retried by the queue
    and never holds back the others)."""
    for (namespace, name), body in list(_known.items()):
        if due(body, now):
            await controller.run(kube_of(memo), image_of(memo), namespace, name, trigger="schedule")


def due(body: Mapping[str, Any], now: datetime) -> bool:
    """Whether the last-seen ``body`` has a check (or a result to fold in) or a scheduled
    retraining due."""
    try:
        dm = load(DriftMonitor, body)
    except ValidationError:
        return False
    created = controller.created_at(dm, now)
    return is_due(dm.status, dm.spec, now) or due_tick(dm.spec, dm.status, created, now) is not None


def forget(namespace: str, name: str) -> None:
    """Drop a deleted monitor's last-seen body and metrics."""
    _known.pop((namespace, name), None)
    resync.forget((namespace, name))
    metrics.clear_metrics(namespace, name)


async def resync_one(memo: kopf.Memo, key: Key) -> None:
    """The resync of one DriftMonitor: its full reconcile, through the queue."""
    await controller.run(kube_of(memo), image_of(memo), *key, trigger=resyncs.TRIGGER)


resync_with(resync, resync_one)
