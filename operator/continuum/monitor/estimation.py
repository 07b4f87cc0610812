"""Performance estimated before labels arrive: confidence-based estimation (CBPE), issue 16.

At training time the trainer fits, on the holdout, one isotonic curve per class from the
model's probability to the observed frequency of that class (``baseline/calibration.json``
beside the model: JSON arrays, no pickle; binary models have one curve, for the positive
class). Here each logged probability row is mapped through those curves: if the curves are
right, row i's true class is class c with probability p_i[c]. Then, for the rows of a window
and the classes the model predicted for them:

* the **expected confusion matrix** is E[cm][c, j] = sum of p_i[c] over the rows predicted j,
  and the estimate of accuracy, precision, recall, f1 and f1_macro is that metric of the
  expected matrix (NannyML's CBPE does the same for binary models);
* the estimate of **roc_auc** is the AUC where row i counts p_i[c] as a positive and
  1 - p_i[c] as a negative, ranked by the model's own (uncalibrated) score: the expected ROC
  curve;
* the **interval** is the spread of the metric the window's labels would give if the curves
  are right (y_i ~ Categorical(p_i), independent): for binary models the delta method on the
  sums of Bernoullis the metric is made of (accuracy, precision, recall, f1, roc_auc: one pass
  over the rows), otherwise ``SIMULATIONS`` seeded label draws and the percentile interval of
  their metric. It is the sampling noise of the realised metric under calibration, not an
  error bar on the calibration itself (a holdout of a few hundred rows makes the curves
  coarse).

**What estimation cannot see**: it assumes P(y | x) is what it was on the holdout. It follows
*covariate shift* (inputs moving towards regions where the model is unsure lower the estimate)
but is blind to **concept drift**: when the same inputs now mean another label, the
probabilities, and so the estimate, do not move. Only realised performance (labels) shows it;
docs/performance.md says so to users.

Regressors have no probabilities: nothing is estimated for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from scipy import stats  # type: ignore[import-untyped]

from continuum.errors import IntegrityError
from continuum.monitor.intervals import (
    SEED,
    FloatArray,
    IntArray,
    Interval,
    auc_metric,
    confusion_batch,
    confusion_metric,
    percentile_interval,
    weighted_auc,
)

SIMULATIONS = 500
BLOCK_CELLS = 4_000_000  # most simulated labels held at once
CALIBRATION_SCHEMA_VERSION = 1
ESTIMABLE = ("accuracy", "f1", "f1_macro", "precision", "recall", "roc_auc")


class CalibrationInvalid(IntegrityError):  # noqa: N818 -- an outcome, named like the errors
    """A calibration document that cannot be used (its message says why)."""


@dataclass(frozen=True)
class Curve:
    """A monotone piecewise-linear map from a probability to a calibrated one."""

    x: FloatArray
    y: FloatArray

    def __call__(self, values: FloatArray) -> FloatArray:
        # np.interp holds the end values outside [x[0], x[-1]]: isotonic's out_of_bounds="clip"
        return np.interp(values, self.x, self.y)


@dataclass(frozen=True)
class Calibration:
    """The per-class curves of a model version, in the model's class order."""

    classes: tuple[str, ...]
    curves: Mapping[int, Curve]  # class index -> curve; binary: only the positive class
    rows: int

    def apply(self, proba: FloatArray) -> FloatArray:
        """Calibrated probabilities (n x k, rows summing to 1) of raw ``proba`` (n x k)."""
        k = len(self.classes)
        if proba.ndim != 2 or proba.shape[1] != k:
            raise CalibrationInvalid(
                f"probabilities have {proba.shape[-1]} columns, the model has {k} classes"
            )
        if k == 2:
            positive = np.clip(self.curves[1](proba[:, 1]), 0.0, 1.0)
            return np.column_stack([1 - positive, positive])
        mapped = np.column_stack([self.curves[c](proba[:, c]) for c in range(k)])
        total = mapped.sum(axis=1, keepdims=True)
        # a row every curve maps to 0 keeps its raw probabilities (nothing better is known)
        return np.where(total > 0, mapped / np.where(total > 0, total, 1), proba)


