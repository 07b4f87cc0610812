"""A served model version in an in-memory store: manifest, reference sample and inference logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from continuum.monitor.settings import parse_check_settings
from continuum.storage import layout
from continuum.storage.inference_logs import write_batch
from tests.kit.datasets import customers
from tests.kit.memory_store import MemoryObjectStore

MODEL, VERSION = "churn", 1
FEATURES = [
    {"name": "tenure", "kind": "numeric", "dtype": "float64", "categories": []},
    {"name": "charges", "kind": "numeric", "dtype": "float64", "categories": []},
    {"name": "plan", "kind": "categorical", "dtype": "object", "categories": []},
]


def histogram_shares(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """numpy's histogram over the inner edges and ±infinity, as shares: the oracle for the PSI
    bins (a value equal to an edge counts in the bin above it, in both)."""
    counts, _ = np.histogram(values, np.concatenate(([-np.inf], inner_edges, [np.inf])))
    return counts / max(values.size, 1)


def reference_frame(rows: int = 2000, seed: int = 1) -> pd.DataFrame:
    frame = customers(rows, seed)
    frame["churned"] = np.where(frame["tenure"] < 30, "yes", "no")
    return frame


def put_baseline(store: MemoryObjectStore, frame: pd.DataFrame | None = None) -> None:
    frame = reference_frame() if frame is None else frame
    manifest = {
        "model": MODEL, "version": VERSION, "sha256": "0" * 64, "qualified": True,
        "metrics": {}, "features": FEATURES, "task": "classification", "target": "churned",
    }  # fmt: skip
    store.put_json(layout.version_key(MODEL, VERSION, layout.MANIFEST_FILE), manifest)
    data = frame.to_parquet(index=False)
    store.put_bytes(layout.version_key(MODEL, VERSION, layout.REFERENCE_FILE), data)


def log_rows(store, frame: pd.DataFrame, *, batch: int = 500, start: datetime | None = None):
    """Write ``frame`` as inference-log batches of ``batch`` rows, one second apart."""
    moment = start or datetime(2025, 1, 31, 12, tzinfo=UTC)
    for offset in range(0, len(frame), batch):
        part = frame.iloc[offset : offset + batch]
        rows = [_row(features, moment) for features in part.to_dict(orient="records")]
        write_batch(store, MODEL, VERSION, rows, moment)
        moment += timedelta(seconds=1)


def _row(features: dict, moment: datetime) -> dict:
    prediction = "yes" if features["tenure"] < 30 else "no"
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"ts": stamp, "request_id": "r", "model": MODEL, "version": VERSION,
            "features": features, "prediction": prediction}  # fmt: skip


@pytest.fixture
def store() -> MemoryObjectStore:
    memory = MemoryObjectStore("bucket")
    put_baseline(memory)
    return memory


@pytest.fixture
def settings():
    return parse_check_settings({"window": {"maxRows": 5000, "minSamples": 200}})
