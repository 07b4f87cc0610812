"""The bounded join (monitor.bounded_join) against join_labels on the same store: identical
counts, rows and realised metrics with intervals, whatever the number of partitions."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from continuum.api.driftmonitor import Performance
from continuum.monitor import bounded_join as bounded_join_module
from continuum.monitor.bounded_join import (
    Span,
    bounded_join,
    bounded_realised,
    partitions_for,
    stored_partitions,
)
from continuum.monitor.live import read_inputs
from continuum.monitor.performance import Rows, Served, Window, arrays, assess, realised_of
from continuum.monitor.settings import MonitorTarget
from continuum.storage.ground_truth import join_labels, read_predictions_since
from continuum.storage.inference_logs import decode_rows, encode_rows, write_batch
from continuum.storage.labels import LabelSchema, read_labels
from tests.kit.memory_store import MemoryObjectStore

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SINCE, DELAY = NOW - timedelta(hours=30), timedelta(hours=2)
SERVED = Served("classification", ("no", "yes"), {}, None)


def logged_rows(rng: np.random.Generator, n: int) -> list[dict[str, object]]:
    """Multi-row requests, reused ids (ambiguous), legacy rows without ``row``, some older
    than SINCE, some younger than the delay; an unknown class now and then."""
    rows, request = [], 0
    while len(rows) < n:
        rid = (
            f"r{request}"
            if rng.uniform() > 0.1
            else f"r{rng.integers(max(0, request - 9), request + 1)}"
        )
        size = int(rng.integers(1, 4))
        ts = NOW - timedelta(hours=float(rng.uniform(0, 36)))
        for index in range(size):
            p = float(rng.uniform())
            prediction = "yes" if p > 0.5 else "no"
            row = {"ts": f"{ts:%Y-%m-%dT%H:%M:%S.%f}Z", "request_id": rid, "row": index,
                   "prediction": prediction if rng.uniform() > 0.05 else "maybe",
                   "proba": [1 - p, p], "version": 1, "model": "churn"}  # fmt: skip
            if rng.uniform() < 0.1:
                del row["row"]  # legacy: joins only if its request logged one row
            rows.append(row)
        request += 1
    return rows


def label_frame(rng: np.random.Generator, rows: list[dict[str, object]]) -> pd.DataFrame:
    ids = [str(r["request_id"]) for r in rows]
    picked = rng.choice(len(rows), size=len(rows), replace=True)  # duplicates across files
    out = pd.DataFrame({
        "id": [ids[i] if rng.uniform() > 0.05 else f"x{i}" for i in picked],
        "row": [int(rows[i].get("row", 0)) + int(rng.uniform() < 0.03) for i in picked],  # type: ignore[call-overload]
        "label": rng.choice(["yes", "no"], size=len(picked)),
        "time": rng.choice(["2026-12-05T10:00:00Z", "2026-12-05T11:00Z", None], size=len(picked)),
    })  # fmt: skip
    return out


def store_with(seed: int, n: int) -> MemoryObjectStore:
    rng = np.random.default_rng(seed)
    store, rows = MemoryObjectStore(), logged_rows(rng, n)
    for b, start in enumerate(range(0, len(rows), 37)):  # requests span batches
        write_batch(store, "churn", 1, rows[start : start + 37], NOW - timedelta(hours=20 - b / 60))
    labels = label_frame(rng, rows)
    for i, at in enumerate(np.array_split(np.arange(len(labels)), 5)):
        part = labels.iloc[at]
        kind = (".csv", ".jsonl", ".parquet")[i % 3]
        buffer = io.BytesIO()
        if kind == ".csv":
            part.to_csv(buffer, index=False)
        elif kind == ".jsonl":
            part.to_json(buffer, orient="records", lines=True)
        else:
            part.to_parquet(buffer, index=False)
        store.put_bytes(f"labels/churn/part-{i}{kind}", buffer.getvalue())
    return store


def reference(store: MemoryObjectStore):
    predictions = read_predictions_since(store, "churn", 1, SINCE)
    labels = read_labels(store, "churn", LabelSchema(SERVED.classes))
    joined = join_labels(predictions, labels.frame, now=NOW, label_delay=DELAY)
    return joined.counts, arrays(joined.frame, SERVED, labelled=True), labels.summary()


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("partitions", [1, 3, 8])
def test_bounded_join_equals_join_labels(seed: int, partitions: int) -> None:
    store = store_with(seed, 600)
    counts, data, summary = reference(store)
    got = bounded_realised(store, "churn", 1, SERVED, since=SINCE, now=NOW, label_delay=DELAY,
                           partitions=partitions)  # fmt: skip
    assert got.counts == counts
    assert min(counts.duplicates, counts.ambiguous_predictions, counts.unindexed,
               counts.waiting, counts.unknown_ids, counts.unknown_rows) > 0  # fmt: skip
    assert got.labels == summary
    assert got.data.left_out == data.left_out > 0
    np.testing.assert_array_equal(got.data.predicted, data.predicted)
    np.testing.assert_array_equal(got.data.truth, data.truth)
    np.testing.assert_array_equal(got.data.scores, data.scores)
    for metric in ("accuracy", "f1", "roc_auc"):
        assert realised_of(metric, got.data, SERVED, 0.95) == realised_of(
            metric, data, SERVED, 0.95
        )


def test_no_logs_no_labels() -> None:
    got = bounded_realised(MemoryObjectStore(), "churn", 1, SERVED, since=SINCE, now=NOW,
                           label_delay=DELAY, partitions=4)  # fmt: skip
    assert got.counts.predictions == got.counts.labels == len(got.data.predicted) == 0


def test_partitions_follow_the_budget() -> None:
    assert partitions_for(0) == 1
    assert partitions_for(100 << 20, 100 << 20) == 8
    with pytest.raises(ValueError, match="must be positive"):
        partitions_for(1, 0)


def with_plan(store: MemoryObjectStore, seed: int) -> MemoryObjectStore:
    """The store's log rows given a sensitive feature (``plan``, missing now and then)."""
    rng = np.random.default_rng(seed)
    for key in [item.key for item in store.list_objects("inference-logs/")]:
        rows = decode_rows(store.get_bytes(key))
        for row in rows:
            row["features"] = {"plan": rng.choice(["basic", "plus", None]), "tenure": 1.5}
        store.put_bytes(key, encode_rows(rows))
    return store


