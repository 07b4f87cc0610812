"""kopf handlers of DriftMonitor: thin glue between watch events, a schedule loop, the pure
logic (``checks``, ``drift``, ``retrain``) and the Kubernetes gateway (``continuum.kube``).

No finalizer: a kopf timer would put kopf's finalizer on every DriftMonitor (so deleting one
would need the operator running). Instead the operator keeps the last-seen body of every
DriftMonitor from an event handler (event handlers store nothing on the object) and one
operator-wide loop, started at startup, reconciles those whose next check is due every
``TICK_SECONDS``. Reconcile also runs on every DriftMonitor event and when a check Job
finishes. Children (check Jobs, retraining TrainingJobs) carry owner references, so garbage
collection removes them with the monitor.

One idempotent, level-based ``reconcile`` per monitor (serialised by a lock):

* a check Job newer than ``status.lastCheckTime`` that has finished is folded into status
  (summary from its termination message), then a drifted check may create a TrainingJob;
* otherwise, when due and the ModelDeployment serves a version, a check Job is created
  (deterministic name per interval slot; at most one unfinished check at a time).

Status is written with a merge patch guarded by ``resourceVersion`` (re-read on conflict).
Handlers return None.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from continuum.api import (
    GROUP,
    VERSION,
    DriftMonitor,
    DriftMonitorStatus,
    ModelDeployment,
    dump,
    load,
)
from continuum.controllers import metrics
from continuum.controllers.checks import (
    DRIFT_CHECK,
    MONITOR_CONTAINER,
    check_selector,
    check_slot,
    check_time_of,
    desired_check_job,
    is_due,
    pending_check,
)
from continuum.controllers.drift import (
    CheckResult,
    Event,
    check_events,
    check_result,
    job_outcome,
    parse_summary,
    status_after_check,
    status_waiting,
)
from continuum.controllers.naming import COMPONENT, MANAGED_BY, OPERATOR
from continuum.controllers.ownership import (
    controller_of,
    load_or_fail,
)
from continuum.controllers.retrain import (
    NOTHING,
    Decision,
    active_retrainings,
    apply_decision,
    decide_retrain,
    desired_training_job,
    retrain_name,
)
from continuum.controllers.settings import image_of, kube_of
from continuum.kube import Conflict, Kube

PLURAL = "driftmonitors"
KIND = "DriftMonitor"
MD_PLURAL = "modeldeployments"
TJ_PLURAL = "trainingjobs"
STATUS_ATTEMPTS = 5
TICK_SECONDS = 5.0
TASK = "driftmonitor-ticker"
log = logging.getLogger(__name__)

CHECKS = Counter(
    "continuum_drift_checks_total",
    "Finished drift checks, by monitor and verdict (Drift, NoDrift, InsufficientData, Failed).",
    ["namespace", "monitor", "verdict"],
    registry=metrics.REGISTRY,
)
FEATURE_STATISTIC = Gauge(
    "continuum_drift_feature_statistic",
    "Test statistic of one feature in the monitor's last check.",
    ["namespace", "monitor", "feature", "test"],
    registry=metrics.REGISTRY,
)
SHARE = Gauge(
    "continuum_drift_share",
    "Share of features that drifted in the monitor's last check.",
    ["namespace", "monitor"],
    registry=metrics.REGISTRY,
)
DETECTED = Gauge(
    "continuum_drift_detected",
    "1 when the monitor's last conclusive check found dataset drift, else 0.",
    ["namespace", "monitor"],
    registry=metrics.REGISTRY,
)
RETRAININGS = Counter(
    "continuum_drift_retrainings_total",
    "Retraining triggers, by monitor and outcome (Created or Suppressed).",
    ["namespace", "monitor", "outcome"],
    registry=metrics.REGISTRY,
)

_known: dict[tuple[str, str], dict[str, Any]] = {}
_locks: dict[tuple[str, str], asyncio.Lock] = {}
_features: dict[tuple[str, str], set[tuple[str, str]]] = {}


@kopf.on.event(GROUP, VERSION, PLURAL, id="driftmonitor")
async def monitor_event_handler(
    type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    key = (str(body["metadata"]["namespace"]), str(body["metadata"]["name"]))
    if type == "DELETED":
        forget(*key)
        return
    _known[key] = dict(body)
    with metrics.counted(KIND, "event"):
        await reconcile(kube_of(memo), image_of(memo), *key)


@kopf.on.event(
    "batch",
    "v1",
    "jobs",
    id="driftmonitor-check",
    labels={MANAGED_BY: OPERATOR, COMPONENT: DRIFT_CHECK},
)
async def check_event_handler(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    owner = controller_owner(body)
    if type == "DELETED" or owner is None or job_outcome(body) is None:
        return
    with metrics.counted(KIND, "check-event"):
        namespace = str(body["metadata"]["namespace"])
        await reconcile(kube_of(memo), image_of(memo), namespace, owner[0], uid=owner[1])


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
    for (namespace, name), body in list(_known.items()):
        if not due(body, now):
            continue
        try:
            with metrics.counted(KIND, "schedule"):
                await reconcile(kube_of(memo), image_of(memo), namespace, name)
        except Exception as exc:  # one monitor's failure must not stop the others' schedule
            log.warning("DriftMonitor %s/%s: reconcile failed: %s", namespace, name, exc)


def due(body: Mapping[str, Any], now: datetime) -> bool:
    """Whether the last-seen ``body`` has a check due (or a result to fold in)."""
    try:
        dm = load(DriftMonitor, body)
    except ValidationError:
        return False
    return is_due(dm.status, dm.spec, now)


def forget(namespace: str, name: str) -> None:
    """Drop a deleted monitor's cache entry, lock and metrics."""
    _known.pop((namespace, name), None)
    _locks.pop((namespace, name), None)
    clear_metrics(namespace, name)


