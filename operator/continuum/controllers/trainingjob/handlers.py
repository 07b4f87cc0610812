"""kopf's triggers of the TrainingJob controller: each one hands its work to the controller's
work queue, which serialises it per TrainingJob and retries it when it fails.

* ``trainingjob``: a TrainingJob created, or listed when the operator starts (resume) →
  ``reconcile`` it;
* ``trainingjob-job``: a managed Job changed (server-side label selector) → ``sync`` its owner;
* ``trainingjob-phase``: any TrainingJob event → the phase gauge, which TrainingJobs the
  periodic resync covers, and a nudge of its queue (a retry waiting long runs now);
* the resync (``shared.resync``, ``--resync-seconds``): every unfinished TrainingJob once per
  period → ``reconcile`` it from a fresh read. A finished one (Succeeded or Failed) is not
  resynced: its status is final and ``reconcile`` returns at once for it, so a resync could
  only cost a read (1,000 finished runs: 1,000 reads every period for nothing).

No finalizers: the Job carries a controller owner reference, so deleting the TrainingJob
garbage-collects it. Handlers return None (nothing lands in ``status.<handler-id>``).
"""

from __future__ import annotations

from typing import Any

import kopf

from continuum.api import GROUP, VERSION
from continuum.api.vocabulary import (
    MANAGED_BY,
    OPERATOR,
    TRAINING_JOB,
    TRAINING_JOB_LABEL,
    TRAINING_JOBS,
)
from continuum.controllers.lifecycle import image_of, kube_of, resync_with
from continuum.controllers.shared import resync as resyncs
from continuum.controllers.shared.objects import Ref
from continuum.controllers.shared.streaks import StatusReporter
from continuum.controllers.trainingjob import controller, metrics
from continuum.controllers.trainingjob.controller import Key, queue
from continuum.controllers.trainingjob.status import TERMINAL
from continuum.kube import Kube

# The unfinished TrainingJobs, reconciled again once per --resync-seconds.
resync: resyncs.Resync[Key] = resyncs.Resync(TRAINING_JOB, queue)


@kopf.on.resume(GROUP, VERSION, TRAINING_JOBS, id="trainingjob")
@kopf.on.create(GROUP, VERSION, TRAINING_JOBS, id="trainingjob")
async def reconcile_handler(
    body: kopf.Body, memo: kopf.Memo, reason: kopf.Reason | str | None = None, **_: Any
) -> None:
    kube, image = kube_of(memo), image_of(memo)
    key = controller.key_of(body)
    look_first = reason != kopf.Reason.CREATE  # resumed: its Job is most likely there

    async def work() -> None:
        await controller.reconcile(kube, image, body, look_first=look_first)

    async def again() -> None:
        await controller.reconcile_key(kube, image, key)

    ref = Ref(TRAINING_JOB, TRAINING_JOBS, *key, body["metadata"].get("uid"))
    await queue.run(key, work, again=again, trigger="reconcile", reporter=StatusReporter(kube, ref))


@kopf.on.event(
    "batch",
    "v1",
    "jobs",
    id="trainingjob-job",
    labels={MANAGED_BY: OPERATOR, TRAINING_JOB_LABEL: kopf.PRESENT},
)
async def job_event_handler(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if type == "DELETED":
        controller.forget_job(body)
        return
    # None (listed) and ADDED: the owner's create/resume handlers cover a new Job, but a relist
    # after a broken watch may show a Job that moved on (finished) while nothing was watching.
    if type != "MODIFIED" and not controller.moved_on_unwatched(body):
        return
    owner = controller.controller_owner(body)
    if owner is None or controller.already_synced(body):
        return
    await sync_owner(kube_of(memo), image_of(memo), str(body["metadata"]["namespace"]), owner, body)


async def sync_owner(
    kube: Kube, image: str, namespace: str, owner: tuple[str, str], job: kopf.Body
) -> None:
    """Sync the owner TrainingJob from ``job`` through the queue (a retry reconciles it all)."""
    ref = Ref(TRAINING_JOB, TRAINING_JOBS, namespace, owner[0], owner[1])

    async def work() -> None:
        await controller.sync(kube, image, ref, job)

    async def again() -> None:
        await controller.reconcile_key(kube, image, ref.key)

    await queue.run(
        ref.key, work, again=again, trigger="job-event", reporter=StatusReporter(kube, ref)
    )


# async: kopf runs a sync handler in its thread pool, a round trip per event for a dict update
@kopf.on.event(GROUP, VERSION, TRAINING_JOBS, id="trainingjob-phase")
async def phase_event_handler(type: str | None, body: kopf.Body, **_: Any) -> None:
    meta = body.get("metadata", {})
    phase = None if type == "DELETED" else body.get("status", {}).get("phase") or "Pending"
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    metrics.observe_phase(namespace, name, phase)
    if phase is None or phase in TERMINAL:
        resync.forget((namespace, name))
    else:
        resync.track((namespace, name))
    if phase is not None:
        queue.nudge((namespace, name))  # news of the object: a long retry wait runs now


async def resync_one(memo: kopf.Memo, key: Key) -> None:
    """The resync of one TrainingJob: its full reconcile from a fresh read, through the queue."""
    kube, image = kube_of(memo), image_of(memo)

    async def again() -> None:
        await controller.reconcile_key(kube, image, key)

    reporter = StatusReporter(kube, Ref(TRAINING_JOB, TRAINING_JOBS, *key))
    await queue.run(key, again, again=again, trigger=resyncs.TRIGGER, reporter=reporter)


resync_with(resync, resync_one)
