"""Positive-prediction rate per group, the gap, the flag and the positive class."""

from __future__ import annotations

import pandas as pd
import pytest

from continuum.monitor.check import check_fairness
from continuum.monitor.fairness import MIN_GROUP_ROWS, positive_class, prediction_rates
from continuum.monitor.reference import FeatureSpec, Reference
from continuum.monitor.settings import parse_check_settings
from continuum.monitor.window import PREDICTION


def groups_and_predictions(spec: dict[str, tuple[int, int]]):
    """{group: (rows, positives)} -> two aligned series."""
    groups, predictions = [], []
    for group, (rows, positives) in spec.items():
        groups += [group] * rows
        predictions += ["yes"] * positives + ["no"] * (rows - positives)
    return pd.Series(groups), pd.Series(predictions)


def test_rates_gap_and_flag():
    groups, predictions = groups_and_predictions({"a": (100, 50), "b": (100, 20), "c": (50, 20)})
    result = prediction_rates(groups, predictions, "yes", "sex", threshold=0.2)
    rates = {g.group: g.positive_rate for g in result.groups}
    assert rates == pytest.approx({"a": 0.5, "b": 0.2, "c": 0.4})
    assert result.gap == pytest.approx(0.3)
    assert result.flagged


def test_gap_within_threshold_is_not_flagged():
    groups, predictions = groups_and_predictions({"a": (100, 50), "b": (100, 45)})
    result = prediction_rates(groups, predictions, "yes", "sex", threshold=0.1)
    assert result.gap == pytest.approx(0.05)
    assert not result.flagged


def test_small_groups_are_listed_but_not_counted():
    groups, predictions = groups_and_predictions({"a": (100, 50), "tiny": (MIN_GROUP_ROWS - 1, 0)})
    result = prediction_rates(groups, predictions, "yes", "sex", threshold=0.1)
    assert [g.counted for g in result.groups] == [True, False]
    assert result.gap is None
    assert not result.flagged


def test_missing_group_values_form_their_own_group():
    groups = pd.Series(["a"] * 30 + [None] * 30)
    predictions = pd.Series(["yes"] * 30 + ["no"] * 30)
    result = prediction_rates(groups, predictions, "yes", "sex", threshold=0.5)
    assert {g.group for g in result.groups} == {"a", "(missing)"}
    assert result.flagged


def test_positive_class_is_the_last_sorted_class():
    assert positive_class(["yes", "no"], pd.Series([], dtype=object)) == "yes"
    assert positive_class([], pd.Series(["0", "1", None])) == "1"
    assert positive_class([], pd.Series([], dtype=object)) is None


def test_check_fairness_uses_reference_classes_and_skips_regressors():
    frame = pd.DataFrame({"g": ["a"] * 40 + ["b"] * 40, PREDICTION: ["1"] * 40 + ["0"] * 40})
    ref_frame = pd.DataFrame({"g": ["a"], "y": [1]})
    settings = parse_check_settings({"sensitiveFeature": "g", "fairnessThreshold": 0.5})
    spec = (FeatureSpec("g", "categorical"),)
    result, notes = check_fairness(
        Reference(spec, ref_frame, "classification", "y"), frame, settings
    )
    assert result is not None
    assert result.positive_class == "1"
    assert result.gap == 1.0
    assert result.flagged
    assert notes == ()
    skipped, notes = check_fairness(Reference(spec, ref_frame, "regression", "y"), frame, settings)
    assert skipped is None
    assert "classifier" in notes[0]


def test_unknown_sensitive_feature_is_noted_not_fatal():
    settings = parse_check_settings({"sensitiveFeature": "nope"})
    ref = Reference((FeatureSpec("g", "categorical"),), pd.DataFrame({"g": ["a"]}), None, None)
    result, notes = check_fairness(ref, pd.DataFrame({"g": ["a"], PREDICTION: ["x"]}), settings)
    assert result is None
    assert "'nope'" in notes[0]
