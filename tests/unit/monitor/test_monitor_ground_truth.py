"""The join of logged predictions with labels: rows written by the server's own inference
logger, labels by pandas; multi-row requests, late, duplicate, unknown and ambiguous labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from continuum.server.inference_log import InferenceLogger
from continuum.server.inputs import FeatureRows
from continuum.server.metrics import ServerMetrics
from continuum.server.model import Prediction
from continuum.server.settings import InferenceLogSettings
from continuum.storage.ground_truth import join_labels, predictions_frame, read_predictions
from continuum.storage.inference_logs import write_batch
from continuum.storage.labels import LabelSchema, parse_files
from tests.kit.memory_store import MemoryObjectStore

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SCHEMA = LabelSchema(("no", "yes"))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def serve(store, clock: Clock, requests: list[tuple[str, list[str], timedelta]], **settings):
    """Log each (request id, predicted labels, time after T0) through the real logger."""
    log = InferenceLogger(
        store, "churn", 1, InferenceLogSettings(**settings), ServerMetrics("churn", 1),
        rng=np.random.default_rng(0), now=clock,
    )  # fmt: skip
    for i, (request_id, predicted, after) in enumerate(requests):
        clock.now = T0 + after + i * timedelta(microseconds=1)  # batch keys sort by time
        n = len(predicted)
        rows = FeatureRows({"tenure": np.arange(n, dtype=float) + 10}, n)
        proba = np.array([[0.3, 0.7] if p == "yes" else [0.8, 0.2] for p in predicted])
        log.log(request_id, rows, Prediction(np.array(predicted, dtype=object), proba))
        log.flush()
    return read_predictions(store, "churn", 1, ["tenure"])


def labels(csv: str, key: str = "labels/churn/a.csv") -> pd.DataFrame:
    parsed = parse_files([(key, csv.encode())], SCHEMA)
    assert parsed.rejected == 0, parsed.problems
    return parsed.frame


def balanced(counts) -> None:
    """Every label and every prediction is in exactly one count."""
    c = counts
    label_side = (c.matched + c.waiting_labels + c.unknown_ids + c.unknown_rows
                  + c.ambiguous_labels + c.duplicates)  # fmt: skip
    assert label_side == c.labels
    assert c.matched + c.unlabelled + c.waiting + c.ambiguous_predictions + c.unindexed == (
        c.predictions
    )


def test_multi_row_requests_join_row_by_row():
    store, clock = MemoryObjectStore("data"), Clock()
    predictions = serve(store, clock, [("a", ["yes", "no", "yes"], 0 * HOUR),
                                       ("b", ["no"], 0 * HOUR)])  # fmt: skip
    assert predictions[["id", "row"]].values.tolist() == [["a", 0], ["a", 1], ["a", 2], ["b", 0]]
    got = join_labels(predictions, labels("id,row,label\na,0,yes\na,2,no\nb,,no\n"),
                      now=T0 + 2 * HOUR, label_delay=HOUR)  # fmt: skip
    frame = got.frame.sort_values(["id", "row"])
    assert frame[["id", "row", "prediction", "label"]].values.tolist() == [
        ["a", 0, "yes", "yes"], ["a", 2, "yes", "no"], ["b", 0, "no", "no"],
    ]  # fmt: skip
    assert frame["tenure"].tolist() == [10.0, 12.0, 10.0]
    for name in ("ts", "label_time"):
        assert isinstance(frame[name].dtype, pd.DatetimeTZDtype)
        assert str(frame[name].dtype.tz) == "UTC"
    assert frame["row"].dtype == np.int64
    assert frame["version"].dtype == np.int64  # the predictions' dtypes, not upcast
    assert frame["proba"].tolist()[1] == [0.3, 0.7]
    assert (got.counts.matched, got.counts.unlabelled) == (3, 1)  # a/1 has no label yet
    balanced(got.counts)


def test_sampled_requests_join_by_their_original_row_index():
    store, clock = MemoryObjectStore("data"), Clock()
    predicted = ["yes", "no"] * 20
    predictions = serve(store, clock, [("big", predicted, 0 * HOUR)], sample_rate=0.5)
    logged = predictions["row"].tolist()
    text = "id,row,label\n" + "".join(f"big,{r},{predicted[r]}\n" for r in range(40))
    got = join_labels(predictions, labels(text), now=T0 + 2 * HOUR, label_delay=HOUR)
    assert sorted(got.frame["row"]) == logged
    assert (got.frame["prediction"] == got.frame["label"]).all()  # the right row each time
    assert got.counts.unknown_rows == 40 - len(logged)  # rows sampled out
    balanced(got.counts)


def test_late_labels_wait_for_maturity_then_join():
    store, clock = MemoryObjectStore("data"), Clock()
    predictions = serve(store, clock, [("old", ["yes"], 0 * HOUR), ("new", ["no"], 2 * HOUR)])
    both = labels("id,label\nold,yes\nnew,yes\n")
    early = join_labels(predictions, both, now=T0 + 2.5 * HOUR, label_delay=HOUR)
    assert early.frame["id"].tolist() == ["old"]
    assert (early.counts.waiting, early.counts.waiting_labels, early.counts.unknown_ids) == (
        1,
        1,
        0,
    )
    balanced(early.counts)
    answered = predictions.set_index("id").loc["new", "ts"]
    later = join_labels(predictions, both, now=answered + HOUR, label_delay=HOUR)
    assert sorted(later.frame["id"]) == ["new", "old"]  # matured exactly at the delay
    assert (later.counts.waiting, later.counts.matched) == (0, 2)
    balanced(later.counts)


def test_duplicate_unknown_and_conflicting_labels_are_counted_not_fatal():
    store, clock = MemoryObjectStore("data"), Clock()
    predictions = serve(store, clock, [("a", ["yes", "no"], 0 * HOUR), ("b", ["no"], 0 * HOUR)])
    first = "id,row,label,time\na,0,no,2026-12-02T00:00:00Z\nb,0,no,\nzzz,0,yes,\na,7,yes,\n"
    second = "id,row,label,time\na,0,yes,2026-12-03T00:00:00Z\nb,0,no,\n"
    frame = pd.concat([labels(first, "labels/churn/1.csv"), labels(second, "labels/churn/2.csv")])
    got = join_labels(predictions, frame, now=T0 + 2 * HOUR, label_delay=HOUR)
    won = dict(
        zip(got.frame["id"] + "/" + got.frame["row"].astype(str), got.frame["label"], strict=True)
    )
    assert won == {"a/0": "yes", "b/0": "no"}  # the later time wins for a/0
    assert got.frame.set_index("id").loc["a", "label_time"] == pd.Timestamp("2026-12-03", tz="UTC")
    c = got.counts
    assert (c.duplicates, c.conflicts, c.unknown_ids, c.unknown_rows) == (2, 1, 1, 1)
    assert (c.matched, c.unlabelled) == (2, 1)
    assert c.as_dict()["unknownIds"] == 1
    balanced(c)


def test_a_reused_id_is_ambiguous_and_left_out():
    store, clock = MemoryObjectStore("data"), Clock()
    predictions = serve(store, clock, [("same", ["yes"], 0 * HOUR), ("same", ["no"], 0 * HOUR),
                                       ("own", ["no"], 0 * HOUR)])  # fmt: skip
    got = join_labels(predictions, labels("id,label\nsame,no\nown,no\n"),
                      now=T0 + 2 * HOUR, label_delay=HOUR)  # fmt: skip
    assert got.frame["id"].tolist() == ["own"]
    assert (got.counts.ambiguous_predictions, got.counts.ambiguous_labels) == (2, 1)
    balanced(got.counts)


def test_rows_logged_before_row_indices_join_when_their_request_had_one_row():
    store = MemoryObjectStore("data")
    stamp = "2026-12-01T12:00:00.000000Z"
    old = [{"ts": stamp, "request_id": rid, "model": "churn", "version": 1,
            "features": {"tenure": 1.0}, "prediction": p}
           for rid, p in [("one", "yes"), ("multi", "no"), ("multi", "yes")]]  # fmt: skip
    new = [{"ts": stamp, "request_id": "now", "row": 1, "model": "churn", "version": 1,
            "features": {"tenure": 2.0}, "prediction": "no"}]  # fmt: skip
    write_batch(store, "churn", 1, old, T0)
    write_batch(store, "churn", 1, new, T0 + HOUR)
    predictions = read_predictions(store, "churn", 1)
    assert predictions["row"].tolist()[:3] == [0, pd.NA, pd.NA]
    got = join_labels(predictions, labels("id,row,label\none,,yes\nmulti,0,no\nnow,1,no\n"),
                      now=T0 + 3 * HOUR, label_delay=HOUR)  # fmt: skip
    assert sorted(got.frame["id"]) == ["now", "one"]
    assert (got.counts.unindexed, got.counts.unknown_rows) == (2, 1)
    balanced(got.counts)


def test_no_labels_no_predictions():
    empty = predictions_frame([])
    got = join_labels(empty, labels("id,label\n"), now=T0, label_delay=HOUR)
    assert len(got.frame) == 0
    assert got.counts.as_dict() == dict.fromkeys(got.counts.as_dict(), 0)


@pytest.mark.parametrize("delay", [timedelta(0), 30 * timedelta(days=1)])
def test_the_delay_decides_what_is_evaluated(delay):
    store, clock = MemoryObjectStore("data"), Clock()
    predictions = serve(store, clock, [("a", ["yes"], 0 * HOUR)])
    got = join_labels(predictions, labels("id,label\na,no\n"), now=T0 + HOUR, label_delay=delay)
    assert got.counts.matched == (1 if delay == timedelta(0) else 0)
    balanced(got.counts)
