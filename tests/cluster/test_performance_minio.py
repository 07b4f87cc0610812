"""Live performance against a real MinIO (issue 16): concept drift, and covariate shift that hurts.

Concept drift (inputs unchanged, labels flipped for a segment):

A model trained by the trainer (which writes its calibration beside it) serves three hours of
churn customers from one unchanging population; each prediction is logged as the server logs
it (request id, row, features, prediction, probabilities) and labelled in CSV files under
``labels/churn/``. For the first hour the labels are the true ones; from the second on the
basic plan's customers churn the other way (the same inputs now mean the opposite). An hourly
check (``continuum monitor``'s own entry point, as in the check Job) then says: the inputs did
not drift (NoDrift every hour), realised accuracy Held, then Degraded twice, and folded into
the DriftMonitor's status as the operator folds it, PerformanceDegraded turns True after
``consecutiveChecks`` = 2, while the estimate, blind to concept drift, stays at the holdout.

Covariate shift that hurts (``test_covariate_shift_estimated_before_labels_then_confirmed``):
customers move to where the model is unsure; the estimate of the newest hour is Degraded
before any of its labels exist (the older matured hour still Held), and when they arrive the
next check's realised accuracy is Degraded too, inside the estimate's interval for those rows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from continuum.api import DriftMonitor, load
from continuum.api.vocabulary import PERFORMANCE_DEGRADED
from continuum.controllers.driftmonitor.verdicts import check_result, status_after_check
from continuum.modelio import coerce_features, load_verified_model
from continuum.monitor import main
from continuum.storage import ObjectStore
from continuum.storage.inference_logs import write_batch
from continuum.storage.reports import read_report, report_time
from continuum.trainer.config import TrainingConfig
from continuum.trainer.run import run_training
from tests.kit.cluster import monitor_environment, object_store
from tests.kit.datasets import churn_labels, customers

pytestmark = pytest.mark.cluster

MODEL, MONITOR = "churn", "churn-performance"
FEATURES = ["tenure", "charges", "plan"]
PERFORMANCE = {"windowSeconds": 3600, "minLabels": 300, "maxDrop": 0.05,
               "consecutiveChecks": 2, "estimate": True}  # fmt: skip
END = datetime(2026, 12, 1, 12, tzinfo=UTC)


def population(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = customers(rows, rng)
    frame["churned"] = churn_labels(frame, rng)
    return frame


@pytest.fixture
def store(s3, s3_bucket) -> ObjectStore:
    return object_store(s3, s3_bucket)


@pytest.fixture
def trained(store, s3, s3_bucket) -> int:
    store.put_bytes("datasets/churn/part-0.csv", population(3000, 1).to_csv(index=False).encode())
    spec = {
        "model": MODEL,
        "dataset": {"uri": f"s3://{s3_bucket}/datasets/churn/", "target": "churned"},
        "estimator": {"class": "LogisticRegression", "params": {}},
        "preprocessing": {"categorical": {"columns": ["plan"]}},
        "split": {"testSize": 0.3, "seed": 11},
        "evaluation": {"metric": "accuracy", "threshold": 0.5},
        "storage": {"endpoint": s3.endpoint_url, "bucket": s3_bucket, "secretRef": {"name": "s3"}},
    }
    config = TrainingConfig.from_spec(spec)
    return run_training(config, store, progress=lambda *_a, **_k: None).version


@pytest.fixture
def monitor_env(s3, s3_bucket, trained, monkeypatch, tmp_path):
    spec = {"window": {"maxRows": 2000, "minSamples": 300}, "performance": PERFORMANCE}
    return monitor_environment(
        monkeypatch,
        tmp_path,
        s3,
        s3_bucket,
        monitor=MONITOR,
        model=MODEL,
        version=trained,
        spec=spec,
    )


def serve_hour(store: ObjectStore, version: int, frame: pd.DataFrame, hour: int) -> pd.DataFrame:
    """``frame`` answered in the hour that ends ``2 - hour`` hours before END (hour 3: the hour
    after END) by the served model, logged in batches of 200 rows as the server logs them;
    returns the ids and rows."""
    served = load_verified_model(store, MODEL, version)
    features = coerce_features(frame[FEATURES], served.manifest["features"])
    proba = served.pipeline.predict_proba(features)
    predicted = served.pipeline.predict(features)
    start = END - timedelta(hours=3 - hour)
    rows = []
    for i, record in enumerate(frame[FEATURES].to_dict(orient="records")):
        moment = start + timedelta(seconds=1 + 3500 * i / len(frame))
        rows.append({
            "ts": moment.isoformat().replace("+00:00", "Z"), "request_id": f"h{hour}-{i // 2}",
            "row": i % 2, "model": MODEL, "version": version, "features": record,
            "prediction": str(predicted[i]), "proba": proba[i].tolist(),
        })  # fmt: skip
    for offset in range(0, len(rows), 200):
        batch = rows[offset : offset + 200]
        written = datetime.fromisoformat(batch[-1]["ts"].replace("Z", "+00:00"))
        write_batch(store, MODEL, version, batch, written + timedelta(seconds=1))
    return pd.DataFrame({"id": [r["request_id"] for r in rows], "row": [r["row"] for r in rows]})


def label_hour(store: ObjectStore, keys: pd.DataFrame, labels: np.ndarray, hour: int) -> None:
    table = keys.assign(label=labels)
    store.put_bytes(f"labels/{MODEL}/crm/hour-{hour}.csv", table.to_csv(index=False).encode())


def flipped(frame: pd.DataFrame) -> np.ndarray:
    other = np.where(frame["churned"] == "yes", "no", "yes")
    return np.where(frame["plan"] == "basic", other, frame["churned"])


def run_check(monkeypatch, log, moment: datetime) -> dict:
    monkeypatch.setenv("CONTINUUM_REPORT_TIME", report_time(moment))
    assert main([]) == 0
    return json.loads(log.read_text())


def drift_monitor(performance: dict = PERFORMANCE) -> DriftMonitor:
    return load(DriftMonitor, {
        "apiVersion": "continuum.dev/v1alpha1", "kind": "DriftMonitor",
        "metadata": {"name": MONITOR, "namespace": "ml", "uid": "u", "generation": 1},
        "spec": {"deployment": MODEL, "performance": performance},
    })  # fmt: skip


def shifted(rows: int, seed: int) -> pd.DataFrame:
    """Covariate shift that hurts: each customer's tenure moves to where, given their charges
    and plan, churn is a coin toss (churn_labels' threshold, give or take 4 months); labels
    follow the same rule as in training (no concept drift)."""
    rng = np.random.default_rng(seed)
    frame = customers(rows, rng)
    boundary = (0.03 * frame["charges"] + (frame["plan"] == "basic") - 0.3) / 0.05
    frame["tenure"] = boundary + rng.normal(0, 4, rows)
    frame["churned"] = churn_labels(frame, rng)
    return frame


def fold(dm: DriftMonitor, summary: dict, moment: datetime) -> DriftMonitor:
    result = check_result("check", moment, True, "", summary)
    return dm.model_copy(update={"status": status_after_check(dm, result)})


def test_covariate_shift_estimated_before_labels_then_confirmed(
    store, trained, monitor_env, monkeypatch
):
    """The issue's first case: the estimate drops on the newest predictions while the older,
    matured window is healthy and before any of the new labels exist; the labels arriving a
    labelDelay later confirm the drop in the next check, estimate and realised side by side."""
    performance = PERFORMANCE | {"labelDelaySeconds": 3600}
    spec = {"window": {"maxRows": 2000, "minSamples": 300}, "performance": performance}
    monkeypatch.setenv("CONTINUUM_MONITOR_SPEC", json.dumps(spec))
    dm = drift_monitor(performance)
    calm = population(1200, 40)
    label_hour(store, serve_hour(store, trained, calm, 1), calm["churned"].to_numpy(), 1)
    moved = shifted(1200, 41)
    moved_keys = serve_hour(store, trained, moved, 2)  # the hour before END: no labels yet

    before = run_check(monkeypatch, monitor_env, END)
    dm = fold(dm, before, END)
    found = before["performance"]
    assert (found["verdict"], found["basis"]) == ("Degraded", "estimated")
    assert found["realised"]["lower"] <= found["holdout"] <= found["realised"]["upper"]
    assert found["estimated"]["upper"] < found["holdout"] - found["maxDrop"]
    assert found["estimated"]["rows"] == 1200

    label_hour(store, moved_keys, moved["churned"].to_numpy(), 2)  # the labels arrive
    later = shifted(1200, 42)
    serve_hour(store, trained, later, 3)
    after = run_check(monkeypatch, monitor_env, END + timedelta(hours=1))
    dm = fold(dm, after, END + timedelta(hours=1))
    found = after["performance"]
    assert (found["verdict"], found["basis"]) == ("Degraded", "realised")
    assert found["realised"]["rows"] == 1200
    assert found["realised"]["upper"] < found["holdout"] - found["maxDrop"]
    report = read_report(store, MONITOR, report_time(END + timedelta(hours=1)))
    same = report["performance"]["estimatedOnRealisedWindow"]  # the estimate of those rows
    assert same["lower"] <= found["realised"]["value"] <= same["upper"]
    condition = next(c for c in dm.status.conditions if c.type == PERFORMANCE_DEGRADED)
    assert (condition.status, condition.reason) == ("True", "PerformanceDrop")


def test_concept_drift_degrades_realised_performance_after_consecutive_checks(
    store, trained, monitor_env, monkeypatch
):
    dm, summaries = drift_monitor(), []
    for hour in range(3):
        frame = population(1200, 30 + hour)
        keys = serve_hour(store, trained, frame, hour)
        truth = frame["churned"].to_numpy() if hour == 0 else flipped(frame)
        label_hour(store, keys, truth, hour)
        moment = END - timedelta(hours=2 - hour)
        summary = run_check(monkeypatch, monitor_env, moment)
        summaries.append(summary)
        result = check_result(f"check-{hour}", moment, True, "", summary)
        dm = dm.model_copy(update={"status": status_after_check(dm, result)})
        assert summary["verdict"] == "NoDrift", summary["features"]  # the inputs did not move

    verdicts = [(s["performance"]["verdict"], s["performance"]["basis"]) for s in summaries]
    assert verdicts == [("Held", "realised"), ("Degraded", "realised"), ("Degraded", "realised")]
    holdout = summaries[0]["performance"]["holdout"]
    for summary in summaries:  # estimation cannot see concept drift: it stays at the holdout
        estimated = summary["performance"]["estimated"]
        assert estimated["lower"] <= holdout + 0.02
        assert estimated["upper"] >= holdout - 0.02
    degraded = summaries[-1]["performance"]["realised"]
    assert degraded["upper"] < holdout - 0.05
    assert degraded["rows"] == 1200  # this hour's matured, labelled predictions

    status = dm.status
    assert status.performance.consecutive_degraded == 2
    condition = next(c for c in status.conditions if c.type == PERFORMANCE_DEGRADED)
    assert (condition.status, condition.reason) == ("True", "PerformanceDrop")

    report = read_report(store, MONITOR, report_time(END))
    section = report["performance"]
    assert section["join"]["matched"] == 1200
    assert section["join"]["unknownIds"] == 2400  # the two earlier hours' labels: not joined
    assert sum(map(sum, section["confusionMatrix"]["matrix"])) == 1200
    html = store.get_bytes(f"reports/{MONITOR}/{report_time(END)}/report.html").decode()
    assert "Confusion matrix (realised window)" in html
    assert "http://" not in html
