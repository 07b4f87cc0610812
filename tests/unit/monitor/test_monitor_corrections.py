"""Multiple-testing corrections against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from continuum.monitor.corrections import CORRECTIONS, adjust, benjamini_hochberg, bonferroni, holm

P = [0.01, 0.04, 0.03, 0.005]


def test_bonferroni_multiplies_by_the_number_of_tests():
    assert bonferroni(P) == pytest.approx([0.04, 0.16, 0.12, 0.02])


def test_holm_step_down_is_monotone():
    # sorted: .005*4=.02, .01*3=.03, .03*2=.06, .04*1=.04 -> running max .02 .03 .06 .06
    assert holm(P) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_benjamini_hochberg_step_up():
    # sorted: .005*4/1=.02, .01*4/2=.02, .03*4/3=.04, .04*4/4=.04 -> running min from the top
    assert benjamini_hochberg(P) == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_bh_running_minimum_from_the_top():
    # .01*3/1=.03, .02*3/2=.03, .021*3/3=.021 -> the min from the top pulls the first two down
    assert benjamini_hochberg([0.01, 0.02, 0.021]) == pytest.approx([0.021, 0.021, 0.021])


def test_adjusted_p_values_are_capped_at_one():
    for method in CORRECTIONS:
        assert max(adjust([0.5, 0.9, 0.7], method)) <= 1.0


@pytest.mark.parametrize("method", sorted(CORRECTIONS))
def test_empty_and_single(method):
    assert adjust([], method) == []
    assert adjust([0.03], method) == pytest.approx([0.03])


def test_holm_is_never_more_conservative_than_bonferroni():
    values = [0.001, 0.2, 0.013, 0.04, 0.5]
    assert all(h <= b for h, b in zip(holm(values), bonferroni(values), strict=True))


def _p_values_with_ties(rng: np.random.Generator) -> np.ndarray:
    """Random p-values rounded to 1-3 decimals and with some repeated, so ties are common."""
    count = int(rng.integers(2, 40))
    values = np.round(rng.random(count), int(rng.integers(1, 4)))
    values[rng.integers(0, count, size=3)] = values[0]
    return values


def test_bh_matches_scipy_in_the_original_order_with_ties():
    rng = np.random.default_rng(13)
    for _ in range(200):
        values = _p_values_with_ties(rng)
        expected = false_discovery_control(values, method="bh")
        assert benjamini_hochberg(list(values)) == pytest.approx(list(expected), rel=1e-15)


def test_bh_ties_share_one_adjusted_value():
    adjusted = benjamini_hochberg([0.02, 0.5, 0.02, 0.02])
    assert adjusted[0] == adjusted[2] == adjusted[3] == pytest.approx(0.02 * 4 / 3)


def test_bh_one_nan_makes_every_adjusted_value_nan():
    adjusted = adjust([0.01, math.nan, 0.2], "bh")
    assert len(adjusted) == 3
    assert all(math.isnan(p) for p in adjusted)
