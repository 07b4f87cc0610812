"""The manifest: everything needed to know what a model version is and how it was made."""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import skops  # type: ignore[import-untyped]

from continuum.api import TrainingJobSpec
from continuum.storage import layout
from continuum.trainer.config import TrainingConfig
from continuum.trainer.evaluation import ChampionComparison, GateDecision
from continuum.trainer.pipeline import effective_params, resolved_encoding
from continuum.trainer.validation import Feature

MANIFEST_SCHEMA_VERSION = 1


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "skops": skops.__version__,
    }


@dataclass(frozen=True)
class DatasetSummary:
    uri: str
    fingerprint: str
    rows: int
    objects: int
    mode: str = "memory"  # memory | stream
    # Streamed: how the estimator saw the training rows (partial_fit over all, or a sample).
    training: Mapping[str, Any] | None = None
    # spec.dataset.feedback: the snapshot trained on and where its rows came from
    # (continuum.trainer.snapshot: uri, window, counts, base URI and fingerprint).
    snapshot: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        fields = {"uri": self.uri, "fingerprint": self.fingerprint, "rows": self.rows,
                  "mode": self.mode}  # fmt: skip
        if self.training is not None and "sampledRows" in self.training:
            fields["sampledRows"] = self.training["sampledRows"]
        if self.snapshot is not None:
            fields |= {"snapshot": self.snapshot["uri"],
                       "feedbackRows": self.snapshot["feedbackRows"],
                       "baseRows": self.snapshot["baseRows"]}  # fmt: skip
        return fields


@dataclass(frozen=True)
class TrainingOutcome:
    """What training produced, before it is written anywhere."""

    task: str
    metrics: Mapping[str, float]
    champion: ChampionComparison | None
    gate: GateDecision
    schema: Sequence[Feature]
    sha256: str
    train_rows: int
    test_rows: int
    fitted: Mapping[str, Any] = field(default_factory=dict)
    warnings: Sequence[str] = ()  # about the data, not fatal (validation.identifier_warnings)
    search: Mapping[str, Any] | None = None  # the search's plan and winner (run.search_summary)
    # classifiers: the holdout's probability calibration (baseline/calibration.json, issue 16)
    calibration: Mapping[str, Any] | None = None


def build_manifest(
    config: TrainingConfig,
    *,
    version: int,
    bucket: str,
    dataset: DatasetSummary,
    outcome: TrainingOutcome,
    created: datetime,
    image: str | None,
) -> dict[str, Any]:
    """The manifest dict (JSON-ready). Pure: the caller supplies version, time and image."""
    spec = config.spec
    return {
        "schemaVersion": MANIFEST_SCHEMA_VERSION,
        "model": spec.model,
        "version": version,
        "uri": layout.model_uri(bucket, spec.model, version),
        "modelFile": layout.MODEL_FILE,
        "format": "skops",
        "sha256": outcome.sha256,
        "createdAt": created.isoformat(timespec="seconds"),
        "trainingJob": config.training_job,
        "image": image,
        "dataset": dataset.to_json() | {"objects": dataset.objects},
        **({"training": dict(dataset.training)} if dataset.training is not None else {}),
        **({"snapshot": dict(dataset.snapshot)} if dataset.snapshot is not None else {}),
        **({"search": dict(outcome.search)} if outcome.search is not None else {}),
        "task": outcome.task,
        "estimator": {
            "class": spec.estimator.class_,
            "params": dict(spec.estimator.params),
            "effectiveParams": effective_params(spec.estimator, spec.split.seed),
            "fitted": dict(outcome.fitted),
        },
        "preprocessing": _preprocessing(spec),
        "split": _split(spec, outcome, streamed=dataset.mode == "stream"),
        "evaluation": _evaluation(spec, outcome),
        "metrics": dict(outcome.metrics),
        "qualified": outcome.gate.qualified,
        "features": [feature.to_json() for feature in outcome.schema],
        "warnings": list(outcome.warnings),
        "target": spec.dataset.target,
        "baseline": {"reference": layout.REFERENCE_FILE, "stats": layout.STATS_FILE},
        "libraries": library_versions(),
    }


def _preprocessing(spec: TrainingJobSpec) -> dict[str, Any]:
    numeric, categorical = spec.preprocessing.numeric, spec.preprocessing.categorical
    return {
        "numeric": {"impute": numeric.impute, "scale": numeric.scale},
        "categorical": {
            "columns": list(categorical.columns),
            "impute": categorical.impute,
            "encode": resolved_encoding(spec.estimator, categorical),
        },
    }


def _split(spec: TrainingJobSpec, outcome: TrainingOutcome, *, streamed: bool) -> dict[str, Any]:
    split = {
        "testSize": spec.split.test_size,
        "seed": spec.split.seed,
        "stratify": spec.split.stratify and outcome.task == "classification" and not streamed,
        "trainRows": outcome.train_rows,
        "testRows": outcome.test_rows,
    }
    # Streamed: a row is held out by a hash of (seed, its index in the dataset).
    return split | {"method": "hash"} if streamed else split


def _evaluation(spec: TrainingJobSpec, outcome: TrainingOutcome) -> dict[str, Any]:
    champion = outcome.champion
    return {
        "metric": spec.evaluation.metric,
        "value": outcome.metrics[spec.evaluation.metric],
        "threshold": spec.evaluation.threshold,
        "mustBeat": spec.evaluation.must_beat,
        "champion": champion.to_json() if champion is not None else None,
        "reasons": list(outcome.gate.reasons),
    }
