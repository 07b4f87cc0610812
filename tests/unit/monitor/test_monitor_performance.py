"""Live performance in a check (monitor.performance, monitor.live), end to end on a store.

A real model (a depth-limited forest on the churn data of tests/kit) is published as the
trainer publishes a version (manifest with holdout metrics, reference sample, calibration),
its predictions logged as the server logs them (request id, row, features, prediction,
probabilities), labels dropped as CSV and Parquet files; then the monitor's own entry point
(``run_monitor``) writes the report and the summary the operator reads.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from continuum.api.driftmonitor import Performance
from continuum.errors import ConfigError
from continuum.monitor import performance as perf
from continuum.monitor.fairness import error_rates
from continuum.monitor.intervals import Interval
from continuum.monitor.run import run_monitor
from continuum.monitor.settings import MonitorTarget, parse_check_settings
from continuum.storage import layout
from continuum.storage.inference_logs import write_batch
from continuum.storage.reports import report_time
from continuum.trainer.calibration import calibration_document
from tests.kit.datasets import as_parquet, churn_labels, customers
from tests.kit.memory_store import MemoryObjectStore

MODEL, VERSION = "churn", 1
FEATURES = ["tenure", "charges", "plan"]
SCHEMA = [
    {"name": "tenure", "kind": "numeric", "dtype": "float64", "categories": []},
    {"name": "charges", "kind": "numeric", "dtype": "float64", "categories": []},
    {"name": "plan", "kind": "categorical", "dtype": "object", "categories": []},
]
TARGET = MonitorTarget("churn-monitor", MODEL, VERSION)


def population(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = customers(rows, rng)
    frame["churned"] = churn_labels(frame, rng)
    return frame


@pytest.fixture(scope="module")
def pipeline():
    encode = ColumnTransformer(
        [("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"
    )
    model = make_pipeline(encode, RandomForestClassifier(40, max_depth=3, random_state=0))
    train = population(4000, 20)
    return model.fit(train[FEATURES], train["churned"].astype(str))


def publish(store: MemoryObjectStore, pipeline, *, calibrate: bool = True) -> dict[str, float]:
    """The version as the trainer writes it; returns its holdout metrics."""
    holdout = population(2000, 21)
    predicted = pipeline.predict(holdout[FEATURES])
    metrics = {
        "accuracy": float(accuracy_score(holdout["churned"], predicted)),
        "f1": float(f1_score(holdout["churned"], predicted, pos_label="yes")),
    }
    manifest = {
        "model": MODEL, "version": VERSION, "sha256": "0" * 64, "qualified": True,
        "metrics": metrics, "evaluation": {"metric": "accuracy"}, "features": SCHEMA,
        "task": "classification", "target": "churned",
    }  # fmt: skip
    store.put_json(layout.version_key(MODEL, VERSION, layout.MANIFEST_FILE), manifest)
    sample = as_parquet(holdout[[*FEATURES, "churned"]])
    store.put_bytes(
        layout.version_key(MODEL, VERSION, layout.REFERENCE_FILE), sample.to_parquet(index=False)
    )
    if calibrate:
        document = calibration_document(pipeline, holdout[FEATURES], holdout["churned"])
        store.put_json(layout.version_key(MODEL, VERSION, layout.CALIBRATION_FILE), document)
    return metrics


def serve(store: MemoryObjectStore, pipeline, frame: pd.DataFrame, end: datetime) -> list[str]:
    """Log ``frame`` as requests of 4 rows over the two hours before ``end``; their ids."""
    proba = pipeline.predict_proba(frame[FEATURES])
    predicted = pipeline.predict(frame[FEATURES])
    ids, rows = [], []
    start = end - timedelta(hours=2)
    for i, record in enumerate(frame[FEATURES].to_dict(orient="records")):
        request = f"req-{i // 4:05d}"
        moment = start + (end - start) * (i / len(frame))
        rows.append({
            "ts": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "request_id": request,
            "row": i % 4, "model": MODEL, "version": VERSION, "features": record,
            "prediction": str(predicted[i]), "proba": proba[i].tolist(),
        })  # fmt: skip
        ids.append(request)
    for offset in range(0, len(rows), 500):
        batch = rows[offset : offset + 500]
        written = datetime.fromisoformat(batch[-1]["ts"].replace("Z", "+00:00"))
        write_batch(store, MODEL, VERSION, batch, written + timedelta(seconds=1))
    return ids


def drop_labels(store: MemoryObjectStore, ids: list[str], labels: np.ndarray) -> None:
    """Half the labels as a CSV file, half as Parquet (pyarrow), as a user's systems drop them."""
    frame = pd.DataFrame({"id": ids, "row": [i % 4 for i in range(len(ids))], "label": labels})
    half = len(frame) // 2
    store.put_bytes(f"labels/{MODEL}/2026/a.csv", frame.iloc[:half].to_csv(index=False).encode())
    buffer = io.BytesIO()
    part = frame.iloc[half:].astype({"row": "Int64", "label": "category"})
    part.to_parquet(buffer, index=False, engine="pyarrow")
    store.put_bytes(f"labels/{MODEL}/2026/b.parquet", buffer.getvalue())


