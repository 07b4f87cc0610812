"""The DriftMonitor controller: one level-based reconcile per monitor, from observed state.

Observe the DriftMonitor and its check Jobs; then exactly one of:

* a check Job newer than ``status.lastCheckTime`` still runs: say so in status;
* it has finished: fold it into status (summary from its termination message); a drifted
  check may create a retraining TrainingJob (``retrain``) first, so the decision and the
  TrainingJob's name land in the same status write, and Events follow the write;
* otherwise, when a check is due and the ModelDeployment serves a version, create the check
  Job (deterministic name per interval slot: at most one unfinished check at a time).

Before all of that, a due tick of ``retrain.triggers.schedule`` is acted on (a TrainingJob
named after the tick, or a suppressed record) and recorded in ``status.lastScheduleTick``;
the status write's event runs the reconcile again for the checks.

Every trigger (``handlers``: the monitor's events, a finished check Job, the schedule) runs
this reconcile through the work queue, which serialises it per monitor and retries it when it
fails. Status writes are guarded by ``resourceVersion`` (``shared.objects``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from continuum.api import (
    GROUP,
    VERSION,
    DriftMonitor,
    DriftMonitorStatus,
    ModelDeployment,
    load,
)
from continuum.api.vocabulary import (
    CHECK_RUNNING,
    DRIFT_MONITOR,
    DRIFT_MONITORS,
    MODEL_DEPLOYMENTS,
    RETRAINING_SUPPRESSED,
    RETRAINING_TRIGGERED,
    TRAINING_JOBS,
    WAITING_FOR_DEPLOYMENT,
)
from continuum.controllers.driftmonitor import metrics
from continuum.controllers.driftmonitor.checks import (
    MONITOR_CONTAINER,
    check_selector,
    check_slot,
    check_time_of,
    desired_check_job,
    is_due,
    pending_check,
)
from continuum.controllers.driftmonitor.retrain import (
    NOTHING,
    Decision,
    active_retrainings,
    apply_decision,
    decide_retrain,
    decide_schedule,
    desired_training_job,
    due_tick,
    fired_triggers,
    no_source,
    retrain_name,
    schedule_name,
    served_training_spec,
    spent_versions,
)
from continuum.controllers.driftmonitor.verdicts import (
    CheckResult,
    check_events,
    check_result,
    job_outcome,
    performance_degraded,
    performance_events,
    status_after_check,
    status_waiting,
)
from continuum.controllers.shared.objects import (
    Body,
    Event,
    Ref,
    controller_of,
    converge,
    converge_through,
    load_or_fail,
    name_of,
    post,
    write_status,
)
from continuum.controllers.shared.pods import parse_summary
from continuum.controllers.shared.queue import WorkQueue
from continuum.controllers.shared.storage import resolve, with_storage
from continuum.controllers.shared.streaks import StatusReporter
from continuum.kube import Kube

Key = tuple[str, str]  # (namespace, name)
log = logging.getLogger(__name__)
# One reconcile at a time per DriftMonitor, every failure retried (see shared/queue.py).
queue: WorkQueue[Key] = WorkQueue(DRIFT_MONITOR)


async def run(
    kube: Kube, image: str, namespace: str, name: str, *, uid: str | None = None, trigger: str
) -> bool:
    """Reconcile one DriftMonitor through the queue (True: it succeeded now)."""
    ref = Ref(DRIFT_MONITOR, DRIFT_MONITORS, namespace, name, uid)
    once = functools.partial(_reconcile_once, kube, image)
    reporter = StatusReporter(kube, ref)
    return await converge_through(queue, kube, ref, once, trigger=trigger, reporter=reporter)


async def reconcile(kube: Kube, image: str, ref: Ref) -> None:
    """Bring one DriftMonitor's checks, retrainings and status in line (idempotent)."""
    await converge(kube, ref, functools.partial(_reconcile_once, kube, image))


async def _reconcile_once(kube: Kube, image: str, body: Body) -> bool:
    """One pass; False when the object changed meanwhile (the caller re-reads it)."""
    dm = load_drift_monitor(body)
    now = _now()
    tick = due_tick(dm.spec, dm.status, created_at(dm, now), now)
    if tick is not None:
        return await scheduled_retrain(kube, body, dm, tick, now)
    jobs = await check_jobs(kube, dm)
    pending = pending_check(jobs, dm.status)
    if pending is not None and job_outcome(pending) is None:
        running = f"check Job {name_of(pending)} running"
        waiting = status_waiting(dm, CHECK_RUNNING, running, now=now, job_name=name_of(pending))
        return await _write(kube, body, dm, waiting)
    if pending is not None:
        return await finish_check(kube, body, dm, pending, now)
    if not is_due(dm.status, dm.spec, now):
        return True
    return await start_check(kube, image, body, dm, now)


