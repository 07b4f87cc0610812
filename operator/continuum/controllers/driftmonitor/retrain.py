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

**Triggers** (``spec.retrain.triggers``). A finished check can set off a retraining two ways:
*drift* (above, ``triggers.drift``) and *performance*: ``status.performance`` Degraded in this
check, ``consecutiveDegraded`` at ``performance.consecutiveChecks``, on the basis chosen
(``realised``, ``estimated`` or ``either``; by default realised whenever spec.performance is
set). When both fire, one TrainingJob is created and recorded as ``performance`` (the
outcome, not the inputs, is what went wrong), its reason naming both. A performance trigger
fires once per served version: a later degraded check of the same version is not a new
finding, unless the retraining it set off failed, did not qualify, or is gone, when the next
degraded check after the cooldown asks again. Both go through steps 3-8.

A *schedule* (``triggers.schedule``, cron in UTC) is decided apart (:func:`decide_schedule`):
the latest tick at or before now that is after ``status.lastScheduleTick`` (or the monitor's
creation) is due; ticks missed while the operator was down fire once, late. It goes through
steps 5-8 (no check behind it, so no quality hold); created or suppressed, the tick is recorded
in ``lastScheduleTick`` so it never fires twice. Its TrainingJob is named after the tick.

Every record (``status.retrainings``, ``status.suppressed``) and every created TrainingJob
(annotations ``continuum.dev/trigger`` and ``continuum.dev/evidence``) says which trigger
fired and what it saw: the report, the drift share, the metric with its basis and interval.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from continuum.api import (
    API_VERSION,
    DriftMonitor,
    DriftMonitorStatus,
    RetrainEvidence,
    RetrainingRecord,
    SuppressedRecord,
    Trigger,
    dump,
)
from continuum.api import DriftMonitorSpec as Spec
from continuum.api.vocabulary import (
    COMPONENT_RETRAINING,
    DRIFT_MONITOR,
    DRIFT_MONITOR_LABEL,
    EVIDENCE_ANNOTATION,
    MODEL_LABEL,
    REASON_ANNOTATION,
    REPORT_ANNOTATION,
    TRAINING_JOB,
    TRIGGER_ANNOTATION,
    TRIGGER_DRIFT,
    TRIGGER_PERFORMANCE,
    TRIGGER_SCHEDULE,
)
from continuum.controllers.driftmonitor.checks import compact_time, monitor_reference
from continuum.controllers.shared.naming import child_name, managed_labels

MAX_RECORDS = 20
FINISHED = frozenset({"Succeeded", "Failed"})
BASES = {"realised": {"realised"}, "estimated": {"estimated"}, "either": {"realised", "estimated"}}


@dataclass(frozen=True)
class Decision:
    """Create a TrainingJob (``create``), record a suppressed trigger, or neither; which
    trigger it answers, and what that trigger saw."""

    create: bool
    reason: str = ""
    suppressed: bool = False
    trigger: Trigger = "drift"
    evidence: RetrainEvidence | None = None
    drift: bool = False  # drift held too: a created TrainingJob resets consecutiveDrifts


NOTHING = Decision(create=False)


@dataclass(frozen=True)
class Fired:
    """The triggers a finished check set off, before the brakes."""

    trigger: Trigger
    reason: str
    evidence: RetrainEvidence
    drift: bool


def decide_retrain(
    spec: Spec,
    status: DriftMonitorStatus,
    active_trainingjobs: Sequence[str],
    now: datetime,
    *,
    candidate: str | None = None,
    spent: frozenset[int] = frozenset(),
    version: int | None = None,
) -> Decision:
    """Whether the check folded into ``status`` creates a TrainingJob now, and why (not).

    ``spent``: served versions a performance trigger already retrained (not failed);
    ``version``: the version the check judged."""
    fired = fired_triggers(spec, status, spent, version)
    if fired is None or spec.retrain is None or _already(status):
        return NOTHING
    held = _held_by_quality(spec, status)
    if held is not None:
        return _suppress(held, fired)
    return _brakes(spec, status, active_trainingjobs, now, candidate=candidate, fired=fired)


