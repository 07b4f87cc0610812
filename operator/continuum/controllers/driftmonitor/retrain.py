"""Pure retraining decisions of a DriftMonitor, with brakes, and the TrainingJob they create.

After a drifted check, ``decide_retrain`` asks, in order:

1. has drift held for ``consecutiveChecks`` checks in a row? (no: nothing to do)
2. is retraining configured? (``spec.retrain`` omitted: the monitor only watches)
3. did this report already trigger a retraining? (``status.retrainings`` names its report:
   nothing to do, so the same report never triggers twice, across restarts too)
4. did the window fail a data-quality check of ``spec.quality.holdRetraining`` (by default
   missingColumn, typeMismatch, missingShare)? -> suppressed ("data quality"): drift seen
   through a broken pipeline (a column gone, text for numbers, a column of nulls) is the
   pipeline's fault, and a model retrained then learns nothing about the traffic; the count
   is kept, so the next drifted check without them retrains. outOfRange and
   unseenCategories do not hold it by default: real shifts leave the training range too;
5. ``retrain.enabled`` false -> suppressed ("disabled");
6. the last retraining less than ``cooldownSeconds`` ago -> suppressed ("cooldown");
7. ``maxConcurrent`` retraining TrainingJobs unfinished -> suppressed ("budget");
8. otherwise create one.

Without ``retrain.template`` the TrainingJob gets the spec of the TrainingJob that produced the
served version (the same dataset URI, estimator, gate and storage); if that TrainingJob is
gone, the trigger is suppressed ("no template") and says to set a template.

A created TrainingJob resets ``consecutiveDrifts`` to 0: the next retraining needs drift to
hold for ``consecutiveChecks`` fresh checks. A suppressed trigger keeps the count, so the next
drifted check asks again. The TrainingJob's name derives from the report's time, so a retry
after a crash finds the one already created (HTTP 409) instead of making a second.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from continuum.api import (
    API_VERSION,
    DriftMonitor,
    DriftMonitorStatus,
    RetrainingRecord,
    SuppressedRecord,
    dump,
)
from continuum.api import DriftMonitorSpec as Spec
from continuum.api.vocabulary import (
    COMPONENT_RETRAINING,
    DRIFT_MONITOR,
    DRIFT_MONITOR_LABEL,
    MODEL_LABEL,
    REASON_ANNOTATION,
    REPORT_ANNOTATION,
    TRAINING_JOB,
)
from continuum.controllers.driftmonitor.checks import monitor_reference
from continuum.controllers.shared.naming import child_name, managed_labels

MAX_RECORDS = 20
FINISHED = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True)
class Decision:
    """Create a TrainingJob (``create``), record a suppressed trigger, or neither."""

    create: bool
    reason: str = ""
    suppressed: bool = False


NOTHING = Decision(create=False)


def decide_retrain(
    spec: Spec,
    status: DriftMonitorStatus,
    active_trainingjobs: Sequence[str],
    now: datetime,
    *,
    candidate: str | None = None,
) -> Decision:
    """Whether the drift in ``status`` creates a TrainingJob now, and why (not)."""
    drifts, needed = status.consecutive_drifts or 0, spec.consecutive_checks
    if drifts < needed or spec.retrain is None or _already(status):
        return NOTHING
    held = _held_by_quality(spec, status)
    if held is not None:
        return _suppress(held)
    if not spec.retrain.enabled:
        return _suppress("disabled: spec.retrain.enabled is false")
    held = _cooldown_left(spec.retrain.cooldown_seconds, status, now)
    if held is not None:
        return _suppress(held)
    active = [name for name in active_trainingjobs if name != candidate]
    if len(active) >= spec.retrain.max_concurrent:
        names = ", ".join(sorted(active))
        return _suppress(
            f"budget: {len(active)} of {spec.retrain.max_concurrent} running ({names})"
        )
    share = f" (share {status.drift.share:.0%})" if status.drift and status.drift.share else ""
    return Decision(True, f"dataset drift in {drifts} consecutive checks{share}")


def _held_by_quality(spec: Spec, status: DriftMonitorStatus) -> str | None:
    """Why the window's failed quality checks hold the retraining back; None if they do not."""
    quality = status.drift.quality if status.drift else None
    if quality is None or quality.passed is not False:
        return None
    held = sorted(set(quality.checks) & set(spec.quality.hold_retraining))
    if not held:
        return None
    first = f": {quality.failures[0]}" if quality.failures else ""
    return (
        f"data quality: the window failed {', '.join(held)} (quality.holdRetraining){first}; "
        "not retraining while the pipeline looks broken"
    )


def _already(status: DriftMonitorStatus) -> bool:
    report = status.report_uri
    return report is not None and any(r.report == report for r in status.retrainings)


