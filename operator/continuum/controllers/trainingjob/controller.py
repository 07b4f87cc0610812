"""The TrainingJob controller: observe the TrainingJob and its Job, plan the status, apply.

* **reconcile** (create, resume, and every retry): ensure the batch Job exists, then sync the
  status from it. A created TrainingJob's Job is created at once (409 = already there, then
  read); every other reconcile (resume, retry, resync) reads the Job first and creates it only
  when the read finds none: the Job nearly always exists then, and a POST answered 409 plus
  the read after it is two calls where the read alone is one;
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

What a finished Job says (the trainer's termination message, the manifest it names) cannot
change, so it is read once per Job and kept (``_finished``, by Job uid) until the owner's
final status is written: a retry after a failed status write does not list the pods and read
the Secret again. Under the API fault test a TrainingJob retry was 5-6 calls (read it, POST
the Job answered 409, read the Job, list pods, read the Secret, patch status), each failing at
the proxy's rates; it is now 3 (read it, read the Job, patch status).

Status is written with a merge patch guarded by ``resourceVersion`` (``shared.objects``); the
create handler's first attempt uses the body its watch event carried, one read less per
object. Status writes wait (bounded) while Job creations are in flight, so a burst of new
TrainingJobs gets its Jobs first (``shared.pacing``). The work queue (``shared.queue``)
serialises everything done for one TrainingJob and retries whatever fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from continuum.api import GROUP, VERSION, EffectiveStorage, TrainingJob, TrainingJobStatus
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
from continuum.controllers.shared.pods import required
from continuum.controllers.shared.queue import Backoff, WorkQueue
from continuum.controllers.shared.storage import resolve, with_storage
from continuum.controllers.trainingjob import metrics
from continuum.controllers.trainingjob.job import TRAINER_CONTAINER, desired_job
from continuum.controllers.trainingjob.manifest import ManifestRead, read_manifest
from continuum.controllers.trainingjob.status import (
    TERMINAL,
    JobState,
    awaiting_manifest,
    image_fields,
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
# By TrainingJob: what its finished Job told (termination message, manifest read), kept until
# its final status is written or the Job goes (see the module).
_finished: dict[Key, Finished] = {}


@dataclass
class Finished:
    """What was read about one finished Job (``job_uid``): its trainer's termination
    message and the manifest it names."""

    job_uid: str
    message: str | None = None
    read: ManifestRead | None = None
    image: dict[str, str] | None = None  # status.image: the trainer pod's image and digest


async def reconcile(kube: Kube, image: str, body: Body, *, look_first: bool = True) -> None:
    """Ensure the TrainingJob's Job exists and its status reflects it (idempotent).

    ``look_first``: read the Job before creating it (False for a TrainingJob just created,
    whose Job is nearly never there yet; see the module)."""
    tj = load_training_job(body)
    if is_terminal(tj.status):  # finished runs are never re-run, even if the Job is gone
        queue.settle(key_of(body))
        _finished.pop(key_of(body), None)
        return
    tj, _storage = await with_effective_storage(kube, tj)
    job, created = await ensure_job(kube, tj, image, look_first=look_first)
    if not owned_by(job, tj):
        raise kopf.TemporaryError(f"Job {name_of(job)} belongs to another object", delay=5)
    if created:
        metrics.JOBS_CREATED.inc()
        post(body, [Event("Normal", JOB_CREATED, f"created Job {name_of(job)}")])
    await sync(kube, image, ref_of(body), job, observed=body)


async def ensure_job(
    kube: Kube, tj: TrainingJob, image: str, *, look_first: bool
) -> tuple[dict[str, Any], bool]:
    """The TrainingJob's Job, created unless it exists; (job, created?)."""
    desired = desired_job(tj, image=image)
    if look_first:
        existing = await kube.read_job(tj.metadata.namespace, desired["metadata"]["name"])
        if existing is not None:
            return existing, False
    with _creations.creating():
        return await kube.create_job(desired)


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
    sources = Sources(kube, ref.key, job)
    written: list[TrainingJobStatus] = []

    async def once(body: Body) -> bool:
        status = await _write(kube, body, job, sources)
        written[:] = [] if status is None else [status]
        return status is not None

    if await converge(kube, ref, once, observed=observed) is None:
        queue.settle(ref.key)  # deleted (or replaced): its Job is garbage now
        return
    remember_synced(job)
    if is_terminal(written[0]):
        _finished.pop(ref.key, None)
    _wait_for_manifest(kube, image, ref, written[0])