def check(store: MemoryObjectStore, later: int = 0, **performance) -> tuple[dict, dict]:
    """One check at the current time (``later`` minutes on, for a second check): the report
    folder's time is the check's time, as the operator names it after its slot."""
    settings = parse_check_settings(
        {"window": {"minSamples": 50}, "sensitiveFeature": "plan",
         "performance": {"windowSeconds": 86400, "minLabels": 200, **performance}}
    )  # fmt: skip
    time = report_time(datetime.now(UTC) + timedelta(minutes=later))
    summary = run_monitor(store, TARGET, settings, time=time)
    report = store.get_json(f"reports/{TARGET.monitor}/{time}/report.json")
    return summary, report


def flipped(frame: pd.DataFrame) -> np.ndarray:
    """Concept drift: the basic plan's customers now churn when they did not, and back."""
    other = np.where(frame["churned"] == "yes", "no", "yes")
    return np.where(frame["plan"] == "basic", other, frame["churned"])


# ---------------------------------------------------------------- end to end


def test_healthy_model_held_with_estimate_beside_realised(pipeline) -> None:
    store = MemoryObjectStore("bucket")
    holdout = publish(store, pipeline)
    live = population(3000, 22)
    ids = serve(store, pipeline, live, datetime.now(UTC) - timedelta(minutes=1))
    drop_labels(store, ids, live["churned"].to_numpy())
    summary, report = check(store, estimate=True)
    section = report["performance"]
    assert summary["performance"]["verdict"] == "Held"
    assert summary["performance"]["basis"] == "realised"
    assert section["join"]["matched"] == 3000
    assert section["join"]["unknownIds"] == 0
    realised = section["realised"]
    assert realised["lower"] <= holdout["accuracy"] <= realised["upper"]
    truth = accuracy_score(live["churned"], pipeline.predict(live[FEATURES]))
    assert realised["value"] == pytest.approx(truth, abs=1e-12)
    same = section["estimatedOnRealisedWindow"]  # estimate vs realised, the same rows
    assert same["lower"] <= realised["value"] <= same["upper"]
    assert sum(map(sum, section["confusionMatrix"]["matrix"])) == 3000
    assert len(section["timeline"]) == perf.CHUNKS
    assert section["fairness"]["equalOpportunityGap"] is not None
    html = store.get_bytes(report["reportURI"].removeprefix("s3://bucket/") + "report.html")
    assert b"Performance" in html
    assert b"Confusion matrix" in html


def test_concept_drift_realised_degraded_estimate_blind(pipeline) -> None:
    store = MemoryObjectStore("bucket")
    publish(store, pipeline)
    live = population(3000, 23)
    ids = serve(store, pipeline, live, datetime.now(UTC) - timedelta(minutes=1))
    drop_labels(store, ids, flipped(live))
    summary, _report = check(store, estimate=True)
    assert summary["verdict"] == "NoDrift"  # the inputs did not move
    found = summary["performance"]
    assert (found["verdict"], found["basis"]) == ("Degraded", "realised")
    assert found["realised"]["upper"] < found["holdout"] - found["maxDrop"]
    assert found["estimated"]["lower"] <= found["holdout"] <= found["estimated"]["upper"]
    assert "below holdout" in found["reason"]


