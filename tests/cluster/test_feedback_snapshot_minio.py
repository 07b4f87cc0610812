"""A feedback training set replayed from its snapshot, against a real MinIO (issue 17).

Needs only MinIO, not the cluster: a private MinIO (tests/kit/minio.py) on a free loopback
port, no kubeconfig. Logged predictions of two versions and labels (posted-feedback batches and
a label CSV) are written through the real storage functions, a run with spec.dataset.feedback
builds and writes the snapshot over a pandas/pyarrow base Parquet with category, nullable
Int64, string, bool and NaN columns, and a second run naming the snapshot as its dataset (no
feedback) must record the same fingerprint and write the same model bytes.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest

from continuum.storage import ObjectStore, S3Settings, read_manifest
from continuum.storage.inference_logs import write_batch
from continuum.storage.labels import write_feedback
from continuum.trainer.config import TrainingConfig
from continuum.trainer.run import run_training
from tests.kit.minio import private_minio

BUCKET = "continuum-feedback"
MODEL = "churn"
BASE_KEY = "datasets/churn/base.parquet"
FEATURES = ("tenure", "seats", "plan", "region", "active")
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def store() -> Iterator[ObjectStore]:
    """A bucket on a private MinIO, and continuum.storage's client of it."""
    work = Path(tempfile.mkdtemp(prefix="continuum-feedback-minio-"))
    user, password = "continuum", secrets.token_hex(16)
    env = {"MINIO_ROOT_USER": user, "MINIO_ROOT_PASSWORD": password}
    with private_minio(work, host="127.0.0.1", env=env) as endpoint:
        boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id=user, aws_secret_access_key=password,
        ).create_bucket(Bucket=BUCKET)  # fmt: skip
        settings = S3Settings(BUCKET, endpoint_url=endpoint, access_key=user, secret_key=password)
        yield ObjectStore(settings)


def customers(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.uniform(0, 60, rows)
    tenure[::17] = np.nan
    frame = pd.DataFrame(
        {
            "tenure": tenure,
            "seats": pd.array(rng.integers(1, 20, rows), dtype="Int64"),
            "plan": pd.Categorical(rng.choice(["basic", "pro"], rows)),
            "region": pd.array(rng.choice(["eu", "us"], rows), dtype="string"),
            "active": rng.random(rows) > 0.3,
        }
    )
    frame.loc[::13, "seats"] = pd.NA
    score = np.nan_to_num(tenure, nan=30) / 60 + (frame["plan"] == "pro") * 0.3
    frame["churned"] = np.where(score + rng.normal(0, 0.2, rows) < 0.6, "yes", "no")
    return frame


def write_base(store: ObjectStore) -> None:
    buffer = io.BytesIO()
    customers(300, 1).to_parquet(buffer, index=False)
    store.put_bytes(BASE_KEY, buffer.getvalue())


def logged_value(value: Any) -> Any:
    """A feature value as the model server's JSON log holds it (null where missing)."""
    if value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def log_traffic(store: ObjectStore, version: int, rows: int, seed: int) -> list[dict[str, Any]]:
    """Log ``rows`` served rows of ``version`` (the plan a new category); their labels."""
    frame = customers(rows, seed)
    frame["plan"] = frame["plan"].cat.add_categories("enterprise")
    frame.loc[::9, "plan"] = "enterprise"
    logged, labels = [], []
    for i, row in enumerate(frame.to_dict(orient="records")):
        ts = NOW - timedelta(minutes=5 * i + version)
        features = {
            k: logged_value(row[k]) for k in ("tenure", "seats", "plan", "region", "active")
        }
        logged.append({"ts": ts.isoformat().replace("+00:00", "Z"), "request_id": f"v{version}-{i}",
                       "row": 0, "model": MODEL, "version": version, "features": features,
                       "prediction": "yes"})  # fmt: skip
        labels.append({"id": f"v{version}-{i}", "row": 0, "label": row["churned"]})
    write_batch(store, MODEL, version, logged, NOW - timedelta(seconds=30))
    return labels


def spec(**dataset: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "dataset": {"uri": f"s3://{BUCKET}/{BASE_KEY}", "format": "parquet",
                    "target": "churned", **dataset},
        "estimator": {"class": "RandomForestClassifier", "params": {"n_estimators": 20}},
        "preprocessing": {"categorical": {"columns": ["plan", "region"]}},
        "split": {"testSize": 0.25, "seed": 5},
        "evaluation": {"metric": "accuracy", "mustBeat": "none"},
        "storage": {"bucket": BUCKET},
    }  # fmt: skip


def train(store: ObjectStore, body: dict[str, Any], name: str, now: datetime | None = None):
    config = TrainingConfig.from_spec(body, training_job=name)
    return run_training(config, store, progress=lambda *_a, **_k: None, now=now)


def model_digest(store: ObjectStore, version: int) -> str:
    data = store.get_bytes(f"models/{MODEL}/{version}/model.skops")
    return hashlib.sha256(data).hexdigest()


def test_a_feedback_run_replays_from_its_snapshot_to_the_same_model(store: ObjectStore) -> None:
    write_base(store)
    labels = log_traffic(store, 1, 80, seed=2) + log_traffic(store, 2, 80, seed=3)
    write_feedback(store, MODEL, labels[:100], NOW - timedelta(seconds=20))
    csv = pd.DataFrame([*labels[100:], {"id": "someone-else", "row": 0, "label": "no"}])
    store.put_bytes(f"labels/{MODEL}/batch-2.csv", csv.to_csv(index=False).encode())

    feedback = {"sinceSeconds": 7 * 86400, "maxRows": 150}
    first = train(store, spec(feedback=feedback), "with-feedback", now=NOW)
    snapshot = first.dataset["snapshot"]
    assert snapshot.startswith(f"s3://{BUCKET}/snapshots/{MODEL}/")
    assert (first.dataset["feedbackRows"], first.dataset["baseRows"]) == (150, 300)
    assert first.dataset["rows"] == 450
    manifest = read_manifest(store, MODEL, first.version)
    origin = manifest["snapshot"]
    assert origin["overCap"] == 10
    assert origin["join"]["unknownIds"] == 1
    assert origin["base"]["uri"] == f"s3://{BUCKET}/{BASE_KEY}"

    key = snapshot.removeprefix(f"s3://{BUCKET}/")
    frame = pd.read_parquet(io.BytesIO(store.get_bytes(key)))
    assert {c: str(t) for c, t in frame.dtypes.items()} | {"churned": "-"} == {
        "tenure": "float64", "seats": "Int64", "plan": "category", "region": "string",
        "active": "bool", "churned": "-",
    }  # fmt: skip
    assert "enterprise" in frame["plan"].cat.categories
    assert frame["tenure"].isna().any()

    replay = train(store, spec(uri=snapshot), "replay")
    assert replay.dataset["fingerprint"] == first.dataset["fingerprint"]
    assert replay.sha256 == first.sha256
    assert model_digest(store, replay.version) == model_digest(store, first.version)

    etag = store.list_objects(key)[0].etag
    again = train(store, spec(feedback=feedback), "same-inputs", now=NOW)
    assert again.dataset["snapshot"] == snapshot
    assert store.list_objects(key)[0].etag == etag, "an existing snapshot is kept"
    assert len(store.list_objects(f"snapshots/{MODEL}/")) == 1