def _cooldown_left(cooldown: int, status: DriftMonitorStatus, now: datetime) -> str | None:
    if not status.retrainings or cooldown <= 0:
        return None
    last = status.retrainings[-1]
    until = last.time + timedelta(seconds=cooldown)
    if now >= until:
        return None
    return f"cooldown: {last.training_job} started {last.time.isoformat()}, {cooldown}s cooldown"


def _suppress(reason: str) -> Decision:
    return Decision(False, reason, suppressed=True)


def retrain_name(monitor: str, report_uri: str | None, fallback: datetime) -> str:
    """``<monitor>-retrain-<report time>``: one name per report."""
    folder = (report_uri or "").rstrip("/").rsplit("/", 1)[-1]
    stamp = folder.lower() if folder else fallback.strftime("%Y%m%dt%H%M%Sz")
    return child_name(monitor, f"retrain-{stamp}")


def apply_decision(
    status: DriftMonitorStatus, decision: Decision, name: str, now: datetime
) -> DriftMonitorStatus:
    """Record a created or suppressed trigger (newest MAX_RECORDS kept)."""
    if decision.create:
        record = RetrainingRecord(
            training_job=name, time=now, reason=decision.reason, report=status.report_uri
        )
        retrainings = [*status.retrainings, record][-MAX_RECORDS:]
        return status.model_copy(update={"retrainings": retrainings, "consecutive_drifts": 0})
    if decision.suppressed:
        text = f"{decision.reason}; report {status.report_uri}"[:1024]
        suppressed = [*status.suppressed, SuppressedRecord(time=now, reason=text)]
        return status.model_copy(update={"suppressed": suppressed[-MAX_RECORDS:]})
    return status


def retrain_labels(monitor: str, model: str) -> dict[str, str]:
    """Labels of the TrainingJobs a monitor creates."""
    own = {DRIFT_MONITOR_LABEL: monitor, MODEL_LABEL: model}
    return managed_labels(COMPONENT_RETRAINING, own)


def served_training_spec(
    trainingjobs: Iterable[Mapping[str, Any]], model: str, version: int
) -> dict[str, Any] | None:
    """The spec of the TrainingJob that produced ``model`` version ``version`` (its status
    names the version), copied; None when no TrainingJob of the namespace did."""
    for tj in trainingjobs:
        spec, status = tj.get("spec") or {}, tj.get("status") or {}
        produced = (status.get("model") or {}).get("version")
        if spec.get("model") == model and produced == version:
            return copy.deepcopy(dict(spec))
    return None


def no_source(model: str, version: int | None) -> Decision:
    """Suppressed: no template, and the served version's TrainingJob is not there to copy."""
    served = f"{model}/{version}" if version is not None else f"model {model} (nothing served)"
    return _suppress(
        f"no template: spec.retrain.template is omitted and no TrainingJob of the namespace "
        f"produced the served version {served} (deleted?): set spec.retrain.template"
    )


def desired_training_job(
    dm: DriftMonitor,
    name: str,
    reason: str,
    report: str | None,
    source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The TrainingJob a trigger creates: the template — or, without one, ``source``, the
    spec of the TrainingJob that produced the served version — linked to monitor and report."""
    retrain = dm.spec.retrain
    if retrain is None:
        raise ValueError("the DriftMonitor has no spec.retrain")
    if retrain.template is not None:
        spec = dump(retrain.template)
    elif source is not None:
        spec = copy.deepcopy(dict(source))
    else:
        raise ValueError("the DriftMonitor has no retrain.template and no source spec")
    monitor = dm.metadata.name
    annotations = {REASON_ANNOTATION: reason[:1024]}
    if report is not None:
        annotations[REPORT_ANNOTATION] = report
    metadata = {
        "name": name,
        "namespace": dm.metadata.namespace,
        "labels": retrain_labels(monitor, str(spec["model"])),
        "annotations": annotations,
        "ownerReferences": [monitor_reference(dm)],
    }
    return {"apiVersion": API_VERSION, "kind": TRAINING_JOB, "metadata": metadata, "spec": spec}


def active_retrainings(trainingjobs: Iterable[Mapping[str, Any]], dm_uid: str) -> list[str]:
    """Names of this monitor's unfinished retraining TrainingJobs."""
    return [
        str(tj["metadata"]["name"])
        for tj in trainingjobs
        if _owned(tj, dm_uid) and (tj.get("status") or {}).get("phase") not in FINISHED
    ]


def _owned(tj: Mapping[str, Any], uid: str) -> bool:
    refs = tj.get("metadata", {}).get("ownerReferences") or []
    return any(r.get("kind") == DRIFT_MONITOR and r.get("uid") == uid for r in refs)