def parse_calibration(document: Mapping[str, Any], where: str) -> Calibration:
    """The calibration of ``baseline/calibration.json``; CalibrationInvalid names the problem."""
    try:
        classes = tuple(str(c) for c in document["classes"])
        curves = {int(c["class"]): _curve(c) for c in document["curves"]}
        rows = int(document.get("rows", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise CalibrationInvalid(f"{where} is not a calibration document: {exc}") from exc
    needed = {1} if len(classes) == 2 else set(range(len(classes)))
    if len(classes) < 2 or not needed <= set(curves):
        raise CalibrationInvalid(
            f"{where} lacks curves for classes {sorted(needed - set(curves))}; "
            "retrain to rebuild it"
        )
    return Calibration(classes, curves, rows)


def _curve(entry: Mapping[str, Any]) -> Curve:
    x = np.asarray(entry["x"], dtype=np.float64)
    y = np.asarray(entry["y"], dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or not x.size or np.any(np.diff(x) < 0):
        raise ValueError("a curve needs equal-length x and y arrays with x ascending")
    return Curve(x, y)


# ---------------------------------------------------------------- the estimate


def expected_confusion(calibrated: FloatArray, predicted: IntArray) -> FloatArray:
    """E[cm][c, j]: the sum of p_i[c] over the rows predicted j."""
    k = calibrated.shape[1]
    onehot = np.eye(k)[predicted]  # n x k
    return np.asarray(calibrated.T @ onehot, dtype=np.float64)


def simulated_labels(calibrated: FloatArray, size: int, rng: np.random.Generator) -> IntArray:
    """``size`` label vectors drawn row by row from the calibrated probabilities."""
    cumulative = np.cumsum(calibrated, axis=1)
    cumulative[:, -1] = 1.0  # rounding must not leave a draw above the last class
    draws = rng.random((size, calibrated.shape[0], 1))
    return np.asarray((draws > cumulative[None, :, :]).sum(axis=2), dtype=np.int64)


def estimate(
    metric: str,
    calibrated: FloatArray,
    predicted: IntArray,
    scores: FloatArray,
    *,
    confidence: float,
    seed: int = SEED,
) -> Interval:
    """The estimated ``metric`` of a window and its interval (module doc)."""
    if metric not in ESTIMABLE:
        raise ValueError(f"{metric} cannot be estimated without labels (estimable: {ESTIMABLE})")
    n, k = calibrated.shape
    if n == 0:
        return Interval(None, None, None, 0, "none")
    if k == 2 and metric in DELTA_METHOD:
        return _delta(metric, calibrated[:, 1], predicted, scores[:, 1], confidence)
    if metric == "roc_auc":
        value = float(auc_metric(scores, calibrated, np.ones(n)))
    else:
        value = float(confusion_metric(metric, expected_confusion(calibrated, predicted)))
    rng = np.random.default_rng(seed)
    samples = np.concatenate(
        [
            _simulated_metric(metric, block, predicted, scores, k)
            for block in _blocks(calibrated, rng)
        ]
    )
    low, high = percentile_interval(samples, confidence)
    return Interval(value, low, high, n, "cbpe-simulation")


# ---------------------------------------------------------------- binary: the delta method
#
# Under the calibration each row's label is an independent Bernoulli(p_i), so the counts the
# metrics are made of are sums of independent Bernoullis with known means and variances, and
# the delta method gives each metric's standard deviation in one pass over the rows. Measured
# against the 500 simulations (beta(2, 2) probabilities, 1,000 and 5,000 rows): widths within
# 6% of the simulation's (the unit test holds them to 10%), 0.3-2.5 ms instead of 30-350 ms;
# that is what makes the estimate >= 10x faster than NannyML's CBPE (bench/RESULTS.md,
# "Performance estimation vs NannyML CBPE"). Multiclass models and f1_macro keep the
# simulation.


def _bernoulli(p: FloatArray) -> FloatArray:
    return np.asarray(p * (1 - p), dtype=np.float64)


def _accuracy_sd(p: FloatArray, predicted: IntArray, _score: FloatArray) -> float:
    right = np.where(predicted == 1, p, 1 - p)
    return float(np.sqrt(_bernoulli(right).sum()) / p.size)


def _counts(p: FloatArray, predicted: IntArray) -> tuple[float, float, float, float, float]:
    """(E[TP], Var[TP], E[FN], Var[FN], rows predicted positive)."""
    hit = predicted == 1
    return (float(p[hit].sum()), float(_bernoulli(p[hit]).sum()), float(p[~hit].sum()),
            float(_bernoulli(p[~hit]).sum()), float(hit.sum()))  # fmt: skip


def _precision_sd(p: FloatArray, predicted: IntArray, _score: FloatArray) -> float:
    _tp, var_tp, _fn, _var_fn, positive = _counts(p, predicted)
    return float(np.sqrt(var_tp) / positive) if positive else 0.0


def _recall_sd(p: FloatArray, predicted: IntArray, _score: FloatArray) -> float:
    tp, var_tp, fn, var_fn, _positive = _counts(p, predicted)
    total = tp + fn
    if total <= 0:
        return 0.0
    return float(np.sqrt((fn / total**2) ** 2 * var_tp + (tp / total**2) ** 2 * var_fn))


def _f1_sd(p: FloatArray, predicted: IntArray, _score: FloatArray) -> float:
    """f1 = 2 TP / (TP + predicted positives + FN), TP and FN independent."""
    tp, var_tp, fn, var_fn, positive = _counts(p, predicted)
    base = tp + positive + fn
    if base <= 0:
        return 0.0
    d_tp, d_fn = 2 * (positive + fn) / base**2, -2 * tp / base**2
    return float(np.sqrt(d_tp**2 * var_tp + d_fn**2 * var_fn))


def _delta(
    metric: str, p: FloatArray, predicted: IntArray, score: FloatArray, confidence: float
) -> Interval:
    """A binary model's estimate and the delta method's interval (roc_auc: the expected ROC's
    area, the scores sorted once for it and for the ranks)."""
    if metric == "roc_auc":
        order = np.argsort(score, kind="stable")
        value = float(weighted_auc(score, p, 1 - p, order))
        sd = _auc_sd(p, score, average_ranks(score, order))
    else:
        calibrated = np.column_stack([1 - p, p])
        value = float(confusion_metric(metric, expected_confusion(calibrated, predicted)))
        sd = STANDARD_DEVIATIONS[metric](p, predicted, score)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)  # scipy's norm.ppf: 0.13 ms a call
    return Interval(value, value - z * sd, value + z * sd, p.size, "cbpe-delta")


def _auc_sd(p: FloatArray, score: FloatArray, ranks: FloatArray) -> float:
    """AUC = (S - n1 (n1 + 1) / 2) / (n1 n0), S = sum of y_i r_i (r: average ranks of the
    score), n1 = sum of y_i: the delta method on the pair (S, n1)."""
    var = _bernoulli(p)
    s, n1 = float((p * ranks).sum()), float(p.sum())
    n0 = p.size - n1
    if n1 <= 0 or n0 <= 0:
        return 0.0
    cov = np.array(
        [[(var * ranks**2).sum(), (var * ranks).sum()], [(var * ranks).sum(), var.sum()]]
    )
    denominator = n1 * n0
    d_s = 1 / denominator
    d_n1 = (-(n1 + 0.5) * denominator - (s - n1 * (n1 + 1) / 2) * (n0 - n1)) / denominator**2
    gradient = np.array([d_s, d_n1])
    return float(np.sqrt(max(float(gradient @ cov @ gradient), 0.0)))


def average_ranks(score: FloatArray, order: np.ndarray[Any, Any] | None = None) -> FloatArray:
    """1-based ranks, ties sharing their average (scipy's rankdata; no more than the one
    argsort when the scores are all distinct, as a model's probabilities nearly always are)."""
    order = np.argsort(score, kind="stable") if order is None else order
    ranked = score[order]
    if ranked.size > 1 and np.any(ranked[1:] == ranked[:-1]):
        return np.asarray(stats.rankdata(score), dtype=np.float64)
    ranks = np.empty(score.size, dtype=np.float64)
    ranks[order] = np.arange(1, score.size + 1)
    return ranks


STANDARD_DEVIATIONS = {
    "accuracy": _accuracy_sd,
    "precision": _precision_sd,
    "recall": _recall_sd,
    "f1": _f1_sd,
}
DELTA_METHOD = frozenset({*STANDARD_DEVIATIONS, "roc_auc"})


def _blocks(calibrated: FloatArray, rng: np.random.Generator) -> list[IntArray]:
    n, k = calibrated.shape
    per_block = max(1, BLOCK_CELLS // max(n * k, 1))
    blocks, left = [], SIMULATIONS
    while left > 0:
        size = min(per_block, left)
        blocks.append(simulated_labels(calibrated, size, rng))
        left -= size
    return blocks


def _simulated_metric(
    metric: str, truth: IntArray, predicted: IntArray, scores: FloatArray, k: int
) -> FloatArray:
    if metric != "roc_auc":
        return confusion_metric(metric, confusion_batch(truth, predicted, k))
    classes = [k - 1] if k == 2 else list(range(k))
    aucs = [rank_auc(scores[:, c], truth == c) for c in classes]
    return np.asarray(np.mean(aucs, axis=0), dtype=np.float64)


def rank_auc(score: FloatArray, positive: np.ndarray[Any, Any]) -> FloatArray:
    """ROC AUC of one score for each row of boolean labels (b x n), from the scores' average
    ranks (ties half): one rank pass for all rows, then a product per row."""
    ranks = stats.rankdata(score)
    n1 = positive.sum(axis=-1).astype(np.float64)
    n0 = positive.shape[-1] - n1
    wins = positive.astype(np.float64) @ ranks - n1 * (n1 + 1) / 2
    out = np.full(n1.shape, np.nan)
    np.divide(wins, n1 * n0, out=out, where=(n1 * n0) > 0)
    return out


def class_codes(values: Sequence[Any], classes: Sequence[str]) -> IntArray:
    """Each value's index in ``classes`` (compared as text), -1 where it is none of them."""
    index = {str(c): i for i, c in enumerate(classes)}
    return np.array([index.get(str(v), -1) for v in values], dtype=np.int64)