def assert_rows_equal(got: Rows, want: Rows) -> None:
    np.testing.assert_array_equal(got.ts, want.ts)
    np.testing.assert_array_equal(got.predicted, want.predicted)
    for name in ("truth", "scores"):
        left, right = getattr(got, name), getattr(want, name)
        assert (left is None) == (right is None), name
        if left is not None:
            np.testing.assert_array_equal(left, right)
    assert (got.groups is None) == (want.groups is None)
    if got.groups is not None:
        assert list(got.groups) == list(want.groups)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("sensitive", [None, "plan"])
def test_bounded_join_gives_the_checks_inputs(seed: int, sensitive: str | None) -> None:
    """What live.read_inputs gives in memory, through partitions: the same counts, joined rows
    (as the assessment reads them), recent predictions and label summary, so the same
    assessment; and read_inputs takes that path when asked for partitions."""
    store = with_plan(store_with(seed, 600), seed)
    window = Window(NOW, DELAY, timedelta(hours=20))
    target = MonitorTarget("m", "churn", 1)
    memory, summary = read_inputs(store, target, SERVED, window, sensitive)
    assert stored_partitions(store, "churn", 1) == 1  # so read_inputs joined in memory
    span = Span(window.start, window.now, window.label_delay)
    found = bounded_join(store, ("churn", 1), SERVED, span, recent_since=window.recent_start,
                         sensitive=sensitive, partitions=5)  # fmt: skip
    assert found.labels == summary
    assert found.counts == memory.join
    assert_rows_equal(found.labelled, memory.labelled)
    assert_rows_equal(found.recent, memory.recent)
    assert len(found.labelled) > 50
    assert len(found.recent) > 50
    assert found.labelled.scores is not None
    partitioned, summary_too = read_inputs(store, target, SERVED, window, sensitive, partitions=5)
    assert summary_too == summary
    assert partitioned.notes == memory.notes
    spec = Performance(metric="accuracy", estimate=False, min_labels=10)
    result = assess(spec, SERVED, window, partitioned)
    assert result == assess(spec, SERVED, window, memory)
    assert (result.fairness is not None) == (sensitive is not None)
    assert result.realised is not None
    assert result.join == memory.join


