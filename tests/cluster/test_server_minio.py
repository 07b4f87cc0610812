"""The model server against the real MinIO: verified load, predictions, refusal, inference logs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from continuum.modelio import coerce_features, load_verified_model
from continuum.server.app import create_app
from continuum.server.settings import InferenceLogSettings, ServerSettings
from continuum.storage import ObjectStore, read_manifest
from continuum.storage.inference_logs import list_batches, read_batch
from continuum.trainer.config import TrainingConfig
from continuum.trainer.run import run_training
from tests.kit.cluster import object_store
from tests.kit.datasets import churn_dataset

pytestmark = pytest.mark.cluster


@pytest.fixture
def store(s3, s3_bucket) -> ObjectStore:
    store = object_store(s3, s3_bucket)
    store.put_bytes("datasets/churn/part-0.csv", churn_dataset(400, 5).to_csv(index=False).encode())
    spec = {
        "model": "churn",
        "dataset": {"uri": f"s3://{s3_bucket}/datasets/churn/", "target": "churned"},
        "estimator": {"class": "RandomForestClassifier", "params": {"n_estimators": 20}},
        "preprocessing": {"categorical": {"columns": ["plan"]}},
        "split": {"testSize": 0.2, "seed": 3},
        "evaluation": {"metric": "accuracy", "threshold": 0.5},
        "storage": {"endpoint": s3.endpoint_url, "bucket": s3_bucket},
    }
    run_training(TrainingConfig.from_spec(spec), store, progress=lambda *a, **k: None)
    return store


def serve(store: ObjectStore) -> Iterator[TestClient]:
    settings = ServerSettings(
        model="churn",
        version=1,
        s3=store.settings,
        inference_log=InferenceLogSettings(flush_rows=5, flush_seconds=3600),
    )
    with TestClient(create_app(settings, store)) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            reply = client.get("/v2/health/ready")
            if reply.status_code == 200 or not reply.json()["reason"].startswith("loading"):
                break
            time.sleep(0.05)
        yield client


def test_serves_what_the_trainer_published_and_logs_to_minio(store):
    rows = churn_dataset(12, 77)[["tenure", "charges", "plan"]]
    for client in serve(store):
        assert client.get("/v2/health/ready").status_code == 200
        reply = client.post("/v1/models/churn:predict", json={"instances": rows.to_dict("records")})
        assert reply.status_code == 200, reply.text
        local = load_verified_model(store, "churn", 1).pipeline
        features = coerce_features(rows, read_manifest(store, "churn", 1)["features"])
        assert reply.json()["predictions"] == local.predict(features).tolist()
        np.testing.assert_allclose(reply.json()["probabilities"], local.predict_proba(features))
        deadline = time.monotonic() + 30  # 12 rows > flushRows: written without shutting down
        while not list_batches(store, "churn", 1) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list_batches(store, "churn", 1)
    logged = [row for key in list_batches(store, "churn", 1) for row in read_batch(store, key)]
    assert len(logged) == 12
    assert {row["model"] for row in logged} == {"churn"}
    assert logged[0]["features"].keys() == {"tenure", "charges", "plan"}


def test_a_tampered_model_file_in_minio_is_refused(store):
    key = "models/churn/1/model.skops"
    data = bytearray(store.get_bytes(key))
    data[len(data) // 2] ^= 0xFF
    store.put_bytes(key, bytes(data))
    for client in serve(store):
        assert client.get("/v2/health/live").status_code == 200
        ready = client.get("/v2/health/ready")
        assert ready.status_code == 503
        assert "does not match the manifest" in ready.json()["reason"]
        reply = client.post("/v1/models/churn:predict", json={"instances": [[1.0, 50.0, "pro"]]})
        assert reply.status_code == 503
