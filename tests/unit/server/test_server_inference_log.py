"""The inference logger: sampling, the bounded buffer, batches and failure accounting."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from continuum.errors import StorageError
from continuum.server.inference_log import InferenceLogger, RowBuffer, sample_mask
from continuum.server.inputs import FeatureRows
from continuum.server.metrics import ServerMetrics
from continuum.server.model import Prediction
from continuum.server.settings import InferenceLogSettings
from continuum.storage.inference_logs import batch_key, list_batches, read_batch
from continuum.storage.memory import MemoryObjectStore

NOW = datetime(2025, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)


def request(n: int) -> tuple[FeatureRows, Prediction]:
    columns = {
        "x": np.arange(n, dtype=float),
        "c": np.array(["a"] * (n - 1) + [np.nan], dtype=object),
    }
    return FeatureRows(columns, n), Prediction(np.array(["yes"] * n), np.full((n, 2), 0.5))


def logger(store, metrics, **settings) -> InferenceLogger:
    return InferenceLogger(
        store, "churn", 2, InferenceLogSettings(**settings), metrics,
        rng=np.random.default_rng(0), now=lambda: NOW,
    )  # fmt: skip


def dropped(metrics: ServerMetrics, reason: str) -> float:
    sample = "continuum_server_inference_log_dropped_rows_total"
    labels = {"model": "churn", "version": "2", "reason": reason}
    return metrics.registry.get_sample_value(sample, labels) or 0.0


def test_batch_key_layout():
    key = batch_key("churn", 2, NOW, "abc")
    assert key == "inference-logs/churn/2/2025-01-31/20250131T120000.123456Z-abc.jsonl"


def test_sample_mask_rates():
    rng = np.random.default_rng(1)
    assert sample_mask(5, 1.0, rng).all()
    assert not sample_mask(5, 0.0, rng).any()
    assert 300 < sample_mask(1000, 0.4, rng).sum() < 500


def test_row_buffer_refuses_beyond_capacity():
    buffer = RowBuffer(3)
    rows, prediction = request(2)
    log = logger(MemoryObjectStore(), ServerMetrics("churn", 2))
    log.log("a", rows, prediction)
    record = log.buffer.take()[0]
    assert buffer.offer(record)
    assert not buffer.offer(record)
    assert buffer.rows == 2
    assert len(buffer.take()) == 1
    assert buffer.rows == 0


def test_flush_writes_documented_rows():
    store, metrics = MemoryObjectStore(), ServerMetrics("churn", 2)
    log = logger(store, metrics)
    log.log("req-1", *request(3))
    assert log.flush() == 3
    (key,) = list_batches(store, "churn", 2)
    rows = read_batch(store, key)
    assert rows[0] == {"ts": "2025-01-31T12:00:00.123456Z", "request_id": "req-1", "model": "churn",
                       "version": 2, "features": {"x": 0.0, "c": "a"}, "prediction": "yes",
                       "proba": [0.5, 0.5]}  # fmt: skip
    assert rows[2]["features"]["c"] is None


def test_full_buffer_drops_and_counts_rows():
    store, metrics = MemoryObjectStore(), ServerMetrics("churn", 2)
    log = logger(store, metrics, buffer_rows=4)
    log.log("a", *request(3))
    log.log("b", *request(3))  # does not fit: dropped, not waited for
    assert dropped(metrics, "buffer_full") == 3
    assert log.flush() == 3


def test_failed_write_is_counted_and_serving_goes_on():
    class BrokenStore(MemoryObjectStore):
        def put_bytes(self, key, data, **kwargs):
            raise StorageError("S3 down")

    metrics = ServerMetrics("churn", 2)
    log = logger(BrokenStore(), metrics)
    log.log("a", *request(2))
    assert log.flush() == 0
    assert dropped(metrics, "write_failed") == 2


def test_background_thread_flushes_by_rows_and_on_stop():
    store, metrics = MemoryObjectStore(), ServerMetrics("churn", 2)
    log = logger(store, metrics, flush_rows=2, flush_seconds=3600)
    log.start()
    log.log("a", *request(2))
    log.log("b", *request(1))
    log.stop()
    written = [row for key in list_batches(store, "churn", 2) for row in read_batch(store, key)]
    assert sorted(row["request_id"] for row in written) == ["a", "a", "b"]
