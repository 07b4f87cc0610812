"""Jensen-Shannon distance: scipy's, on the same shares PSI is computed on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial import distance

from continuum.monitor import stats
from tests.unit.monitor.conftest import histogram_shares


def test_equals_scipy_natural_log():
    reference = np.array([0.1, 0.2, 0.3, 0.4])
    current = np.array([0.25, 0.25, 0.25, 0.25])
    assert stats.jensen_shannon(reference, current) == distance.jensenshannon(reference, current)


def test_by_hand_identical_and_disjoint():
    same = np.array([0.5, 0.5])
    assert stats.jensen_shannon(same, same) == pytest.approx(0.0, abs=1e-12)
    # Disjoint supports: each side is KL ln 2 from the average, so the distance is sqrt(ln 2).
    disjoint = stats.jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert disjoint == pytest.approx(math.sqrt(math.log(2)))


def test_numeric_uses_the_psi_bins():
    rng = np.random.default_rng(7)
    reference, current = rng.normal(0, 1, 4000), rng.normal(0.4, 1, 3000)
    edges = stats.quantile_edges(reference)
    expected = distance.jensenshannon(
        histogram_shares(reference, edges), histogram_shares(current, edges)
    )
    assert stats.numeric_stats(reference, current).jensen_shannon == pytest.approx(
        expected, rel=1e-12
    )


def test_categorical_uses_the_category_shares():
    reference = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    current = ["a"] * 20 + ["b"] * 30 + ["c"] * 40 + ["d"] * 10  # d: pooled as unseen
    result = stats.categorical_stats(reference, current)
    expected = distance.jensenshannon([0.5, 0.3, 0.2, 0.0], [0.2, 0.3, 0.4, 0.1])
    assert result.jensen_shannon == pytest.approx(expected, rel=1e-12)


def test_single_category_is_zero():
    result = stats.categorical_stats(["x", "x"], ["x"])
    assert result.jensen_shannon == pytest.approx(0.0, abs=1e-12)