async def check_jobs(kube: Kube, dm: DriftMonitor) -> list[dict[str, Any]]:
    """The monitor's check Jobs (label selector, then owner uid)."""
    namespace, name = dm.metadata.namespace, dm.metadata.name
    jobs = await kube.list_jobs(namespace, check_selector(name))
    return [job for job in jobs if _owner_uid(job) == dm.metadata.uid]


async def start_check(kube: Kube, image: str, body: Body, dm: DriftMonitor, now: datetime) -> bool:
    """Create the check Job of this slot, or say in status what the check waits for."""
    md, why = await served_deployment(kube, dm)
    if md is None or md.status.serving_version is None:
        waiting = status_waiting(dm, WAITING_FOR_DEPLOYMENT, why, now=now)
        return await _write(kube, body, dm, waiting)
    slot = check_slot(now, dm.spec.schedule.interval_seconds)
    manifest = desired_check_job(dm, md, md.status.serving_version, slot, image)
    job, created = await kube.create_job(manifest)
    if _owner_uid(job) != dm.metadata.uid:
        raise kopf.TemporaryError(f"Job {name_of(job)} belongs to another object", delay=30)
    if created:
        log.info("DriftMonitor %s: started check Job %s", dm.metadata.name, name_of(job))
    running = f"check Job {name_of(job)} of version {md.status.serving_version} running"
    waiting = status_waiting(dm, CHECK_RUNNING, running, now=now, job_name=name_of(job))
    return await _write(kube, body, dm, waiting)


async def served_deployment(kube: Kube, dm: DriftMonitor) -> tuple[ModelDeployment | None, str]:
    """The watched ModelDeployment (None if absent or invalid) and what the check waits for."""
    namespace, name = dm.metadata.namespace, dm.spec.deployment
    body = await kube.read_custom_object(GROUP, VERSION, MODEL_DEPLOYMENTS, namespace, name)
    if body is None:
        return None, f"ModelDeployment {name} not found"
    try:
        md = load(ModelDeployment, body)
    except ValidationError:
        return None, f"ModelDeployment {name} is invalid"
    # the storage its servers use (recorded in its status), which the check reads from
    storage = await resolve(kube, namespace, md.spec.storage, md.status.storage)
    md = md.model_copy(update={"spec": with_storage(md.spec, storage)})
    return md, f"waiting for ModelDeployment {name} to serve a version"


async def finish_check(
    kube: Kube, body: Body, dm: DriftMonitor, job: Mapping[str, Any], now: datetime
) -> bool:
    """Fold a finished check into status, retrain if drift held; post Events after writing."""
    result = await read_result(kube, dm, job, now)
    status = status_after_check(dm, result)
    decision, name, version = NOTHING, "", checked_version(job)
    if result.verdict != "Failed" and fired_triggers(dm.spec, status, frozenset(), version):
        decision, name = await retrain(kube, dm, status, now, version)
        status = apply_decision(status, decision, name, now, version=version)
    if not await _write(kube, body, dm, status):
        return False
    announce(body, dm, result, status, decision=decision, name=name)
    return True


async def read_result(
    kube: Kube, dm: DriftMonitor, job: Mapping[str, Any], now: datetime
) -> CheckResult:
    """The finished check's verdict from the Job and the monitor's termination message."""
    outcome = job_outcome(job)
    kind, message, when = outcome if outcome is not None else ("Failed", "", None)
    namespace = dm.metadata.namespace
    text = await kube.read_pod_termination_message(namespace, job, MONITOR_CONTAINER)
    finished = max(_parse_time(when) or now, check_time_of(job) or now)
    return check_result(name_of(job), finished, kind == "Complete", message, parse_summary(text))


async def retrain(
    kube: Kube, dm: DriftMonitor, status: DriftMonitorStatus, now: datetime, version: int | None
) -> tuple[Decision, str]:
    """Decide on a retraining after a check and create its TrainingJob (409: it exists, from
    a retry)."""
    name = retrain_name(dm.metadata.name, status.report_uri, now)
    trainingjobs = await namespace_trainingjobs(kube, dm)
    active = active_retrainings(trainingjobs, dm.metadata.uid)
    spent = spent_versions(status, trainingjobs)
    decision = decide_retrain(
        dm.spec, status, active, now, candidate=name, spent=spent, version=version
    )
    decision = await create_retraining(
        kube, dm, trainingjobs, decision, name=name, report=status.report_uri
    )
    return decision, name


async def scheduled_retrain(
    kube: Kube, body: Body, dm: DriftMonitor, tick: datetime, now: datetime
) -> bool:
    """Act on a due schedule tick: create its TrainingJob or record why not, and the tick."""
    name = schedule_name(dm.metadata.name, tick)
    trainingjobs = await namespace_trainingjobs(kube, dm)
    active = active_retrainings(trainingjobs, dm.metadata.uid)
    decision = decide_schedule(dm.spec, dm.status, active, tick, now, candidate=name)
    decision = await create_retraining(kube, dm, trainingjobs, decision, name=name, report=None)
    # no version: only the performance trigger's once-per-version rule reads it
    status = apply_decision(dm.status, decision, name, now)
    status = status.model_copy(update={"last_schedule_tick": tick})
    if not await _write(kube, body, dm, status):
        return False
    post(body, decision_events(decision, name, None))
    metrics.export_decision(dm.metadata.namespace, dm.metadata.name, decision)
    return True


