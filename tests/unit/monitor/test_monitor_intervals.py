"""Metric intervals (monitor.intervals): the trainer's definitions, and intervals that cover."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from continuum.monitor import intervals as iv

CLASSIFICATION = ("accuracy", "f1", "f1_macro", "precision", "recall")


def _labelled(k: int, n: int = 3000, seed: int = 1) -> iv.Labelled:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    predicted = np.where(rng.random(n) < 0.7, truth, rng.integers(0, k, n))
    scores = rng.random((n, k)) + 0.8 * np.eye(k)[truth]
    scores /= scores.sum(axis=1, keepdims=True)
    return iv.Labelled(truth, predicted, scores, [str(c) for c in range(k)])


def _sklearn(metric: str, data: iv.Labelled) -> float:
    """The trainer's definitions (continuum.trainer.evaluation), through scikit-learn."""
    y, p, k = data.truth, data.predicted, len(data.classes)
    average = "binary" if k == 2 else "weighted"
    if metric == "accuracy":
        return float(skm.accuracy_score(y, p))
    if metric == "f1_macro":
        return float(skm.f1_score(y, p, average="macro"))
    if metric == "roc_auc":
        assert data.scores is not None
        if k == 2:
            return float(skm.roc_auc_score(y == 1, data.scores[:, 1]))
        return float(skm.roc_auc_score(y, data.scores, multi_class="ovr", labels=range(k)))
    scorer = {"f1": skm.f1_score, "precision": skm.precision_score, "recall": skm.recall_score}
    labels = {"pos_label": k - 1} if k == 2 else {}
    return float(scorer[metric](y, p, average=average, zero_division=0, **labels))


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("metric", [*CLASSIFICATION, "roc_auc"])
def test_classification_metrics_are_the_trainers(metric: str, k: int) -> None:
    data = _labelled(k)
    found = iv.realised(metric, data, 0.95)
    assert found.value == pytest.approx(_sklearn(metric, data), abs=1e-12)
    assert found.lower is not None
    assert found.upper is not None
    assert found.lower <= found.value <= found.upper
    assert found.rows == 3000


def test_tied_scores_count_half_like_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 500)
    score = np.round(rng.random(500) * 0.5 + 0.4 * truth, 1)  # few distinct values
    found = iv.weighted_auc(score, truth.astype(float), 1.0 - truth)
    assert float(found) == pytest.approx(skm.roc_auc_score(truth, score), abs=1e-12)


@pytest.mark.parametrize("metric", ["r2", "rmse", "mae"])
def test_regression_metrics_are_the_trainers(metric: str) -> None:
    rng = np.random.default_rng(2)
    truth = rng.normal(100, 15, 2000)
    predicted = truth + rng.normal(0, 5, 2000)
    expected = {
        "r2": skm.r2_score(truth, predicted),
        "rmse": np.sqrt(skm.mean_squared_error(truth, predicted)),
        "mae": skm.mean_absolute_error(truth, predicted),
    }[metric]
    found = iv.realised(metric, iv.Labelled(truth, predicted, None, []), 0.95)
    assert found.value == pytest.approx(expected, rel=1e-12)
    assert found.lower < found.value < found.upper  # type: ignore[operator]
    assert found.method == "bootstrap-rows"


def test_intervals_are_seeded_and_narrow_with_more_rows() -> None:
    small, large = _labelled(2, 300), _labelled(2, 30000)
    first, again = iv.realised("f1", small, 0.95), iv.realised("f1", small, 0.95)
    assert first == again
    wide = first.upper - first.lower  # type: ignore[operator]
    narrow = iv.realised("f1", large, 0.95)
    assert narrow.upper - narrow.lower < wide / 5  # type: ignore[operator]


def test_wilson_covers_a_high_accuracy_on_a_small_window() -> None:
    """The module doc's reason for Wilson: at 50 rows and accuracy 0.95 the percentile
    bootstrap misses the truth too often; Wilson keeps at least the stated 95%."""
    rng = np.random.default_rng(0)
    n, truth, windows = 50, 0.95, 4000
    hits = rng.binomial(n, truth, windows)
    wilson = [iv.wilson(int(k), n, 0.95) for k in hits]
    covered = np.mean([low <= truth <= high for low, high in wilson])
    boot = [iv.percentile_interval(rng.binomial(n, k / n, 1000) / n, 0.95) for k in hits[:1000]]
    boot_covered = np.mean([low <= truth <= high for low, high in boot])
    assert covered >= 0.95
    assert boot_covered < 0.935


def test_confusion_bootstrap_covers_f1() -> None:
    """Windows of 400 rows from one population: the 90% interval of f1 holds the population's
    f1 in about 90% of them (seen: 0.89-0.91)."""
    rng = np.random.default_rng(5)
    population = _labelled(2, 400_000, seed=9)
    target = iv.realised("f1", population, 0.9).value
    covered = 0
    for seed in range(300):
        pick = rng.integers(0, population.rows, 400)
        window = iv.Labelled(population.truth[pick], population.predicted[pick], None, ["0", "1"])
        found = iv.realised("f1", window, 0.9, seed=seed)
        covered += found.lower <= target <= found.upper  # type: ignore[operator]
    assert 0.84 <= covered / 300 <= 0.96


def test_row_weights_are_bootstrap_counts_in_bounded_blocks(monkeypatch) -> None:
    monkeypatch.setattr(iv, "BLOCK_CELLS", 1000)
    blocks = iv.row_weights(300, 10, np.random.default_rng(0))
    assert [b.shape for b in blocks] == [(3, 300), (3, 300), (3, 300), (1, 300)]
    assert all((b.sum(axis=1) == 300).all() for b in blocks)


def test_empty_and_unknown() -> None:
    empty = iv.Labelled(np.zeros(0, np.int64), np.zeros(0, np.int64), None, ["a", "b"])
    assert iv.realised("accuracy", empty, 0.95).value is None
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        iv.check_metric("auc")
    with pytest.raises(ValueError, match="roc_auc needs the logged probabilities"):
        iv.realised("roc_auc", iv.Labelled(np.array([0, 1]), np.array([0, 1]), None, "ab"), 0.9)
