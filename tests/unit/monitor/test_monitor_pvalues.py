"""Honest p-values (issue 14 defects 4 and 5): no 0.0 anywhere, the method of each p-value
named, and every warning raised while measuring recorded in the report."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from continuum.api.driftmonitor import P_VALUE_FLOOR
from continuum.controllers.driftmonitor import metrics
from continuum.controllers.driftmonitor.verdicts import drift_summary
from continuum.controllers.shared.metrics import REGISTRY
from continuum.monitor import caught
from continuum.monitor.check import measure, measure_features, run_check
from continuum.monitor.html import render_html
from continuum.monitor.reference import NUMERIC, FeatureSpec, Reference
from continuum.monitor.run import run_monitor
from continuum.monitor.settings import MonitorTarget, parse_check_settings
from continuum.monitor.verdict import P_FLOOR, floored, underflowed
from continuum.storage.reports import read_report
from tests.kit.datasets import as_logged, customers
from tests.unit.monitor.conftest import MODEL, VERSION, log_rows
from tests.unit.monitor.realdata import check_settings, reference_of

SEPARATED = {"x": NUMERIC}
KS_2SAMP = scipy_stats.ks_2samp  # scipy's own, before a test replaces it


def _separated(rows: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(0, 1, rows)}), pd.DataFrame({"x": rng.normal(3, 1, rows)})


def test_the_floor_is_the_smallest_normal_double():
    assert P_VALUE_FLOOR == P_FLOOR == sys.float_info.min


def test_an_underflowed_p_value_is_a_flagged_bound_not_zero():
    reference, current = _separated()
    assert scipy_stats.ks_2samp(reference["x"], current["x"]).pvalue == 0.0  # scipy underflows
    result = run_check(reference_of(reference, SEPARATED), as_logged(current), check_settings())
    report = result.features[0].to_json()
    assert report["rawPValue"] == P_FLOOR
    assert report["pValue"] == P_FLOOR  # holm over one test: p x 1
    assert report["pValueUnderflow"] is True
    assert report["drifted"] is True


def test_a_p_value_that_did_not_underflow_is_not_flagged():
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 500)})
    current = pd.DataFrame({"x": rng.normal(0.3, 1, 500)})
    report = run_check(reference_of(reference, SEPARATED), as_logged(current),
                       check_settings()).features[0].to_json()  # fmt: skip
    assert report["pValueUnderflow"] is False
    assert report["rawPValue"] == scipy_stats.ks_2samp(reference["x"], current["x"]).pvalue


def test_summary_status_and_metrics_carry_the_same_bound(store):
    # tenure and charges 6 standard deviations away: both KS p-values underflow to 0
    log_rows(store, customers(3000, 2, shift=6.0))
    settings = parse_check_settings({"window": {"maxRows": 2000, "minSamples": 100}})
    summary = run_monitor(
        store, MonitorTarget("mon", MODEL, VERSION), settings, time="20250131T120000Z"
    )
    report = read_report(store, "mon", "20250131T120000Z")
    under = [f for f in summary["features"] if f["pValueUnderflow"]]
    assert {f["name"] for f in under} == {"tenure", "charges"}
    assert all(f["pValue"] > 0 for f in summary["features"])
    by_name = {f["name"]: f for f in report["features"]}
    for feature in under:
        assert feature["pValue"] == by_name[feature["name"]]["pValue"]
    status = drift_summary(summary)
    flagged = {f.name: f for f in status.features if f.p_value_underflow}
    assert set(flagged) == {"tenure", "charges"}
    assert all(f.p_value == by_name[f.name]["pValue"] for f in flagged.values())
    metrics.export_features("ns", "mon", summary["features"])
    gauge = REGISTRY.get_sample_value(
        "continuum_drift_feature_p_value",
        {"namespace": "ns", "monitor": "mon", "feature": "tenure", "test": "ks"},
    )
    assert gauge == by_name["tenure"]["pValue"] > 0
    assert "&le; " in render_html(report)
    metrics.clear_metrics("ns", "mon")


def test_each_feature_says_which_method_gave_its_p_value():
    rng = np.random.default_rng(2)
    kinds = {"x": NUMERIC, "c": "categorical"}
    for rows, ks_method in ((800, "exact"), (12_000, "asymp")):
        reference, current = (
            pd.DataFrame({"x": rng.normal(size=rows), "c": rng.choice(["a", "b"], rows)})
            for _ in range(2)
        )
        result = run_check(reference_of(reference, kinds), as_logged(current), check_settings())
        methods = {f.spec.name: f.to_json()["method"] for f in result.features}
        assert methods == {"x": ks_method, "c": "asymp"}
        assert all(f.measurement.warnings == () for f in result.features)


SWITCHED = "RuntimeWarning: ks_2samp: Exact calculation unsuccessful. Switching to method=asymp."


def _one_step_apart(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two equal-sized samples whose ECDFs differ by one step, D = 1/n: scipy 1.17's exact
    sum fails there (it leaves [0, 1]) and ks_2samp warns and returns the asymptotic p."""
    values = np.random.default_rng(seed).normal(size=rows)
    return values, values + 1e-12


def test_a_switch_to_asymp_inside_the_exact_range_is_recorded():
    # Before: the report said nothing and the code's comment promised the exact p-value.
    reference, current = _one_step_apart(800, seed=4)
    measured = measure(FeatureSpec("x", NUMERIC), pd.Series(reference), pd.Series(current))
    assert measured.stats.statistic == 1 / 800
    assert measured.stats.method == "asymp"
    assert measured.stats.p_value == KS_2SAMP(reference, current, method="asymp").pvalue
    assert measured.warnings == (SWITCHED,)


def test_warnings_of_parallel_features_go_to_their_own_feature():
    # Six features on two workers; "b" and "e" make scipy fall back, the others do not. The
    # warning must land on the feature that raised it every time, though the default filter
    # would show a warning from one code location only once per process.
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({n: rng.normal(size=800) for n in "abcdef"})
    current = pd.DataFrame({n: rng.normal(size=800) for n in "abcdef"})
    for name in "be":
        reference[name], current[name] = _one_step_apart(800, seed=ord(name))
    ref = Reference(tuple(FeatureSpec(n, NUMERIC) for n in "abcdef"), reference, None, None)
    for _ in range(5):
        measured = measure_features(ref, current, workers=2)
        assert [m.warnings for m in measured] == [(), (SWITCHED,), (), (), (SWITCHED,), ()]
        methods = [m.stats.method for m in measured]
        assert methods == ["exact", "asymp", "exact", "exact", "asymp", "exact"]


def test_a_warning_is_named_in_the_notes_and_the_report():
    reference, current = _one_step_apart(800, seed=6)
    result = run_check(reference_of(pd.DataFrame({"x": reference}), SEPARATED),
                       pd.DataFrame({"x": current}), check_settings())  # fmt: skip
    assert result.notes[0] == f"x: 1 warning(s) while measuring: {SWITCHED}"
    assert result.features[0].to_json()["warnings"] == [SWITCHED]
    assert result.features[0].to_json()["method"] == "asymp"


def test_recorded_outside_a_pool_still_catches_repeated_warnings():
    for _ in range(3):  # the default filter would show this one once
        with caught.recorded() as warned:
            warnings.warn("again", UserWarning, stacklevel=1)
        assert warned == ["UserWarning: again"]


@pytest.mark.parametrize("p_value", [0.0, 5e-324, 1e-310])
def test_every_p_value_below_the_floor_is_raised_to_it(p_value):
    assert floored(p_value) == P_FLOOR
    assert underflowed(p_value)
    assert not underflowed(P_FLOOR)