def test_a_window_with_no_logs_partitioned() -> None:
    window = Window(NOW, DELAY, timedelta(hours=20))
    empty, _ = read_inputs(MemoryObjectStore(), MonitorTarget("m", "churn", 1), SERVED, window,
                           "plan", partitions=3)  # fmt: skip
    assert len(empty.labelled) == len(empty.recent) == 0
    assert empty.labelled.truth is not None
    assert empty.recent.truth is None
    result = assess(Performance(metric="accuracy", estimate=False), SERVED, window, empty)
    assert result.verdict == "InsufficientData"


@pytest.mark.parametrize("partitions", [1, 4])
def test_a_window_beyond_max_rows_is_sampled_alike_either_way(partitions: int) -> None:
    """maxRows: each side keeps the rows of its smallest hashes of (id, row), ties kept, in
    its own order, the same in memory and in partitions; the counts still count every row."""
    store = with_plan(store_with(3, 1500), 3)
    window = Window(NOW, DELAY, timedelta(hours=20))
    target = MonitorTarget("m", "churn", 1)
    whole, _ = read_inputs(store, target, SERVED, window, "plan")
    cut, _ = read_inputs(store, target, SERVED, window, "plan", partitions=partitions,
                         max_rows=150)  # fmt: skip
    assert len(whole.labelled) > 300
    assert len(whole.recent) > 300
    assert cut.join == whole.join
    for side in ("labelled", "recent"):
        kept, every = getattr(cut, side), getattr(whole, side)
        assert 150 <= len(kept) <= 160, (side, len(kept))  # ties (reused ids) kept together
        picked = np.isin(every.ts, kept.ts)
        assert picked.sum() >= len(kept) * 0.9  # a subset of the rows, in their order
        assert (np.diff(np.flatnonzero(np.isin(every.ts, kept.ts))) > 0).all()
    memory, _ = read_inputs(store, target, SERVED, window, "plan", partitions=1, max_rows=150)
    assert_rows_equal(cut.labelled, memory.labelled)
    assert_rows_equal(cut.recent, memory.recent)
    assert cut.notes == memory.notes
    assert any("of the" in note and "matured labelled predictions judged" in note
               for note in cut.notes)  # fmt: skip
    spec = Performance(metric="accuracy", estimate=False, min_labels=10, max_rows=150)
    assert assess(spec, SERVED, window, cut) == assess(spec, SERVED, window, memory)
    assert assess(spec, SERVED, window, cut).realised.rows == len(
        cut.labelled.arrays(SERVED).predicted
    )


def test_spills_written_in_many_shares_join_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows held in memory are written every SPILL_ROWS rows: with shares of 50 rows (many
    pickles a partition), the same counts and metrics as join_labels."""
    monkeypatch.setattr(bounded_join_module, "SPILL_ROWS", 50)
    store = store_with(4, 600)
    counts, data, summary = reference(store)
    got = bounded_realised(store, "churn", 1, SERVED, since=SINCE, now=NOW, label_delay=DELAY,
                           partitions=3)  # fmt: skip
    assert (got.counts, got.labels) == (counts, summary)
    np.testing.assert_array_equal(got.data.truth, data.truth)
    assert realised_of("f1", got.data, SERVED, 0.95) == realised_of("f1", data, SERVED, 0.95)