async def namespace_trainingjobs(kube: Kube, dm: DriftMonitor) -> list[dict[str, Any]]:
    """The namespace's TrainingJobs (the served version's source may not be the monitor's)."""
    namespace = dm.metadata.namespace
    return await kube.list_custom_objects(GROUP, VERSION, TRAINING_JOBS, namespace)


async def create_retraining(
    kube: Kube,
    dm: DriftMonitor,
    trainingjobs: list[dict[str, Any]],
    decision: Decision,
    *,
    name: str,
    report: str | None,
) -> Decision:
    """Create the decided TrainingJob; without a template, from the served version's spec
    (the decision turns suppressed when there is none)."""
    source = None
    if decision.create and dm.spec.retrain is not None and dm.spec.retrain.template is None:
        decision, source = await retrain_source(kube, dm, trainingjobs, decision)
    if not decision.create:
        return decision
    manifest = desired_training_job(dm, name, decision, report, source)
    tj, _created = await kube.create_custom_object(GROUP, VERSION, TRAINING_JOBS, manifest)
    if _owner_uid(tj) != dm.metadata.uid:
        raise kopf.TemporaryError(f"TrainingJob {name} belongs to another object", delay=30)
    return decision


async def retrain_source(
    kube: Kube, dm: DriftMonitor, trainingjobs: list[dict[str, Any]], decision: Decision
) -> tuple[Decision, dict[str, Any] | None]:
    """Without a template: the spec of the TrainingJob behind the served version, or the
    decision turned into a suppressed one saying why there is none."""
    md, _why = await served_deployment(kube, dm)
    model = md.spec.model if md is not None else dm.spec.deployment
    version = md.status.serving_version if md is not None else None
    source = None if version is None else served_training_spec(trainingjobs, model, version)
    if source is None:
        return no_source(model, version, decision), None
    return decision, source


async def _write(kube: Kube, body: Body, dm: DriftMonitor, status: DriftMonitorStatus) -> bool:
    return await write_status(kube, DRIFT_MONITORS, body, status, dm.status)


def announce(
    body: Body,
    dm: DriftMonitor,
    result: CheckResult,
    status: DriftMonitorStatus,
    *,
    decision: Decision,
    name: str,
) -> None:
    """Events and metrics of a folded-in check (after its status was written)."""
    namespace, monitor = dm.metadata.namespace, dm.metadata.name
    drifts = status.consecutive_drifts or 0
    if decision.create:
        drifts = dm.spec.consecutive_checks  # the count that triggered, before its reset
    events = check_events(result, drifts, dm.spec.consecutive_checks)
    events += performance_events(dm, result, status)
    post(body, events + decision_events(decision, name, status.report_uri))
    metrics.export_metrics(namespace, monitor, result, decision)
    if result.verdict != "Failed":
        degraded = performance_degraded(status)
        metrics.export_performance(namespace, monitor, status.performance, degraded)


def decision_events(decision: Decision, name: str, report: str | None) -> list[Event]:
    where = f"; report {report}" if report is not None else ""
    if decision.create:
        message = f"created TrainingJob {name} ({decision.trigger}): {decision.reason}{where}"
        return [Event("Normal", RETRAINING_TRIGGERED, message)]
    if decision.suppressed:
        message = f"{decision.trigger} retraining suppressed: {decision.reason}{where}"
        return [Event("Warning", RETRAINING_SUPPRESSED, message)]
    return []


def checked_version(job: Mapping[str, Any]) -> int | None:
    """The model version a check Job judged (its CONTINUUM_MODEL_VERSION)."""
    containers = (((job.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "containers"
    ) or []
    for container in containers:
        for var in container.get("env") or []:
            if var.get("name") == "CONTINUUM_MODEL_VERSION":
                return _int(var.get("value"))
    return None


def _int(text: Any) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def created_at(dm: DriftMonitor, now: datetime) -> datetime:
    """When the monitor was created (a schedule's ticks count from then); now if unknown."""
    return _parse_time(dm.metadata.creation_timestamp) or now


def load_drift_monitor(body: Body) -> DriftMonitor:
    """Parse a DriftMonitor; one the API types reject is a permanent failure."""
    return load_or_fail(DriftMonitor, body)


def controller_owner(child: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, uid) of the DriftMonitor that controls ``child``, if one does."""
    return controller_of(child, DRIFT_MONITOR)


def _owner_uid(child: Mapping[str, Any]) -> str | None:
    owner = controller_owner(child)
    return owner[1] if owner is not None else None


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