def _brakes(
    spec: Spec,
    status: DriftMonitorStatus,
    active_trainingjobs: Sequence[str],
    now: datetime,
    *,
    candidate: str | None,
    fired: Fired,
) -> Decision:
    """Steps 5-7 (disabled, cooldown, budget), then a Decision to create."""
    retrain = spec.retrain
    if retrain is None:
        return NOTHING
    if not retrain.enabled:
        return _suppress("disabled: spec.retrain.enabled is false", fired)
    held = _cooldown_left(retrain.cooldown_seconds, status, now)
    if held is not None:
        return _suppress(held, fired)
    active = [name for name in active_trainingjobs if name != candidate]
    if len(active) >= retrain.max_concurrent:
        running = f"{len(active)} of {retrain.max_concurrent} running ({', '.join(sorted(active))})"
        return _suppress(f"budget: {running}", fired)
    return Decision(
        True, fired.reason, trigger=fired.trigger, evidence=fired.evidence, drift=fired.drift
    )


def fired_triggers(
    spec: Spec, status: DriftMonitorStatus, spent: frozenset[int], version: int | None
) -> Fired | None:
    """What the check in ``status`` sets off: performance, drift, both (recorded as
    performance, the reason naming both) or nothing."""
    drift = _drift_reason(spec, status)
    performance = _performance_reason(spec, status, spent, version)
    report = status.report_uri
    if performance is not None:
        reason = performance if drift is None else f"{performance}; and {drift}"
        return Fired(TRIGGER_PERFORMANCE, reason, performance_evidence(status), drift is not None)
    if drift is not None:
        share = status.drift.share if status.drift else None
        return Fired(TRIGGER_DRIFT, drift, RetrainEvidence(report=report, share=share), True)
    return None


def _drift_reason(spec: Spec, status: DriftMonitorStatus) -> str | None:
    drifts, needed = status.consecutive_drifts or 0, spec.consecutive_checks
    if spec.retrain is None or not spec.retrain.triggers.drift or drifts < needed:
        return None
    share = f" (share {status.drift.share:.0%})" if status.drift and status.drift.share else ""
    return f"dataset drift in {drifts} consecutive checks{share}"


def _performance_reason(
    spec: Spec, status: DriftMonitorStatus, spent: frozenset[int], version: int | None
) -> str | None:
    found, basis = status.performance, spec.performance_trigger()
    if found is None or spec.performance is None or basis == "none":
        return None
    needed, count = spec.performance.consecutive_checks, found.consecutive_degraded or 0
    if found.verdict != "Degraded" or count < needed or found.basis not in BASES[basis]:
        return None
    if version is not None and version in spent:
        return None
    chosen = found.realised if found.basis == "realised" else found.estimated
    value = f" {chosen.value:.4g}" if chosen and chosen.value is not None else ""
    holdout = f", holdout {found.holdout:.4g}" if found.holdout is not None else ""
    return f"{found.basis} {found.metric}{value} degraded in {count} consecutive checks{holdout}"


def performance_evidence(status: DriftMonitorStatus) -> RetrainEvidence:
    """The report, the metric, its basis and interval of the check in ``status``."""
    found = status.performance
    if found is None:
        return RetrainEvidence(report=status.report_uri)
    chosen = found.realised if found.basis == "realised" else found.estimated
    return RetrainEvidence(
        report=status.report_uri,
        metric=found.metric,
        basis=found.basis,
        value=chosen.value if chosen else None,
        lower=chosen.lower if chosen else None,
        upper=chosen.upper if chosen else None,
        holdout=found.holdout,
    )


def spent_versions(
    status: DriftMonitorStatus, trainingjobs: Iterable[Mapping[str, Any]]
) -> frozenset[int]:
    """Served versions a performance trigger retrained whose TrainingJob still stands: not
    gone, not failed, not unqualified (those may be retried after the cooldown)."""
    standing = {str((tj.get("metadata") or {}).get("name")) for tj in trainingjobs if _stands(tj)}
    return frozenset(
        r.version
        for r in status.retrainings
        if r.trigger == TRIGGER_PERFORMANCE and r.version is not None and r.training_job in standing
    )


def _stands(tj: Mapping[str, Any]) -> bool:
    status = tj.get("status") or {}
    return status.get("phase") != "Failed" and status.get("qualified") is not False


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


def _suppress(reason: str, fired: Fired) -> Decision:
    return Decision(False, reason, suppressed=True, trigger=fired.trigger, evidence=fired.evidence)


def due_tick(
    spec: Spec, status: DriftMonitorStatus, created: datetime, now: datetime
) -> datetime | None:
    """The schedule's latest tick at or before ``now`` not yet acted on; None if none is due."""
    schedule = spec.retrain.triggers.schedule if spec.retrain is not None else None
    if schedule is None:
        return None
    after = status.last_schedule_tick or created
    if next_tick(schedule, after) > now:
        return None
    return previous_tick(schedule, now)


