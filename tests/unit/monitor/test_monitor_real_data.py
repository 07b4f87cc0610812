"""The check on data shaped like real exports (issue 14): Parquet dtypes, sparse categoricals.

Reference samples are Parquet written by pandas/pyarrow; windows come back from JSON, as the
inference log holds them (see ``realdata``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from continuum.monitor import categories, check
from continuum.monitor.check import run_check
from continuum.monitor.html import _feature_section
from continuum.monitor.reference import CATEGORICAL, FeatureSpec
from continuum.monitor.stats import missing_shift
from tests.kit.datasets import as_logged, as_parquet
from tests.unit.monitor.realdata import (
    KINDS,
    UNUSED_PLAN,
    check_settings,
    export_frame,
    id_like_frame,
    reference_of,
)


def _measure(name: str, reference: pd.DataFrame, window: pd.DataFrame) -> check.Measurement:
    return check.measure(FeatureSpec(name, KINDS[name]), reference[name], window[name])


# ----------------------------------------------------------------- defect 1: Parquet dtypes


def test_unused_categories_of_a_parquet_category_column_are_not_tested():
    # Before: value_counts listed "enterprise" with count 0 on both sides and
    # chi2_contingency raised "expected frequencies has a zero element".
    frame = export_frame(2000, seed=1)
    reference = as_parquet(frame.iloc[:1000])
    assert UNUSED_PLAN in reference["plan"].cat.categories
    window = as_parquet(frame.iloc[1000:])  # a window read with the same dtypes
    measured = _measure("plan", reference, window)
    assert measured.stats is not None
    assert measured.stats.p_value is not None
    assert UNUSED_PLAN not in measured.stats.extra["categories"]
    assert UNUSED_PLAN not in measured.plot["categories"]


def test_a_category_absent_from_the_window_only_is_still_a_column():
    frame = export_frame(2000, seed=2)
    reference = as_parquet(frame)
    window = as_logged(frame[frame["plan"] != "pro"])
    measured = _measure("plan", reference, window)
    position = measured.stats.extra["categories"].index("pro")
    assert measured.plot["current"][position] == 0.0
    assert measured.plot["reference"][position] > 0.2


@pytest.mark.parametrize("name", [n for n, kind in KINDS.items() if kind == CATEGORICAL])
def test_the_same_rows_from_parquet_and_from_the_log_are_the_same_sample(name):
    # Parquet float codes (1.0) against logged integers (1), timestamps against ISO strings,
    # booleans, strings, categories: every value must get the same label on both sides.
    frame = export_frame(1500, seed=3)
    measured = _measure(name, as_parquet(frame), as_logged(frame))
    assert measured.counts[0] == measured.counts[1] == frame[name].count()
    assert measured.stats.statistic == pytest.approx(0.0, abs=1e-12)
    assert measured.stats.p_value == pytest.approx(1.0)
    assert measured.stats.psi == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("name", [n for n, kind in KINDS.items() if kind != CATEGORICAL])
def test_numeric_columns_from_parquet_and_from_the_log_agree(name):
    frame = export_frame(1500, seed=4)
    measured = _measure(name, as_parquet(frame), as_logged(frame))
    assert measured.counts == (frame[name].count(), frame[name].count())
    assert measured.stats.statistic == 0.0


def test_labels_of_every_dtype():
    label = categories.category_label
    assert [label(v) for v in (3, np.int64(3), 3.0, np.float32(3.0))] == ["3"] * 4
    assert label(2.5) == "2.5"
    assert [label(True), label(np.bool_(False))] == ["True", "False"]
    assert label(pd.Timestamp("2021-03-04 05:06:07", tz="UTC")) == "2021-03-04T05:06:07+00:00"
    assert label("north") == "north"


def test_a_whole_export_checks_without_error_and_without_drift_against_itself():
    frame = export_frame(3000, seed=5)
    result = run_check(reference_of(frame.iloc[:1500], KINDS), as_logged(frame.iloc[1500:]),
                       check_settings())  # fmt: skip
    assert result.verdict.tested == len(KINDS)
    assert result.verdict.drifted == 0


# ----------------------------------------------------- defect 2: sparse, high cardinality


def test_an_id_like_column_on_random_splits_of_the_same_file_does_not_drift():
    # Before: every reference value had a column and the window's one-off values were piled
    # into one column the reference never fills: 6 of 40 splits flagged (15% of p < 0.05).
    frame = id_like_frame(3300, 1000, seed=7)
    rng = np.random.default_rng(8)
    flagged = 0
    for _ in range(40):
        order = rng.permutation(len(frame))
        reference, window = frame.iloc[order[:3000]], frame.iloc[order[3000:]]
        result = run_check(reference_of(reference, {"key": CATEGORICAL}), as_logged(window),
                           check_settings())  # fmt: skip
        flagged += result.features[0].decision.drifted
    assert flagged <= 2


def test_rare_and_unseen_categories_are_pooled_by_expected_count():
    reference = pd.Series(["a"] * 60 + ["b"] * 30 + ["c"] * 2 + ["d"] + ["y"] * 7)
    window = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] + ["z"] * 3 + ["y"] * 6)
    grouped = categories.group_sparse(
        *categories.observed_counts(reference), *categories.observed_counts(window)
    )
    # expected count in the smaller row (90 of 190): y 13 x 90/190 = 6.2 keeps its column;
    # c 3 -> 1.4, z 3 -> 1.4 (never in the reference), d 1 -> 0.5 are pooled
    assert grouped.labels == ["a", "b", "y", categories.OTHER]
    assert grouped.table.tolist() == [[60, 30, 7, 3], [50, 30, 6, 4]]
    assert grouped.pooled_categories == 3
    assert grouped.min_expected == pytest.approx(7 * 90 / 190)


def test_at_most_max_tested_categories_get_a_column():
    labels = [f"v{i:02d}" for i in range(40)]
    reference = pd.Series(np.repeat(labels, 50))
    grouped = categories.group_sparse(
        *categories.observed_counts(reference), *categories.observed_counts(reference)
    )
    assert len(grouped.labels) == categories.MAX_TESTED + 1
    assert grouped.labels[-1] == categories.OTHER
    assert grouped.pooled_categories == 40 - categories.MAX_TESTED


def test_statistic_plot_and_report_show_the_same_grouped_columns():
    frame = id_like_frame(2000, 150, seed=9)
    result = run_check(reference_of(frame.iloc[:1000], {"key": CATEGORICAL}),
                       as_logged(frame.iloc[1000:]), check_settings())  # fmt: skip
    report = result.features[0].to_json()
    tested = result.features[0].measurement.stats.extra["categories"]
    assert report["plot"]["categories"] == tested
    assert tested[-1] == categories.OTHER
    assert report["grouping"]["testedCategories"] == len(tested)
    assert report["grouping"]["pooledCategories"] > 100
    assert report["grouping"]["minExpected"] >= categories.MIN_EXPECTED * 0.5


def test_a_flood_of_new_values_still_drifts():
    frame = export_frame(2000, seed=10)
    window = as_logged(frame.iloc[1000:]).copy()
    window.loc[window.index[:400], "region"] = "atlantis"  # never seen in training
    result = run_check(reference_of(frame.iloc[:1000], KINDS), window, check_settings())
    region = next(f for f in result.features if f.spec.name == "region")
    assert region.decision.drifted
    assert "atlantis" in region.measurement.plot["categories"]


# ------------------------------------------------------------ defect 3: missing-value shifts


def _with_missing(frame: pd.DataFrame, name: str, share: float, seed: int) -> pd.DataFrame:
    """``frame`` with ``name`` missing in exactly ``share`` of the rows (NaN, NA or None as
    the dtype holds it), the other values untouched."""
    out = frame.copy()
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(out))[: round(share * len(out))]
    out[name] = out[name].where(out[name].notna(), out[name].dropna().iloc[0])
    out.loc[out.index[rows], name] = None
    return out


@pytest.mark.parametrize("name", ["charges", "tenure", "region", "autopay"])
def test_a_missing_share_going_from_10_to_22_percent_drifts(name):
    # Before: nullShare was reported but played no part in the verdict.
    frame = export_frame(4000, seed=11)
    reference = _with_missing(frame.iloc[:2000], name, 0.10, seed=1)
    window = _with_missing(frame.iloc[2000:], name, 0.22, seed=2)
    result = run_check(reference_of(reference, KINDS), as_logged(window), check_settings())
    feature = next(f for f in result.features if f.spec.name == name)
    assert feature.decision.missing_drifted
    assert feature.decision.drifted
    report = feature.to_json()["missingShare"]
    assert (report["reference"], report["current"]) == pytest.approx((0.10, 0.22))
    assert report["pValue"] < 0.05
    assert "missing share 10.0% -> 22.0%" in feature.decision.reason
    others = [f.spec.name for f in result.features if f.decision.drifted]
    assert others == [name]


def test_a_small_missing_share_change_is_significant_but_not_drift():
    frame = export_frame(40_000, seed=12)
    reference = _with_missing(frame.iloc[:20_000], "charges", 0.10, seed=1)
    window = _with_missing(frame.iloc[20_000:], "charges", 0.12, seed=2)
    result = run_check(reference_of(reference, KINDS), as_logged(window), check_settings())
    charges = next(f for f in result.features if f.spec.name == "charges")
    assert charges.decision.missing_p_adjusted < 1e-6  # 40,000 rows see 2 points...
    assert not charges.decision.drifted  # ...but 2 points is under missingShareThreshold


def test_the_missing_share_test_is_scipys_chi_square_and_joins_the_correction():
    shift = missing_shift(100, 1000, 220, 1000)
    chi2, p_value, _, _ = scipy_stats.chi2_contingency([[100, 900], [220, 780]], correction=False)
    assert (shift.statistic, shift.p_value) == (chi2, p_value)
    z = (0.22 - 0.10) / np.sqrt(0.16 * 0.84 * (2 / 1000))  # the pooled two-proportion z
    assert shift.statistic == pytest.approx(z**2)
    assert missing_shift(0, 1000, 0, 500) is None
    assert missing_shift(10, 10, 5, 5) is None


def test_missing_share_threshold_is_a_setting():
    frame = export_frame(4000, seed=13)
    reference = _with_missing(frame.iloc[:2000], "charges", 0.10, seed=1)
    window = _with_missing(frame.iloc[2000:], "charges", 0.22, seed=2)
    settings = check_settings(missingShareThreshold=0.2)
    result = run_check(reference_of(reference, KINDS), as_logged(window), settings)
    charges = next(f for f in result.features if f.spec.name == "charges")
    assert charges.decision.missing_p_adjusted < 0.05
    assert not charges.decision.drifted


def test_the_html_report_says_what_was_pooled_and_how_the_missing_share_moved():
    frame = export_frame(4000, seed=14)
    frame["customer_id"] = frame["customer_id"].astype(str)
    reference = _with_missing(frame.iloc[:2000], "region", 0.10, seed=1)
    window = _with_missing(frame.iloc[2000:], "region", 0.22, seed=2)
    kinds = KINDS | {"customer_id": CATEGORICAL}
    result = run_check(reference_of(reference, kinds), as_logged(window), check_settings())
    sections = {f.spec.name: _feature_section(f.to_json()) for f in result.features}
    assert "Missing share 0.1 reference, 0.22 current" in sections["region"]
    assert "4000 categories pooled into (other)" in sections["customer_id"]
