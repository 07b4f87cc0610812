"""Prometheus metrics of TrainingJobs.

Counters and histograms are bumped on transitions only (once per TrainingJob outcome); the
phase gauge is recomputed from what the TrainingJob watch last saw of each object.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from continuum.api import TrainingJobStatus
from continuum.controllers.shared.metrics import REGISTRY

PHASES = ("Pending", "Running", "Succeeded", "Failed")

TRAININGJOBS = Gauge(
    "continuum_trainingjobs",
    "TrainingJobs the operator sees, by phase.",
    ["phase"],
    registry=REGISTRY,
)
MANIFEST_READS = Counter(
    "continuum_manifest_reads_total",
    "Reads of finished runs' manifests from S3, by outcome (read, unreadable, invalid).",
    ["outcome"],
    registry=REGISTRY,
)
JOBS_CREATED = Counter(
    "continuum_training_jobs_created_total",
    "batch Jobs created for TrainingJobs.",
    registry=REGISTRY,
)
RUNS = Counter(
    "continuum_training_runs_total",
    "Finished training runs, by outcome (Succeeded or Failed) and qualification.",
    ["outcome", "qualified"],
    registry=REGISTRY,
)
DURATION = Histogram(
    "continuum_training_duration_seconds",
    "Wall time of a training Job, from start to completion, by outcome.",
    ["outcome"],
    buckets=(5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400),
    registry=REGISTRY,
)
MODEL_METRIC = Gauge(
    "continuum_model_metric",
    "Held-out score of a trained model version, by model, version and metric.",
    ["model", "version", "metric"],
    registry=REGISTRY,
)

for _phase in PHASES:
    TRAININGJOBS.labels(phase=_phase).set(0)
# Exported at 0 from the start: a counter that first appears at 1 shows no increase() in
# Prometheus, so the first failed run would not fire ContinuumTrainingRunsFailing (chart alerts).
for _outcome in ("Succeeded", "Failed"):
    for _qualified in ("true", "false"):
        RUNS.labels(outcome=_outcome, qualified=_qualified)

_phases: dict[tuple[str, str], str] = {}


def observe_phase(namespace: str, name: str, phase: str | None) -> None:
    """Record the last phase seen of one TrainingJob (None: it is gone).

    Only the two affected gauge values move: recounting every object on every event would cost
    O(objects) per event, O(objects^2) for a burst.
    """
    key = (namespace, name)
    before = _phases.pop(key, None) if phase is None else _phases.get(key)
    if phase is not None:
        _phases[key] = phase
    if before == phase:
        return
    if before is not None:
        TRAININGJOBS.labels(phase=before).dec()
    if phase is not None:
        TRAININGJOBS.labels(phase=phase).inc()


def record_outcome(model: str, status: TrainingJobStatus) -> None:
    """Count a finished run and export its duration and scores."""
    outcome = status.phase or "Unknown"
    RUNS.labels(outcome=outcome, qualified=str(bool(status.qualified)).lower()).inc()
    if status.start_time is not None and status.completion_time is not None:
        seconds = (status.completion_time - status.start_time).total_seconds()
        DURATION.labels(outcome=outcome).observe(max(seconds, 0.0))
    version = status.model.version if status.model is not None else None
    if version is not None:
        for metric, value in status.metrics.items():
            MODEL_METRIC.labels(model=model, version=str(version), metric=metric).set(value)
