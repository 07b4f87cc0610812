"""A tiny real model published through the trainer into an in-memory store, and a client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests.kit.memory_store import MemoryObjectStore

from continuum.server.app import create_app
from continuum.server.settings import InferenceLogSettings, ServerSettings
from continuum.storage import S3Settings
from continuum.trainer.config import TrainingConfig
from continuum.trainer.run import run_training

FEATURES = ["x1", "x2", "color"]


def make_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=rows),
            "x2": rng.normal(size=rows),
            "color": rng.choice(["red", "green", "blue"], rows),
        }
    )
    signal = frame["x2"] + (frame["color"] == "red") + rng.normal(scale=0.4, size=rows)
    frame["label"] = np.where(signal > 0.3, "yes", "no")
    frame["amount"] = 3 * frame["x2"] + rng.normal(scale=0.3, size=rows)
    return frame


def spec(model: str, estimator: str, target: str, metric: str, **pre: object) -> dict:
    return {
        "model": model,
        "dataset": {"uri": "s3://data/sets/churn/", "target": target, "features": FEATURES},
        "estimator": {"class": estimator, "params": {}},
        "preprocessing": {"categorical": {"columns": ["color"]}, **pre},
        "split": {"testSize": 0.25, "seed": 7},
        "evaluation": {"metric": metric, "threshold": 0.0},
        "storage": {"bucket": "data"},
    }


def publish(store: MemoryObjectStore, model_spec: dict) -> int:
    config = TrainingConfig.from_spec(model_spec)
    return run_training(config, store, progress=lambda *a, **k: None).version


@pytest.fixture(scope="session")
def store() -> MemoryObjectStore:
    """churn/1: a classifier; amount/1: a regressor; strict/1: no imputation of numbers."""
    store = MemoryObjectStore("data")
    store.put_bytes("sets/churn/part-0.csv", make_frame().to_csv(index=False).encode())
    publish(store, spec("churn", "LogisticRegression", "label", "accuracy"))
    publish(store, spec("amount", "LinearRegression", "amount", "r2"))
    publish(
        store,
        spec("strict", "LogisticRegression", "label", "accuracy", numeric={"impute": "none"}),
    )
    return store


def settings_for(model: str, version: int = 1, **overrides: object) -> ServerSettings:
    base = ServerSettings(
        model=model,
        version=version,
        s3=S3Settings(bucket="data"),
        inference_log=InferenceLogSettings(flush_rows=10_000, flush_seconds=3600),
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def wait_loaded(client: TestClient, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = client.get("/v2/health/ready")
        if reply.status_code == 200 or not reply.json()["reason"].startswith("loading"):
            return
        time.sleep(0.02)
    raise AssertionError("the model did not finish loading")


def copy_of(store: MemoryObjectStore) -> MemoryObjectStore:
    """A private copy, so one test's inference logs or tampering never reach another test."""
    copy = MemoryObjectStore(store.bucket)
    copy.objects = dict(store.objects)
    return copy


def serve(store: MemoryObjectStore, settings: ServerSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, store)) as client:
        wait_loaded(client)
        yield client


@pytest.fixture
def client(store: MemoryObjectStore) -> Iterator[TestClient]:
    yield from serve(copy_of(store), settings_for("churn"))


@pytest.fixture
def regressor(store: MemoryObjectStore) -> Iterator[TestClient]:
    yield from serve(copy_of(store), settings_for("amount"))


@pytest.fixture
def strict(store: MemoryObjectStore) -> Iterator[TestClient]:
    yield from serve(copy_of(store), settings_for("strict"))
