"""The realised-metric join in bounded memory: hash partitions spilled to local disk (issue 16).

:func:`continuum.storage.ground_truth.join_labels` holds every prediction and every label of
the window in one frame: at 1,000,000 x 1,000,000 its peak RSS grows about 10x with the data
(bench/realised_join.py). :func:`bounded_realised` gives the same :class:`JoinCounts` and the
same realised metric with its interval while holding one partition at a time:

1. the log batches are read one by one and their rows written, by a hash of the request id,
   into ``partitions`` spill files on local disk; so are the label files, one by one
   (:func:`continuum.storage.labels.parse_file`, the checks of read_labels);
2. every rule of the join depends only on the rows of one id (the legacy row rule, the
   duplicate rule, ambiguous (id, row), unknown ids and rows, maturity), so each partition is
   joined by :func:`join_labels` itself and the counts are summed;
3. of each partition's joined rows only the class codes (and probabilities) are kept, with
   each label's position among all labels, and put back in that order at the end: the rows
   :func:`join_labels` gives, in its order, so even the seeded bootstrap intervals are equal.

Besides one partition, what stays in memory is each joined row's time, class codes,
probabilities and sensitive group (:class:`~continuum.monitor.performance.Rows`, about 50
bytes), not its id, row, version or label file, and of those at most ``limit`` a side
(performance.maxRows, sampled by :class:`~continuum.monitor.performance.Sampler`): 1M x 1.03M
peaks at 622 MB against 1,033 MB in memory (7 partitions, 10.5 s against 7.6 s), 10M x 10.3M
at 693 MB against 7,660 MB (69 partitions, a 1,000,000-row sample, 133.6 s against 122.8 s;
pandas 160.1 s and 11,119 MB; bench/realised_join.py, 2026-12-06 22:34 UTC,
docs/performance.md "Limits").

:func:`bounded_join` gives what the check's assessment reads (the joined rows and the recent
predictions as :class:`~continuum.monitor.performance.Rows`: times, class codes,
probabilities, sensitive groups), equal to the in-memory join's (unit-tested); the check
takes it when the window's logs and labels would not fit the budget in memory
(:func:`continuum.monitor.live.read_inputs`). Only Rows outlive their partition: kept as
frames, the joined rows' Python objects (a list of probabilities and two strings a row) held
the peak at 983 MB for 1M x 1M, against 1,006 MB all in memory.
"""

from __future__ import annotations

import math
import pickle
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from continuum.monitor.performance import Arrays, Rows, Sampler, Served, rows_of, sample_keys
from continuum.storage import ObjectStore
from continuum.storage.ground_truth import (
    TS,
    JoinCounts,
    decode_predictions,
    join_labels,
    legacy_rows,
    raw_predictions_frame,
)
from continuum.storage.inference_logs import list_batches_since
from continuum.storage.labels import (
    ID,
    LABEL,
    ROW,
    Labels,
    LabelSchema,
    empty_frame,
    list_label_files,
    parse_file,
    resolve_duplicates,
)
from continuum.storage.layout import inference_log_prefix, labels_prefix

POSITION = "_label_at"  # a label's position among all labels (read_labels' frame order)
EXPANSION = 8  # frame bytes per stored byte, an estimate for sizing partitions
DEFAULT_BUDGET = 256 << 20  # bytes of frames per partition


def partitions_for(stored_bytes: int, budget_bytes: int = DEFAULT_BUDGET) -> int:
    """How many partitions keep one partition's frames within ``budget_bytes``."""
    if budget_bytes <= 0:
        raise ValueError(f"the join's memory budget must be positive, not {budget_bytes} bytes")
    return max(1, math.ceil(stored_bytes * EXPANSION / budget_bytes))


SPILL_ROWS = 100_000  # rows held before each partition's share is written as one pickle


