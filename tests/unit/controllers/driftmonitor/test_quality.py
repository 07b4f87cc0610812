"""A window's data-quality verdict in the DriftMonitor: status, condition, Event, metrics, and
the retraining it holds back (issue 14)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from continuum.api import dump
from continuum.controllers.driftmonitor import metrics
from continuum.controllers.driftmonitor.retrain import NOTHING, decide_retrain
from continuum.controllers.driftmonitor.verdicts import (
    CheckResult,
    check_events,
    check_result,
    status_after_check,
)
from continuum.controllers.shared.metrics import REGISTRY
from tests.unit.controllers.driftmonitor.builders import NOW, drift_monitor, summary

DONE = datetime(2026, 3, 1, 12, 0, 20, tzinfo=UTC)
LINE = "plan: 15.0% of values unseen in training, 14.6% more than the 0.4% the reference predicts"


def with_quality(verdict: str = "Drift", passed: bool | None = False) -> dict[str, Any]:
    document = summary(verdict)
    failed = passed is False
    document["quality"] = {
        "passed": passed,
        "failures": [LINE, "region: absent from all 400 logged rows (missing column)"]
        if failed
        else [],
        "failuresTotal": 2 if failed else 0,
    }
    document["features"][1]["quality"] = ["unseenCategories"] if failed else []
    document["features"][0]["quality"] = ["missingColumn", "noSuchCheckYet"] if failed else []
    return document


def result(document: dict[str, Any]) -> CheckResult:
    return check_result("drift-check-1", DONE, True, "", document)


def conditions(status: Any) -> dict[str, tuple[str, str, str]]:
    return {c.type: (c.status, c.reason, c.message) for c in status.conditions}


def test_a_failed_window_sets_the_condition_status_and_a_warning_event() -> None:
    dm = drift_monitor({"consecutiveDrifts": 0})
    status = status_after_check(dm, result(with_quality()))
    state, reason, message = conditions(status)["DataQualityFailed"]
    assert (state, reason) == ("True", "QualityChecksFailed")
    assert message.startswith(LINE + "; region: absent from all 400 logged rows")
    assert message.endswith("report s3://continuum/reports/drift/20260301T120000Z/")
    assert status.drift is not None
    assert status.drift.quality is not None
    assert status.drift.quality.passed is False
    assert status.drift.quality.failures[0] == LINE
    by_name = {f.name: f.quality for f in status.drift.features}
    assert by_name == {"petal": ["missingColumn"], "colour": ["unseenCategories"]}
    assert conditions(status)["DriftDetected"][:2] == ("True", "DatasetDrift")  # unchanged
    events = check_events(result(with_quality()), 1, 2)
    assert [(e.type, e.reason) for e in events] == [
        ("Warning", "DriftDetected"),
        ("Warning", "QualityChecksFailed"),
    ]
    # what is written is what the CRD holds (a status document of plain JSON)
    assert dump(status)["drift"]["quality"]["passed"] is False


def test_a_passed_window_and_checks_that_did_not_run() -> None:
    dm = drift_monitor({})
    passed = status_after_check(dm, result(with_quality("NoDrift", passed=True)))
    assert conditions(passed)["DataQualityFailed"][:2] == ("False", "QualityChecksPassed")
    assert [e.reason for e in check_events(result(with_quality("NoDrift", True)), 0, 2)] == [
        "NoDrift"
    ]
    thin = status_after_check(dm, result(with_quality("InsufficientData", passed=None)))
    assert conditions(thin)["DataQualityFailed"] == (
        "Unknown",
        "QualityNotChecked",
        "too few logged rows to check",
    )
    off = status_after_check(dm, result(with_quality("NoDrift", passed=None)))
    assert conditions(off)["DataQualityFailed"][2] == "disabled (spec.quality.enabled: false)"


def test_drift_seen_through_failed_data_does_not_retrain() -> None:
    dm = drift_monitor({"consecutiveDrifts": 1})
    status = status_after_check(dm, result(with_quality()))
    assert status.consecutive_drifts == 2
    decision = decide_retrain(dm.spec, status, [], NOW)
    assert decision.suppressed
    assert not decision.create
    assert decision.reason == (
        "data quality: the window failed missingColumn (quality.holdRetraining): "
        f"{LINE}; not retraining while the pipeline looks broken"
    )
    assert status.drift.quality.checks == ["missingColumn", "unseenCategories"]
    clean = status_after_check(dm, result(with_quality(passed=True)))
    assert decide_retrain(dm.spec, clean, [], NOW).create
    assert decide_retrain(
        dm.spec, status.model_copy(update={"consecutive_drifts": 1}), [], NOW
    ) == (NOTHING)


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_metrics_name_each_failed_feature_and_check_and_forget_them_when_fixed() -> None:
    where = {"namespace": "ns-q", "monitor": "m"}
    metrics.export_metrics("ns-q", "m", result(with_quality()), NOTHING)
    assert sample("continuum_data_quality_failed", **where) == 1
    failed = "continuum_data_quality_feature_failed"
    assert sample(failed, **where, feature="colour", check="unseenCategories") == 1
    assert sample(failed, **where, feature="petal", check="missingColumn") == 1
    metrics.export_metrics("ns-q", "m", result(with_quality(passed=True)), NOTHING)
    assert sample("continuum_data_quality_failed", **where) == 0
    assert sample(failed, **where, feature="colour", check="unseenCategories") is None
    metrics.export_metrics("ns-q", "m", result(with_quality()), NOTHING)
    metrics.clear_metrics("ns-q", "m")
    assert sample("continuum_data_quality_failed", **where) is None
    assert sample(failed, **where, feature="petal", check="missingColumn") is None


def test_shifts_beyond_the_training_range_and_new_categories_still_retrain() -> None:
    # A 6 sd shift puts ~70% of the values out of range: that is drift to retrain on.
    document = with_quality()
    document["features"][0]["quality"] = ["outOfRange"]
    document["quality"]["checks"] = ["outOfRange", "unseenCategories"]
    dm = drift_monitor({"consecutiveDrifts": 1})
    status = status_after_check(dm, result(document))
    assert conditions(status)["DataQualityFailed"][:2] == ("True", "QualityChecksFailed")
    assert decide_retrain(dm.spec, status, [], NOW).create
    strict = drift_monitor({"consecutiveDrifts": 1}, quality={"holdRetraining": ["outOfRange"]})
    held = decide_retrain(strict.spec, status_after_check(strict, result(document)), [], NOW)
    assert held.suppressed
    assert "failed outOfRange (quality.holdRetraining)" in held.reason
    never = drift_monitor({"consecutiveDrifts": 1}, quality={"holdRetraining": []})
    broken = status_after_check(never, result(with_quality()))
    assert decide_retrain(never.spec, broken, [], NOW).create
