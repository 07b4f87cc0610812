"""The window holds the newest rows only, reads no more batches than it needs, and says so."""

from __future__ import annotations

from datetime import UTC, datetime

from continuum.monitor.window import PREDICTION, read_window
from continuum.storage.inference_logs import write_batch
from tests.kit.datasets import customers
from tests.unit.monitor.conftest import MODEL, VERSION, log_rows


class CountingStore:
    """Wraps a store and records which keys were downloaded."""

    def __init__(self, inner):
        self.inner = inner
        self.read: list[str] = []
        self.bucket = inner.bucket

    def list_objects(self, prefix):
        return self.inner.list_objects(prefix)

    def get_bytes(self, key, **kwargs):
        self.read.append(key)
        return self.inner.get_bytes(key, **kwargs)


def test_newest_rows_first_and_only_the_batches_needed(store):
    old = customers(1000, 1)
    new = customers(1000, 2, shift=3.0)
    log_rows(store, old, batch=250, start=datetime(2025, 1, 1, tzinfo=UTC))
    log_rows(store, new, batch=250, start=datetime(2025, 1, 2, tzinfo=UTC))
    counting = CountingStore(store)
    window = read_window(counting, MODEL, VERSION, ["tenure", "plan"], max_rows=600)
    assert window.rows == 600
    assert window.batches_read == 3  # 250 + 250 + 100 of the third newest
    assert window.batches_total == 8
    assert len(counting.read) == 3
    assert window.truncated
    assert window.frame["tenure"].tolist() == new["tenure"].iloc[400:].tolist()
    assert list(window.frame.columns) == ["tenure", "plan", PREDICTION]
    assert window.newest > window.oldest


def test_window_smaller_than_the_log_is_not_truncated(store):
    log_rows(store, customers(300, 1), batch=100)
    window = read_window(store, MODEL, VERSION, ["tenure"], max_rows=300)
    assert window.rows == 300
    assert not window.truncated
    described = window.describe(300)
    assert described["strategy"] == "newest"
    assert described["sampled"] is False
    assert described["description"] == "newest 300 rows (at most 300)"


def test_missing_features_become_nulls(store):
    write_batch(store, MODEL, VERSION, [{"features": {"a": 1}, "prediction": "x"}],
                datetime(2025, 1, 1, tzinfo=UTC))  # fmt: skip
    window = read_window(store, MODEL, VERSION, ["a", "b"], max_rows=10)
    assert window.frame["b"].isna().all()
    assert window.oldest is None


def test_empty_log(store):
    window = read_window(store, MODEL, VERSION, ["tenure"], max_rows=10)
    assert window.rows == 0
    assert not window.truncated
