"""The TrainingJob controller: observe the TrainingJob and its Job, plan the status, apply.

* **reconcile** (create, resume, and every retry): ensure the batch Job exists (409 = already
  there), then sync the status from it;
* **sync** (a managed Job changed): bring the owner's status in line with that Job; when the Job
  has finished, read the trainer's summary from the pod's termination message and, after a
  success, the manifest it points at from S3 (``manifest``), which the result is taken from.
  A manifest that cannot be read yet leaves the run Running and is read again
  (``MANIFEST_BACKOFF``: after 10 s, doubling to 60 s) until it reads or the TrainingJob goes.

A Job's appearance (ADDED, or listed at start) is not a change: the owner's create/resume
handler creates-or-reads that very Job and syncs from it, so the event would cost one more read
of the owner for nothing (1,000 of them when a restarted operator lists 1,000 Jobs). Likewise a
change that does not change what the Job says about the run (``observe_job``: the Job
controller's own bookkeeping, such as ``startTime`` while its pods are pending) is skipped when
the owner's status was already brought in line with that same observation (``_synced``).

Status is written with a merge patch guarded by ``resourceVersion`` (``shared.objects``); the
create handler's first attempt uses the body its watch event carried, one read less per
object. Status writes wait (bounded) while Job creations are in flight, so a burst of new
TrainingJobs gets its Jobs first (``shared.pacing``). The work queue (``shared.queue``)
serialises everything done for one TrainingJob and retries whatever fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from continuum.api import GROUP, VERSION, TrainingJob, TrainingJobStatus
from continuum.api.vocabulary import (
    FAILED,
    JOB_CREATED,
    MANIFEST_UNREADABLE,
    NOT_QUALIFIED,
    QUALIFIED,
    RECONCILING,
    SUCCEEDED,
    TRAINING_JOB,
    TRAINING_JOBS,
)
from continuum.controllers.shared.conditions import find
from continuum.controllers.shared.objects import (
    Body,
    Event,
    Ref,
    controlled_by_uid,
    controller_of,
    converge,
    load_or_fail,
    name_of,
    post,
    write_status,
)
from continuum.controllers.shared.pacing import CreationsFirst
from continuum.controllers.shared.queue import Backoff, WorkQueue
from continuum.controllers.trainingjob import metrics
from continuum.controllers.trainingjob.job import TRAINER_CONTAINER, desired_job
from continuum.controllers.trainingjob.manifest import ManifestRead, read_manifest
from continuum.controllers.trainingjob.status import (
    TERMINAL,
    JobState,
    awaiting_manifest,
    is_terminal,
    manifest_wanted,
    observe_job,
    same_status,
    status_from_job,
)
from continuum.kube import Kube

Key = tuple[str, str]  # (namespace, name)
FINISHED = frozenset({"Complete", "Failed"})
MANIFEST_BACKOFF = Backoff(first=10.0, cap=60.0)
# One reconcile at a time per TrainingJob, every failure retried (see shared/queue.py).
queue: WorkQueue[Key] = WorkQueue(TRAINING_JOB)
# Status writes give way to Job creations in flight (see shared/pacing.py).
_creations = CreationsFirst()
# By Job uid: the observation of a live, unfinished Job that its owner's status is in line
# with (recorded after a successful sync; dropped when the Job finishes or goes).
_synced: dict[str, JobState] = {}


async def reconcile(kube: Kube, image: str, body: Body) -> None:
    """Ensure the TrainingJob's Job exists and its status reflects it (idempotent)."""
    tj = load_training_job(body)
    if is_terminal(tj.status):  # finished runs are never re-run, even if the Job is gone
        queue.settle(key_of(body))
        return
    with _creations.creating():
        job, created = await kube.create_job(desired_job(tj, image=image))
    if not owned_by(job, tj):
        raise kopf.TemporaryError(f"Job {name_of(job)} belongs to another object", delay=5)
    if created:
        metrics.JOBS_CREATED.inc()
        post(body, [Event("Normal", JOB_CREATED, f"created Job {name_of(job)}")])
    await sync(kube, image, ref_of(body), job, observed=body)