async def _write(
    kube: Kube, body: Body, job: Mapping[str, Any], sources: Sources
) -> TrainingJobStatus | None:
    """Write the new status unless unchanged and return it; None when the object changed
    meanwhile (nothing written)."""
    tj = load_training_job(body)
    if is_terminal(tj.status):
        return tj.status
    tj, storage = await with_effective_storage(kube, tj)
    message = await sources.termination()
    read = await sources.manifest(tj, message)
    status = status_from_job(tj, job, message, read, image=sources.image)
    status = status.model_copy(update={"storage": storage})
    if same_status(status, tj.status):
        return status
    if not await write_status(kube, TRAINING_JOBS, body, status, tj.status,
                              turn=_creations.status_turn):  # fmt: skip
        return None
    announce(body, tj, status)
    return status


async def with_effective_storage(
    kube: Kube, tj: TrainingJob
) -> tuple[TrainingJob, EffectiveStorage]:
    """``tj`` with its storage filled in — its own, the one its status recorded, else the
    namespace default (``shared/storage.py``) — and that storage for the status."""
    storage = await resolve(kube, tj.metadata.namespace, tj.spec.storage, tj.status.storage)
    return tj.model_copy(update={"spec": with_storage(tj.spec, storage)}), storage


def _wait_for_manifest(kube: Kube, image: str, ref: Ref, status: TrainingJobStatus) -> None:
    """Reconcile again later while ``status`` waits for a manifest; else settle the key."""
    if not awaiting_manifest(status):
        queue.settle(ref.key)
        return

    async def again() -> None:
        await reconcile_key(kube, image, ref.key)

    queue.requeue(ref.key, again, MANIFEST_BACKOFF)


class Sources:
    """What a sync reads besides the two objects, only when needed and at most once per
    finished Job (``_finished``): the trainer's termination message, and the manifest its
    summary names. Only a message found and a manifest read are kept: a missing one is
    looked for again by the next sync."""

    def __init__(self, kube: Kube, key: Key, job: Mapping[str, Any]) -> None:
        self._kube, self._key, self._namespace, self._job = kube, key, key[0], job
        uid = str(job.get("metadata", {}).get("uid") or "")
        seen = _finished.get(key)
        self._seen = seen if seen is not None and seen.job_uid == uid else Finished(uid)
        self._terminated = self._seen.message is not None
        self._read = self._seen.read

    async def termination(self) -> str | None:
        if job_finished(self._job) and not self._terminated:
            found = await self._kube.read_pod_termination(
                self._namespace, self._job, TRAINER_CONTAINER
            )
            if found is not None:
                self._seen.message = found.message
                self._seen.image = image_fields(found.image, found.image_id) or None
            self._terminated = True
            self._keep()
        return self._seen.message

    @property
    def image(self) -> dict[str, str] | None:
        return self._seen.image

    async def manifest(self, tj: TrainingJob, message: str | None) -> ManifestRead | None:
        wanted = manifest_wanted(tj, self._job, message)
        if wanted is None or self._read is not None:
            return self._read
        version, uri = wanted
        storage, model = required(tj.spec.storage), tj.spec.model
        self._read = await read_manifest(
            self._kube, self._namespace, storage, model=model, version=version, uri=uri
        )
        metrics.MANIFEST_READS.labels(self._read.kind).inc()
        if self._read.kind == "read" and self._read.uri == uri:
            self._seen.read = self._read
            self._keep()
        return self._read

    def _keep(self) -> None:
        if self._seen.job_uid and job_finished(self._job) and self._seen.message is not None:
            _finished[self._key] = self._seen


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
    owner = controller_owner(job)
    namespace = job.get("metadata", {}).get("namespace")
    if owner is not None and namespace:
        _finished.pop((str(namespace), owner[0]), None)


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
