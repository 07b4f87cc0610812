"""Small synthetic datasets and specs for the trainer's unit tests."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from tests.kit.memory_store import MemoryObjectStore

BASE_SPEC = {
    "model": "churn",
    "dataset": {"uri": "s3://data/sets/churn/", "target": "label", "format": "csv"},
    "estimator": {"class": "LogisticRegression", "params": {"C": 1.0}},
    "preprocessing": {"categorical": {"columns": ["color"]}},
    "split": {"testSize": 0.25, "seed": 7},
    "evaluation": {"metric": "accuracy", "threshold": 0.6},
    "storage": {"bucket": "data"},
}


def make_frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=rows),
            "x2": rng.normal(size=rows),
            "color": rng.choice(["red", "green", "blue"], rows),
        }
    )
    frame.loc[::25, "x1"] = np.nan  # 4% nulls, below the default 10% limit
    signal = frame["x2"] + (frame["color"] == "red") + rng.normal(scale=0.4, size=rows)
    frame["label"] = np.where(signal > 0.3, "yes", "no")
    frame["amount"] = 3 * frame["x2"] + rng.normal(scale=0.3, size=rows)
    return frame


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def spec() -> dict:
    return copy.deepcopy(BASE_SPEC)


@pytest.fixture
def store(frame: pd.DataFrame) -> MemoryObjectStore:
    store = MemoryObjectStore("data")
    store.put_bytes("sets/churn/part-0.csv", frame.iloc[:200].to_csv(index=False).encode())
    store.put_bytes("sets/churn/part-1.csv", frame.iloc[200:].to_csv(index=False).encode())
    return store
