import numpy as np
import pytest

from continuum.api import CLASSIFICATION_METRICS, REGRESSION_METRICS
from continuum.trainer.evaluation import (
    METRICS,
    ChampionComparison,
    decide,
    is_better,
    passes_threshold,
)


def test_every_metric_of_the_api_is_computed_for_its_task_and_in_its_direction():
    assert set(METRICS) == set(CLASSIFICATION_METRICS) | set(REGRESSION_METRICS)
    assert {m.name for m in METRICS.values() if m.task == "regression"} == set(REGRESSION_METRICS)
    assert {m.name for m in METRICS.values() if not m.higher_is_better} == {"rmse", "mae"}


def test_direction_aware_comparisons():
    assert is_better("accuracy", 0.9, 0.8)
    assert not is_better("accuracy", 0.8, 0.8)  # a tie does not beat the champion
    assert is_better("rmse", 1.0, 2.0)
    assert not is_better("mae", 2.0, 1.0)
    assert passes_threshold("r2", 0.5, 0.5)
    assert passes_threshold("rmse", 0.5, 0.5)
    assert not passes_threshold("rmse", 0.6, 0.5)
    assert passes_threshold("f1", 0.1, None)


def champion(value, metric="accuracy"):
    return ChampionComparison(version=3, metrics={metric: value})


@pytest.mark.parametrize(
    ("value", "threshold", "must_beat", "champ", "qualified"),
    [
        (0.9, 0.8, "current", None, True),  # no champion yet
        (0.9, 0.8, "current", champion(0.85), True),
        (0.9, 0.8, "current", champion(0.95), False),
        (0.9, 0.8, "none", champion(0.95), True),  # mustBeat none: threshold alone decides
        (0.7, 0.8, "none", None, False),
        (0.9, None, "current", champion(0.9), False),  # tie
    ],
)
def test_gate(value, threshold, must_beat, champ, qualified):
    assert decide("accuracy", value, threshold, must_beat, champ).qualified is qualified


def test_gate_reasons_explain_each_failure():
    decision = decide("rmse", 3.0, 2.0, "current", champion(2.5, "rmse"))
    assert decision.reasons == (
        "rmse=3.0 is above the threshold 2.0",
        "rmse=3.0 does not beat champion 3 (2.5)",
    )


def test_unevaluable_champion_blocks_with_its_error():
    broken = ChampionComparison(version=2, error="KeyError: 'x9'")
    decision = decide("accuracy", 0.99, None, "current", broken)
    assert not decision.qualified
    assert "champion 2 could not be evaluated: KeyError: 'x9'" in decision.reasons[0]


def test_binary_metrics_use_the_second_sorted_class_as_positive():
    y = np.array(["no", "yes", "yes", "no"])
    pred = np.array(["no", "yes", "no", "no"])
    classes = np.array(["no", "yes"])
    assert METRICS["recall"].compute(y, pred, None, classes) == 0.5
    assert METRICS["precision"].compute(y, pred, None, classes) == 1.0
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    assert METRICS["roc_auc"].compute(y, pred, scores, classes) == 1.0
