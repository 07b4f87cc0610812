"""The inference logger: sampling, the bounded buffer, batches and failure accounting."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
from tests.kit.memory_store import MemoryObjectStore

from continuum.errors import StorageError
from continuum.server.inference_log import InferenceLogger, RowBuffer, sample_mask
from continuum.server.inputs import FeatureRows
from continuum.server.metrics import ServerMetrics
from continuum.server.model import Prediction
from continuum.server.settings import InferenceLogSettings
from continuum.storage.inference_logs import batch_key, list_batches, read_batch
from continuum.storage.privacy import LogPolicy, hash_value

NOW = datetime(2025, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)
KEY = b"an-hmac-key-of-32-bytes-for-test"


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
    assert rows[0] == {"ts": "2025-01-31T12:00:00.123456Z", "request_id": "req-1", "row": 0,
                       "model": "churn", "version": 2, "features": {"x": 0.0, "c": "a"},
                       "prediction": "yes", "proba": [0.5, 0.5]}  # fmt: skip
    assert [row["row"] for row in rows] == [0, 1, 2]
    assert rows[2]["features"]["c"] is None


def test_dropped_features_are_never_buffered_and_hashed_ones_written_as_hmac():
    store, metrics = MemoryObjectStore(), ServerMetrics("churn", 2)
    policy = LogPolicy(frozenset({"x"}), frozenset({"c"}), KEY)
    log = logger(store, metrics, policy=policy)
    log.log("req-1", *request(3))
    assert set(log.buffer._records[0].columns) == {"c"}  # x never held in memory
    assert log.flush() == 3
    rows = read_batch(store, list_batches(store, "churn", 2)[0])
    assert [row["features"] for row in rows] == [
        {"c": hash_value("a", KEY)},
        {"c": hash_value("a", KEY)},
        {"c": None},
    ]


def test_policy_names_that_are_no_feature_are_warned_about(caplog):
    policy = LogPolicy(frozenset({"emial"}), frozenset({"c"}), KEY)
    log = logger(MemoryObjectStore(), ServerMetrics("churn", 2), policy=policy)
    assert log.check_policy(("x", "c")) == ["emial"]
    assert "'emial'" in caplog.text
    assert "check the spelling" in caplog.text
    assert KEY.decode() not in caplog.text


def test_sampled_rows_keep_their_index_within_the_request():
    store, metrics = MemoryObjectStore(), ServerMetrics("churn", 2)
    log = logger(store, metrics, sample_rate=0.5)
    rows, prediction = request(40)
    log.log("big", rows, prediction)
    log.flush()
    (key,) = list_batches(store, "churn", 2)
    written = read_batch(store, key)
    kept = [row["row"] for row in written]
    assert 5 < len(kept) < 35  # some rows sampled out, so the index is not the position
    assert kept == sorted(kept)
    assert kept != list(range(len(kept)))
    # each kept row's features are those of the request row its index names (x = 0, 1, ...)
    assert all(row["features"]["x"] == float(row["row"]) for row in written)


def test_full_buffer_drops_and_counts_rows():
    store, metrics = MemoryObjectStore(), ServerMetrics("churn", 2)
    log = logger(store, metrics, buffer_rows=4)
    log.log("a", *request(3))
    log.log("b", *request(3))  # does not fit: dropped, not waited for
    assert dropped(metrics, "buffer_full") == 3
    assert log.flush() == 3


class FlakyStore(MemoryObjectStore):
    """A store whose writes fail while ``down`` is set (S3 stopped)."""

    down = True

    def put_bytes(self, key, data, **kwargs):
        if self.down:
            raise StorageError("S3 down")
        super().put_bytes(key, data, **kwargs)


def written_ids(store) -> list[str]:
    keys = list_batches(store, "churn", 2)
    return [row["request_id"] for key in keys for row in read_batch(store, key)]


def test_a_failed_write_keeps_its_rows_for_the_next_try_and_serving_goes_on():
    store, metrics = FlakyStore(), ServerMetrics("churn", 2)
    log = logger(store, metrics)
    log.log("a", *request(2))
    assert log.flush() == 0
    log.log("b", *request(1))
    assert log.buffer.rows == 3
    assert dropped(metrics, "write_failed") + dropped(metrics, "buffer_full") == 0
    store.down = False
    assert log.flush() == 3
    assert written_ids(store) == ["a", "a", "b"]  # the failed batch first, in order


def test_an_outage_drops_only_what_does_not_fit_in_the_buffer():
    store, metrics = FlakyStore(), ServerMetrics("churn", 2)
    log = logger(store, metrics, buffer_rows=5)
    for name in "abcd":  # 8 rows sampled during the outage, room for 5
        log.log(name, *request(2))
        log.flush()
    assert dropped(metrics, "buffer_full") == 8 - 4  # a request's rows go together: 4 kept
    store.down = False
    assert log.flush() == 4
    assert written_ids(store) == ["a", "a", "b", "b"]  # a full buffer refuses the newest


def test_a_buffer_refilled_during_the_write_gives_up_the_oldest_rows():
    buffer = RowBuffer(4)
    log = logger(MemoryObjectStore(), ServerMetrics("churn", 2))
    for name in "abc":
        log.log(name, *request(1))
    failed = log.buffer.take()
    log.log("d", *request(2))
    buffer.offer(log.buffer.take()[0])
    assert buffer.restore(failed) == 1  # room for two of the three: "a" is left out
    assert [r.request_id for r in buffer.take()] == ["b", "c", "d"]


def test_the_last_write_at_shutdown_counts_what_it_could_not_write():
    store, metrics = FlakyStore(), ServerMetrics("churn", 2)
    log = logger(store, metrics)
    log.log("a", *request(2))
    log.stop()
    assert dropped(metrics, "write_failed") == 2
    assert log.buffer.rows == 0


def test_background_thread_flushes_by_rows_and_on_stop():
    store, metrics = MemoryObjectStore(), ServerMetrics("churn", 2)
    log = logger(store, metrics, flush_rows=2, flush_seconds=3600)
    log.start()
    log.log("a", *request(2))
    log.log("b", *request(1))
    log.stop()
    written = [row for key in list_batches(store, "churn", 2) for row in read_batch(store, key)]
    assert sorted(row["request_id"] for row in written) == ["a", "a", "b"]


def test_while_s3_is_down_the_writer_waits_for_the_flush_interval_not_every_request():
    class CountingStore(FlakyStore):
        attempts = 0

        def put_bytes(self, key, data, **kwargs):
            self.attempts += 1
            super().put_bytes(key, data, **kwargs)

    store, metrics = CountingStore(), ServerMetrics("churn", 2)
    log = logger(store, metrics, flush_rows=1, flush_seconds=3600)
    log.start()
    log.log("a", *request(1))
    deadline = time.monotonic() + 5
    while store.attempts == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    for name in "bcdefgh":
        log.log(name, *request(1))
    time.sleep(0.3)
    assert store.attempts == 1
    assert log.buffer.rows == 8
    log.stop()
