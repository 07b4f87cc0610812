"""Retraining triggers: performance (basis, once per version), drift, both, a cron schedule,
each through the brakes, recorded with the trigger and its evidence."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from continuum.api import DriftMonitor, DriftMonitorSpec
from continuum.controllers.driftmonitor.retrain import (
    apply_decision,
    decide_retrain,
    decide_schedule,
    desired_training_job,
    due_tick,
    previous_tick,
    schedule_name,
    spent_versions,
)
from tests.unit.controllers.driftmonitor.builders import NOW, REPORT, dm_spec, drift_monitor

SUNDAYS = "0 3 * * 0"  # 2026-03-01 is a Sunday
CREATED = datetime(2026, 2, 28, 9, 0, tzinfo=UTC)  # a Saturday


def degraded(count: int = 2, basis: str = "realised", **status: Any) -> dict[str, Any]:
    interval = {"value": 0.71, "lower": 0.66, "upper": 0.76, "rows": 400}
    performance = {"metric": "accuracy", "verdict": "Degraded", "basis": basis, "holdout": 0.93,
                   basis: interval, "consecutiveDegraded": count}  # fmt: skip
    return {"reportURI": REPORT, "performance": performance, "consecutiveDrifts": 0, **status}


def monitor(status: dict[str, Any], triggers: dict[str, Any] | None = None,
            performance: dict[str, Any] | None = None, **retrain: Any) -> DriftMonitor:  # fmt: skip
    spec = dm_spec(triggers=triggers or {}, **retrain)
    spec["performance"] = {"consecutiveChecks": 2, **(performance or {})}
    return drift_monitor(status, **spec)


def decide(dm: DriftMonitor, **kwargs: Any) -> Any:
    return decide_retrain(dm.spec, dm.status, [], NOW, **kwargs)


def test_a_confirmed_realised_drop_retrains_by_default_with_its_evidence() -> None:
    decision = decide(monitor(degraded()), version=3)
    assert decision.create
    assert decision.trigger == "performance"
    assert decision.reason == (
        "realised accuracy 0.71 degraded in 2 consecutive checks, holdout 0.93"
    )
    evidence = decision.evidence
    assert (evidence.metric, evidence.basis, evidence.value) == ("accuracy", "realised", 0.71)
    assert (evidence.lower, evidence.upper, evidence.holdout) == (0.66, 0.76, 0.93)
    assert evidence.report == REPORT


def test_an_unconfirmed_or_held_check_does_not_retrain() -> None:
    assert not decide(monitor(degraded(count=1))).create
    held = degraded()
    held["performance"]["verdict"] = "Held"
    assert not decide(monitor(held)).create
    waiting = degraded()  # the count stays through a check without enough labels
    waiting["performance"]["verdict"] = "InsufficientData"
    assert not decide(monitor(waiting)).create


def test_the_basis_must_be_the_one_chosen() -> None:
    estimated = degraded(basis="estimated")
    assert not decide(monitor(estimated, performance={"estimate": True})).create
    for basis in ("estimated", "either"):
        chosen = monitor(estimated, {"performance": basis}, {"estimate": True})
        assert decide(chosen).create, basis
    assert not decide(monitor(degraded(), {"performance": "estimated"}, {"estimate": True})).create
    assert not decide(monitor(degraded(), {"performance": "none"})).create


def test_drift_alone_retrains_unless_its_trigger_is_off() -> None:
    status = {"consecutiveDrifts": 2, "reportURI": REPORT, "drift": {"share": 0.5}}
    decision = decide(monitor(status))
    assert (decision.create, decision.trigger, decision.drift) == (True, "drift", True)
    assert decision.evidence.share == 0.5
    assert not decide(monitor(status, {"drift": False})).create


def test_drift_and_a_drop_together_make_one_performance_retraining_that_resets_both() -> None:
    dm = monitor(degraded(consecutiveDrifts=2, drift={"share": 0.5}))
    decision = decide(dm, version=3)
    assert (decision.create, decision.trigger, decision.drift) == (True, "performance", True)
    assert decision.reason.endswith("; and dataset drift in 2 consecutive checks (share 50%)")
    status = apply_decision(dm.status, decision, "drift-retrain-x", NOW, version=3)
    assert status.consecutive_drifts == 0
    record = status.retrainings[-1]
    assert (record.trigger, record.version, record.report) == ("performance", 3, REPORT)
    assert record.evidence.metric == "accuracy"


def test_a_drop_alone_keeps_the_drift_count() -> None:
    dm = monitor(degraded(consecutiveDrifts=1))
    status = apply_decision(dm.status, decide(dm), "drift-retrain-x", NOW)
    assert status.consecutive_drifts == 1
    assert status.performance.consecutive_degraded == 2  # PerformanceDegraded stays True


def performance_record(name: str, version: int, minutes_ago: int = 120) -> dict[str, Any]:
    time = (NOW - timedelta(minutes=minutes_ago)).isoformat()
    return {"trainingJob": name, "time": time, "reason": "x", "report": "s3://r/old/",
            "trigger": "performance", "version": version}  # fmt: skip


def tj(name: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": status}


def test_once_per_served_version_unless_its_retraining_failed_or_did_not_qualify() -> None:
    dm = monitor(degraded(retrainings=[performance_record("drift-retrain-a", 3)]))
    for standing in (tj("drift-retrain-a", phase="Running"),
                     tj("drift-retrain-a", phase="Succeeded", qualified=True)):  # fmt: skip
        spent = spent_versions(dm.status, [standing])
        assert spent == frozenset({3})
        assert not decide(dm, spent=spent, version=3).create
        assert decide(dm, spent=spent, version=4).create  # a new version gets its own
    for retry in ([tj("drift-retrain-a", phase="Failed")],
                  [tj("drift-retrain-a", phase="Succeeded", qualified=False)], []):  # fmt: skip
        spent = spent_versions(dm.status, retry)
        assert decide(dm, spent=spent, version=3).create, retry


def test_a_drop_inside_the_cooldown_is_suppressed_and_recorded_as_performance() -> None:
    dm = monitor(degraded(retrainings=[performance_record("drift-retrain-a", 2, minutes_ago=5)]))
    decision = decide(dm, version=3)
    assert decision.suppressed
    assert decision.trigger == "performance"
    assert decision.reason.startswith("cooldown: drift-retrain-a started")
    status = apply_decision(dm.status, decision, "unused", NOW)
    assert status.suppressed[-1].trigger == "performance"
    assert status.suppressed[-1].reason.endswith(f"; report {REPORT}")


def scheduled(status: dict[str, Any] | None = None, **retrain: Any) -> DriftMonitor:
    return drift_monitor(status or {}, **dm_spec(triggers={"schedule": SUNDAYS}, **retrain))


def test_no_tick_is_due_before_the_first_one_after_creation() -> None:
    dm = scheduled()
    before = datetime(2026, 3, 1, 2, 59, 59, tzinfo=UTC)
    assert due_tick(dm.spec, dm.status, CREATED, before) is None
    assert due_tick(dm.spec, dm.status, CREATED, NOW) == datetime(2026, 3, 1, 3, tzinfo=UTC)
    unscheduled = drift_monitor({})
    assert due_tick(unscheduled.spec, unscheduled.status, CREATED, NOW) is None


def test_a_tick_acted_on_is_not_due_again_and_missed_ticks_fire_once_late() -> None:
    tick = datetime(2026, 3, 1, 3, tzinfo=UTC)
    dm = scheduled({"lastScheduleTick": tick.isoformat()})
    assert due_tick(dm.spec, dm.status, CREATED, NOW) is None
    three_weeks_later = NOW + timedelta(days=21)
    latest = datetime(2026, 3, 22, 3, tzinfo=UTC)
    assert due_tick(dm.spec, dm.status, CREATED, three_weeks_later) == latest


def test_previous_tick_counts_a_tick_exactly_now() -> None:
    tick = datetime(2026, 3, 1, 3, tzinfo=UTC)
    assert previous_tick(SUNDAYS, tick) == tick
    assert previous_tick("*/15 * * * *", tick + timedelta(minutes=14)) == tick


def test_a_scheduled_tick_retrains_through_the_brakes() -> None:
    tick = datetime(2026, 3, 1, 3, tzinfo=UTC)
    decision = decide_schedule(scheduled().spec, scheduled().status, [], tick, NOW)
    assert (decision.create, decision.trigger) == (True, "schedule")
    assert decision.reason == f"schedule '{SUNDAYS}': tick 2026-03-01T03:00:00+00:00"
    assert (decision.evidence.schedule, decision.evidence.tick) == (SUNDAYS, tick)
    busy = decide_schedule(scheduled().spec, scheduled().status, ["drift-retrain-a"], tick, NOW)
    assert busy.suppressed
    assert busy.reason.startswith("budget: 1 of 1 running")
    off = scheduled(enabled=False)
    assert decide_schedule(off.spec, off.status, [], tick, NOW).suppressed


def test_a_second_scheduled_tick_inside_the_cooldown_is_suppressed_and_recorded() -> None:
    first = datetime(2026, 3, 1, 3, tzinfo=UTC)
    hourly = drift_monitor({}, **dm_spec(triggers={"schedule": "@hourly"}, cooldownSeconds=7200))
    created = decide_schedule(hourly.spec, hourly.status, [], first, first)
    status = apply_decision(hourly.status, created, schedule_name("drift", first), first)
    assert status.retrainings[-1].report is None
    second = first + timedelta(hours=1)
    decision = decide_schedule(hourly.spec, status, [], second, second)
    assert decision.suppressed
    assert decision.reason.startswith("cooldown: drift-retrain-cron-20260301t030000z started")
    status = apply_decision(status, decision, "unused", second)
    assert status.suppressed[-1].trigger == "schedule"
    assert "report" not in status.suppressed[-1].reason


def test_a_scheduled_training_job_is_named_after_its_tick_and_says_why() -> None:
    tick = datetime(2026, 3, 1, 3, tzinfo=UTC)
    dm = scheduled()
    name = schedule_name("drift", tick)
    assert name == "drift-retrain-cron-20260301t030000z"
    decision = decide_schedule(dm.spec, dm.status, [], tick, NOW)
    annotations = desired_training_job(dm, name, decision, None)["metadata"]["annotations"]
    assert annotations["continuum.dev/trigger"] == "schedule"
    evidence = json.loads(annotations["continuum.dev/evidence"])
    assert evidence == {"schedule": SUNDAYS, "tick": "2026-03-01T03:00:00Z"}
    assert "continuum.dev/report" not in annotations


@pytest.mark.parametrize(
    ("retrain", "performance", "message"),
    [
        ({"triggers": {"schedule": "0 3 * *"}}, None, "five fields"),
        ({"triggers": {"schedule": "0 3 * * * *"}}, None, "five fields"),
        ({"triggers": {"schedule": "61 * * * *"}}, None, "not '61 * * * *'"),
        ({"triggers": {"performance": "realised"}}, None, "needs spec.performance"),
        ({"triggers": {"performance": "either"}}, {}, "needs spec.performance.estimate: true"),
    ],
)
def test_bad_triggers_are_refused_naming_the_field(
    retrain: dict[str, Any], performance: dict[str, Any] | None, message: str
) -> None:
    spec: dict[str, Any] = {"deployment": "iris", "retrain": retrain}
    if performance is not None:
        spec["performance"] = performance
    with pytest.raises(ValidationError, match=re.escape(message)):
        DriftMonitorSpec.model_validate(spec)


def test_cron_nicknames_and_names_are_accepted() -> None:
    for schedule in ("@daily", "@weekly", "0 3 * * sun", "*/15 8-18 * jan-jun 1-5"):
        spec = {"deployment": "iris", "retrain": {"triggers": {"schedule": schedule}}}
        assert DriftMonitorSpec.model_validate(spec).retrain.triggers.schedule == schedule
