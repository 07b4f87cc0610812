"""DriftMonitor status from a finished check: verdicts, counting, conditions, Events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from continuum.controllers.driftmonitor.verdicts import (
    MAX_FEATURES,
    CheckResult,
    check_events,
    check_result,
    consecutive,
    job_outcome,
    status_after_check,
    status_waiting,
)
from continuum.controllers.shared.objects import merge_patch
from continuum.controllers.shared.pods import parse_summary
from tests.kit.fake_kube import apply_merge_patch
from tests.unit.controllers.driftmonitor.builders import (
    NOW,
    check_job,
    drift_monitor,
    message,
    summary,
)

DONE = datetime(2026, 3, 1, 12, 0, 20, tzinfo=UTC)


def result(verdict: str = "Drift") -> CheckResult:
    return check_result("drift-check-1", DONE, True, "", summary(verdict))


def conds(dm_status: object) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in dm_status.conditions}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("before", "verdict", "after"),
    [(None, "Drift", 1), (1, "Drift", 2), (3, "NoDrift", 0), (2, "InsufficientData", 2),
     (2, "Failed", 2), (None, "InsufficientData", 0)],
)  # fmt: skip
def test_consecutive_drifts(before: int | None, verdict: str, after: int) -> None:
    assert consecutive(before, verdict) == after  # type: ignore[arg-type]


def test_flapping_drift_never_accumulates() -> None:
    count = None
    for verdict in ["Drift", "NoDrift"] * 10:
        count = consecutive(count, verdict)  # type: ignore[arg-type]
        assert count <= 1


def test_drift_sets_status_and_conditions() -> None:
    dm = drift_monitor({"consecutiveDrifts": 1})
    status = status_after_check(dm, result("Drift"))
    assert status.last_check_time == DONE
    assert status.check_job_name == "drift-check-1"
    assert status.consecutive_drifts == 2
    assert status.report_uri == "s3://continuum/reports/drift/20260301T120000Z/"
    assert status.drift is not None
    assert status.drift.dataset_drift is True
    assert status.drift.share == 0.75
    assert [f.name for f in status.drift.features] == ["petal", "colour"]
    assert status.observed_generation == 1
    assert conds(status) == {
        "DriftDetected": ("True", "DatasetDrift"),
        "DataQualityFailed": ("Unknown", "QualityNotChecked"),  # a summary without quality
        "Ready": ("True", "Checked"),
        "Reconciling": ("False", "Checked"),
        "Stalled": ("False", "Checked"),
    }


def test_no_drift_and_insufficient_data() -> None:
    dm = drift_monitor({"consecutiveDrifts": 1})
    none = status_after_check(dm, result("NoDrift"))
    assert none.consecutive_drifts == 0
    assert conds(none)["DriftDetected"] == ("False", "NoDrift")
    thin = status_after_check(dm, result("InsufficientData"))
    assert thin.consecutive_drifts == 1
    assert conds(thin)["DriftDetected"] == ("Unknown", "InsufficientData")
    assert conds(thin)["Ready"] == ("True", "Checked")
    assert thin.drift is not None
    assert thin.drift.dataset_drift is None


def test_failed_check_keeps_the_last_result_and_stalls() -> None:
    before = status_after_check(drift_monitor(), result("Drift"))
    dm = drift_monitor(before.model_dump(mode="json", by_alias=True, exclude_none=True))
    failure = {"status": "Failed", "reason": "ConfigError", "message": "no reference sample"}
    failed = check_result("drift-check-2", NOW, False, "BackoffLimitExceeded", failure)
    status = status_after_check(dm, failed)
    assert failed.verdict == "Failed"
    assert status.report_uri == before.report_uri
    assert status.consecutive_drifts == 1
    assert conds(status)["Stalled"] == ("True", "CheckFailed")
    assert conds(status)["Ready"] == ("False", "CheckFailed")
    assert "no reference sample" in status.conditions[0].message
    assert check_events(failed, 1, 2)[0].type == "Warning"


def test_job_without_summary_is_a_failed_check() -> None:
    missing = check_result("drift-check-1", DONE, True, "", None)
    assert missing.verdict == "Failed"
    assert "without a summary" in missing.message
    crashed = check_result("drift-check-1", DONE, False, "DeadlineExceeded", None)
    assert "DeadlineExceeded" in crashed.message
    odd = check_result("drift-check-1", DONE, True, "", {"status": "Succeeded", "verdict": "?"})
    assert odd.verdict == "Failed"


def test_features_are_bounded() -> None:
    many = summary("Drift")
    many["features"] = [dict(many["features"][0], name=f"f{i}") for i in range(60)]
    status = status_after_check(drift_monitor(), check_result("j", DONE, True, "", many))
    assert status.drift is not None
    assert len(status.drift.features) == MAX_FEATURES


def test_events_per_verdict() -> None:
    assert [(e.type, e.reason) for e in check_events(result("Drift"), 1, 2)] == [
        ("Warning", "DriftDetected")
    ]
    assert "1/2 checks" in check_events(result("Drift"), 1, 2)[0].message
    assert check_events(result("NoDrift"), 0, 2)[0].reason == "NoDrift"
    assert check_events(result("InsufficientData"), 0, 2)[0].type == "Normal"


def test_waiting_conditions_only_before_the_first_result() -> None:
    dm = drift_monitor()
    waiting = status_waiting(dm, "WaitingForDeployment", "no version", now=NOW)
    assert conds(waiting)["Ready"] == ("False", "WaitingForDeployment")
    assert conds(waiting)["Reconciling"] == ("True", "WaitingForDeployment")
    checked = status_after_check(dm, result("NoDrift"))
    later = drift_monitor(checked.model_dump(mode="json", by_alias=True, exclude_none=True))
    running = status_waiting(later, "CheckRunning", "running", now=NOW, job_name="drift-check-9")
    assert running.check_job_name == "drift-check-9"
    assert conds(running)["Ready"] == ("True", "Checked")


def test_parse_summary_and_job_outcome() -> None:
    assert parse_summary(message(summary())) == summary()
    assert parse_summary("not json") is None
    assert parse_summary('["status"]') is None
    assert parse_summary(None) is None
    assert job_outcome(check_job(outcome=None)) is None
    assert job_outcome(check_job()) == ("Complete", "", "2026-03-01T12:00:20Z")
    assert job_outcome(check_job(outcome="Failed"))[0] == "Failed"  # type: ignore[index]


def test_a_check_too_thin_to_decide_leaves_nothing_of_the_last_verdict_in_status() -> None:
    # issue 14 defect 6: after a Drift check, an InsufficientData one kept datasetDrift: true
    # and share: 0.75 in status.drift. The status written is a merge patch from the one read.
    before = status_after_check(drift_monitor(), result("Drift"))
    old = before.model_dump(mode="json", by_alias=True, exclude_none=True)
    thin = {"status": "Succeeded", "verdict": "InsufficientData", "datasetDrift": None,
            "share": None, "reportURI": "s3://continuum/reports/drift/20260301T130000Z/",
            "rows": 10, "featuresTotal": 0, "features": [], "featuresTruncated": False}  # fmt: skip
    after = status_after_check(
        drift_monitor(old), check_result("drift-check-2", NOW, True, "", thin)
    )
    new = after.model_dump(mode="json", by_alias=True, exclude_none=True)
    written = apply_merge_patch(old, merge_patch(old, new))
    assert written["drift"].get("datasetDrift") is None
    assert written["drift"].get("share") is None
    assert written["drift"].get("features", []) == []
    assert conds(after)["DriftDetected"] == ("Unknown", "InsufficientData")


def test_an_underflowed_p_value_reaches_status_as_a_flagged_bound() -> None:
    flagged = summary("Drift")
    flagged["features"][0] |= {"pValue": 2 * 2.2250738585072014e-308, "pValueUnderflow": True}
    status = status_after_check(drift_monitor(), check_result("c", DONE, True, "", flagged))
    petal = status.drift.features[0]
    assert petal.p_value == 2 * 2.2250738585072014e-308
    assert petal.p_value_underflow is True
    assert status.drift.features[1].p_value_underflow is None
