"""The operator process around the controllers: kopf's settings (persistence, Event posting,
queueing, which children are watched), its login, and the startup and cleanup of what every
controller shares (the Kubernetes gateway, the heap trimmer)."""

from __future__ import annotations

import asyncio
import functools
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from typing import Any, TypeVar

import kopf
from kopf._cogs.clients import errors as kopf_errors
from kopf._cogs.clients import watching as kopf_watching

from continuum.api import API_VERSION, GROUP
from continuum.api.vocabulary import MANAGED_SELECTOR, TRAINING_JOB
from continuum.controllers.shared import exiting, heap
from continuum.controllers.shared.resync import DEFAULT_PERIOD, Resync
from continuum.kube import Kube, login

K = TypeVar("K", bound=Hashable)

# Kubernetes Events posted at once. kopf posts each object's Events from a worker of its own,
# without a limit by default, on a connection pool without a limit: 1,000 objects created at
# once meant up to 1,000 TLS connections (a handshake each, and memory per connection that the
# process keeps) for messages nobody waits for, competing with the Job creations on the API
# server. Queued Events are small; they are posted in order as connections free up.
EVENT_POSTERS = 4
# Objects handled at once, per watched kind and namespace. kopf starts one worker per object
# with events, without a limit by default: 1,000 TrainingJobs created at once meant 1,000
# handlers in flight, each holding its bodies, parsed models and a request waiting for one of
# the gateway's connections; that peak (about 100 KB per handler, measured with the bench)
# stays in the process's RSS afterwards, since freed heap is kept for reuse. A bounded set
# of workers takes the objects in arrival order; it must still cover the API server's latency
# under load (about 1 s per request on the bench's 2 shared CPUs, two requests per new
# TrainingJob): 64 workers capped 1,000-at-once at about 21 objects/s, 256 gave 35/s for
# 6 MB more at the peak (bench/README.md). A worker leaves soon after its object's last
# event, to free its place.
WORKERS_PER_WATCH = 256
WORKER_IDLE_SECONDS = 0.2

REPORTING_COMPONENT = "continuum-operator"
ARGOCD_TRACKING = ["metadata", "annotations", "argocd.argoproj.io/tracking-id"]


def configure(settings: kopf.OperatorSettings) -> None:
    """Our persistence prefix, Event identity, retry timings and server-side child filters."""
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = ProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = DiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration", ignored_fields=[ARGOCD_TRACKING]
    )
    settings.posting.reporting_component = REPORTING_COMPONENT
    settings.posting.reporting_instance = _instance()
    settings.posting.loggers = False
    settings.posting.worker_limit = EVENT_POSTERS
    settings.queueing.worker_limit = WORKERS_PER_WATCH
    settings.queueing.idle_timeout = WORKER_IDLE_SECONDS
    settings.execution.default_backoff = 10
    settings.networking.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.watching.chunk_size = 500
    # Only the children the operator manages are watched (server-side label selectors).
    settings.watching.label_selectors["batch", "jobs"] = MANAGED_SELECTOR
    settings.watching.label_selectors["apps", "deployments"] = MANAGED_SELECTOR
    # Handlers name exact group/version/plural: no CRD or namespace watching, so no RBAC for it.
    settings.scanning.disabled = True


_continuous_watch = kopf_watching.continuous_watch


async def continuous_watch(**kwargs: Any) -> AsyncIterator[Any]:
    """kopf's ``continuous_watch``, except that a watch request answered HTTP 410 Gone ends
    the stream instead of the operator.

    kopf restarts a watch whose stream carries an ``ERROR`` event of code 410 (the
    resourceVersion is too old), but a 410 as the *answer* to the watch request raises out of
    its watcher, and the orchestrator stops the whole operator: cleanup ran (our gateway
    closed), and the process kept running with nothing watched, every retry failing with
    "Kube is closed" (the API fault test, 3 and 4 December, after a `watch-410-http` fault;
    the API server answers so when the version was compacted). Ending the stream makes kopf
    list again from scratch and watch from there, as after an in-stream 410. A private
    function of kopf, pinned below its next minor in pyproject.toml; a unit test checks it.
    """
    try:
        async for event in _continuous_watch(**kwargs):
            yield event
    except kopf_errors.APIClientError as exc:
        if exc.status != 410:
            raise
        kopf_watching.logger.debug("watch answered 410 Gone (%s); listing again", exc)


kopf_watching.continuous_watch = continuous_watch


class DiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's last-handled-configuration annotation, except on TrainingJobs.

    A TrainingJob's spec is immutable (enforced by the API server) and it has no update
    handlers, so the state kopf would store is the object as created, and whether it has been
    handled is what its status says: the create handler writes the first status after the Job
    exists. So, for TrainingJobs, the stored essence is the object itself once it has a
    ``status.phase`` (resume handlers run on restart, create handlers do not run again) and
    none before (create handlers run), and nothing is ever written: one API write less per
    TrainingJob. ModelDeployment and DriftMonitor keep the annotation (they have update
    handlers or may in future).
    """

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        if is_training_job(body):
            return self.build(body=body) if _phase(body) else None
        return super().fetch(body=body)

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        if is_training_job(body):
            return
        super().store(body=body, patch=patch, essence=essence)


class ProgressStorage(kopf.AnnotationsProgressStorage):
    """kopf's progress annotations, without its ``<prefix>/kopf-managed`` marker on TrainingJobs.

    The marker is one more write per object, even when a handler succeeds at once (kopf then
    stores and purges the progress record in the same patch, and only the marker would remain).
    Progress records themselves are still written when a handler has to retry.

    ``_store_marker`` is kopf's private hook; kopf is pinned below its next minor version in
    ``pyproject.toml``, and a unit test checks the hook is still there with this signature.
    """

    def _store_marker(self, prefix: str, patch: kopf.Patch, body: kopf.Body) -> None:
        if not is_training_job(body):
            super()._store_marker(prefix=prefix, patch=patch, body=body)


def is_training_job(body: Mapping[str, Any]) -> bool:
    return body.get("apiVersion") == API_VERSION and body.get("kind") == TRAINING_JOB


def _phase(body: Mapping[str, Any]) -> bool:
    status = body.get("status")
    return isinstance(status, Mapping) and bool(status.get("phase"))


def _instance() -> str:
    return (os.environ.get("POD_NAME") or socket.gethostname() or "continuum")[:128]


@kopf.on.startup(id="continuum-startup")
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    configure(settings)
    heap.limit_arenas()
    memo["kube"] = await Kube.connect()
    memo["heap-trimmer"] = asyncio.create_task(heap.trim_forever(), name="heap trimmer")


@kopf.on.login(id="continuum-login")
async def login_handler(**_: Any) -> kopf.ConnectionInfo:
    """kopf's own connection uses the credentials our gateway uses (``continuum.kube.login``).

    Without it kopf would log in through the official ``kubernetes`` client when installed,
    which the operator process does not load (see ``continuum.cli``).
    """
    return login()


@kopf.on.cleanup(id="continuum-cleanup")
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """kopf is stopping (asked to, or on a fatal error): the process ends within
    ``exiting.EXIT_GRACE_SECONDS`` even if a task or thread does not (``shared.exiting``)."""
    exiting.arm()
    trimmer = memo.get("heap-trimmer")
    if isinstance(trimmer, asyncio.Task):
        trimmer.cancel()
    kube = memo.get("kube")
    if isinstance(kube, Kube):
        await kube.close()


def kube_of(memo: kopf.Memo) -> Kube:
    """The gateway the startup handler stored in the memo."""
    kube = memo.get("kube")
    if not isinstance(kube, Kube):
        raise kopf.TemporaryError("the Kubernetes gateway is not connected yet", delay=1)
    return kube


def image_of(memo: kopf.Memo) -> str:
    """The project image the operator runs workloads with."""
    return str(memo["image"])


def resync_seconds(memo: kopf.Memo) -> float:
    """The resync period ``--resync-seconds`` gave (0: no resync)."""
    return float(memo.get("resync_seconds", DEFAULT_PERIOD))


def resync_with(resync: Resync[K], reconcile: Callable[[kopf.Memo, K], Awaitable[object]]) -> None:
    """Start ``resync`` when the operator starts (with ``--resync-seconds``) and stop it at
    cleanup; ``reconcile(memo, key)`` is the kind's reconcile of one key through its queue."""
    task_key = f"{resync.kind.lower()}-resync"

    async def started(memo: kopf.Memo, **_: Any) -> None:
        memo[task_key] = resync.start(resync_seconds(memo), functools.partial(reconcile, memo))

    async def stopped(memo: kopf.Memo, **_: Any) -> None:
        task = memo.get(task_key)
        if isinstance(task, asyncio.Task):
            await resync.stop(task)

    kopf.on.startup(id=f"{task_key}-startup")(started)
    kopf.on.cleanup(id=f"{task_key}-cleanup")(stopped)
