"""Performance estimation (monitor.estimation) against ground truth we can compute.

1. Calibrated synthetic data: p_i known, y_i ~ Bernoulli(p_i), the model predicts p_i > 0.5;
   the expected accuracy is mean(max(p_i, 1 - p_i)) exactly. The estimate must equal the
   expectation, and the realised accuracy of fresh label draws must fall in the estimate's
   interval about as often as its confidence says.
2. A real, miscalibrated model (a depth-limited forest on the churn data of tests/kit)
   calibrated by the trainer's own code on its holdout: the estimate on fresh rows from the
   same population agrees with the realised metric within the interval; under concept drift
   (labels flipped for a segment) the estimate does not move and the realised metric does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from continuum.monitor import estimation as es
from continuum.monitor import intervals as iv
from continuum.trainer.calibration import calibration_document
from tests.kit.datasets import churn_labels, customers

IDENTITY = {"classes": ["0", "1"], "rows": 1, "curves": [{"class": 1, "x": [0, 1], "y": [0, 1]}]}


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 2, n)
    return np.column_stack([1 - p, p]), (p > 0.5).astype(np.int64)


def test_estimated_accuracy_is_the_expected_accuracy() -> None:
    proba, predicted = _synthetic(5000, 0)
    calibrated = es.parse_calibration(IDENTITY, "identity").apply(proba)
    found = es.estimate("accuracy", calibrated, predicted, proba, confidence=0.95)
    assert found.value == pytest.approx(np.maximum(proba[:, 1], proba[:, 0]).mean(), abs=1e-12)
    assert found.lower < found.value < found.upper  # type: ignore[operator]
    assert found.method == "cbpe-delta"


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1", "roc_auc"])
def test_delta_method_interval_is_the_simulations(metric: str, monkeypatch) -> None:
    """Binary models take the delta method's interval (one pass over the rows); it must be
    the simulation's within 10% of its width (seen: within 6% at 1,000 rows)."""
    proba, predicted = _synthetic(3000, 4)
    delta = es.estimate(metric, proba, predicted, proba, confidence=0.95)
    monkeypatch.setattr(es, "DELTA_METHOD", frozenset())
    simulated = es.estimate(metric, proba, predicted, proba, confidence=0.95)
    assert simulated.method == "cbpe-simulation"
    assert delta.value == simulated.value
    width = simulated.upper - simulated.lower  # type: ignore[operator]
    assert delta.upper - delta.lower == pytest.approx(width, rel=0.1)  # type: ignore[operator]


@pytest.mark.parametrize("metric", ["accuracy", "f1", "precision", "recall", "roc_auc"])
def test_realised_falls_in_the_estimated_interval(metric: str) -> None:
    """200 windows of 1,000 rows: the label draws' metric is inside the 90% interval in
    84-96% of them (the interval is the realised metric's spread under calibration)."""
    rng = np.random.default_rng(1)
    inside = 0
    for window in range(200):
        proba, predicted = _synthetic(1000, 100 + window)
        found = es.estimate(metric, proba, predicted, proba, confidence=0.9, seed=window)
        truth = (rng.random(1000) < proba[:, 1]).astype(np.int64)
        real = iv.realised(metric, iv.Labelled(truth, predicted, proba, ["0", "1"]), 0.9)
        inside += found.lower <= real.value <= found.upper  # type: ignore[operator]
    assert 0.84 <= inside / 200 <= 0.96


def test_multiclass_estimate_is_the_expected_confusion() -> None:
    rng = np.random.default_rng(2)
    proba = rng.dirichlet([1, 1, 1], 3000)
    predicted = proba.argmax(axis=1)
    expected_accuracy = proba.max(axis=1).mean()
    found = es.estimate("accuracy", proba, predicted, proba, confidence=0.95)
    assert found.value == pytest.approx(expected_accuracy, abs=1e-12)
    macro = es.estimate("f1_macro", proba, predicted, proba, confidence=0.95)
    truth = np.array([rng.choice(3, p=row) for row in proba])
    real = iv.realised("f1_macro", iv.Labelled(truth, predicted, proba, "abc"), 0.95)
    assert macro.lower <= real.value <= macro.upper  # type: ignore[operator]


# ---------------------------------------------------------------- a real, miscalibrated model

FEATURES = ["tenure", "charges", "plan"]


