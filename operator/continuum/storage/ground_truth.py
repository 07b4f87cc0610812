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

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from continuum.storage.client import ObjectStore
from continuum.storage.inference_logs import decode_rows, list_batches, list_batches_since
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
    return _frame(columns)


def _frame(columns: dict[str, list[Any]]) -> pd.DataFrame:
    """The decoded columns as a frame. A ``row`` that is not a whole number (never written by
    the server) is taken as unknown, like a missing one: the legacy rule then applies."""
    rows = [v if isinstance(v, int) and not isinstance(v, bool) else None for v in columns[ROW]]
    frame = pd.DataFrame(columns | {ROW: pd.array(rows, dtype="Int64")})
    frame[ID] = frame[ID].astype(object)
    frame[TS] = pd.to_datetime(frame[TS], utc=True, format="ISO8601")
    return frame


_LOGGED = pa.schema([("request_id", pa.string()), ("row", pa.int64()), ("ts", pa.string()),
                     ("version", pa.int64()), ("proba", pa.list_(pa.float64()))])  # fmt: skip


def decode_predictions(
    data: bytes, features: Sequence[str] = (), where: str = "inference log batch"
) -> pd.DataFrame:
    """One log batch as :func:`raw_predictions_frame` makes of its decoded rows, equal value for
    value, parsed by pyarrow's JSON reader: 1.1 s of Python ``json`` for 200,000 rows against
    0.15 s (bench/realised_join.py). A batch it cannot take as it is (a field of an unexpected
    type, a line that is not an object) goes the way of ``json`` (:func:`decode_rows`), which
    names the problem; so one odd batch costs time, never a difference."""
    try:
        table = _arrow_table(data)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return raw_predictions_frame(decode_rows(data, where), features)
    return _arrow_frame(table, features)


def _arrow_table(data: bytes) -> pa.Table:
    """The fields of _LOGGED typed, the others (prediction, features) inferred."""
    options = pa_json.ParseOptions(explicit_schema=_LOGGED, unexpected_field_behavior="infer")
    return pa_json.read_json(io.BytesIO(data), parse_options=options)


def _arrow_frame(table: pa.Table, features: Sequence[str]) -> pd.DataFrame:
    """The columns as Python lists, made into a frame the way the json path makes it."""

    def values(name: str) -> list[Any]:
        if name not in table.column_names:
            return [None] * len(table)
        return list(table.column(name).to_pylist())

    logged = table.column("features") if "features" in table.column_names else None
    columns = {ID: values("request_id"), ROW: values("row"), TS: values("ts"),
               VERSION: values("version"), PREDICTION: values(PREDICTION),
               PROBA: values(PROBA)}  # fmt: skip
    return _frame(columns | {name: _feature(logged, name, len(table)) for name in features})


def _feature(logged: pa.ChunkedArray | None, name: str, rows: int) -> list[Any]:
    if logged is None or not pa.types.is_struct(logged.type):
        return [None] * rows
    if logged.type.get_field_index(name) < 0:
        return [None] * rows
    return list(pc.struct_field(logged, name).to_pylist())


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
    return _predictions(store, list_batches(store, model, version), features)


def read_predictions_since(
    store: ObjectStore, model: str, version: int, since: datetime, features: Sequence[str] = ()
) -> pd.DataFrame:
    """The logged predictions of a model version answered after ``since``, oldest first;
    batches written before it are not downloaded."""
    frame = _predictions(store, list_batches_since(store, model, version, since), features)
    return frame[frame[TS] > pd.Timestamp(since)].reset_index(drop=True)


def _predictions(store: ObjectStore, keys: Sequence[str], features: Sequence[str]) -> pd.DataFrame:
    """The batches' rows (:func:`decode_predictions`), each batch decoded as it arrives."""
    frames = [decode_predictions(store.get_bytes(key), features, f"s3://{store.bucket}/{key}")
              for key in keys]  # fmt: skip
    frame = pd.concat(frames, ignore_index=True) if frames else raw_predictions_frame([], features)
    frame[ROW] = legacy_rows(frame[ID], frame[ROW])
    return frame


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
