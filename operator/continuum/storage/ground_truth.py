"""Logged predictions joined with their labels: the ground truth of a window (issue 16), and
of a training set built from served traffic (issue 17; it lives in the storage layer so the
monitor and the trainer, which never import each other, both use it).

Pure functions on frames; the readers (:func:`read_predictions`,
:func:`continuum.storage.labels.read_labels`) fetch them. A prediction is identified by the
request id the server answered (``id`` / ``x-request-id``) and its row index within the
request; a label names the same pair (``row`` absent: 0). :func:`join_labels`:

1. resolves duplicate labels by the documented rule (:func:`continuum.storage.labels.
   resolve_duplicates`: latest ``time``, then last file, then last row);
2. keeps only predictions that have **matured**: answered at least ``label_delay`` before
   ``now``, the delay the user states for labels to arrive. Younger ones are *waiting*: not
   evaluated yet, their labels (if already in) kept for a later check, not counted unknown;
3. inner-joins the matured predictions with the labels on (id, row).

Everything that does not join is counted, never fatal (:class:`JoinCounts`): labels whose id
no logged prediction has (``unknownIds``: another model version's, a sampled-out request's
— at ``sampleRate`` < 1 only some requests are logged — or a typo), labels whose id is known
but not that row (``unknownRows``), matured predictions with no label yet (``unlabelled``).
A (id, row) logged more than once (a client reusing its ids) cannot say which prediction a
label judges: those predictions are left out and counted (``ambiguousPredictions``), and so
are their labels (``ambiguousLabels``). Rows logged before the server recorded row indices
(no ``row`` field) are taken as row 0 when they are their request's only logged row (a one-row
request); otherwise their index is unknown and they are left out (``unindexed``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from continuum.storage.client import ObjectStore
from continuum.storage.inference_logs import list_batches, list_batches_since, read_batch
from continuum.storage.labels import ID, LABEL, ROW, TIME, resolve_duplicates

TS, VERSION, PREDICTION, PROBA = "ts", "version", "prediction", "proba"
LABEL_TIME = "label_time"
PREDICTION_COLUMNS = (ID, ROW, TS, VERSION, PREDICTION, PROBA)


def predictions_frame(
    rows: Iterable[Mapping[str, Any]], features: Sequence[str] = ()
) -> pd.DataFrame:
    """Inference log rows (old and new alike) as :data:`PREDICTION_COLUMNS` plus ``features``.

    ``row`` is nullable Int64: NA where an old row did not record it and cannot be inferred.
    """
    frame = raw_predictions_frame(rows, features)
    frame[ROW] = legacy_rows(frame[ID], frame[ROW])
    return frame


def raw_predictions_frame(
    rows: Iterable[Mapping[str, Any]], features: Sequence[str] = ()
) -> pd.DataFrame:
    """:func:`predictions_frame` before a missing ``row`` is inferred: the legacy rule needs
    every logged row of a request, so the bounded join (monitor.bounded_join) applies it per
    partition, where all of an id's rows are."""
    columns: dict[str, list[Any]] = {name: [] for name in (*PREDICTION_COLUMNS, *features)}
    for row in rows:
        columns[ID].append(row.get("request_id"))
        columns[ROW].append(row.get("row"))
        columns[TS].append(row.get("ts"))
        columns[VERSION].append(row.get("version"))
        columns[PREDICTION].append(row.get("prediction"))
        columns[PROBA].append(row.get("proba"))
        logged = row.get("features") or {}
        for name in features:
            columns[name].append(logged.get(name))
    frame = pd.DataFrame(columns)
    frame[ID] = frame[ID].astype(object)
    frame[TS] = pd.to_datetime(frame[TS], utc=True, format="ISO8601")
    frame[ROW] = pd.Series(pd.array(frame[ROW].tolist(), dtype="Int64"), index=frame.index)
    return frame


def legacy_rows(ids: pd.Series, rows: Any) -> pd.Series:
    """A row without an index is row 0 if it is its request's only logged row, else NA."""
    rows = pd.Series(rows, index=ids.index, dtype="Int64")
    missing = rows.isna()
    if missing.any():
        alone = ~ids.duplicated(keep=False)
        rows = rows.mask(missing & alone, 0)
    return rows


def read_predictions(
    store: ObjectStore, model: str, version: int, features: Sequence[str] = ()
) -> pd.DataFrame:
    """Every logged prediction of a model version (all its batches), oldest first."""
    batches = (read_batch(store, key) for key in list_batches(store, model, version))
    return predictions_frame((row for rows in batches for row in rows), features)


