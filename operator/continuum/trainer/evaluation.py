"""Metrics on the holdout, and the gate that decides whether a new model qualifies."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import metrics as skm

from continuum.api import LOWER_IS_BETTER, REGRESSION_METRICS
from continuum.trainer.validation import CLASSIFICATION, REGRESSION

# Metric inputs: true labels, predicted labels, class scores (None for regressors), classes.
MetricFn = Callable[[Any, Any, Any, Any], float]


@dataclass(frozen=True)
class Metric:
    name: str
    task: str
    higher_is_better: bool
    compute: MetricFn


def _average(classes: Any) -> str:
    # Binary problems report the positive (second-sorted) class; multiclass a weighted mean.
    return "binary" if len(classes) == 2 else "weighted"


def _f1(y: Any, pred: Any, _score: Any, classes: Any) -> float:
    return float(skm.f1_score(y, pred, average=_average(classes), pos_label=classes[-1]))


def _precision(y: Any, pred: Any, _score: Any, classes: Any) -> float:
    avg = _average(classes)
    return float(skm.precision_score(y, pred, average=avg, pos_label=classes[-1], zero_division=0))


def _recall(y: Any, pred: Any, _score: Any, classes: Any) -> float:
    avg = _average(classes)
    return float(skm.recall_score(y, pred, average=avg, pos_label=classes[-1], zero_division=0))


def _roc_auc(y: Any, _pred: Any, score: Any, classes: Any) -> float:
    if len(classes) == 2:
        return float(skm.roc_auc_score(y == classes[-1], score[:, -1]))
    return float(skm.roc_auc_score(y, score, multi_class="ovr", labels=classes))


def _accuracy(y: Any, pred: Any, _score: Any, _classes: Any) -> float:
    return float(skm.accuracy_score(y, pred))


def _f1_macro(y: Any, pred: Any, _score: Any, _classes: Any) -> float:
    return float(skm.f1_score(y, pred, average="macro"))


def _r2(y: Any, pred: Any, _score: Any, _classes: Any) -> float:
    return float(skm.r2_score(y, pred))


def _rmse(y: Any, pred: Any, _score: Any, _classes: Any) -> float:
    return float(np.sqrt(skm.mean_squared_error(y, pred)))


def _mae(y: Any, pred: Any, _score: Any, _classes: Any) -> float:
    return float(skm.mean_absolute_error(y, pred))


def _metric(name: str, compute: MetricFn) -> Metric:
    """The metric ``name``, with the task and direction the API gives it (continuum.api)."""
    task = REGRESSION if name in REGRESSION_METRICS else CLASSIFICATION
    return Metric(name, task, name not in LOWER_IS_BETTER, compute)


# One function per metric of the API's allow-list (which a spec cannot leave, nor pair with
# the other task's estimators); a unit test keeps the two lists equal.
METRICS: Mapping[str, Metric] = {
    m.name: m
    for m in (
        _metric("accuracy", _accuracy),
        _metric("f1", _f1),
        _metric("f1_macro", _f1_macro),
        _metric("precision", _precision),
        _metric("recall", _recall),
        _metric("roc_auc", _roc_auc),
        _metric("r2", _r2),
        _metric("rmse", _rmse),
        _metric("mae", _mae),
    )
}


def evaluate(pipeline: Any, features: Any, target: Any, task: str) -> dict[str, float]:
    """Every metric of ``task`` for ``pipeline`` on the holdout, keyed by name."""
    y = np.asarray(target)
    predicted = np.asarray(pipeline.predict(features))
    scores = pipeline.predict_proba(features) if task == CLASSIFICATION else None
    classes = np.asarray(getattr(pipeline, "classes_", []))
    return metrics_of(y, predicted, scores, classes, task)


def metrics_of(y: Any, predicted: Any, scores: Any, classes: Any, task: str) -> dict[str, float]:
    """Every metric of ``task`` from true labels, predictions, class scores and classes.

    A streamed evaluation passes class *codes* (positions in one sorted list of labels) for
    labels, predictions and classes: the metrics are the same numbers as on the labels.
    """
    chosen = (m for m in METRICS.values() if m.task == task)
    return {m.name: round_metric(m.compute(y, predicted, scores, classes)) for m in chosen}


def round_metric(value: float) -> float:
    # 12 significant digits: stable in JSON, far below any meaningful difference.
    return float(f"{value:.12g}")


def is_better(metric: str, candidate: float, reference: float) -> bool:
    """Strictly better in the metric's direction (ties do not beat)."""
    higher = METRICS[metric].higher_is_better
    return candidate > reference if higher else candidate < reference


def passes_threshold(metric: str, value: float, threshold: float | None) -> bool:
    if threshold is None:
        return True
    higher = METRICS[metric].higher_is_better
    return value >= threshold if higher else value <= threshold


@dataclass(frozen=True)
class ChampionComparison:
    version: int
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "metrics": self.metrics, "error": self.error}


@dataclass(frozen=True)
class GateDecision:
    qualified: bool
    reasons: tuple[str, ...]


def decide(
    metric: str,
    value: float,
    threshold: float | None,
    must_beat: str,
    champion: ChampionComparison | None,
) -> GateDecision:
    """qualified = passes the threshold AND (mustBeat none, no champion, or beats it)."""
    reasons: list[str] = []
    if not passes_threshold(metric, value, threshold):
        side = "below" if METRICS[metric].higher_is_better else "above"
        reasons.append(f"{metric}={value} is {side} the threshold {threshold}")
    if must_beat == "current" and champion is not None:
        reasons.extend(_champion_reasons(metric, value, champion))
    return GateDecision(qualified=not reasons, reasons=tuple(reasons))


def _champion_reasons(metric: str, value: float, champion: ChampionComparison) -> list[str]:
    if champion.error is not None:
        return [f"champion {champion.version} could not be evaluated: {champion.error}"]
    reference = champion.metrics[metric]
    if is_better(metric, value, reference):
        return []
    return [f"{metric}={value} does not beat champion {champion.version} ({reference})"]
