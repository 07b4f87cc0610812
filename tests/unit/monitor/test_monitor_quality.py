"""Schema and data-quality checks of a window (issue 14): each check on data shaped like real
exports, a Parquet reference (category, Int64, string, boolean, datetime, NaN floats) and a
window back from the JSON log; each test also runs the unchanged window, which must pass."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from continuum.monitor.check import run_check
from continuum.monitor.html import render_html
from continuum.monitor.quality import WindowSchema, known_labels
from continuum.monitor.reference import CATEGORICAL, NUMERIC, FeatureSpec, Reference
from continuum.monitor.report import (
    MAX_SUMMARY_BYTES,
    ReportInputs,
    build_report,
    build_summary,
    encode,
)
from continuum.monitor.settings import MonitorTarget, parse_check_settings
from continuum.monitor.window import CurrentWindow
from tests.kit.datasets import as_logged, as_parquet
from tests.unit.monitor.realdata import export_frame

KINDS = {
    "customer_id": CATEGORICAL,  # one value per row: every window value is new
    "plan": CATEGORICAL,
    "tenure": NUMERIC,  # nullable Int64
    "region": CATEGORICAL,  # string
    "autopay": NUMERIC,  # boolean, numeric to the trainer (pandas counts bool as numeric)
    "signed_up": CATEGORICAL,  # datetime
    "charges": NUMERIC,  # float with NaN
    "store": CATEGORICAL,  # float codes 1.0..4.0 in Parquet, 1..4 in the log
}


def trained(frame: pd.DataFrame) -> Reference:
    """The reference as the trainer leaves it: Parquet sample, manifest dtype and categories
    (``str(value)``, as continuum.trainer.validation writes them)."""
    sample = as_parquet(frame)
    specs = tuple(
        FeatureSpec(
            name,
            kind,
            str(sample[name].dtype),
            tuple(sorted(sample[name].dropna().astype(str).unique()))
            if kind == CATEGORICAL
            else (),
        )
        for name, kind in KINDS.items()
    )
    return Reference(specs, sample, None, None)


def settings(**quality: object):
    return parse_check_settings(
        {"window": {"maxRows": 100_000, "minSamples": 50}, "quality": quality}
    )


@pytest.fixture(scope="module")
def halves() -> tuple[Reference, pd.DataFrame]:
    frame = export_frame(4000, seed=3)
    window = frame.iloc[2000:].drop(columns=["churned"]).reset_index(drop=True)  # not logged
    return trained(frame.iloc[:2000]), as_logged(window)


def failed(result, name: str) -> list[str]:
    feature = result.quality.of(name)
    assert feature is not None
    return feature.failed


def test_the_same_data_passes_every_check(halves):
    reference, window = halves
    result = run_check(reference, window, settings())
    assert result.quality.passed, result.quality.failures()
    # the ID-like column: nearly every value new, and the reference predicts it (Good-Turing)
    unseen = result.quality.of("customer_id").findings[-1]
    assert unseen.detail["share"] > 0.99
    assert unseen.detail["expected"] > 0.99
    assert not unseen.failed


def test_a_feature_absent_from_every_row_is_a_missing_column(halves):
    reference, window = halves
    result = run_check(reference, window.drop(columns=["region"]), settings())
    assert not result.quality.passed
    assert failed(result, "region") == ["missingColumn"]
    assert result.quality.failures() == [
        f"region: absent from all {len(window)} logged rows (missing column)"
    ]
    assert result.quality.to_json()["missingColumns"] == ["region"]


def test_a_key_absent_from_some_rows_counts_as_missing_values(halves):
    reference, window = halves
    schema = WindowSchema(len(window), absent={"region": 300})
    result = run_check(reference, window, settings(), schema)
    checks = result.quality.of("region").to_json()["checks"]
    assert checks["missingShare"]["absentRows"] == 300
    assert "missingColumn" not in checks


def test_numbers_arriving_as_text_are_a_type_change(halves):
    reference, window = halves
    changed = window.copy()
    rows = changed.index[changed["charges"].notna()][:40]
    changed.loc[rows, "charges"] = changed.loc[rows, "charges"].map(str)  # "70.5"
    result = run_check(reference, changed, settings())
    assert failed(result, "charges") == ["typeMismatch"]
    finding = result.quality.of("charges").to_json()["checks"]["typeMismatch"]
    assert finding["found"]["text"] == 40
    assert finding["expected"] == "number"
    (line,) = result.quality.failures()
    assert line.startswith("charges: 2.1% of values are not numbers (text: 40; e.g. '")
    # a limit above the share lets it pass
    assert run_check(reference, changed, settings(maxTypeMismatchShare=0.05)).quality.passed


def test_a_boolean_feature_expects_booleans_and_numbers_are_a_change(halves):
    reference, window = halves
    assert run_check(reference, window, settings()).quality.of("autopay").failed == []
    changed = window.assign(autopay=window["autopay"].map(lambda v: None if v is None else int(v)))
    assert failed(run_check(reference, changed, settings()), "autopay") == ["typeMismatch"]


def test_values_outside_the_training_range_over_the_limit_fail(halves):
    reference, window = halves
    high = float(reference.frame["charges"].max())
    changed = window.copy()
    present = changed.index[changed["charges"].notna()]
    changed.loc[present[:200], "charges"] = high + 50.0  # about 10% of the values
    result = run_check(reference, changed, settings())
    assert failed(result, "charges") == ["outOfRange"]
    finding = result.quality.of("charges").to_json()["checks"]["outOfRange"]
    assert finding["above"] == 200
    assert finding["below"] == 0
    assert finding["value"] == pytest.approx(200 / len(present))
    assert "outside the training range" in result.quality.failures()[0]
    # 2% above the range is under the 5% default
    changed.loc[present[40:200], "charges"] = window.loc[present[40:200], "charges"]
    assert run_check(reference, changed, settings()).quality.passed


def test_a_new_category_over_the_limit_fails_whatever_the_dtype(halves):
    reference, window = halves
    changed = window.copy()
    changed.loc[changed.index[:300], "plan"] = "enterprise"  # unused level of the category
    changed.loc[changed.index[:300], "store"] = 9  # float codes in Parquet
    result = run_check(reference, changed, settings())
    assert failed(result, "plan") == ["unseenCategories"]
    assert failed(result, "store") == ["unseenCategories"]
    plan = result.quality.of("plan").to_json()["checks"]["unseenCategories"]
    assert plan["examples"] == ["enterprise"]
    assert plan["unseenValues"] == 300
    assert any(
        line.startswith("plan: 15.0% of values unseen") for line in result.quality.failures()
    )


def test_training_categories_listed_as_text_match_the_logged_values():
    # The manifest lists str(value): "3.0" for float codes and "2021-05-01 00:00:00+00:00"
    # for timestamps; the log holds 3 and "2021-05-01T00:00:00Z": the same categories.
    sample = as_parquet(
        pd.DataFrame(
            {
                "code": [1.0, 2.0, np.nan],
                "day": pd.to_datetime(["2021-05-01", "2021-05-02", None], utc=True),
            }
        )
    )
    code = FeatureSpec("code", CATEGORICAL, "float64", ("1.0", "2.0", "3.0"))
    assert known_labels(code, sample["code"], ["1", "2"]) == {"1", "2", "3"}
    day = FeatureSpec("day", CATEGORICAL, "datetime64[ns, UTC]", ("2021-05-03 00:00:00+00:00",))
    assert "2021-05-03T00:00:00+00:00" in known_labels(day, sample["day"], [])


def test_a_rise_of_the_missing_share_over_the_limit_fails(halves):
    reference, window = halves
    changed = window.copy()
    changed.loc[changed.index[:600], "tenure"] = None  # ~5% -> ~33% on the Int64 column
    result = run_check(reference, changed, settings())
    assert failed(result, "tenure") == ["missingShare"]
    line = next(x for x in result.quality.failures() if x.startswith("tenure"))
    assert line.startswith("tenure: missing share 4.8% -> 33.5% (+28.7 points; limit +10.0)")


def test_extra_columns_are_reported_and_fail_only_when_asked(halves):
    reference, window = halves
    changed = window.assign(coupon="SPRING")
    lenient = run_check(reference, changed, settings())
    assert lenient.quality.passed
    assert lenient.quality.to_json()["extraColumns"] == {"coupon": 2000}
    strict = run_check(reference, changed, settings(failOnExtraColumns=True))
    assert not strict.quality.passed
    assert strict.quality.failures() == ["1 logged column(s) not in the training schema: coupon"]


def test_disabled_checks_are_reported_as_not_run(halves):
    reference, window = halves
    result = run_check(reference, window.drop(columns=["region"]), settings(enabled=False))
    assert result.quality is None


def report_inputs(check_settings, frame: pd.DataFrame) -> ReportInputs:
    window = CurrentWindow(frame, 1, 1, False, None, None)
    target = MonitorTarget("m", "churn", 1)
    return ReportInputs(target, check_settings, window, 2000, "s3://b/ref", "t", "t", "s3://b/r")


def test_report_summary_and_html_carry_the_quality_verdict(halves):
    reference, window = halves
    changed = window.drop(columns=["region"]).assign(coupon="x")
    changed.loc[changed.index[:600], "tenure"] = None
    changed.loc[changed.index[:300], "plan"] = "enterprise"
    result = run_check(reference, changed, settings())
    report = build_report(report_inputs(settings(), changed), result)
    assert report["quality"]["passed"] is False
    assert report["quality"]["extraColumns"] == {"coupon": 2000}
    by_name = {f["name"]: f for f in report["features"]}
    assert by_name["plan"]["quality"]["failed"] == ["unseenCategories"]
    summary = build_summary(report)
    assert summary["quality"]["passed"] is False
    assert summary["quality"]["failuresTotal"] == 3
    assert summary["quality"]["checks"] == ["missingColumn", "missingShare", "unseenCategories"]
    assert {f["name"]: f["quality"] for f in summary["features"]}["region"] == ["missingColumn"]
    assert len(encode(summary)) <= MAX_SUMMARY_BYTES
    html = render_html(json.loads(json.dumps(report)))
    assert "Data quality" in html
    assert "region: absent from all 2000 logged rows" in html
