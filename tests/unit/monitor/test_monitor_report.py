"""report.json, report.html and the summary: content, self-containment, escaping, size."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest

from continuum.api import FeatureDrift
from continuum.api.driftmonitor import SUMMARY_FEATURE_KEYS
from continuum.monitor import plots
from continuum.monitor.html import render_html
from continuum.monitor.report import MAX_SUMMARY_BYTES, build_summary, encode, finite
from continuum.monitor.run import run_monitor
from continuum.monitor.settings import MonitorTarget, parse_check_settings
from continuum.storage.reports import read_report, read_summary
from tests.kit.datasets import customers
from tests.unit.monitor.conftest import MODEL, VERSION, log_rows

TIME = "20250131T120000Z"
TARGET = MonitorTarget("mon", MODEL, VERSION)


class StrictParser(HTMLParser):
    """Tracks open elements; fails on a close tag that does not match."""

    VOID = frozenset({"meta", "br", "img", "input", "link", "hr", "line", "rect"})

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.counts: dict[str, int] = {}
        self.attributes: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.attributes += [value or "" for _, value in attrs]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        assert self.stack, f"</{tag}> closes nothing"
        assert self.stack.pop() == tag, f"</{tag}> closes the wrong element"


@pytest.fixture
def drifted(store):
    log_rows(store, customers(3000, 2, shift=1.0))
    settings = parse_check_settings(
        {"window": {"maxRows": 2000, "minSamples": 100}, "sensitiveFeature": "plan"}
    )
    summary = run_monitor(store, TARGET, settings, time=TIME)
    return summary, read_report(store, "mon", TIME)


def test_report_json_round_trips_and_holds_inputs_and_results(store, drifted):
    summary, report = drifted
    assert json.loads(json.dumps(report)) == report
    assert (report["monitor"], report["model"], report["version"]) == ("mon", MODEL, VERSION)
    assert report["verdict"] == "Drift"
    assert report["window"]["rows"] == 2000
    assert report["window"]["truncated"] is True
    assert report["window"]["strategy"] == "newest"
    assert report["reference"]["rows"] == 2000
    assert report["settings"]["tests"]["correction"] == "holm"
    names = {f["name"]: f for f in report["features"]}
    assert names["tenure"]["drifted"]
    assert names["charges"]["drifted"]
    assert not names["plan"]["drifted"]
    assert names["tenure"]["plot"]["kind"] == "histogram"
    assert names["plan"]["plot"]["kind"] == "bars"
    assert report["fairness"]["feature"] == "plan"
    assert summary == read_summary(store, "mon", TIME)
    assert summary["reportURI"] == "s3://bucket/reports/mon/20250131T120000Z/"


def test_html_is_well_formed_self_contained_and_has_plots(store, drifted):
    html = store.get_bytes(f"reports/mon/{TIME}/report.html").decode()
    parser = StrictParser()
    parser.feed(html)
    parser.close()
    assert parser.stack == []
    assert parser.counts["svg"] == 3
    assert parser.counts.get("script", 0) == 0
    assert "http://" not in html
    assert "https://" not in html
    assert not any(value.startswith(("//", "http")) for value in parser.attributes)
    assert "Drift" in html
    assert "newest 2000 rows" in html


def test_html_escapes_names(drifted):
    _, report = drifted
    evil = "<script>alert(1)</script>"
    report["features"][0]["name"] = evil
    report["features"][2]["plot"]["categories"][0] = "<b>&"
    report["notes"] = ["<i>note</i>"]
    html = render_html(report)
    assert evil not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>" not in html
    assert "<i>" not in html
    parser = StrictParser()
    parser.feed(html)
    assert parser.counts.get("script", 0) == 0


def test_insufficient_data_report(store):
    log_rows(store, customers(50, 2))
    summary = run_monitor(store, TARGET, parse_check_settings({}), time=TIME)
    assert summary["verdict"] == "InsufficientData"
    assert summary["datasetDrift"] is None
    assert summary["features"] == []
    report = read_report(store, "mon", TIME)
    assert "minSamples=200" in report["notes"][0]
    assert "InsufficientData" in render_html(report)


def test_summary_fits_4_kib_with_many_features():
    features = [
        {"name": f"feature_{i:03d}", "test": "ks", "statistic": 0.1234567, "pValue": i / 1000,
         "effectSize": 0.1234567, "drifted": i % 50 == 0}
        for i in range(300)
    ]  # fmt: skip
    report = {"verdict": "Drift", "datasetDrift": True, "share": 0.5, "reportURI": "s3://b/r/",
              "window": {"rows": 10}, "features": features, "fairness": None}  # fmt: skip
    summary = build_summary(report)
    assert len(encode(summary)) <= MAX_SUMMARY_BYTES
    assert summary["featuresTotal"] == 300
    assert summary["featuresTruncated"] is True
    kept = summary["features"]
    assert kept[0]["drifted"]
    assert [f["drifted"] for f in kept[:7]] == [True] * 6 + [False]  # drifted ones first


def test_finite_replaces_nan_and_infinity():
    value = {"a": float("nan"), "b": [float("inf"), 1.5], "c": np.float64(2.0)}
    assert finite(value) == {"a": None, "b": [None, 1.5], "c": 2.0}


def test_report_of_a_feature_without_values(store):
    frame = customers(300, 2)
    frame["charges"] = np.nan
    log_rows(store, frame)
    run_monitor(store, TARGET, parse_check_settings({}), time=TIME)
    report = read_report(store, "mon", TIME)
    charges = next(f for f in report["features"] if f["name"] == "charges")
    assert charges["test"] == "none"
    assert charges["plot"] is None
    assert charges["nullShare"]["current"] == 1.0
    assert "No values to plot" in render_html(report)


def test_histogram_of_sorted_samples_equals_numpy_histogram_of_clipped_values():
    rng = np.random.default_rng(8)
    reference, current = rng.normal(0, 1, 5_000), rng.normal(0.5, 2, 4_000)
    plot = plots.numeric_plot(np.sort(reference), np.sort(current))
    edges = np.asarray(plot["edges"])
    low = min(np.quantile(reference, 0.01), np.quantile(current, 0.01))
    high = max(np.quantile(reference, 0.99), np.quantile(current, 0.99))
    assert (edges[0], edges[-1]) == (low, high)
    for sample, shares in ((reference, plot["reference"]), (current, plot["current"])):
        counts, _ = np.histogram(np.clip(sample, edges[0], edges[-1]), bins=edges)
        assert shares == [c / sample.size for c in counts]


def test_the_summary_feature_keys_are_feature_drift_fields_as_json_spells_them():
    assert tuple(f.alias for f in FeatureDrift.model_fields.values()) == SUMMARY_FEATURE_KEYS