async def reconcile_key(kube: Kube, image: str, key: Key) -> None:
    """Reconcile the TrainingJob of ``key`` from a fresh read (a retry, whatever failed)."""
    body = await kube.read_custom_object(*_where(key))
    if body is None:
        queue.settle(key)
        return
    await reconcile(kube, image, body)


async def sync(
    kube: Kube, image: str, ref: Ref, job: Mapping[str, Any], *, observed: Body | None = None
) -> None:
    """Bring the owner TrainingJob's status up to date with ``job`` (read, compute, write).

    ``observed``, the owner as a watch event just delivered it, stands in for the first read.
    If it is stale, the write guarded by its resourceVersion is refused and the owner is read;
    if its status already matches, nothing is written, as after a read.
    """
    sources = Sources(kube, ref.namespace, job)
    written: list[TrainingJobStatus] = []

    async def once(body: Body) -> bool:
        status = await _write(kube, body, job, sources)
        written[:] = [] if status is None else [status]
        return status is not None

    if await converge(kube, ref, once, observed=observed) is None:
        queue.settle(ref.key)  # deleted (or replaced): its Job is garbage now
        return
    remember_synced(job)
    _wait_for_manifest(kube, image, ref, written[0])


async def _write(
    kube: Kube, body: Body, job: Mapping[str, Any], sources: Sources
) -> TrainingJobStatus | None:
    """Write the new status unless unchanged and return it; None when the object changed
    meanwhile (nothing written)."""
    tj = load_training_job(body)
    if is_terminal(tj.status):
        return tj.status
    message = await sources.termination()
    status = status_from_job(tj, job, message, await sources.manifest(tj, message))
    if same_status(status, tj.status):
        return status
    if not await write_status(kube, TRAINING_JOBS, body, status, tj.status,
                              turn=_creations.status_turn):  # fmt: skip
        return None
    announce(body, tj, status)
    return status


def _wait_for_manifest(kube: Kube, image: str, ref: Ref, status: TrainingJobStatus) -> None:
    """Reconcile again later while ``status`` waits for a manifest; else settle the key."""
    if not awaiting_manifest(status):
        queue.settle(ref.key)
        return

    async def again() -> None:
        await reconcile_key(kube, image, ref.key)

    queue.requeue(ref.key, again, MANIFEST_BACKOFF)


class Sources:
    """What a sync reads besides the two objects, each at most once and only when needed: the
    trainer's termination message of a finished Job, and the manifest its summary names."""

    def __init__(self, kube: Kube, namespace: str, job: Mapping[str, Any]) -> None:
        self._kube, self._namespace, self._job = kube, namespace, job
        self._terminated = False
        self._message: str | None = None
        self._read: ManifestRead | None = None

    async def termination(self) -> str | None:
        if job_finished(self._job) and not self._terminated:
            self._message = await self._kube.read_pod_termination_message(
                self._namespace, self._job, TRAINER_CONTAINER
            )
            self._terminated = True
        return self._message

    async def manifest(self, tj: TrainingJob, message: str | None) -> ManifestRead | None:
        wanted = manifest_wanted(tj, self._job, message)
        if wanted is None or self._read is not None:
            return self._read
        version, uri = wanted
        storage, model = tj.spec.storage, tj.spec.model
        self._read = await read_manifest(
            self._kube, self._namespace, storage, model=model, version=version, uri=uri
        )
        metrics.MANIFEST_READS.labels(self._read.kind).inc()
        return self._read


def already_synced(job: Mapping[str, Any]) -> bool:
    """Whether the owner's status is in line with what ``job`` says (see ``_synced``)."""
    seen = _synced.get(str(job.get("metadata", {}).get("uid")))
    return seen is not None and seen == observe_job(job)