async def reconcile(
    kube: Kube, image: str, namespace: str, name: str, *, uid: str | None = None
) -> None:
    """Bring one DriftMonitor's checks, retrainings and status in line (idempotent)."""
    async with _locks.setdefault((namespace, name), asyncio.Lock()):
        for _attempt in range(STATUS_ATTEMPTS):
            body = await kube.read_custom_object(GROUP, VERSION, PLURAL, namespace, name)
            if body is None or _gone(body, uid):
                return
            if await _reconcile_once(kube, image, body):
                return
    raise kopf.TemporaryError("the DriftMonitor kept changing during reconcile", delay=1)


def _gone(body: Mapping[str, Any], uid: str | None) -> bool:
    meta = body["metadata"]
    return bool(meta.get("deletionTimestamp")) or (uid is not None and meta.get("uid") != uid)


async def _reconcile_once(kube: Kube, image: str, body: Mapping[str, Any]) -> bool:
    """One pass; False when the object changed meanwhile (the caller re-reads it)."""
    dm = load_drift_monitor(body)
    now = _now()
    jobs = await check_jobs(kube, dm)
    pending = pending_check(jobs, dm.status)
    if pending is not None and job_outcome(pending) is None:
        running = f"check Job {_name_of(pending)} running"
        waiting = status_waiting(dm, "CheckRunning", running, now=now, job_name=_name_of(pending))
        return await write_status(kube, body, dm, waiting)
    if pending is not None:
        return await finish_check(kube, body, dm, pending, now)
    if not is_due(dm.status, dm.spec, now):
        return True
    return await start_check(kube, image, body, dm, now)


async def check_jobs(kube: Kube, dm: DriftMonitor) -> list[dict[str, Any]]:
    """The monitor's check Jobs (label selector, then owner uid)."""
    namespace, name = str(dm.metadata["namespace"]), str(dm.metadata["name"])
    jobs = await kube.list_jobs(namespace, check_selector(name))
    return [job for job in jobs if _owner_uid(job) == dm.metadata.get("uid")]


