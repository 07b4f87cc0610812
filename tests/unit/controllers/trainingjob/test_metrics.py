"""Metrics: phases counted per object, outcomes exported once per run."""

from __future__ import annotations

from datetime import UTC, datetime

from continuum.api import TrainingJobStatus, load
from continuum.controllers.trainingjob import metrics


def sample(name: str, labels: dict[str, str]) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels)


def phase_count(phase: str) -> float:
    return sample("continuum_trainingjobs", {"phase": phase}) or 0.0


def test_phase_gauge_follows_objects() -> None:
    running, succeeded = phase_count("Running"), phase_count("Succeeded")
    metrics.observe_phase("gauge", "a", "Running")
    metrics.observe_phase("gauge", "b", "Running")
    assert phase_count("Running") == running + 2
    metrics.observe_phase("gauge", "a", "Succeeded")
    metrics.observe_phase("gauge", "b", None)
    assert phase_count("Running") == running
    assert phase_count("Succeeded") == succeeded + 1
    metrics.observe_phase("gauge", "a", None)
    assert phase_count("Succeeded") == succeeded


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
