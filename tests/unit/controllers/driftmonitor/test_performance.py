"""DriftMonitor live performance from a finished check: counting, PerformanceDegraded, Events,
gauges (issue 16)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from continuum.api.vocabulary import PERFORMANCE_DEGRADED
from continuum.controllers.driftmonitor import metrics
from continuum.controllers.driftmonitor.verdicts import (
    CheckResult,
    check_result,
    performance_degraded,
    performance_events,
    status_after_check,
)
from continuum.controllers.shared.metrics import REGISTRY
from tests.unit.controllers.driftmonitor.builders import drift_monitor, summary

DONE = datetime(2026, 3, 1, 12, 0, 20, tzinfo=UTC)
PERFORMANCE = {"consecutiveChecks": 2, "maxDrop": 0.05, "estimate": True}


def checked(verdict: str, basis: str | None = "realised", at: int = 0, **extra: Any) -> CheckResult:
    """A NoDrift check whose summary has a performance verdict."""
    found = summary("NoDrift")
    low, value, high = {"Degraded": (0.70, 0.72, 0.74), "Held": (0.86, 0.88, 0.90)}.get(
        verdict, (None, None, None)
    )
    interval = {"value": value, "lower": low, "upper": high, "rows": 900} if value else None
    found["performance"] = {
        "metric": "accuracy", "verdict": verdict, "basis": basis, "holdout": 0.9,
        "maxDrop": 0.05, "reason": f"{verdict} because", "realised": interval,
        "estimated": {"value": 0.89, "lower": 0.87, "upper": 0.91, "rows": 1200}, **extra,
    }  # fmt: skip
    return check_result("drift-check-1", DONE + timedelta(minutes=at), True, "", found)


def degraded_condition(status: Any) -> tuple[str, str, str]:
    found = next(c for c in status.conditions if c.type == PERFORMANCE_DEGRADED)
    return found.status, found.reason, found.message


def run(verdicts: list[str]) -> list[Any]:
    """The statuses after each check in turn, each folded into the last."""
    dm = drift_monitor(performance=PERFORMANCE)
    statuses = []
    for at, verdict in enumerate(verdicts):
        status = status_after_check(dm, checked(verdict, at=at))
        statuses.append(status)
        dm = dm.model_copy(update={"status": status})
    return statuses


def test_degraded_after_consecutive_checks_only() -> None:
    first, second = run(["Degraded", "Degraded"])
    assert first.performance.consecutive_degraded == 1
    assert degraded_condition(first)[:2] == ("False", "PerformanceDropUnconfirmed")
    assert second.performance.consecutive_degraded == 2
    state, reason, message = degraded_condition(second)
    assert (state, reason) == ("True", "PerformanceDrop")
    assert message == (
        "realised accuracy 0.72 [0.7, 0.74] over 900 predictions, holdout 0.9; "
        "2/2 degraded checks in a row"
    )
    assert performance_degraded(second)
    assert second.performance.realised.value == 0.72
    assert second.performance.estimated.rows == 1200


@pytest.mark.parametrize(
    ("verdicts", "count", "state"),
    [
        (["Degraded", "Held", "Degraded"], 1, ("False", "PerformanceDropUnconfirmed")),
        (["Degraded", "Degraded", "Held"], 0, ("False", "PerformanceHeld")),
        # a check without enough labels neither confirms nor clears a drop
        (["Degraded", "Degraded", "InsufficientData"], 2, ("True", "PerformanceDrop")),
        (["Degraded", "InsufficientData", "Degraded"], 2, ("True", "PerformanceDrop")),
        (["InsufficientData"], 0, ("Unknown", "InsufficientLabels")),
    ],
)
def test_counting_like_drift(verdicts: list[str], count: int, state: tuple[str, str]) -> None:
    last = run(verdicts)[-1]
    assert last.performance.consecutive_degraded == count
    assert degraded_condition(last)[:2] == state


def test_flapping_never_reaches_the_condition() -> None:
    for status in run(["Degraded", "Held"] * 6):
        assert degraded_condition(status)[0] != "True"


def test_the_monitors_reason_reaches_the_condition() -> None:
    dm = drift_monitor(performance=PERFORMANCE)
    found = checked("InsufficientData", basis=None, reason="performance.metric rmse does not fit")
    status = status_after_check(dm, found)
    assert degraded_condition(status) == (
        "Unknown", "InsufficientLabels",
        "accuracy: performance.metric rmse does not fit; 0/2 degraded checks in a row",
    )  # fmt: skip


def test_failed_check_and_no_spec_leave_performance_alone() -> None:
    dm = drift_monitor(performance=PERFORMANCE)
    status = status_after_check(dm, checked("Degraded"))
    dm = dm.model_copy(update={"status": status})
    failed = check_result("drift-check-2", DONE + timedelta(minutes=5), False, "OOMKilled", None)
    after = status_after_check(dm, failed)
    assert after.performance == status.performance
    assert degraded_condition(after)[:2] == ("False", "PerformanceDropUnconfirmed")
    plain = status_after_check(drift_monitor(), checked("Degraded"))
    assert plain.performance is None
    assert all(c.type != PERFORMANCE_DEGRADED for c in plain.conditions)


def test_every_degraded_check_posts_a_warning() -> None:
    dm = drift_monitor(performance=PERFORMANCE)
    found = checked("Degraded")
    status = status_after_check(dm, found)
    (event,) = performance_events(dm, found, status)
    assert (event.type, event.reason) == ("Warning", "PerformanceDegraded")
    assert "1/2 degraded checks in a row; report s3://" in event.message
    held = checked("Held")
    assert performance_events(dm, held, status_after_check(dm, held)) == []


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"namespace": "ml", "monitor": "drift", **labels})


def test_gauges_by_kind_and_bound() -> None:
    statuses = run(["Degraded", "Degraded"])
    metrics.export_performance("ml", "drift", statuses[-1].performance, True)
    realised = {"metric": "accuracy", "kind": "realised"}
    assert sample("continuum_model_performance", **realised, bound="value") == 0.72
    assert sample("continuum_model_performance", **realised, bound="upper") == 0.74
    estimated = {"metric": "accuracy", "kind": "estimated", "bound": "lower"}
    assert sample("continuum_model_performance", **estimated) == 0.87
    assert sample("continuum_model_performance_holdout", metric="accuracy") == 0.9
    assert sample("continuum_performance_degraded") == 1
    before = sample("continuum_performance_checks_total", verdict="Held") or 0
    insufficient = run(["InsufficientData"])[-1].performance
    metrics.export_performance("ml", "drift", insufficient, False)
    assert sample("continuum_model_performance", **realised, bound="value") is None
    assert sample("continuum_performance_degraded") == 0
    assert (sample("continuum_performance_checks_total", verdict="Held") or 0) == before
    metrics.clear_metrics("ml", "drift")
    assert sample("continuum_model_performance", **estimated) is None
    assert sample("continuum_performance_degraded") is None


def test_status_shows_the_metric_to_four_decimals() -> None:
    """kubectl's Realised column printed 0.6433333333333333; the report keeps every digit."""
    dm = drift_monitor(performance=PERFORMANCE)
    interval = {"value": 0.6433333333333333, "lower": 0.61237, "upper": 2 / 3, "rows": 300}
    result = checked("Degraded", realised=interval)
    status = status_after_check(dm, result)
    assert status.performance is not None
    assert status.performance.realised is not None
    realised = status.performance.realised
    assert (realised.value, realised.lower, realised.upper) == (0.6433, 0.6124, 0.6667)
    assert realised.rows == 300
