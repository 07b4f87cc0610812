"""Metrics: phases counted per object, outcomes exported once per run."""

from __future__ import annotations

from datetime import UTC, datetime

from continuum.api import TrainingJobStatus, load
from continuum.controllers import metrics


def sample(name: str, labels: dict[str, str]) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels)


def test_phase_gauge_follows_objects() -> None:
    metrics.observe_phase("ns", "a", "Running")
    metrics.observe_phase("ns", "b", "Running")
    assert sample("continuum_trainingjobs", {"phase": "Running"}) == 2
    metrics.observe_phase("ns", "a", "Succeeded")
    metrics.observe_phase("ns", "b", None)
    assert sample("continuum_trainingjobs", {"phase": "Running"}) == 0
    assert sample("continuum_trainingjobs", {"phase": "Succeeded"}) == 1
    metrics.observe_phase("ns", "a", None)


def test_outcome_exports_duration_and_scores() -> None:
    status = load(
        TrainingJobStatus,
        {
            "phase": "Succeeded",
            "qualified": True,
            "startTime": "2026-01-01T10:00:00Z",
            "completionTime": "2026-01-01T10:00:30Z",
            "model": {"version": 7},
            "metrics": {"accuracy": 0.93},
        },
    )
    assert status.completion_time == datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC)
    before = sample("continuum_training_runs_total", {"outcome": "Succeeded", "qualified": "true"})
    metrics.record_outcome("iris", status)
    after = sample("continuum_training_runs_total", {"outcome": "Succeeded", "qualified": "true"})
    assert (after or 0) - (before or 0) == 1
    labels = {"model": "iris", "version": "7", "metric": "accuracy"}
    assert sample("continuum_model_metric", labels) == 0.93
    assert (sample("continuum_training_duration_seconds_sum", {"outcome": "Succeeded"}) or 0) >= 30
