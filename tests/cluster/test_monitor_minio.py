"""The monitor against a real MinIO: a trained model, logged traffic, reports in the bucket."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from continuum.monitor import main
from continuum.storage import ObjectStore
from continuum.storage.inference_logs import write_batch
from continuum.storage.reports import latest_summary, read_report
from continuum.trainer.config import TrainingConfig
from continuum.trainer.run import run_training
from tests.kit.cluster import monitor_environment, object_store
from tests.kit.datasets import churn_labels, customers

pytestmark = pytest.mark.cluster

MODEL = "churn"


def training_set(rows: int = 1500) -> pd.DataFrame:
    """Customers as the server will see them (tenure not in whole months), labelled."""
    frame = customers(rows, 1)
    frame["churned"] = churn_labels(frame, np.random.default_rng(2))
    return frame


def spec_for(bucket: str, s3) -> dict:
    return {
        "model": MODEL,
        "dataset": {"uri": f"s3://{bucket}/datasets/churn/", "target": "churned"},
        "estimator": {"class": "LogisticRegression", "params": {}},
        "preprocessing": {"categorical": {"columns": ["plan"]}},
        "split": {"testSize": 0.2, "seed": 11},
        "evaluation": {"metric": "accuracy", "threshold": 0.5},
        "storage": {"endpoint": s3.endpoint_url, "bucket": bucket, "secretRef": {"name": "s3"}},
    }


@pytest.fixture
def store(s3, s3_bucket) -> ObjectStore:
    return object_store(s3, s3_bucket)


@pytest.fixture
def trained(store, s3, s3_bucket) -> int:
    store.put_bytes("datasets/churn/part-0.csv", training_set().to_csv(index=False).encode())
    config = TrainingConfig.from_spec(spec_for(s3_bucket, s3))
    return run_training(config, store, progress=lambda *_a, **_k: None).version


@pytest.fixture
def monitor_env(s3, s3_bucket, trained, monkeypatch, tmp_path):
    spec = {"window": {"maxRows": 2000, "minSamples": 300}, "sensitiveFeature": "plan"}
    return monitor_environment(
        monkeypatch,
        tmp_path,
        s3,
        s3_bucket,
        monitor="churn-drift",
        model=MODEL,
        version=trained,
        spec=spec,
    )


def log_traffic(store: ObjectStore, version: int, frame: pd.DataFrame, start: datetime) -> None:
    """Log ``frame`` as the server would, in batches of 250 rows one second apart."""
    for batch, offset in enumerate(range(0, len(frame), 250)):
        moment = start + timedelta(seconds=batch)
        rows = [
            {"ts": moment.isoformat(), "request_id": f"r{offset + i}", "model": MODEL,
             "version": version, "features": row,
             "prediction": "yes" if row["tenure"] < 30 else "no"}
            for i, row in enumerate(frame.iloc[offset : offset + 250].to_dict(orient="records"))
        ]  # fmt: skip
        write_batch(store, MODEL, version, rows, moment)


def run_check(monkeypatch, log, time: str) -> dict:
    monkeypatch.setenv("CONTINUUM_REPORT_TIME", time)
    assert main([]) == 0
    return json.loads(log.read_text())


def test_in_distribution_then_shifted_traffic(store, trained, monitor_env, monkeypatch, s3_bucket):
    start = datetime(2025, 1, 31, 12, tzinfo=UTC)
    log_traffic(store, trained, customers(2000, 10), start)
    calm = run_check(monkeypatch, monitor_env, "20250131T130000Z")
    assert calm["status"] == "Succeeded"
    assert calm["verdict"] == "NoDrift"
    assert calm["datasetDrift"] is False
    assert calm["rows"] == 2000
    assert not any(f["drifted"] for f in calm["features"])

    log_traffic(store, trained, customers(2000, 11, shift=1.0), start + timedelta(hours=2))
    drift = run_check(monkeypatch, monitor_env, "20250131T150000Z")
    assert drift["verdict"] == "Drift"
    assert drift["datasetDrift"] is True
    flagged = {f["name"] for f in drift["features"] if f["drifted"]}
    assert flagged == {"tenure", "charges"}
    assert drift["fairness"]["feature"] == "plan"

    folder = "reports/churn-drift/20250131T150000Z/"
    assert drift["reportURI"] == f"s3://{s3_bucket}/{folder}"
    for name in ("report.json", "report.html", "summary.json"):
        assert store.exists(folder + name)
    report = read_report(store, "churn-drift", "20250131T150000Z")
    assert report["window"]["description"] == "newest 2000 rows (at most 2000)"
    assert report["window"]["truncated"] is True  # the older, calm rows were left out
    html = store.get_bytes(folder + "report.html").decode()
    assert html.count("<svg") == 3
    assert "http://" not in html
    assert "https://" not in html
    assert latest_summary(store, "churn-drift") == ("20250131T150000Z", drift)


def test_too_little_traffic_is_insufficient_data(store, trained, monitor_env, monkeypatch):
    log_traffic(store, trained, customers(100, 10), datetime(2025, 1, 31, tzinfo=UTC))
    summary = run_check(monkeypatch, monitor_env, "20250131T130000Z")
    assert summary["verdict"] == "InsufficientData"
    assert summary["rows"] == 100
    assert summary["features"] == []


def test_wrong_version_fails_into_the_termination_log(store, trained, monitor_env, monkeypatch):
    monkeypatch.setenv("CONTINUUM_MODEL_VERSION", str(trained + 5))
    assert main([]) == 1
    failure = json.loads(monitor_env.read_text())
    assert failure["status"] == "Failed"
    assert failure["reason"] == "ObjectNotFound"


def ordered_hours(store: ObjectStore, version: int, end: datetime, hours: int = 3) -> None:
    """``hours`` hours of 1,000 rows, the last 300 of each hour a plan the model never saw."""
    for hour in range(hours):
        frame = customers(1000, 20 + hour)
        frame.loc[frame.index[700:], "plan"] = "enterprise"
        log_traffic(store, version, frame, end - timedelta(hours=hours - hour))


def test_a_time_window_samples_the_period_and_fails_on_unseen_categories(
    store, trained, monitor_env, monkeypatch, s3_bucket
):
    now = datetime.now(UTC)
    log_traffic(store, trained, customers(2000, 10), now - timedelta(hours=10))  # outside
    ordered_hours(store, trained, now - timedelta(minutes=5))
    spec = {"window": {"last": "6h", "maxRows": 1200, "minSamples": 300, "seed": 5}}
    monkeypatch.setenv("CONTINUUM_MONITOR_SPEC", json.dumps(spec))
    time = now.strftime("%Y%m%dT%H%M%SZ")
    summary = run_check(monkeypatch, monitor_env, time)
    assert summary["status"] == "Succeeded"
    assert summary["rows"] == 1200
    assert summary["quality"]["passed"] is False
    assert {f["name"]: f["quality"] for f in summary["features"]}["plan"] == ["unseenCategories"]
    (line,) = summary["quality"]["failures"]
    assert line.startswith("plan: ")
    assert "unseen in training" in line
    assert "'enterprise'" in line
    report = read_report(store, "churn-drift", time)
    window = report["window"]
    assert window["strategy"] == "time"
    assert window["rowsInPeriod"] == 3000  # the 2,000 rows of 10 h ago are not in it
    assert window["sampled"] is True
    assert window["filesRead"] == 12  # 3 hours of 4 batches; the older 8 never downloaded
    assert window["batchesTotal"] == 20
    share = report["features"][[f["name"] for f in report["features"]].index("plan")]
    unseen = share["quality"]["checks"]["unseenCategories"]
    assert 0.25 < unseen["share"] < 0.35  # the period's 30%, not the newest rows' 100%
    html = store.get_bytes(f"reports/churn-drift/{time}/report.html").decode()
    assert "Data quality" in html
