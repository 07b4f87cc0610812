"""kopf handlers of TrainingJob: thin glue between the watch events, the pure builders
(``desired``, ``status``) and the Kubernetes gateway (``continuum.kube``).

* create/resume of a TrainingJob: ensure its batch Job exists (409 = already there), then sync
  its status from the Job;
* changes of Jobs we manage (server-side label selector): sync the owner's status; when the
  Job has finished, read the trainer's summary from the pod's termination message and, after a
  success, the manifest it points at from S3 (``manifest``), which the result is taken from.
  A manifest that cannot be read yet leaves the run Running and is retried (``_retries``:
  every 10 s, doubling to 60 s) until it reads or the TrainingJob goes. A Job's
  appearance (ADDED, or listed at start) is not a change: the owner's create/resume handler
  creates-or-reads that very Job and syncs from it, so the event would cost one more read of
  the owner for nothing (1,000 of them when a restarted operator lists 1,000 Jobs). Likewise a
  change that does not change what the Job says about the run (``observe_job``: the Job
  controller's own bookkeeping, such as ``startTime`` while its pods are pending) is skipped
  when the owner's status was already brought in line with that same observation.

Status is written with a merge patch guarded by ``resourceVersion`` (re-read on conflict; the
create handler's first attempt uses the body its watch event carried, one read less per object);
within this process the read-compute-write of one TrainingJob's status is serialised, so the
create handler and the first Job event do not race each other into a rejected write, and it
waits (bounded) while Job creations are in flight, so a burst of new TrainingJobs gets its
Jobs first (``pacing``).
No finalizers: the Job carries a controller owner reference, so deleting the TrainingJob
garbage-collects it. Handlers return None (nothing lands in ``status.<handler-id>``).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from typing import Any

import kopf

from continuum.api import GROUP, VERSION, TrainingJob, TrainingJobStatus, dump
from continuum.controllers import metrics
from continuum.controllers.conditions import QUALIFIED, RECONCILING, find
from continuum.controllers.desired import TRAINER_CONTAINER, desired_job
from continuum.controllers.manifest import ManifestRead, read_manifest
from continuum.controllers.naming import MANAGED_BY, OPERATOR, TRAINING_JOB_LABEL
from continuum.controllers.ownership import (
    controlled_by_uid,
    controller_of,
    event_target,
    load_or_fail,
)
from continuum.controllers.pacing import CreationsFirst
from continuum.controllers.retries import Retries
from continuum.controllers.settings import image_of, kube_of
from continuum.controllers.status import (
    MANIFEST_UNREADABLE,
    TERMINAL,
    JobState,
    awaiting_manifest,
    is_terminal,
    manifest_wanted,
    observe_job,
    same_status,
    status_from_job,
)
from continuum.kube import Conflict, Kube

PLURAL = "trainingjobs"
KIND = "TrainingJob"
STATUS_ATTEMPTS = 5
# Status writes give way to Job creations in flight (see pacing.py).
_creations = CreationsFirst()
FINISHED = frozenset({"Complete", "Failed"})
# One lock per TrainingJob (namespace, uid) while some handler is writing its status.
_status_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
    weakref.WeakValueDictionary()
)
# By Job uid: the observation of a live, unfinished Job that its owner's status is in line
# with (recorded after a successful sync; dropped when the Job finishes or goes).
_synced: dict[str, JobState] = {}
# By TrainingJob (namespace, uid): the next read of a manifest that could not be read yet.
_retries: Retries[tuple[str, str]] = Retries(first=10.0, cap=60.0)


@kopf.on.resume(GROUP, VERSION, PLURAL, id="trainingjob")
@kopf.on.create(GROUP, VERSION, PLURAL, id="trainingjob")
async def reconcile_handler(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    with metrics.counted(KIND, "reconcile"):
        await reconcile(kube_of(memo), image_of(memo), body)


@kopf.on.event(
    "batch",
    "v1",
    "jobs",
    id="trainingjob-job",
    labels={MANAGED_BY: OPERATOR, TRAINING_JOB_LABEL: kopf.PRESENT},
)
async def job_event_handler(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if type == "DELETED":
        _synced.pop(str(body.get("metadata", {}).get("uid")), None)
        return
    # None (listed) and ADDED: the owner's create/resume handlers cover a new Job, but a relist
    # after a broken watch may show a Job that moved on (finished) while nothing was watching.
    if type != "MODIFIED" and not moved_on_unwatched(body):
        return
    owner = controller_owner(body)
    if owner is None or already_synced(body):
        return
    with metrics.counted(KIND, "job-event"):
        await sync_status(kube_of(memo), str(body["metadata"]["namespace"]), owner, body)


# async: kopf runs a sync handler in its thread pool, a round trip per event for a dict update
@kopf.on.event(GROUP, VERSION, PLURAL, id="trainingjob-phase")
async def phase_event_handler(type: str | None, body: kopf.Body, **_: Any) -> None:
    meta = body.get("metadata", {})
    phase = None if type == "DELETED" else body.get("status", {}).get("phase") or "Pending"
    metrics.observe_phase(str(meta.get("namespace")), str(meta.get("name")), phase)


async def reconcile(kube: Kube, image: str, body: Mapping[str, Any]) -> None:
    """Ensure the TrainingJob's Job exists and its status reflects it (idempotent)."""
    tj = load_training_job(body)
    if is_terminal(tj.status):  # finished runs are never re-run, even if the Job is gone
        return
    with _creations.creating():
        job, created = await kube.create_job(desired_job(tj, image=image))
    if not owned_by(job, tj):
        raise kopf.TemporaryError(f"Job {job_name_of(job)} belongs to another object", delay=5)
    if created:
        metrics.JOBS_CREATED.inc()
        kopf.info(_target(body), reason="JobCreated", message=f"created Job {job_name_of(job)}")
    owner = (str(tj.metadata["name"]), str(tj.metadata["uid"]))
    await sync_status(kube, str(tj.metadata["namespace"]), owner, job, observed=body)


