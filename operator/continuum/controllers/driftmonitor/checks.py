"""Pure scheduling of a DriftMonitor's checks and the batch Job that runs one.

A check runs when ``next_check_due`` has passed. Its scheduled time is the interval slot it
falls in (``check_slot``: epoch seconds rounded down to a multiple of the interval), which
names the Job (``<monitor>-check-<epoch>``) and the report folder: two reconciles in the same
slot create the same Job (HTTP 409), never two. A check whose scheduled time is after
``status.lastCheckTime`` has not been folded into status yet (``pending_check``); while one is
pending no other check starts, so at most one check Job runs per monitor.

``lastCheckTime`` is when the last check finished, never earlier than its scheduled time, so
the next slot is always after the previous one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from continuum.api import (
    DriftMonitor,
    DriftMonitorStatus,
    ModelDeployment,
    StorageSpec,
    dump_set,
)
from continuum.api import DriftMonitorSpec as Spec
from continuum.api.vocabulary import (
    CHECK_TIME_ANNOTATION,
    COMPONENT,
    COMPONENT_DRIFT_CHECK,
    DRIFT_MONITOR,
    DRIFT_MONITOR_LABEL,
    MODEL_LABEL,
)
from continuum.controllers.shared.naming import child_name, label_value, managed_labels
from continuum.controllers.shared.objects import owner_reference
from continuum.controllers.shared.pods import (
    log_policy_env,
    required,
    storage_env,
    var,
    workload_container,
    workload_pod,
)

MONITOR_CONTAINER = "monitor"
TIME_FORMAT = "%Y%m%dT%H%M%SZ"
CHECK_DEADLINE = 900
CHECK_SPEC_KEYS = (
    "window", "tests", "sensitiveFeature", "fairnessThreshold", "quality", "performance"
)  # fmt: skip


def next_check_due(status: DriftMonitorStatus, spec: Spec, now: datetime) -> datetime:
    """When the next check should start: at once before the first, else one interval after."""
    if status.last_check_time is None:
        return now
    return status.last_check_time + timedelta(seconds=spec.schedule.interval_seconds)


def is_due(status: DriftMonitorStatus, spec: Spec, now: datetime) -> bool:
    return next_check_due(status, spec, now) <= now


def check_slot(now: datetime, interval_seconds: int) -> datetime:
    """The start of the interval slot ``now`` falls in (epoch-aligned, UTC)."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % interval_seconds, UTC)


def compact_time(moment: datetime) -> str:
    """``2026-01-31 12:00:05 UTC`` -> ``20260131T120005Z`` (the report folder's time)."""
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_compact_time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def check_job_name(monitor: str, slot: datetime) -> str:
    return child_name(monitor, f"check-{int(slot.timestamp())}")


def check_time_of(job: Mapping[str, Any]) -> datetime | None:
    """The scheduled time a check Job carries in its annotation."""
    text = (job.get("metadata", {}).get("annotations") or {}).get(CHECK_TIME_ANNOTATION)
    return parse_compact_time(text) if isinstance(text, str) else None


def pending_check(
    jobs: Iterable[Mapping[str, Any]], status: DriftMonitorStatus
) -> Mapping[str, Any] | None:
    """The newest check Job whose result status does not hold yet, if any."""
    timed = [(t, job) for job in jobs if (t := check_time_of(job)) is not None]
    if not timed:
        return None
    moment, job = max(timed, key=lambda pair: pair[0])
    last = status.last_check_time
    return job if last is None or moment > last else None


def check_labels(monitor: str, model: str) -> dict[str, str]:
    """Labels of a monitor's check Jobs (and their pods)."""
    own = {DRIFT_MONITOR_LABEL: monitor, MODEL_LABEL: model}
    return managed_labels(COMPONENT_DRIFT_CHECK, own)


def check_selector(monitor: str) -> str:
    """The label selector of one monitor's check Jobs."""
    return f"{COMPONENT}={COMPONENT_DRIFT_CHECK},{DRIFT_MONITOR_LABEL}={label_value(monitor)}"


def monitor_reference(dm: DriftMonitor) -> dict[str, Any]:
    """A controller owner reference to ``dm``: deleting it garbage-collects the child."""
    return owner_reference(DRIFT_MONITOR, dm.metadata.name, dm.metadata.uid)


def desired_check_job(
    dm: DriftMonitor, md: ModelDeployment, version: int, slot: datetime, image: str
) -> dict[str, Any]:
    """The batch/v1 Job running ``continuum monitor`` against ``version`` for ``slot``."""
    labels = check_labels(dm.metadata.name, md.spec.model)
    interval = dm.spec.schedule.interval_seconds
    metadata = {
        "name": check_job_name(dm.metadata.name, slot),
        "namespace": dm.metadata.namespace,
        "labels": labels,
        "annotations": {CHECK_TIME_ANNOTATION: compact_time(slot)},
        "ownerReferences": [monitor_reference(dm)],
    }
    spec = {
        "backoffLimit": 0,
        "activeDeadlineSeconds": min(interval, CHECK_DEADLINE),
        # keep finished checks a few intervals (their pods hold the summary), then collect
        "ttlSecondsAfterFinished": max(3 * interval, 600),
        "template": {
            "metadata": {"labels": dict(labels)},
            "spec": _pod_spec(check_env(dm, md, version, slot), image, required(md.spec.storage)),
        },
    }
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}


def _pod_spec(env: list[dict[str, Any]], image: str, storage: StorageSpec) -> dict[str, Any]:
    container = workload_container(
        MONITOR_CONTAINER, image, "monitor", env, storage,
        terminationMessagePolicy="FallbackToLogsOnError",
    )  # fmt: skip
    return workload_pod(container, storage, restartPolicy="Never")


def check_env(
    dm: DriftMonitor, md: ModelDeployment, version: int, slot: datetime
) -> list[dict[str, Any]]:
    """The monitor's environment: what to check, with which settings, and where S3 is."""
    return [
        var("CONTINUUM_MONITOR", dm.metadata.name),
        var("CONTINUUM_MODEL", md.spec.model),
        var("CONTINUUM_MODEL_VERSION", str(version)),
        var("CONTINUUM_MONITOR_SPEC", check_spec_json(dm.spec)),
        var("CONTINUUM_REPORT_TIME", compact_time(slot)),
        var("HOME", "/tmp"),
        # the served model's store: the monitor reads its baseline and inference log there
        *storage_env(required(md.spec.storage)),
        # what the log drops and hashes: the check leaves dropped features out and hashes
        # the reference sample's values of hashed ones with the same key
        *log_policy_env(md.spec.inference_log),
        *_retention_env(md),
    ]


def _retention_env(md: ModelDeployment) -> list[dict[str, Any]]:
    """How long the model's logs, labels and this monitor's reports are kept (the check
    prunes older ones first; continuum.storage.retention)."""
    days = md.spec.inference_log.retention_days
    return [] if days is None else [var("CONTINUUM_RETENTION_DAYS", str(days))]


def check_spec_json(spec: Spec) -> str:
    """Only the parts of the spec a check uses and sets (``dump_set``), as compact JSON."""
    data = dump_set(spec)
    parts = {k: data[k] for k in CHECK_SPEC_KEYS if k in data}
    return json.dumps(parts, sort_keys=True, separators=(",", ":"))