async def start_check(
    kube: Kube, image: str, body: Mapping[str, Any], dm: DriftMonitor, now: datetime
) -> bool:
    """Create the check Job of this slot, or say in status what the check waits for."""
    md, why = await served_deployment(kube, dm)
    if md is None or md.status.serving_version is None:
        return await write_status(kube, body, dm, status_waiting(dm, "WaitingForDeployment",
                                                                 why, now=now))  # fmt: skip
    slot = check_slot(now, dm.spec.schedule.interval_seconds)
    manifest = desired_check_job(dm, md, md.status.serving_version, slot, image)
    job, created = await kube.create_job(manifest)
    if _owner_uid(job) != dm.metadata.get("uid"):
        raise kopf.TemporaryError(f"Job {_name_of(job)} belongs to another object", delay=30)
    if created:
        log.info("DriftMonitor %s: started check Job %s", dm.metadata["name"], _name_of(job))
    running = f"check Job {_name_of(job)} of version {md.status.serving_version} running"
    waiting = status_waiting(dm, "CheckRunning", running, now=now, job_name=_name_of(job))
    return await write_status(kube, body, dm, waiting)


async def served_deployment(kube: Kube, dm: DriftMonitor) -> tuple[ModelDeployment | None, str]:
    """The watched ModelDeployment (None if absent or invalid) and what the check waits for."""
    namespace, name = str(dm.metadata["namespace"]), dm.spec.deployment
    body = await kube.read_custom_object(GROUP, VERSION, MD_PLURAL, namespace, name)
    if body is None:
        return None, f"ModelDeployment {name} not found"
    try:
        md = load(ModelDeployment, body)
    except ValidationError:
        return None, f"ModelDeployment {name} is invalid"
    return md, f"waiting for ModelDeployment {name} to serve a version"


async def finish_check(
    kube: Kube, body: Mapping[str, Any], dm: DriftMonitor, job: Mapping[str, Any], now: datetime
) -> bool:
    """Fold a finished check into status, retrain if drift held; post Events after writing."""
    result = await read_result(kube, dm, job, now)
    status = status_after_check(dm, result)
    decision, name = NOTHING, ""
    if result.verdict == "Drift":
        decision, name = await retrain(kube, dm, status, now)
        status = apply_decision(status, decision, name, now)
    if not await write_status(kube, body, dm, status):
        return False
    announce(body, dm, result, status, decision=decision, name=name)
    return True


async def read_result(
    kube: Kube, dm: DriftMonitor, job: Mapping[str, Any], now: datetime
) -> CheckResult:
    """The finished check's verdict from the Job and the monitor's termination message."""
    outcome = job_outcome(job)
    kind, message, when = outcome if outcome is not None else ("Failed", "", None)
    namespace = str(dm.metadata["namespace"])
    text = await kube.read_pod_termination_message(namespace, job, MONITOR_CONTAINER)
    finished = max(_parse_time(when) or now, check_time_of(job) or now)
    return check_result(_name_of(job), finished, kind == "Complete", message, parse_summary(text))


async def retrain(
    kube: Kube, dm: DriftMonitor, status: DriftMonitorStatus, now: datetime
) -> tuple[Decision, str]:
    """Decide on a retraining and create its TrainingJob (409: it exists, from a retry)."""
    namespace, monitor = str(dm.metadata["namespace"]), str(dm.metadata["name"])
    name = retrain_name(monitor, status.report_uri, now)
    trainingjobs = await kube.list_custom_objects(GROUP, VERSION, TJ_PLURAL, namespace)
    active = active_retrainings(trainingjobs, str(dm.metadata["uid"]))
    decision = decide_retrain(dm.spec, status, active, now, candidate=name)
    if decision.create:
        manifest = desired_training_job(dm, name, decision.reason, status.report_uri)
        tj, _created = await kube.create_custom_object(GROUP, VERSION, TJ_PLURAL, manifest)
        if _owner_uid(tj) != dm.metadata.get("uid"):
            raise kopf.TemporaryError(f"TrainingJob {name} belongs to another object", delay=30)
    return decision, name


