"""The trainer end to end against a real MinIO: dataset in, verified model version out."""

from __future__ import annotations

import json

import pytest

from continuum.errors import DigestMismatch
from continuum.modelio import coerce_features, load_verified_model
from continuum.storage import ObjectStore, read_manifest
from continuum.trainer.cli import main
from continuum.trainer.config import TrainingConfig
from continuum.trainer.run import run_training
from tests.kit.cluster import object_store
from tests.kit.datasets import churn_dataset

pytestmark = pytest.mark.cluster


def spec_for(bucket: str, s3) -> dict:
    return {
        "model": "churn",
        "dataset": {"uri": f"s3://{bucket}/datasets/churn/", "target": "churned"},
        "estimator": {"class": "GradientBoostingClassifier", "params": {"n_estimators": 30}},
        "preprocessing": {"categorical": {"columns": ["plan"]}},
        "split": {"testSize": 0.2, "seed": 11},
        "evaluation": {"metric": "f1", "threshold": 0.5},
        "storage": {"endpoint": s3.endpoint_url, "bucket": bucket, "secretRef": {"name": "s3"}},
    }


@pytest.fixture
def store(s3, s3_bucket) -> ObjectStore:
    store = object_store(s3, s3_bucket)
    frame = churn_dataset()
    store.put_bytes("datasets/churn/part-0.csv", frame.iloc[:250].to_csv(index=False).encode())
    buffer = frame.iloc[250:].to_csv(index=False).encode()
    store.put_bytes("datasets/churn/part-1.csv", buffer)
    return store


@pytest.fixture
def s3_env(s3, s3_bucket, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    monkeypatch.setenv("AWS_REGION", s3.region)
    log = tmp_path / "termination-log"
    monkeypatch.setenv("CONTINUUM_TERMINATION_LOG", str(log))
    return log


def quiet(*_args, **_kwargs):
    return None


def test_training_publishes_a_verified_loadable_version(store, s3, s3_bucket):
    config = TrainingConfig.from_spec(spec_for(s3_bucket, s3), training_job="tj-minio")
    result = run_training(config, store, progress=quiet)
    assert result.version == 1
    assert result.uri == f"s3://{s3_bucket}/models/churn/1/"
    manifest = read_manifest(store, "churn", 1)
    assert manifest["dataset"]["rows"] == 500
    assert manifest["dataset"]["fingerprint"] == result.dataset["fingerprint"]
    loaded = load_verified_model(store, "churn", 1)
    rows = coerce_features(churn_dataset().head(5), manifest["features"])
    assert set(loaded.pipeline.predict(rows)) <= {"yes", "no"}
    assert store.exists("models/churn/1/baseline/reference.parquet")


def test_retraining_is_bitwise_reproducible_and_compared_with_the_champion(store, s3, s3_bucket):
    config = TrainingConfig.from_spec(spec_for(s3_bucket, s3))
    first = run_training(config, store, progress=quiet)
    second = run_training(config, store, champion_version=first.version, progress=quiet)
    assert second.version == first.version + 1
    assert second.sha256 == first.sha256
    assert second.metrics == first.metrics
    champion = read_manifest(store, "churn", second.version)["evaluation"]["champion"]
    assert champion["version"] == first.version
    assert champion["metrics"] == first.metrics
    assert not second.qualified  # a twin does not beat its champion


def test_tampered_model_is_never_loaded(store, s3, s3_bucket):
    run_training(TrainingConfig.from_spec(spec_for(s3_bucket, s3)), store, progress=quiet)
    store.put_bytes("models/churn/1/model.skops", b"PK\x03\x04 replaced")
    with pytest.raises(DigestMismatch):
        load_verified_model(store, "churn", 1)


def test_cli_succeeds_and_writes_the_termination_message(store, s3, s3_bucket, s3_env, monkeypatch):
    monkeypatch.setenv("CONTINUUM_SPEC", json.dumps(spec_for(s3_bucket, s3)))
    monkeypatch.setenv("CONTINUUM_TRAINING_JOB", "tj-cli")
    assert main([]) == 0
    message = json.loads(s3_env.read_text())
    assert message["status"] == "Succeeded"
    assert message["version"] == 1
    assert json.loads(store.get_bytes("models/churn/1/result.json")) == message
    assert read_manifest(store, "churn", 1)["trainingJob"] == "tj-cli"


def test_cli_bad_dataset_fails_naming_the_column(store, s3, s3_bucket, s3_env, monkeypatch):
    spec = spec_for(s3_bucket, s3)
    spec["dataset"]["features"] = ["tenure", "age", "plan"]
    monkeypatch.setenv("CONTINUUM_SPEC", json.dumps(spec))
    assert main([]) == 1
    message = json.loads(s3_env.read_text())
    assert message["reason"] == "DatasetInvalid"
    assert "column 'age'" in message["message"]
    assert store.list_objects("models/") == []


def test_cli_wrong_credentials_fail_with_access_denied(store, s3, s3_bucket, s3_env, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    monkeypatch.setenv("CONTINUUM_SPEC", json.dumps(spec_for(s3_bucket, s3)))
    assert main([]) == 1
    message = json.loads(s3_env.read_text())
    assert message["reason"] == "AccessDenied"
    assert "not-the-secret" not in s3_env.read_text()


def test_a_streamed_parquet_dataset_reads_the_same_bytes_as_in_memory(store, s3, s3_bucket):
    # The streamed path's real S3 download (ObjectStore.download, 8 MiB pieces) hashes the
    # same bytes as the in-memory read: same fingerprint; two runs give the same model bytes.
    frame = churn_dataset()
    for number, rows in enumerate((frame.iloc[:250], frame.iloc[250:])):
        data = rows.to_parquet(index=False, row_group_size=100)
        store.put_bytes(f"datasets/churn-pq/part-{number}.parquet", data)
    spec = spec_for(s3_bucket, s3)
    spec["dataset"].update(uri=f"s3://{s3_bucket}/datasets/churn-pq/", format="parquet")
    spec["estimator"] = {"class": "SGDClassifier", "params": {}}
    spec["dataset"]["mode"] = "memory"
    memory = run_training(TrainingConfig.from_spec(spec), store, progress=quiet)
    spec["dataset"]["mode"] = "stream"
    first = run_training(TrainingConfig.from_spec(spec), store, progress=quiet)
    second = run_training(TrainingConfig.from_spec(spec), store, progress=quiet)
    assert first.dataset["fingerprint"] == memory.dataset["fingerprint"]
    assert (first.dataset["mode"], memory.dataset["mode"]) == ("stream", "memory")
    assert first.dataset["rows"] == 500
    assert first.sha256 == second.sha256
    assert read_manifest(store, "churn", first.version)["split"]["method"] == "hash"