def _population(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = customers(rows, rng, shift=shift)
    frame["churned"] = churn_labels(frame, rng)
    return frame


@pytest.fixture(scope="module")
def model() -> tuple[object, es.Calibration]:
    """A forest (probabilities squeezed towards 0.5: miscalibrated) and its calibration on a
    holdout, as the trainer writes it (string classes)."""
    encode = ColumnTransformer(
        [("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"
    )
    forest = RandomForestClassifier(n_estimators=40, max_depth=3, random_state=0)
    pipeline = make_pipeline(encode, forest)
    train, holdout = _population(4000, 10), _population(3000, 11)
    pipeline.fit(train[FEATURES], train["churned"].astype(str))
    document = calibration_document(pipeline, holdout[FEATURES], holdout["churned"])
    assert document is not None
    assert document["classes"] == ["no", "yes"]
    return pipeline, es.parse_calibration(document, "holdout")


def _window(pipeline, calibration: es.Calibration, frame: pd.DataFrame, metric: str):
    proba = pipeline.predict_proba(frame[FEATURES])
    predicted = es.class_codes(pipeline.predict(frame[FEATURES]).tolist(), calibration.classes)
    found = es.estimate(metric, calibration.apply(proba), predicted, proba, confidence=0.95)
    truth = es.class_codes(frame["churned"].tolist(), calibration.classes)
    labelled = iv.Labelled(truth, predicted, proba, calibration.classes)
    return found, iv.realised(metric, labelled, 0.95), proba


@pytest.mark.parametrize("metric", ["accuracy", "f1", "roc_auc"])
def test_calibrated_forest_estimate_agrees_with_labels(model, metric: str) -> None:
    pipeline, calibration = model
    found, real, proba = _window(pipeline, calibration, _population(3000, 12), metric)
    assert found.lower <= real.value <= found.upper  # type: ignore[operator]
    if metric == "accuracy":  # the raw probabilities would have estimated it wrongly
        raw = np.maximum(proba[:, 0], proba[:, 1]).mean()
        assert abs(raw - real.value) > 2 * abs(found.value - real.value)  # type: ignore[operator]


def test_concept_drift_is_invisible_to_the_estimate(model) -> None:
    """The docs' warning, as a test: flip the labels of the basic plan's customers (the same
    inputs now mean the other answer); the estimate stays, the realised accuracy falls."""
    pipeline, calibration = model
    frame = _population(3000, 13)
    before, real_before, _ = _window(pipeline, calibration, frame, "accuracy")
    flipped = frame.assign(
        churned=np.where(
            frame["plan"] == "basic",
            np.where(frame["churned"] == "yes", "no", "yes"),
            frame["churned"],
        )
    )
    after, real_after, _ = _window(pipeline, calibration, flipped, "accuracy")
    assert after == before
    assert real_after.upper < real_before.lower  # type: ignore[operator]
    assert real_after.upper < after.lower  # type: ignore[operator]


def test_covariate_shift_towards_uncertainty_lowers_the_estimate(model) -> None:
    pipeline, calibration = model
    base, _, _ = _window(pipeline, calibration, _population(3000, 14), "accuracy")
    # tenure moves to where churn is a coin toss (the score's threshold near 43 months);
    # the labels follow the same rule as before: covariate shift, no concept drift
    rng = np.random.default_rng(15)
    moved = customers(3000, rng)
    moved["tenure"] = rng.normal(43, 3, 3000)
    moved["churned"] = churn_labels(moved, rng)
    shifted, real, _ = _window(pipeline, calibration, moved, "accuracy")
    assert shifted.upper < base.lower  # type: ignore[operator]
    assert shifted.lower <= real.value <= shifted.upper  # type: ignore[operator]


def test_bad_calibration_documents_are_named() -> None:
    with pytest.raises(es.CalibrationInvalid, match=r"cal\.json is not a calibration document"):
        es.parse_calibration({"classes": ["a", "b"]}, "cal.json")
    with pytest.raises(es.CalibrationInvalid, match=r"lacks curves for classes \[2\]"):
        es.parse_calibration(
            {"classes": ["a", "b", "c"],
             "curves": [{"class": c, "x": [0, 1], "y": [0, 1]} for c in (0, 1)]},
            "cal.json",
        )  # fmt: skip
    calibration = es.parse_calibration(IDENTITY, "identity")
    with pytest.raises(es.CalibrationInvalid, match="3 columns, the model has 2 classes"):
        calibration.apply(np.ones((4, 3)) / 3)
    with pytest.raises(ValueError, match="rmse cannot be estimated"):
        es.estimate(
            "rmse", np.ones((2, 2)) / 2, np.zeros(2, np.int64), np.ones((2, 2)), confidence=0.9
        )