def test_before_labels_the_estimate_decides(pipeline) -> None:
    store = MemoryObjectStore("bucket")
    publish(store, pipeline)
    serve(store, pipeline, population(1500, 24), datetime.now(UTC) - timedelta(minutes=1))
    summary, report = check(store, estimate=True)
    found = summary["performance"]
    assert (found["verdict"], found["basis"], found["realised"]) == ("Held", "estimated", None)
    assert report["performance"]["join"]["unlabelled"] == 1500
    no_estimate, _ = check(store, later=1)
    assert no_estimate["performance"]["verdict"] == "InsufficientData"
    assert "fewer than minLabels=200" in no_estimate["performance"]["reason"]


def test_label_delay_leaves_young_predictions_waiting(pipeline) -> None:
    store = MemoryObjectStore("bucket")
    publish(store, pipeline)
    live = population(1000, 25)
    ids = serve(store, pipeline, live, datetime.now(UTC) - timedelta(minutes=1))
    drop_labels(store, ids, live["churned"].to_numpy())
    _, report = check(store, labelDelaySeconds=3600)  # the newest hour has not matured
    join = report["performance"]["join"]
    assert 400 <= join["matched"] <= 600
    assert join["waiting"] == 1000 - join["matched"]


def test_a_metric_that_does_not_fit_is_said_not_fatal(pipeline) -> None:
    store = MemoryObjectStore("bucket")
    publish(store, pipeline)
    serve(store, pipeline, population(300, 26), datetime.now(UTC))
    summary, _ = check(store, metric="rmse")
    assert summary["status"] == "Succeeded"
    assert summary["verdict"] in {"Drift", "NoDrift"}
    assert summary["performance"]["verdict"] == "InsufficientData"
    assert "rmse does not fit the served version, a classifier" in summary["performance"]["reason"]


def test_no_calibration_says_retrain(pipeline) -> None:
    store = MemoryObjectStore("bucket")
    publish(store, pipeline, calibrate=False)
    serve(store, pipeline, population(300, 27), datetime.now(UTC))
    _, report = check(store, estimate=True)
    assert report["performance"]["estimated"] is None
    assert any("no baseline/calibration.json" in n for n in report["performance"]["notes"])


# ---------------------------------------------------------------- pure rules


def _interval(value: float, low: float, high: float, rows: int = 500) -> Interval:
    return Interval(value, low, high, rows, "test")


@pytest.mark.parametrize(
    ("metric", "interval", "expected"),
    [
        ("accuracy", _interval(0.80, 0.78, 0.829), "Degraded"),  # upper below 0.88 - 0.05
        ("accuracy", _interval(0.81, 0.79, 0.831), "Held"),  # upper reaches 0.83
        ("rmse", _interval(14.0, 12.1, 16.0), "Degraded"),  # lower above 10 + 2
        ("rmse", _interval(14.0, 11.9, 16.0), "Held"),
    ],
)
def test_degraded_only_when_the_whole_interval_clears_the_drop(metric, interval, expected) -> None:
    holdout, drop = (0.88, 0.05) if metric == "accuracy" else (10.0, 2.0)
    found = perf.verdict(perf.Evidence(metric, holdout, interval, None, 100, drop))
    assert found[:2] == (expected, "realised")


