"""Each statistic against scipy on the same data, and against hand computation on tiny data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from scipy.stats.contingency import association

from continuum.monitor import stats
from tests.unit.monitor.conftest import histogram_shares


@pytest.fixture
def samples():
    rng = np.random.default_rng(42)
    return rng.normal(0, 1, 3000), rng.normal(0.3, 1.2, 2500)


def test_ks_equals_scipy(samples):
    reference, current = samples
    result = stats.numeric_stats(reference, current)
    expected = scipy_stats.ks_2samp(reference, current)
    assert result.test == "ks"
    assert result.statistic == expected.statistic
    assert result.p_value == expected.pvalue
    assert result.effect_size == expected.statistic


def test_ks_statistic_by_hand():
    # ECDFs of [1,2,3,4] and [3,4,5,6] differ most at x in [2,3): 0.5 - 0 = 0.5.
    result = stats.numeric_stats(np.array([1.0, 2, 3, 4]), np.array([3.0, 4, 5, 6]))
    assert result.statistic == pytest.approx(0.5)


def test_wasserstein_equals_scipy_and_is_scaled_by_reference_std(samples):
    reference, current = samples
    result = stats.numeric_stats(reference, current)
    expected = scipy_stats.wasserstein_distance(reference, current)
    assert result.wasserstein == pytest.approx(expected, rel=1e-12)
    assert result.wasserstein_normalized == pytest.approx(expected / np.std(reference))


def test_wasserstein_by_hand():
    # Moving every unit of mass from {0, 1} to {2, 3} costs 2.
    result = stats.numeric_stats(np.array([0.0, 1.0]), np.array([2.0, 3.0]))
    assert result.wasserstein == pytest.approx(2.0)
    assert result.wasserstein_normalized == pytest.approx(2.0 / 0.5)


def test_reference_scale_falls_back_to_iqr_then_one():
    assert stats.reference_scale(np.array([5.0, 5.0, 5.0])) == 1.0
    assert stats.reference_scale(np.array([1.0, 3.0])) == pytest.approx(1.0)


def test_psi_by_hand():
    reference = np.array([0.5, 0.5])
    current = np.array([0.25, 0.75])
    expected = (0.25 - 0.5) * math.log(0.5) + (0.75 - 0.5) * math.log(1.5)
    assert stats.psi(reference, current) == pytest.approx(expected)


def test_psi_floors_empty_bins_with_epsilon():
    value = stats.psi(np.array([1.0, 0.0]), np.array([0.5, 0.5]))
    eps = stats.PSI_EPSILON
    expected = (0.5 - 1.0) * math.log(0.5) + (0.5 - eps) * math.log(0.5 / eps)
    assert math.isfinite(value)
    assert value == pytest.approx(expected)


def test_numeric_psi_uses_reference_quantile_bins(samples):
    reference, current = samples
    edges = stats.quantile_edges(reference)
    assert edges.size == stats.PSI_BINS - 1
    shares = histogram_shares(reference, edges)
    assert shares == pytest.approx(np.full(stats.PSI_BINS, 0.1), abs=1e-3)
    assert stats.numeric_stats(reference, reference).psi == pytest.approx(0.0, abs=1e-9)
    expected = stats.psi(shares, histogram_shares(current, edges))
    assert stats.numeric_stats(reference, current).psi == pytest.approx(expected, rel=1e-12)
    assert expected > 0.05


def test_identical_numeric_samples_show_no_drift(samples):
    reference, _ = samples
    result = stats.numeric_stats(reference, reference.copy())
    assert result.statistic == 0.0
    assert result.p_value == 1.0
    assert result.wasserstein == 0.0


def test_category_table_pools_unseen_categories():
    labels, table = stats.category_table(["a", "b", "b", "c"], ["b", "d", "e", "a", "a"])
    assert labels == ["a", "b", "c", stats.UNSEEN]
    assert table.tolist() == [[1, 2, 1, 0], [2, 1, 0, 2]]


def test_category_table_has_no_unseen_column_when_nothing_new():
    labels, table = stats.category_table(["x", "y"], ["y", "y"])
    assert labels == ["x", "y"]
    assert table.tolist() == [[1, 1], [0, 2]]


def test_chi_square_by_hand():
    # Expected counts of [[1,2,1,0],[2,1,0,2]] from the margins; sum of (o-e)^2/e is 3.6.
    result = stats.categorical_stats(["a", "b", "b", "c"], ["b", "d", "e", "a", "a"])
    assert result.statistic == pytest.approx(3.6)
    assert result.extra["dof"] == 3
    assert result.p_value == pytest.approx(scipy_stats.chi2.sf(3.6, 3))
    assert result.effect_size == pytest.approx(math.sqrt(3.6 / 9))


def test_chi_square_and_cramers_v_equal_scipy():
    rng = np.random.default_rng(3)
    reference = rng.choice(["a", "b", "c", "d"], 4000, p=[0.4, 0.3, 0.2, 0.1]).tolist()
    current = rng.choice(["a", "b", "c", "e"], 3000, p=[0.3, 0.3, 0.3, 0.1]).tolist()
    result = stats.categorical_stats(reference, current)
    _, table = stats.category_table(reference, current)
    chi2, p_value, dof, _ = scipy_stats.chi2_contingency(table, correction=False)
    assert result.statistic == pytest.approx(chi2, rel=1e-12)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)
    assert result.extra["dof"] == dof
    assert result.effect_size == pytest.approx(association(table, method="cramer"), rel=1e-12)


def test_categorical_psi_on_frequencies():
    result = stats.categorical_stats(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    expected = (0.25 - 0.5) * math.log(0.5) + (0.75 - 0.5) * math.log(1.5)
    assert result.psi == pytest.approx(expected)


def test_single_category_on_both_sides_cannot_drift():
    result = stats.categorical_stats(["a"] * 10, ["a"] * 5)
    assert (result.statistic, result.p_value, result.effect_size) == (0.0, 1.0, 0.0)