def moved_on_unwatched(job: Mapping[str, Any]) -> bool:
    """A Job this process synced while it ran, whose state differs from that sync."""
    return str(job.get("metadata", {}).get("uid")) in _synced and not already_synced(job)


def remember_synced(job: Mapping[str, Any]) -> None:
    uid = job.get("metadata", {}).get("uid")
    if not uid:
        return
    state = observe_job(job)
    if state.phase in TERMINAL:
        _synced.pop(str(uid), None)
    else:
        _synced[str(uid)] = state


def forget_job(job: Mapping[str, Any]) -> None:
    """A Job is gone: drop what this process remembers of it."""
    _synced.pop(str(job.get("metadata", {}).get("uid")), None)


def announce(body: Body, tj: TrainingJob, status: TrainingJobStatus) -> None:
    """Events and metrics for a transition (called once, after a successful write)."""
    post(body, transition_events(tj, status))
    if status.phase == tj.status.phase:
        return
    meta = body["metadata"]
    metrics.observe_phase(meta["namespace"], meta["name"], status.phase)
    if status.phase in TERMINAL:
        metrics.record_outcome(tj.spec.model, status)


def transition_events(tj: TrainingJob, status: TrainingJobStatus) -> list[Event]:
    """The Events of going from ``tj.status`` to ``status``."""
    events = _manifest_problem(tj, status)
    if status.phase == tj.status.phase:
        return events
    if status.phase == SUCCEEDED:
        events += _success(status)
    elif status.phase == FAILED:
        events.append(Event("Warning", FAILED, status.message or "training failed"))
    return events


def _manifest_problem(tj: TrainingJob, status: TrainingJobStatus) -> list[Event]:
    """A Warning when the manifest first turns out unreadable, or unreadable differently."""
    new, old = find(status.conditions, RECONCILING), find(tj.status.conditions, RECONCILING)
    if new is None or new.reason != MANIFEST_UNREADABLE:
        return []
    if old is not None and (old.reason, old.message) == (new.reason, new.message):
        return []
    return [Event("Warning", MANIFEST_UNREADABLE, new.message or "")]


def _success(status: TrainingJobStatus) -> list[Event]:
    gate = find(status.conditions, QUALIFIED)
    detail = gate.message if gate is not None and gate.message else ""
    done = Event("Normal", SUCCEEDED, status.message or "training succeeded")
    if status.qualified:
        return [done, Event("Normal", QUALIFIED, detail or "the model passed its gate")]
    return [done, Event("Warning", NOT_QUALIFIED, detail or "the model failed its gate")]


def load_training_job(body: Body) -> TrainingJob:
    """Parse a TrainingJob; one the API types reject is a permanent failure."""
    return load_or_fail(TrainingJob, body)


def key_of(body: Body) -> Key:
    meta = body["metadata"]
    return (str(meta["namespace"]), str(meta["name"]))


def ref_of(body: Body) -> Ref:
    """The TrainingJob of ``body``, uid included (a replaced object is another one)."""
    namespace, name = key_of(body)
    uid = body["metadata"].get("uid")
    return Ref(TRAINING_JOB, TRAINING_JOBS, namespace, name, None if uid is None else str(uid))


def controller_owner(job: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, uid) of the TrainingJob that controls ``job``, if one does."""
    return controller_of(job, TRAINING_JOB)


def owned_by(job: Mapping[str, Any], tj: TrainingJob) -> bool:
    """Whether ``job`` is controlled by this very TrainingJob (same uid)."""
    return controlled_by_uid(job, TRAINING_JOB, tj.metadata.uid)


def job_finished(job: Mapping[str, Any]) -> bool:
    """Whether the Job has a Complete or Failed condition."""
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") in FINISHED and c.get("status") == "True" for c in conditions)


def _where(key: Key) -> tuple[str, str, str, str, str]:
    return (GROUP, VERSION, TRAINING_JOBS, *key)