async def write_status(
    kube: Kube, body: Mapping[str, Any], dm: DriftMonitor, status: DriftMonitorStatus
) -> bool:
    """Write ``status`` unless unchanged; False on a resourceVersion conflict."""
    if dump(status) == dump(dm.status):
        return True
    meta = body["metadata"]
    try:
        await kube.patch_status(
            GROUP, VERSION, PLURAL, meta["namespace"], meta["name"], status=dump(status),
            resource_version=meta.get("resourceVersion"),
        )  # fmt: skip
    except Conflict:
        return False
    return True


def announce(
    body: Mapping[str, Any],
    dm: DriftMonitor,
    result: CheckResult,
    status: DriftMonitorStatus,
    *,
    decision: Decision,
    name: str,
) -> None:
    """Events and metrics of a folded-in check (after its status was written)."""
    namespace, monitor = str(dm.metadata["namespace"]), str(dm.metadata["name"])
    drifts = status.consecutive_drifts or 0
    if decision.create:
        drifts = dm.spec.consecutive_checks  # the count that triggered, before its reset
    events = check_events(result, drifts, dm.spec.consecutive_checks)
    events += decision_events(decision, name, status.report_uri)
    target = kopf.Body(cast("kopf.RawBody", dict(body)))
    for event in events:
        post = kopf.info if event.type == "Normal" else kopf.warn
        post(target, reason=event.reason, message=event.message)
    export_metrics(namespace, monitor, result, decision)


def decision_events(decision: Decision, name: str, report: str | None) -> list[Event]:
    if decision.create:
        message = f"created TrainingJob {name}: {decision.reason}; report {report}"
        return [Event("Normal", "RetrainingTriggered", message)]
    if decision.suppressed:
        return [Event("Warning", "RetrainingSuppressed", f"{decision.reason}; report {report}")]
    return []


def export_metrics(namespace: str, monitor: str, result: CheckResult, decision: Decision) -> None:
    """Per-check counter, per-monitor gauges and per-feature statistics."""
    CHECKS.labels(namespace=namespace, monitor=monitor, verdict=result.verdict).inc()
    if decision.create or decision.suppressed:
        outcome = "Created" if decision.create else "Suppressed"
        RETRAININGS.labels(namespace=namespace, monitor=monitor, outcome=outcome).inc()
    if result.verdict not in {"Drift", "NoDrift"}:
        return
    DETECTED.labels(namespace=namespace, monitor=monitor).set(result.verdict == "Drift")
    share = result.summary.get("share")
    if isinstance(share, int | float):
        SHARE.labels(namespace=namespace, monitor=monitor).set(share)
    export_features(namespace, monitor, result.summary.get("features") or [])


def export_features(namespace: str, monitor: str, features: list[Any]) -> None:
    """Replace the monitor's per-feature gauges with those of the latest check."""
    fresh: set[tuple[str, str]] = set()
    for item in features:
        value = item.get("statistic") if isinstance(item, dict) else None
        if isinstance(value, int | float):
            key = (str(item.get("name")), str(item.get("test")))
            FEATURE_STATISTIC.labels(namespace, monitor, *key).set(value)
            fresh.add(key)
    for key in _features.get((namespace, monitor), set()) - fresh:
        with suppress(KeyError):
            FEATURE_STATISTIC.remove(namespace, monitor, *key)
    _features[(namespace, monitor)] = fresh


def clear_metrics(namespace: str, monitor: str) -> None:
    """Remove a deleted monitor's gauges."""
    export_features(namespace, monitor, [])
    _features.pop((namespace, monitor), None)
    for gauge in (SHARE, DETECTED):
        with suppress(KeyError):
            gauge.remove(namespace, monitor)


def load_drift_monitor(body: Mapping[str, Any]) -> DriftMonitor:
    """Parse a DriftMonitor; one the API types reject is a permanent handler failure."""
    return load_or_fail(DriftMonitor, body)


def controller_owner(child: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, uid) of the DriftMonitor that controls ``child``, if one does."""
    return controller_of(child, KIND)


def _owner_uid(child: Mapping[str, Any]) -> str | None:
    owner = controller_owner(child)
    return owner[1] if owner is not None else None


def _name_of(obj: Mapping[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
