"""The large-sample paths of the statistics: still scipy's numbers, to the last bit.

Above ``KS_EXACT_MAX_N`` values the KS test and the Wasserstein distance share one pass over
the merged samples instead of calling scipy; these tests hold them to scipy's results.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from continuum.monitor import stats
from tests.unit.monitor.conftest import histogram_shares


@pytest.fixture(params=["continuous", "ties", "drifted"])
def large(request):
    rng = np.random.default_rng(11)
    n, m = stats.KS_EXACT_MAX_N * 2, stats.KS_EXACT_MAX_N + 3_001
    if request.param == "continuous":
        return rng.normal(0, 1, n), rng.normal(0.01, 1, m)
    if request.param == "ties":  # prices: many equal values inside and across the samples
        return np.round(rng.uniform(0, 50, n), 1), np.round(rng.uniform(0, 52, m), 1)
    return rng.lognormal(1, 0.6, n), rng.lognormal(1.3, 0.6, m)


def test_ks_equals_scipy_above_the_exact_limit(large):
    reference, current = large
    result = stats.numeric_stats(reference, current)
    expected = scipy_stats.ks_2samp(reference, current)
    assert result.statistic == expected.statistic
    assert result.p_value == expected.pvalue


def test_wasserstein_equals_scipy_above_the_exact_limit(large):
    reference, current = large
    result = stats.numeric_stats(reference, current)
    assert result.wasserstein == scipy_stats.wasserstein_distance(reference, current)


def test_psi_bins_of_sorted_samples_equal_numpy_histogram(large):
    reference, current = large
    edges = stats.quantile_edges(reference)
    shares = [histogram_shares(sample, edges) for sample in (reference, current)]
    for sample, expected in zip((reference, current), shares, strict=True):
        assert np.array_equal(stats.sorted_shares(np.sort(sample), edges), expected)
    assert stats.numeric_stats(reference, current).psi == stats.psi(*shares)


def test_series_table_equals_the_list_table():
    rng = np.random.default_rng(3)
    reference = pd.Series(rng.choice(["a", "b", "c", None], 5000), dtype=object)
    current = pd.Series(rng.choice(["b", "c", "d", "e", None], 4000), dtype=object)
    expected = stats.category_table(
        [str(v) for v in reference.dropna()], [str(v) for v in current.dropna()]
    )
    labels, table = stats.series_category_table(reference, current)
    assert labels == expected[0]
    assert np.array_equal(table, expected[1])


def test_series_table_merges_values_that_print_alike():
    labels, table = stats.series_category_table(
        pd.Series([1, "1", 2, None], dtype=object), pd.Series(["2", 2, 3], dtype=object)
    )
    assert labels == ["1", "2", stats.UNSEEN]
    assert table.tolist() == [[2, 1, 0], [0, 2, 1]]


# D values around every switch of scipy's kstwo.sf between its formulas, for sizes on both
# sides of its small-n branch: ours must return scipy's number wherever it takes its own path.
def _statistics_near_formula_edges(n: float) -> list[float]:
    edges = [np.sqrt(2.2 / n), np.sqrt(370.0 / n), 0.5, 0.99, 1 - 1 / n]
    near = [edge * (1 + k * 1e-11) for edge in edges for k in (-3, -1, 0, 1, 3)]
    return sorted({float(d) for d in [*near, *np.linspace(0.001, 0.999, 37)] if 0 < d < 1})


@pytest.mark.parametrize("n", [100.0, 141.0, 2_000.0])
def test_kolmogorov_tail_equals_scipy_kstwo(n):
    statistics = _statistics_near_formula_edges(n)
    # below scipy's small-n limit kstwo.sf is always called as is
    assert any(stats.uses_smirnov_series(d, n) for d in statistics) == (n > stats.SMIRNOV_MIN_N)
    for d in statistics:
        assert stats.kolmogorov_sf(d, n) == float(scipy_stats.kstwo.sf(d, n)), d


def test_kolmogorov_tail_is_scipys_at_the_benchmark_size():
    n = 50_000.0  # two samples of 100 000
    for d in (0.0067, 0.02, 0.0606, 0.085, 0.5, 0.6):
        assert stats.uses_smirnov_series(d, n)
        assert stats.kolmogorov_sf(d, n) == float(scipy_stats.kstwo.sf(d, n)), d


def _searchsorted_differences(ref_sorted, cur_sorted):
    """scipy's ECDF arithmetic, literally: counts by searchsorted, then count / size."""
    merged = np.sort(np.concatenate((ref_sorted, cur_sorted)), kind="stable")
    ref_cdf = ref_sorted.searchsorted(merged, "right") / ref_sorted.size
    cur_cdf = cur_sorted.searchsorted(merged, "right") / cur_sorted.size
    return merged, ref_cdf - cur_cdf


def test_ecdf_differences_equal_the_searchsorted_definition_where_they_are_used(large):
    ref_sorted, cur_sorted = (np.sort(sample) for sample in large)
    merged, differences, run_ends = stats.ecdf_differences(ref_sorted, cur_sorted)
    expected_merged, expected = _searchsorted_differences(ref_sorted, cur_sorted)
    assert np.array_equal(merged, expected_merged)
    ends = np.arange(merged.size) if run_ends is None else run_ends
    # at the last slot of every run of equal values: the same floats, bit for bit
    assert np.array_equal(differences[ends], expected[ends])
    # everywhere else a slot is inside a run of ties: a step of width 0 in the W1 integral
    inside = np.setdiff1d(np.arange(merged.size), ends)
    assert np.all(merged[inside] == merged[inside + 1])


def test_sorted_quantiles_equal_numpy_quantile():
    rng = np.random.default_rng(5)
    levels = np.array([0.0, 0.01, 0.1, 0.25, 1 / 3, 0.5, 0.7, 0.9, 0.99, 1.0])
    for size in (1, 2, 3, 10, 11, 99, 1_000, 12_345):
        for sample in (rng.normal(0, 1, size), np.round(rng.exponential(3, size), 1)):
            ordered = np.sort(sample)
            assert np.array_equal(
                stats.sorted_quantiles(ordered, levels), np.quantile(sample, levels)
            ), size
    ordered = np.sort(rng.normal(0, 1, 1_001))
    fine = np.linspace(0, 1, 2_001)
    assert np.array_equal(stats.sorted_quantiles(ordered, fine), np.quantile(ordered, fine))


def test_quantile_edges_of_a_sorted_sample_are_numpys(large):
    reference, _ = large
    assert np.array_equal(
        stats.quantile_edges(np.sort(reference), is_sorted=True), stats.quantile_edges(reference)
    )
