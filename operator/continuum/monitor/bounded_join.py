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

What stays in memory besides one partition is those codes: about 2 x 8 bytes a row plus
8 x k for probabilities, against several hundred bytes a row for the frames. It is not wired
into the check: the check's assessment also needs the joined frame itself (timeline chunks,
the fairness feature) and the recent predictions for estimation (docs/performance.md
"Limits").
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

from continuum.monitor.estimation import class_codes
from continuum.monitor.performance import Arrays, Served, arrays
from continuum.storage import ObjectStore
from continuum.storage.ground_truth import (
    PREDICTION,
    TS,
    JoinCounts,
    join_labels,
    legacy_rows,
    raw_predictions_frame,
)
from continuum.storage.inference_logs import list_batches_since, read_batch
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
    keys = list_batches_since(store, model, version, since)
    files, others = list_label_files(store, model)
    count = partitions or _sized(store, model, version)
    with tempfile.TemporaryDirectory(prefix="continuum-join-") as folder:
        predictions = Spill(Path(folder), "predictions", count)
        for key in keys:
            predictions.add(raw_predictions_frame(read_batch(store, key)))
        predictions.close()
        schema = LabelSchema(served.classes if served.task == "classification" else None)
        labels_spill = Spill(Path(folder), "labels", count)
        labels = _spill_labels(store, (files, others), schema, labels_spill)
        span = Span(since, now, label_delay)
        parts = [_join_part((predictions, labels_spill), i, served, span) for i in range(count)]
    return BoundedRealised(_summed([c for c, _, _ in parts]), _ordered(parts), labels)


def _sized(store: ObjectStore, model: str, version: int) -> int:
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
    spills: tuple[Spill, Spill], i: int, served: Served, span: Span
) -> tuple[JoinCounts, Arrays | None, np.ndarray[Any, Any]]:
    """Partition ``i`` (predictions, labels) through join_labels; its rows as codes with
    their label positions."""
    predictions, labels = spills
    logged = predictions.load(i, raw_predictions_frame([]))
    logged[ROW] = legacy_rows(logged[ID], logged[ROW])
    logged = logged[logged[TS] > pd.Timestamp(span.since)].reset_index(drop=True)
    given = labels.load(i, empty_frame().assign(**{POSITION: np.array([], dtype=np.int64)}))
    joined = join_labels(
        logged, given.drop(columns=POSITION), now=span.now, label_delay=span.label_delay
    )
    if not len(joined.frame):
        return joined.counts, None, np.array([], dtype=np.int64)
    winners = resolve_duplicates(given).frame[[ID, ROW, POSITION]]  # the labels joined
    at = joined.frame[[ID, ROW]].merge(winners, on=[ID, ROW], how="left")
    keep = _kept(joined.frame, served)
    return joined.counts, arrays(joined.frame, served, labelled=True), at[POSITION].to_numpy()[keep]


def _kept(frame: pd.DataFrame, served: Served) -> np.ndarray[Any, Any]:
    """The rows performance.arrays keeps: prediction and label both classes of the model."""
    if served.task != "classification":
        return np.ones(len(frame), dtype=bool)
    predicted = class_codes(frame[PREDICTION].tolist(), served.classes)
    truth = class_codes(frame[LABEL].tolist(), served.classes)
    return np.asarray((predicted >= 0) & (truth >= 0), dtype=bool)


def _summed(counts: Sequence[JoinCounts]) -> JoinCounts:
    names = [f.name for f in fields(JoinCounts)]
    return JoinCounts(**{name: sum(getattr(c, name) for c in counts) for name in names})


def _ordered(parts: Sequence[tuple[JoinCounts, Arrays | None, np.ndarray[Any, Any]]]) -> Arrays:
    """The partitions' rows back in label order: join_labels' joined frame order."""
    got = [(data, at) for _, data, at in parts if data is not None]
    left_out = sum(data.left_out for data, _ in got)
    if not got:
        empty = np.array([], dtype=np.int64)
        return Arrays(empty, empty, None, left_out)
    order = np.argsort(np.concatenate([at for _, at in got]), kind="stable")
    predicted = np.concatenate([d.predicted for d, _ in got])[order]
    truth = np.concatenate([d.truth for d, _ in got if d.truth is not None])[order]
    scores = None
    if all(d.scores is not None for d, _ in got):
        scores = np.concatenate([d.scores for d, _ in got if d.scores is not None])[order]
    return Arrays(predicted, truth, scores, left_out)