async def sync_status(
    kube: Kube,
    namespace: str,
    owner: tuple[str, str],
    job: Mapping[str, Any],
    *,
    observed: Mapping[str, Any] | None = None,
) -> None:
    """Bring the owner TrainingJob's status up to date with ``job`` (read, compute, write).

    ``observed``, the owner as a watch event just delivered it, stands in for the first read.
    If it is stale, the write guarded by its resourceVersion is refused and the owner is read;
    if its status already matches, nothing is written, as after a read.
    """
    termination = Termination(kube, namespace, job)
    manifest = Manifest(kube, namespace)
    key = (namespace, owner[1])
    lock = _status_locks.get(key)
    if lock is None:
        lock = _status_locks[key] = asyncio.Lock()
    async with lock:
        body = observed
        for _attempt in range(STATUS_ATTEMPTS):
            if body is None:
                body = await kube.read_custom_object(GROUP, VERSION, PLURAL, namespace, owner[0])
            if body is None or body["metadata"].get("uid") != owner[1]:
                _retries.forget(key)
                return  # deleted (or replaced): its Job is garbage now
            status = await _write_status(kube, body, job, termination, manifest)
            if status is not None:
                remember_synced(job)
                _retry_if_awaiting(kube, namespace, owner, job, status)
                return
            body = None  # it changed meanwhile: read it again
    raise kopf.TemporaryError("the TrainingJob kept changing while its status was written", delay=1)


async def _write_status(
    kube: Kube,
    body: Mapping[str, Any],
    job: Mapping[str, Any],
    termination: Termination,
    manifest: Manifest,
) -> TrainingJobStatus | None:
    """Write the new status unless unchanged and return it; None when the object changed
    meanwhile (nothing written)."""
    tj = load_training_job(body)
    if is_terminal(tj.status):
        return tj.status
    message = await termination.read()
    status = status_from_job(tj, job, message, await manifest.read(tj, job, message))
    if same_status(status, tj.status):
        return status
    meta = body["metadata"]
    await _creations.status_turn()
    try:
        await kube.patch_status(
            GROUP, VERSION, PLURAL, meta["namespace"], meta["name"], status=dump(status),
            resource_version=meta.get("resourceVersion"),
        )  # fmt: skip
    except Conflict:
        return None
    announce(body, tj, status)
    return status