def test_degraded_when_either_side_is_realised_first() -> None:
    few, low = _interval(0.5, 0.1, 0.6, rows=50), _interval(0.5, 0.4, 0.6, rows=5000)
    fine = _interval(0.9, 0.88, 0.92, rows=5000)

    def found(realised, estimated, holdout=0.9):
        return perf.verdict(perf.Evidence("accuracy", holdout, realised, estimated, 100, 0.05))

    assert found(few, low)[:2] == ("Degraded", "estimated")  # too few labels: the estimate
    assert found(fine, low)[:2] == ("Degraded", "estimated")  # older window fine, newest not
    assert found(low, fine)[:2] == ("Degraded", "realised")
    assert found(low, low)[:2] == ("Degraded", "realised")  # labels named first
    assert found(fine, fine)[:2] == ("Held", "realised")
    assert found(few, fine)[:2] == ("Held", "estimated")
    assert found(few, None)[0] == "InsufficientData"
    assert found(low, None, holdout=None)[2] == (
        "the served version's manifest has no holdout accuracy")  # fmt: skip


def test_error_rate_gaps_per_group() -> None:
    """Group a: TPR 0.8, FPR 0.1; group b: TPR 0.5, FPR 0.3; group c too small to count."""
    rows = []
    for group, tpr, fpr, n in (("a", 0.8, 0.1, 100), ("b", 0.5, 0.3, 100), ("c", 0.0, 1.0, 10)):
        positives, negatives = n, n
        hits = int(tpr * positives)
        false = int(fpr * negatives)
        rows += [(group, True, i < hits) for i in range(positives)]
        rows += [(group, False, i < false) for i in range(negatives)]
    frame = pd.DataFrame(rows, columns=["g", "y", "hit"])
    found = error_rates(frame["g"].astype("category"), frame["y"], frame["hit"],
                        feature="g", positive="yes", threshold=0.25)  # fmt: skip
    assert found.tpr_gap == pytest.approx(0.3)
    assert found.fpr_gap == pytest.approx(0.2)
    assert found.equalised_odds_gap == pytest.approx(0.3)
    assert found.flagged
    assert [g.group for g in found.groups] == ["a", "b", "c"]


def test_performance_spec_is_validated_like_the_crd() -> None:
    assert parse_check_settings({"performance": {}}).performance == Performance()
    with pytest.raises(ConfigError, match=r"monitor spec is invalid: performance\.confidence"):
        parse_check_settings({"performance": {"confidence": 1.5}})


def test_html_section_escapes_data_and_draws_the_window() -> None:
    from continuum.monitor.performance_html import performance_section  # noqa: PLC0415

    interval = {"value": 0.8, "lower": 0.75, "upper": 0.85, "rows": 300}
    section = {
        "metric": "accuracy", "verdict": "Degraded", "basis": "realised", "reason": "<b>why</b>",
        "holdout": 0.9, "maxDrop": 0.05, "bound": 0.85, "confidence": 0.95,
        "realised": interval, "estimated": None, "estimatedOnRealisedWindow": interval,
        "timeline": [{"start": "2026-12-01T00:00:00+00:00", "end": "2026-12-01T01:00:00+00:00",
                      "rows": 300, "realised": interval, "estimated": interval}] * 3,
        "confusionMatrix": {"classes": ["no", "<yes>"], "matrix": [[100, 20], [40, 140]]},
        "fairness": {"feature": "plan", "positiveClass": "<yes>", "threshold": 0.1,
                     "equalOpportunityGap": 0.2, "falsePositiveRateGap": 0.1,
                     "equalisedOddsGap": 0.2, "flagged": True,
                     "groups": [{"group": "<script>", "positives": 30, "negatives": 40,
                                 "truePositiveRate": 0.5, "falsePositiveRate": 0.1}]},
        "join": {"matched": 300, "unknownIds": 2}, "notes": ["a & b"],
    }  # fmt: skip
    html = performance_section(section, {"gap": 0.05})
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;b&gt;why&lt;/b&gt;" in html
    assert html.count("<circle") == 6  # realised and estimated in each of 3 stretches
    assert "stroke-dasharray" in html  # the bound line
    assert "<td>140</td>" in html
    assert "a &amp; b" in html
    assert performance_section(None) == ""
    failed = performance_section({"verdict": "InsufficientData", "reason": "x", "error": "x"})
    assert "Confusion" not in failed
