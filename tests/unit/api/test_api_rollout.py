"""spec.rollout and status.rollout of ModelDeployment (issue 18): defaults and refusals."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from continuum.api import ModelDeploymentSpec, RolloutSpec, dump, load
from continuum.api.rollout import STEP_WEIGHTS_MESSAGE, Canary, _increasing_rule

STORAGE = {"bucket": "models", "endpoint": "http://minio:9000", "secretRef": {"name": "s3"}}


def test_default_is_immediate_with_filled_stages() -> None:
    spec = load(ModelDeploymentSpec, {"model": "churn", "storage": STORAGE})
    assert spec.rollout.strategy == "Immediate"
    assert [s.weight for s in spec.rollout.canary.steps] == [10, 50]
    assert dump(spec.rollout)["analysis"] == {
        "maxErrorRate": 0.01,
        "maxLatencyRatio": 1.5,
        "minAgreement": 0.95,
        "maxDistributionDistance": 0.1,
        "regressionTolerance": 0.05,
        "maxRealisedDrop": 0.05,
        "minLabels": 30,
    }


@pytest.mark.parametrize("weights", [[50, 10], [10, 10], [10, 50, 30]])
def test_steps_must_increase(weights: list[int]) -> None:
    with pytest.raises(ValidationError, match=STEP_WEIGHTS_MESSAGE):
        Canary.model_validate({"steps": [{"weight": w} for w in weights]})


@pytest.mark.parametrize("weight", [0, 100])
def test_a_step_weight_is_a_share_not_all_or_nothing(weight: int) -> None:
    with pytest.raises(ValidationError, match="weight"):
        Canary.model_validate({"steps": [{"weight": weight}]})


def test_the_cel_rule_compares_every_neighbouring_pair() -> None:
    rule = _increasing_rule(4)
    assert rule.count("self.steps[2].weight < self.steps[3].weight") == 1
    assert rule.count("&&") == 2


def test_strategy_is_one_of_four() -> None:
    with pytest.raises(ValidationError, match="strategy"):
        RolloutSpec.model_validate({"strategy": "BlueGreen"})