def _retry_if_awaiting(
    kube: Kube,
    namespace: str,
    owner: tuple[str, str],
    job: Mapping[str, Any],
    status: TrainingJobStatus,
) -> None:
    """Schedule the next manifest read while ``status`` waits for one; else forget it."""
    key = (namespace, owner[1])
    if not awaiting_manifest(status):
        _retries.forget(key)
        return
    name = job_name_of(job)

    async def again() -> None:
        fresh = await kube.read_job(namespace, name)
        if fresh is not None:
            await sync_status(kube, namespace, owner, fresh)
        else:
            _retries.forget(key)

    _retries.schedule(key, again)


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


class Termination:
    """The trainer's termination message of a finished Job, read at most once, when needed."""

    def __init__(self, kube: Kube, namespace: str, job: Mapping[str, Any]) -> None:
        self._kube, self._namespace, self._job = kube, namespace, job
        self._read = False
        self._message: str | None = None

    async def read(self) -> str | None:
        if job_finished(self._job) and not self._read:
            self._message = await self._kube.read_pod_termination_message(
                self._namespace, self._job, TRAINER_CONTAINER
            )
            self._read = True
        return self._message


class Manifest:
    """The manifest a completed run's summary names, read at most once, when needed."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self._kube, self._namespace = kube, namespace
        self._read: ManifestRead | None = None

    async def read(
        self, tj: TrainingJob, job: Mapping[str, Any], message: str | None
    ) -> ManifestRead | None:
        wanted = manifest_wanted(tj, job, message)
        if wanted is None or self._read is not None:
            return self._read
        version, uri = wanted
        storage, model = tj.spec.storage, tj.spec.model
        self._read = await read_manifest(
            self._kube, self._namespace, storage, model=model, version=version, uri=uri
        )
        metrics.MANIFEST_READS.labels(self._read.kind).inc()
        return self._read


def announce(body: Mapping[str, Any], tj: TrainingJob, status: TrainingJobStatus) -> None:
    """Events and metrics for a transition (called once, after a successful write)."""
    _announce_manifest_problem(body, tj, status)
    if status.phase == tj.status.phase:
        return
    meta = body["metadata"]
    metrics.observe_phase(meta["namespace"], meta["name"], status.phase)
    if status.phase == "Succeeded":
        _announce_success(_target(body), status)
    elif status.phase == "Failed":
        kopf.warn(_target(body), reason="Failed", message=status.message or "training failed")
    if status.phase in {"Succeeded", "Failed"}:
        metrics.record_outcome(tj.spec.model, status)


def _announce_manifest_problem(
    body: Mapping[str, Any], tj: TrainingJob, status: TrainingJobStatus
) -> None:
    """A Warning when the manifest first turns out unreadable, or unreadable differently."""
    new, old = find(status.conditions, RECONCILING), find(tj.status.conditions, RECONCILING)
    if new is None or new.reason != MANIFEST_UNREADABLE:
        return
    if old is not None and (old.reason, old.message) == (new.reason, new.message):
        return
    kopf.warn(_target(body), reason=MANIFEST_UNREADABLE, message=new.message or "")


def _announce_success(body: kopf.Body, status: TrainingJobStatus) -> None:
    kopf.info(body, reason="Succeeded", message=status.message or "training succeeded")
    gate = find(status.conditions, QUALIFIED)
    detail = gate.message if gate is not None and gate.message else ""
    if status.qualified:
        kopf.info(body, reason="Qualified", message=detail or "the model passed its gate")
    else:
        kopf.warn(body, reason="NotQualified", message=detail or "the model failed its gate")


def load_training_job(body: Mapping[str, Any]) -> TrainingJob:
    """Parse a TrainingJob; one the API types reject is a permanent handler failure."""
    return load_or_fail(TrainingJob, body)


def _target(body: Mapping[str, Any]) -> kopf.Body:
    """``body`` as the object an Event is about."""
    return event_target(body)


def controller_owner(job: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, uid) of the TrainingJob that controls ``job``, if one does."""
    return controller_of(job, KIND)


def owned_by(job: Mapping[str, Any], tj: TrainingJob) -> bool:
    """Whether ``job`` is controlled by this very TrainingJob (same uid)."""
    return controlled_by_uid(job, KIND, tj.metadata.get("uid"))


def job_finished(job: Mapping[str, Any]) -> bool:
    """Whether the Job has a Complete or Failed condition."""
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") in FINISHED and c.get("status") == "True" for c in conditions)


def job_name_of(job: Mapping[str, Any]) -> str:
    return str(job.get("metadata", {}).get("name", ""))