class Spill:
    """``count`` files of pickled frames, each row in the file its id hashes to.

    Rows wait in memory until :data:`SPILL_ROWS` of them are held, then each partition's share
    is written as one pickle. Why: a pickle per log batch and partition made the pickles grow
    with batches x partitions, both of which grow with the data; 10M x 10.3M rows in 70
    partitions took 274 s against 11 s for 1M in 7 (bench/realised_join.py, 2026-12-06)."""

    def __init__(self, folder: Path, name: str, count: int) -> None:
        self.paths = [folder / f"{name}-{i}.pickle" for i in range(count)]
        self.sinks: list[BinaryIO] = [path.open("wb") for path in self.paths]
        self.waiting: list[list[pd.DataFrame]] = [[] for _ in self.paths]
        self.held = 0

    def add(self, frame: pd.DataFrame) -> None:
        if not len(frame):
            return
        where = pd.util.hash_pandas_object(frame[ID], index=False).to_numpy()
        part = where % np.uint64(len(self.paths))
        for i in np.unique(part).tolist():
            self.waiting[i].append(frame[part == i])
        self.held += len(frame)
        if self.held >= SPILL_ROWS:
            self.flush()

    def flush(self) -> None:
        for frames, sink in zip(self.waiting, self.sinks, strict=True):
            if frames:
                share = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
                pickle.dump(share, sink, protocol=pickle.HIGHEST_PROTOCOL)
                frames.clear()
        self.held = 0

    def close(self) -> None:
        self.flush()
        for sink in self.sinks:
            sink.close()

    def load(self, i: int, empty: pd.DataFrame) -> pd.DataFrame:
        frames = list(_pickles(self.paths[i]))
        return pd.concat(frames, ignore_index=True) if frames else empty


def _pickles(path: Path) -> Iterator[pd.DataFrame]:
    with path.open("rb") as source:
        while True:
            try:
                yield pickle.load(source)  # our own spill file, written above
            except EOFError:
                return


@dataclass(frozen=True)
class Span:
    """The check's times: predictions answered after ``since``; matured ``label_delay``
    before ``now``."""

    since: datetime
    now: datetime
    label_delay: timedelta


@dataclass(frozen=True)
class BoundedRealised:
    """What :func:`join_labels` counts, the joined rows as codes, and the labels' summary."""

    counts: JoinCounts
    data: Arrays
    labels: dict[str, Any]


@dataclass(frozen=True)
class BoundedJoin:
    """What :func:`join_labels` gives (its counts; its frame's rows as the assessment reads
    them, in its order), the predictions answered after ``recent_since`` (Rows without
    labels), and the labels' summary."""

    counts: JoinCounts
    labelled: Rows
    recent: Rows
    labels: dict[str, Any]
    seen: tuple[int, int] = (0, 0)  # joined and recent rows before the sample (``limit``)


def bounded_realised(
    store: ObjectStore,
    model: str,
    version: int,
    served: Served,
    *,
    since: datetime,
    now: datetime,
    label_delay: timedelta,
    partitions: int | None = None,
) -> BoundedRealised:
    """read_predictions_since + read_labels + join_labels + performance.arrays, partition by
    partition (module doc); ``partitions`` None: :func:`partitions_for` the stored bytes."""
    span = Span(since, now, label_delay)
    found = bounded_join(store, (model, version), served, span, partitions=partitions)
    return BoundedRealised(found.counts, found.labelled.arrays(served), found.labels)


def bounded_join(
    store: ObjectStore,
    target: tuple[str, int],
    served: Served,
    span: Span,
    *,
    recent_since: datetime | None = None,
    sensitive: str | None = None,
    partitions: int | None = None,
    limit: int | None = None,
) -> BoundedJoin:
    """monitor.live.read_inputs's join, one partition in memory at a time (module doc);
    ``limit``: the joined and the recent rows sampled down to it (performance.Sampler)."""
    model, version = target
    keys = list_batches_since(store, model, version, span.since)
    files, others = list_label_files(store, model)
    count = partitions or stored_partitions(store, model, version)
    reader = Reader(served, sensitive, pd.Timestamp(recent_since or span.now))
    joined, recent = Sampler(limit or UNLIMITED), Sampler(limit or UNLIMITED)
    with tempfile.TemporaryDirectory(prefix="continuum-join-") as folder:
        predictions = Spill(Path(folder), "predictions", count)
        for key in keys:
            _spill_batch(store, key, reader, (predictions, recent))
        predictions.close()
        schema = LabelSchema(served.classes if served.task == "classification" else None)
        labels_spill = Spill(Path(folder), "labels", count)
        labels = _spill_labels(store, (files, others), schema, labels_spill)
        counts = [
            _join_part((predictions, labels_spill), i, span, (reader, joined)) for i in range(count)
        ]
    empty = reader.rows(_empty(reader.features), False)
    return BoundedJoin(_summed(counts), joined.rows(reader.rows(_empty_joined(reader), True)),
                       recent.rows(empty), labels, (joined.seen, recent.seen))  # fmt: skip