@functools.lru_cache(maxsize=4096)
def next_tick(schedule: str, after: datetime) -> datetime:
    """The first tick of ``schedule`` after ``after`` (cached: the ticker asks every 5 s)."""
    found: datetime = croniter(schedule, after.astimezone(UTC)).get_next(datetime)
    return found


def previous_tick(schedule: str, now: datetime) -> datetime:
    """The last tick of ``schedule`` at or before ``now``."""
    moment = now.astimezone(UTC)
    if croniter.match(schedule, moment) and moment.second == 0:
        return moment
    found: datetime = croniter(schedule, moment).get_prev(datetime)
    return found


def decide_schedule(
    spec: Spec,
    status: DriftMonitorStatus,
    active_trainingjobs: Sequence[str],
    tick: datetime,
    now: datetime,
    *,
    candidate: str | None = None,
) -> Decision:
    """The scheduled retraining of ``tick``: steps 5-7, then create."""
    schedule = spec.retrain.triggers.schedule if spec.retrain is not None else None
    evidence = RetrainEvidence(schedule=schedule, tick=tick)
    reason = f"schedule {schedule!r}: tick {tick.isoformat()}"
    fired = Fired(TRIGGER_SCHEDULE, reason, evidence, drift=False)
    return _brakes(spec, status, active_trainingjobs, now, candidate=candidate, fired=fired)


def schedule_name(monitor: str, tick: datetime) -> str:
    """``<monitor>-retrain-cron-<tick>``: one name per tick."""
    return child_name(monitor, f"retrain-cron-{compact_time(tick).lower()}")


def retrain_name(monitor: str, report_uri: str | None, fallback: datetime) -> str:
    """``<monitor>-retrain-<report time>``: one name per report."""
    folder = (report_uri or "").rstrip("/").rsplit("/", 1)[-1]
    stamp = folder.lower() if folder else fallback.strftime("%Y%m%dt%H%M%Sz")
    return child_name(monitor, f"retrain-{stamp}")


def apply_decision(
    status: DriftMonitorStatus,
    decision: Decision,
    name: str,
    now: datetime,
    *,
    version: int | None = None,
) -> DriftMonitorStatus:
    """Record a created or suppressed trigger (newest MAX_RECORDS kept); a created one that
    drift held for resets consecutiveDrifts."""
    if decision.create:
        report = status.report_uri if decision.trigger != TRIGGER_SCHEDULE else None
        record = RetrainingRecord(
            training_job=name,
            time=now,
            reason=decision.reason,
            report=report,
            trigger=decision.trigger,
            version=version,
            evidence=decision.evidence,
        )
        update: dict[str, Any] = {"retrainings": [*status.retrainings, record][-MAX_RECORDS:]}
        if decision.drift:
            update["consecutive_drifts"] = 0
        return status.model_copy(update=update)
    if decision.suppressed:
        where = f"; report {status.report_uri}" if decision.trigger != TRIGGER_SCHEDULE else ""
        text = f"{decision.reason}{where}"[:1024]
        entry = SuppressedRecord(time=now, reason=text, trigger=decision.trigger)
        return status.model_copy(update={"suppressed": [*status.suppressed, entry][-MAX_RECORDS:]})
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


def no_source(model: str, version: int | None, decision: Decision) -> Decision:
    """``decision`` suppressed: no template, and the served version's TrainingJob is not there
    to copy."""
    served = f"{model}/{version}" if version is not None else f"model {model} (nothing served)"
    fired = Fired(decision.trigger, decision.reason, decision.evidence or RetrainEvidence(), False)
    return _suppress(
        f"no template: spec.retrain.template is omitted and no TrainingJob of the namespace "
        f"produced the served version {served} (deleted?): set spec.retrain.template",
        fired,
    )


def desired_training_job(
    dm: DriftMonitor,
    name: str,
    decision: Decision,
    report: str | None,
    source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The TrainingJob a trigger creates: the template — or, without one, ``source``, the
    spec of the TrainingJob that produced the served version — linked to monitor, report,
    trigger and evidence."""
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
    annotations = trigger_annotations(decision)
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


def trigger_annotations(decision: Decision) -> dict[str, str]:
    """The reason, trigger and evidence (compact JSON, unset fields left out) of a retraining."""
    annotations = {REASON_ANNOTATION: decision.reason[:1024], TRIGGER_ANNOTATION: decision.trigger}
    if decision.evidence is not None:
        evidence = dump(decision.evidence)
        annotations[EVIDENCE_ANNOTATION] = json.dumps(
            evidence, sort_keys=True, separators=(",", ":")
        )
    return annotations


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