def read_predictions_since(
    store: ObjectStore, model: str, version: int, since: datetime, features: Sequence[str] = ()
) -> pd.DataFrame:
    """The logged predictions of a model version answered after ``since``, oldest first;
    batches written before it are not downloaded."""
    keys = list_batches_since(store, model, version, since)
    frame = predictions_frame((row for key in keys for row in read_batch(store, key)), features)
    return frame[frame[TS] > pd.Timestamp(since)].reset_index(drop=True)


@dataclass(frozen=True)
class JoinCounts:
    """What the join found; every label and prediction is in exactly one count of its side.

    Labels: ``matched + waitingLabels + unknownIds + unknownRows + ambiguousLabels +
    duplicates`` = labels given. Predictions: ``matched + unlabelled + waiting +
    ambiguousPredictions + unindexed`` = predictions given.
    """

    predictions: int
    labels: int
    matched: int  # matured predictions with their label: the rows of the joined frame
    unlabelled: int  # matured predictions without a label (yet)
    waiting: int  # predictions younger than the label delay: not evaluated yet
    waiting_labels: int  # labels of waiting predictions: kept for a later check
    unknown_ids: int  # labels whose id no logged prediction has
    unknown_rows: int  # labels of a logged id but a row not logged with it
    duplicates: int  # labels dropped by the duplicate rule
    conflicts: int  # of those, the ones that disagreed with the label kept
    ambiguous_predictions: int  # predictions whose (id, row) was logged more than once
    ambiguous_labels: int  # labels of such an (id, row)
    unindexed: int  # old log rows whose row index is unknown (module doc)

    def as_dict(self) -> dict[str, int]:
        return {_camel(name): value for name, value in asdict(self).items()}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass(frozen=True)
class Joined:
    """Matured predictions with their labels (``label``, ``label_time``), and the counts."""

    frame: pd.DataFrame
    counts: JoinCounts


def join_labels(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    now: datetime,
    label_delay: timedelta,
) -> Joined:
    """Join ``predictions`` (:func:`predictions_frame`) and ``labels``
    (:class:`continuum.storage.labels.Labels` ``.frame``, duplicates allowed): module doc."""
    resolved = resolve_duplicates(labels)
    unique = resolved.frame[[ID, ROW, LABEL, TIME]].rename(columns={TIME: LABEL_TIME})
    unique[ROW] = unique[ROW].astype(np.int64)
    indexed = predictions[predictions[ROW].notna()].copy()
    indexed[ROW] = indexed[ROW].astype(np.int64)
    repeated = indexed.duplicated([ID, ROW], keep=False).to_numpy()
    single = indexed[~repeated].reset_index(drop=True)
    matured = (single[TS] <= pd.Timestamp(now) - pd.Timedelta(label_delay)).to_numpy()
    # One merge finds each label's prediction (its position in ``single``); the joined frame
    # is taken from ``single`` by position, so the predictions' dtypes stay as they were, and
    # only the labels that found none are looked at again (1M x 1M: 7.1 s with three isin
    # passes and an inner merge before, 4 s so).
    keys = single[[ID, ROW]].assign(_at=np.arange(len(single)))
    found = unique.merge(keys, on=[ID, ROW], how="left", sort=False)
    at = found["_at"].to_numpy(dtype=np.float64)
    has = ~np.isnan(at)
    position = at[has].astype(np.int64)
    ripe = matured[position]
    taken = position[ripe]
    joined = single.iloc[taken].reset_index(drop=True)
    for name in (LABEL, LABEL_TIME):
        joined[name] = found.loc[has, name].array[ripe]  # the array keeps the dtype (UTC)
    labelled = np.zeros(len(single), dtype=bool)
    labelled[position] = True
    orphans = found.loc[~has, [ID, ROW]]
    ambiguous = _keys(orphans).isin(_keys(indexed[repeated])) if repeated.any() else None
    known = orphans[ID].isin(pd.unique(predictions[ID].to_numpy())).to_numpy()
    n_ambiguous = int(ambiguous.sum()) if ambiguous is not None else 0
    counts = JoinCounts(
        predictions=len(predictions),
        labels=len(labels),
        matched=len(joined),
        unlabelled=int((matured & ~labelled).sum()),
        waiting=int((~matured).sum()),
        waiting_labels=int((~ripe).sum()),
        unknown_ids=int((~known).sum()),
        unknown_rows=int(known.sum()) - n_ambiguous,
        duplicates=resolved.duplicates,
        conflicts=resolved.conflicts,
        ambiguous_predictions=int(repeated.sum()),
        ambiguous_labels=n_ambiguous,
        unindexed=len(predictions) - len(indexed),
    )
    return Joined(joined, counts)


def _keys(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([frame[ID].to_numpy(), frame[ROW].to_numpy(np.int64)])
