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

Besides one partition, what stays in memory is each joined row's time, prediction, label
and probabilities (:data:`KEPT`), not its id, row, version or label file: 1M x 1M peaks at
712 MB against 1,008 MB in memory, in 16.6 s against 9.3 s (bench/realised_join.py, 7
partitions, 2026-12-06); with only class codes kept (the first version) it peaked at 492 MB.

:func:`bounded_join` gives what the check's assessment reads (the joined rows' time,
prediction, label, probabilities and sensitive feature; the recent predictions for the
estimate), equal to monitor.live.read_inputs's (unit-tested). It is not wired into the check,
for a measured reason: those rows as frames hold Python objects (a list of probabilities, a
string) per row, and with them the peak at 1M x 1M was 983 MB against 1,006 MB in memory, for
11.1 s against 8.6 s. Bounded memory needs the assessment to take codes and arrays, not frames
(docs/performance.md "Limits").
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

from continuum.monitor.performance import Arrays, Served, arrays
from continuum.storage import ObjectStore
from continuum.storage.ground_truth import (
    PREDICTION,
    PROBA,
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


class Spill:
    """``count`` files of pickled frames, each row in the file its id hashes to."""

    def __init__(self, folder: Path, name: str, count: int) -> None:
        self.paths = [folder / f"{name}-{i}.pickle" for i in range(count)]
        self.sinks: list[BinaryIO] = [path.open("wb") for path in self.paths]

    def add(self, frame: pd.DataFrame) -> None:
        if not len(frame):
            return
        where = pd.util.hash_pandas_object(frame[ID], index=False).to_numpy()
        part = where % np.uint64(len(self.paths))
        for i in np.unique(part).tolist():
            pickle.dump(frame[part == i], self.sinks[i], protocol=pickle.HIGHEST_PROTOCOL)

    def close(self) -> None:
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
    """What :func:`join_labels` gives (its counts; of its frame the columns the check's
    assessment reads: :data:`KEPT` and the sensitive feature, in its order), the predictions
    answered after ``recent_since`` (the same columns but the label), and the labels' summary."""

    counts: JoinCounts
    labelled: pd.DataFrame
    recent: pd.DataFrame
    labels: dict[str, Any]


KEPT = (TS, PREDICTION, LABEL, PROBA)  # what performance.assess reads of a joined row


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
    return BoundedRealised(found.counts, arrays(found.labelled, served, labelled=True),
                           found.labels)  # fmt: skip


def bounded_join(
    store: ObjectStore,
    target: tuple[str, int],
    served: Served,
    span: Span,
    *,
    recent_since: datetime | None = None,
    features: Sequence[str] = (),
    partitions: int | None = None,
) -> BoundedJoin:
    """monitor.live.read_inputs's join, one partition in memory at a time (module doc)."""
    model, version = target
    keys = list_batches_since(store, model, version, span.since)
    files, others = list_label_files(store, model)
    count = partitions or stored_partitions(store, model, version)
    recent_at = pd.Timestamp(recent_since or span.now)
    with tempfile.TemporaryDirectory(prefix="continuum-join-") as folder:
        predictions = Spill(Path(folder), "predictions", count)
        recent = [_spill_batch(store, key, features, predictions, recent_at) for key in keys]
        predictions.close()
        schema = LabelSchema(served.classes if served.task == "classification" else None)
        labels_spill = Spill(Path(folder), "labels", count)
        labels = _spill_labels(store, (files, others), schema, labels_spill)
        columns = [*KEPT, *features]
        parts = [_join_part((predictions, labels_spill), i, span, columns) for i in range(count)]
    kept = [TS, PREDICTION, PROBA, *features]
    return BoundedJoin(_summed([c for c, _ in parts]), _ordered(parts, columns),
                       _recent(recent, kept), labels)  # fmt: skip


def _spill_batch(
    store: ObjectStore, key: str, features: Sequence[str], spill: Spill, recent_at: pd.Timestamp
) -> pd.DataFrame:
    """One log batch into the spill; its rows answered after ``recent_at`` are returned."""
    frame = decode_predictions(store.get_bytes(key), features, f"s3://{store.bucket}/{key}")
    spill.add(frame)
    return frame[frame[TS] > recent_at]


def _recent(frames: Sequence[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    kept = [frame[list(columns)] for frame in frames if len(frame)]
    if not kept:
        return raw_predictions_frame([], [c for c in columns if c not in KEPT])[list(columns)]
    return pd.concat(kept, ignore_index=True)


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
    spills: tuple[Spill, Spill], i: int, span: Span, columns: Sequence[str]
) -> tuple[JoinCounts, pd.DataFrame]:
    """Partition ``i`` (predictions, labels) through join_labels; of its joined rows
    ``columns`` and each row's label position (:data:`POSITION`)."""
    predictions, labels = spills
    logged = predictions.load(i, raw_predictions_frame([], [c for c in columns if c not in KEPT]))
    logged[ROW] = legacy_rows(logged[ID], logged[ROW])
    logged = logged[logged[TS] > pd.Timestamp(span.since)].reset_index(drop=True)
    given = labels.load(i, empty_frame().assign(**{POSITION: np.array([], dtype=np.int64)}))
    joined = join_labels(
        logged, given.drop(columns=POSITION), now=span.now, label_delay=span.label_delay
    )
    winners = resolve_duplicates(given).frame[[ID, ROW, POSITION]]  # the labels joined
    at = joined.frame[[ID, ROW]].merge(winners, on=[ID, ROW], how="left")
    part = joined.frame[list(columns)].reset_index(drop=True)
    return joined.counts, part.assign(**{POSITION: at[POSITION].to_numpy()})


def _summed(counts: Sequence[JoinCounts]) -> JoinCounts:
    names = [f.name for f in fields(JoinCounts)]
    return JoinCounts(**{name: sum(getattr(c, name) for c in counts) for name in names})


def _ordered(
    parts: Sequence[tuple[JoinCounts, pd.DataFrame]], columns: Sequence[str]
) -> pd.DataFrame:
    """The partitions' joined rows back in label order: join_labels' frame order."""
    frames = [frame for _, frame in parts]
    merged = pd.concat(frames, ignore_index=True)
    order = np.argsort(merged[POSITION].to_numpy(), kind="stable")
    return merged.iloc[order][list(columns)].reset_index(drop=True)