UNLIMITED = 1 << 62  # no sample


@dataclass(frozen=True)
class Reader:
    """How a partition's or a batch's frame becomes Rows: for which model, with which
    sensitive feature; ``recent_at``: the recent window's start."""

    served: Served
    sensitive: str | None
    recent_at: pd.Timestamp

    @property
    def features(self) -> list[str]:
        return [self.sensitive] if self.sensitive else []

    def rows(self, frame: pd.DataFrame, labelled: bool) -> Rows:
        return rows_of(frame, self.served, labelled=labelled, sensitive=self.sensitive)


def _empty(features: Sequence[str]) -> pd.DataFrame:
    return raw_predictions_frame([], features)


def _empty_joined(reader: Reader) -> pd.DataFrame:
    return _empty(reader.features).assign(**{LABEL: pd.Series([], dtype=object)})


def _spill_batch(store: ObjectStore, key: str, reader: Reader, into: tuple[Spill, Sampler]) -> None:
    """One log batch into the spill; its rows answered after ``reader.recent_at`` into the
    recent rows' sampler."""
    spill, recent = into
    where = f"s3://{store.bucket}/{key}"
    frame = decode_predictions(store.get_bytes(key), reader.features, where)
    spill.add(frame)
    young = frame[frame[TS] > reader.recent_at]
    recent.add(sample_keys(young[ID], young[ROW]), reader.rows(young, False))


def stored_partitions(store: ObjectStore, model: str, version: int) -> int:
    """How many partitions the version's logs and the model's labels need
    (:func:`partitions_for` their stored bytes); 1: they fit in memory whole."""
    prefixes = (inference_log_prefix(model, version), labels_prefix(model))
    return partitions_for(sum(o.size for p in prefixes for o in store.list_objects(p)))


def _spill_labels(
    store: ObjectStore,
    listed: tuple[Sequence[str], Sequence[str]],
    schema: LabelSchema,
    spill: Spill,
) -> dict[str, Any]:
    """Each label file (``listed``: files, other objects) checked as read_labels checks it,
    spilled with its labels' positions; the summary read_labels would give."""
    files, others = listed
    result, seen = Labels(empty_frame(), skipped_files=list(others)), 0
    for key in files:
        result.files.append(key)
        frame = parse_file(key, store.get_bytes(key), schema, result)
        spill.add(frame.assign(**{POSITION: np.arange(seen, seen + len(frame))}))
        seen += len(frame)
    spill.close()
    return result.summary() | {"labels": seen}


def _join_part(
    spills: tuple[Spill, Spill], i: int, span: Span, into: tuple[Reader, Sampler]
) -> JoinCounts:
    """Partition ``i`` (predictions, labels) through join_labels: its counts; its joined rows
    into the sampler, each with its label position (:data:`POSITION`)."""
    predictions, labels = spills
    reader, sampler = into
    logged = predictions.load(i, _empty(reader.features))
    logged[ROW] = legacy_rows(logged[ID], logged[ROW])
    logged = logged[logged[TS] > pd.Timestamp(span.since)].reset_index(drop=True)
    given = labels.load(i, empty_frame().assign(**{POSITION: np.array([], dtype=np.int64)}))
    joined = join_labels(
        logged, given.drop(columns=POSITION), now=span.now, label_delay=span.label_delay
    )
    winners = resolve_duplicates(given).frame[[ID, ROW, POSITION]]  # the labels joined
    at = joined.frame[[ID, ROW]].merge(winners, on=[ID, ROW], how="left")
    keys = sample_keys(joined.frame[ID], joined.frame[ROW])
    sampler.add(keys, reader.rows(joined.frame, True), at[POSITION].to_numpy(np.int64))
    return joined.counts


def _summed(counts: Sequence[JoinCounts]) -> JoinCounts:
    names = [f.name for f in fields(JoinCounts)]
    return JoinCounts(**{name: sum(getattr(c, name) for c in counts) for name in names})
