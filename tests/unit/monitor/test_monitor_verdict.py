"""Feature and dataset verdicts: significance and effect size together, shares, no guessing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from continuum.api.driftmonitor import DriftTests
from continuum.monitor.check import run_check
from continuum.monitor.reference import FeatureSpec, Reference
from continuum.monitor.settings import parse_check_settings
from continuum.monitor.stats import FeatureStats
from continuum.monitor.verdict import (
    DRIFT,
    INSUFFICIENT_DATA,
    NO_DRIFT,
    dataset_verdict,
    decide_features,
)
from continuum.monitor.window import PREDICTION


def ks(p_value: float, d: float, psi: float = 0.0) -> FeatureStats:
    return FeatureStats("ks", d, p_value, d, psi)


TESTS = DriftTests(
    p_value=0.05, correction="bonferroni", ks_effect_threshold=0.1, psi_threshold=0.2
)


def test_significant_and_large_drifts():
    (decision,) = decide_features([ks(1e-9, 0.3)], TESTS)
    assert decision.drifted
    assert decision.significant
    assert decision.large_effect


def test_significant_but_small_does_not_drift():
    (decision,) = decide_features([ks(1e-9, 0.02, psi=0.01)], TESTS)
    assert decision.significant
    assert not decision.drifted
    assert "too small" in decision.reason


def test_large_psi_alone_passes_the_effect_gate():
    (decision,) = decide_features([ks(1e-9, 0.05, psi=0.5)], TESTS)
    assert decision.drifted


def test_large_but_not_significant_after_correction_does_not_drift():
    # 0.02 alone is significant; times 3 features (bonferroni) it is not.
    decisions = decide_features([ks(0.02, 0.5), ks(0.9, 0.0), ks(0.8, 0.0)], TESTS)
    assert decisions[0].p_adjusted == pytest.approx(0.06)
    assert not decisions[0].drifted
    assert "not significant" in decisions[0].reason


def test_untested_feature_never_drifts_and_is_not_counted_in_the_correction():
    decisions = decide_features([None, ks(0.02, 0.5)], TESTS)
    assert decisions[0].p_adjusted is None
    assert not decisions[0].drifted
    assert decisions[1].p_adjusted == pytest.approx(0.02)
    assert decisions[1].drifted


def test_dataset_verdict_uses_drift_share():
    decisions = decide_features([ks(1e-9, 0.3), ks(0.9, 0.0), ks(0.9, 0.0)], TESTS)
    assert dataset_verdict(decisions, 0.3).verdict == DRIFT
    verdict = dataset_verdict(decisions, 0.5)
    assert verdict.verdict == NO_DRIFT
    assert verdict.share == pytest.approx(1 / 3)
    assert (verdict.drifted, verdict.tested) == (1, 3)


def test_dataset_verdict_without_any_tested_feature_is_insufficient():
    verdict = dataset_verdict(decide_features([None], TESTS), 0.3)
    assert verdict.verdict == INSUFFICIENT_DATA
    assert verdict.dataset_drift is None


def reference(frame: pd.DataFrame) -> Reference:
    specs = (FeatureSpec("x", "numeric"), FeatureSpec("color", "categorical"))
    return Reference(specs, frame, "classification", None)


def frame(rows: int, seed: int, shift: float = 0.0, colors=("red", "green", "blue")):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"x": rng.normal(shift, 1, rows), "color": rng.choice(list(colors), rows),
         PREDICTION: rng.choice(["no", "yes"], rows)}
    )  # fmt: skip


SETTINGS = parse_check_settings({"window": {"maxRows": 1_000_000, "minSamples": 100}})


def test_big_sample_small_shift_is_significant_but_not_drift():
    ref = reference(frame(200_000, 1))
    result = run_check(ref, frame(200_000, 2, shift=0.03), SETTINGS)
    x = result.features[0]
    assert x.decision.significant  # 200k rows find a 0.03 sd shift...
    assert not x.decision.drifted  # ...but it is far too small to matter
    assert result.verdict.verdict == NO_DRIFT


def test_shifted_numeric_and_new_categories_drift():
    ref = reference(frame(3000, 1))
    result = run_check(ref, frame(3000, 2, shift=1.0, colors=("red", "purple")), SETTINGS)
    assert [f.decision.drifted for f in result.features] == [True, True]
    assert result.verdict.verdict == DRIFT
    assert result.verdict.share == 1.0


def test_same_distribution_does_not_drift():
    result = run_check(reference(frame(3000, 1)), frame(3000, 2), SETTINGS)
    assert result.verdict.verdict == NO_DRIFT
    assert not any(f.decision.drifted for f in result.features)


def test_fewer_rows_than_min_samples_is_insufficient_data():
    result = run_check(reference(frame(3000, 1)), frame(99, 2, shift=5.0), SETTINGS)
    assert result.verdict.verdict == INSUFFICIENT_DATA
    assert result.features == ()
    assert "minSamples=100" in result.notes[0]


def test_feature_with_only_nulls_in_the_window_has_no_distribution_test_but_drifts():
    # The values cannot be compared, but a column arriving empty is the largest possible
    # change of its missing share (issue 14 defect 3: it used to be "not drifted").
    current = frame(500, 2)
    current["x"] = None
    result = run_check(reference(frame(3000, 1)), current, SETTINGS)
    x = result.features[0]
    assert x.measurement.stats is None
    assert x.measurement.null_shares == (0.0, 1.0)
    assert x.to_json()["test"] == "none"
    assert x.decision.p_adjusted is None
    assert x.decision.missing_drifted
    assert x.decision.drifted
