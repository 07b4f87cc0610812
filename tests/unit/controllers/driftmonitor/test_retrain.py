"""Retraining brakes: threshold, disabled, cooldown, budget, de-duplication, bounded records."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from continuum.api import DriftMonitor
from continuum.controllers.driftmonitor.retrain import (
    MAX_RECORDS,
    Decision,
    active_retrainings,
    apply_decision,
    decide_retrain,
    desired_training_job,
    no_source,
    retrain_name,
    served_training_spec,
)
from tests.unit.controllers.driftmonitor.builders import (
    DM_UID,
    NOW,
    REPORT,
    dm_spec,
    drift_monitor,
)
from tests.unit.controllers.modeldeployment.builders import tj_body


def drifted(
    count: int = 2, retrainings: list[dict[str, Any]] | None = None, **spec: Any
) -> DriftMonitor:
    status = {"consecutiveDrifts": count, "reportURI": REPORT, "drift": {"share": 0.75},
              "retrainings": retrainings or []}  # fmt: skip
    return drift_monitor(status, **spec)


def record(minutes_ago: int, report: str = "s3://continuum/reports/drift/old/") -> dict[str, Any]:
    time = (NOW - timedelta(minutes=minutes_ago)).isoformat()
    return {"trainingJob": "drift-retrain-old", "time": time, "reason": "x", "report": report}


def decide(dm: DriftMonitor, active: list[str] | None = None, candidate: str | None = None) -> Any:
    return decide_retrain(dm.spec, dm.status, active or [], NOW, candidate=candidate)


def test_creates_when_drift_held_for_consecutive_checks() -> None:
    decision = decide(drifted(2))
    assert decision.create
    assert not decision.suppressed
    assert "2 consecutive checks" in decision.reason
    assert "75%" in decision.reason


def test_below_the_threshold_nothing_happens() -> None:
    decision = decide(drifted(1))
    assert not decision.create
    assert not decision.suppressed


def test_monitor_only_without_retrain() -> None:
    dm = drifted(5, retrain=None)
    assert decide(dm) == decide(drifted(0))


def test_disabled_is_suppressed() -> None:
    dm = drifted(2, retrain={"enabled": False})
    decision = decide(dm)
    assert decision.suppressed
    assert decision.reason.startswith("disabled")


def test_cooldown_holds_then_lets_go() -> None:
    assert decide(drifted(2, [record(minutes_ago=5)])).reason.startswith("cooldown")
    assert decide(drifted(2, [record(minutes_ago=11)])).create  # cooldown is 600 s


def test_budget_counts_unfinished_retrainings_except_this_reports_own() -> None:
    assert decide(drifted(2), active=["drift-retrain-a"]).reason.startswith("budget: 1 of 1")
    assert decide(drifted(2), active=["drift-retrain-a"], candidate="drift-retrain-a").create


def test_same_report_never_triggers_twice() -> None:
    decision = decide(drifted(2, [record(minutes_ago=60, report=REPORT)]))
    assert not decision.create
    assert not decision.suppressed


def test_a_created_trigger_resets_the_count_and_is_recorded() -> None:
    dm = drifted(2)
    status = apply_decision(dm.status, decide(dm), "drift-retrain-x", NOW)
    assert status.consecutive_drifts == 0
    [made] = status.retrainings
    assert (made.training_job, made.report, made.time) == ("drift-retrain-x", REPORT, NOW)
    # the same report, seen again (e.g. after a restart), does not trigger again
    again = drift_monitor(status.model_dump(mode="json", by_alias=True, exclude_none=True)
                          | {"consecutiveDrifts": 3})  # fmt: skip
    assert not decide(again).create


def test_suppressed_trigger_keeps_the_count() -> None:
    dm = drifted(2, [record(minutes_ago=1)])
    status = apply_decision(dm.status, decide(dm), "n", NOW)
    assert status.consecutive_drifts == 2
    assert status.suppressed[0].reason.startswith("cooldown")
    assert REPORT in status.suppressed[0].reason


def test_records_are_bounded_newest_last() -> None:
    dm = drifted(2, retrain={"enabled": False})
    status = dm.status
    for _ in range(MAX_RECORDS + 5):
        status = apply_decision(status, decide(dm), "n", NOW)
    assert len(status.suppressed) == MAX_RECORDS
    many = [record(minutes_ago=100 + i, report=f"s3://b/r/{i}/") for i in range(MAX_RECORDS)]
    dm = drifted(2, many)
    status = apply_decision(dm.status, decide(dm), "drift-retrain-new", NOW)
    assert len(status.retrainings) == MAX_RECORDS
    assert status.retrainings[-1].training_job == "drift-retrain-new"


def test_name_derives_from_the_report() -> None:
    assert retrain_name("drift", REPORT, NOW) == "drift-retrain-20260301t120000z"
    assert retrain_name("drift", None, NOW) == "drift-retrain-20260301t120030z"
    assert len(retrain_name("m" * 63, REPORT, NOW)) <= 63


DRIFT = Decision(True, "dataset drift")


def test_training_job_from_the_template() -> None:
    dm = drifted(2)
    tj = desired_training_job(dm, "drift-retrain-x", DRIFT, REPORT)
    assert tj["kind"] == "TrainingJob"
    assert tj["spec"]["model"] == "iris"
    assert tj["spec"]["dataset"]["uri"] == "s3://data/iris.csv"
    meta = tj["metadata"]
    assert meta["labels"]["continuum.dev/drift-monitor"] == "drift"
    assert meta["annotations"] == {"continuum.dev/report": REPORT,
                                   "continuum.dev/reason": "dataset drift",
                                   "continuum.dev/trigger": "drift"}  # fmt: skip
    assert meta["ownerReferences"][0]["kind"] == "DriftMonitor"
    assert meta["ownerReferences"][0]["uid"] == DM_UID


def test_active_retrainings_are_this_monitors_unfinished_ones() -> None:
    def tj(name: str, phase: str | None, uid: str = DM_UID) -> dict[str, Any]:
        refs = [{"kind": "DriftMonitor", "uid": uid}]
        return {"metadata": {"name": name, "ownerReferences": refs},
                "status": {"phase": phase} if phase else {}}  # fmt: skip

    items = [tj("a", None), tj("b", "Running"), tj("c", "Succeeded"), tj("d", "Failed"),
             tj("e", "Running", uid="other"), {"metadata": {"name": "f"}}]  # fmt: skip
    assert active_retrainings(items, DM_UID) == ["a", "b"]


def without_template() -> DriftMonitor:
    spec = dm_spec()
    del spec["retrain"]["template"]
    return drifted(retrain=spec["retrain"])


def test_without_a_template_the_served_versions_training_spec_is_copied() -> None:
    produced = tj_body(3)
    produced["spec"]["dataset"]["uri"] = "s3://continuum/datasets/iris/"
    jobs = [tj_body(1), produced, tj_body(3, model="other")]
    source = served_training_spec(jobs, "iris", 3)
    assert source == produced["spec"]
    assert source is not produced["spec"]  # a copy: the listed object is left alone
    tj = desired_training_job(without_template(), "drift-retrain-x", DRIFT, REPORT, source)
    assert tj["spec"] == produced["spec"]
    assert tj["metadata"]["labels"]["continuum.dev/model"] == "iris"
    assert tj["metadata"]["ownerReferences"][0]["uid"] == DM_UID


def test_without_a_template_or_its_training_job_the_trigger_is_suppressed_saying_why() -> None:
    assert served_training_spec([tj_body(1), tj_body(2, phase="Failed")], "iris", 2) is None
    decision = no_source("iris", 2, DRIFT)
    assert decision.suppressed
    assert not decision.create
    assert "served version iris/2" in decision.reason
    assert "set spec.retrain.template" in decision.reason
    with pytest.raises(ValueError, match=r"no retrain\.template and no source spec"):
        desired_training_job(without_template(), "x", DRIFT, REPORT)


def test_a_template_wins_over_the_served_versions_spec() -> None:
    dm = drifted()
    tj = desired_training_job(dm, "x", DRIFT, REPORT, {"model": "other"})
    assert tj["spec"]["model"] == dm.spec.retrain.template.model
