"""Label files: the ground truth users' systems (or the feedback endpoint) drop for a model.

::

    labels/<model>/<any/path>.csv | .parquet | .jsonl | .ndjson

Every object under the prefix with one of those suffixes is a label file; anything else (a
Spark ``_SUCCESS`` marker, a README) is skipped and named in the result. Columns (docs/feedback.md):

=========  =========  ==================================================================
``id``     required   the prediction's request id (answered in ``id`` / ``x-request-id``);
                      a string, or an integer (written as its decimal digits)
``row``    optional   the row's index within the request, 0-based; absent or empty: 0
``label``  required   a class of the model (classifiers: ``"yes"``, ``1`` and ``1.0`` all
                      name the class ``1``) or a finite number (regressors)
``time``   optional   when the label became known (ISO 8601; no zone: UTC)
=========  =========  ==================================================================

Nothing here is fatal to the other labels: a row with a label of the wrong type, an unknown
class, a missing id or a bad row index or time is rejected and reported with its file and
row number (1-based, not counting a CSV header; the line number in JSON lines); a file that
cannot be read at all is rejected whole and named. Everything else is kept.

**Duplicates** (the same ``id`` and ``row`` labelled more than once, in one file or several)
are resolved by one rule, :func:`resolve_duplicates`: the label with the latest ``time``
wins, a label without ``time`` counting as older than any with one; among equal times, the
one in the last file in key order, then the last row of that file. The labels dropped are
counted, and those whose value differed from the winner's are counted apart (conflicts).
"""

from __future__ import annotations

import io
import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from continuum.storage.client import ObjectStore
from continuum.storage.inference_logs import CONTENT_TYPE, encode_rows
from continuum.storage.layout import labels_prefix

ID, ROW, LABEL, TIME = "id", "row", "label", "time"
SOURCE, LINE = "source", "line"  # where each label came from: file key and row number
COLUMNS = (ID, ROW, LABEL, TIME, SOURCE, LINE)
CSV, PARQUET, JSON_LINES = ".csv", ".parquet", ".jsonl"
SUFFIXES = (CSV, PARQUET, JSON_LINES, ".ndjson")
MAX_LISTED = 20  # rejections listed with their message; all are counted
FEEDBACK = "feedback/"  # under labels/<model>/: the model server's batches of posted labels


@dataclass(frozen=True)
class LabelSchema:
    """What a label must be: one of ``classes`` (classifier) or, when None, a finite number."""

    classes: tuple[Any, ...] | None

    def describe_classes(self) -> str:
        return ", ".join(repr(c) for c in self.classes or ())


@dataclass
class Labels:
    """Labels read and checked, with what was rejected and why.

    ``frame`` has the columns :data:`COLUMNS`: ``id`` (str), ``row`` (int64), ``label``
    (the model's class values, or float64), ``time`` (datetime64 UTC, NaT when not given),
    ``source`` (the file's key) and ``line`` (row number in that file, 1-based).
    """

    frame: pd.DataFrame
    files: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    rejected: int = 0  # label rows rejected (a file rejected whole counts as one)
    problems: list[str] = field(default_factory=list)  # the first MAX_LISTED, with file and row

    def reject(self, message: str, count: int = 1) -> None:
        self.rejected += count
        if len(self.problems) < MAX_LISTED:
            self.problems.append(message)

    def summary(self) -> dict[str, Any]:
        return {
            "files": len(self.files),
            "skippedFiles": self.skipped_files[:MAX_LISTED],
            "labels": len(self.frame),
            "rejected": self.rejected,
            "problems": list(self.problems),
        }


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            ID: pd.Series([], dtype=object),
            ROW: pd.Series([], dtype=np.int64),
            LABEL: pd.Series([], dtype=object),
            TIME: pd.Series([], dtype="datetime64[ns, UTC]"),
            SOURCE: pd.Series([], dtype=object),
            LINE: pd.Series([], dtype=np.int64),
        }
    )


# ---------------------------------------------------------------- S3


def feedback_key(model: str, when: datetime, batch_id: str | None = None) -> str:
    """``labels/<model>/feedback/<YYYY-MM-DD>/<YYYYMMDDTHHMMSS.ffffffZ>-<uuid>.jsonl``: keys
    sort by time, so the duplicate rule's "last file" is the last batch written."""
    moment = when.astimezone(UTC)
    name = f"{moment:%Y%m%dT%H%M%S.%f}Z-{batch_id or uuid.uuid4().hex}{JSON_LINES}"
    return f"{labels_prefix(model)}{FEEDBACK}{moment:%Y-%m-%d}/{name}"


def write_feedback(
    store: ObjectStore, model: str, labels: Iterable[Mapping[str, Any]], when: datetime
) -> str:
    """Write one batch of posted labels (JSON lines of id, row, label, time); its key."""
    key = feedback_key(model, when)
    store.put_bytes(key, encode_rows(labels), if_absent=True, content_type=CONTENT_TYPE)
    return key


def list_label_files(store: ObjectStore, model: str) -> tuple[list[str], list[str]]:
    """(label files, other objects) under ``labels/<model>/``, each in key order."""
    keys = sorted(item.key for item in store.list_objects(labels_prefix(model)))
    files = [key for key in keys if key.endswith(SUFFIXES)]
    return files, [key for key in keys if not key.endswith(SUFFIXES)]


def read_labels(store: ObjectStore, model: str, schema: LabelSchema) -> Labels:
    """Every label file of ``model``, read and checked (see the module doc); never raises on
    a bad file or label, only on S3 failures."""
    files, others = list_label_files(store, model)
    return parse_files(((key, store.get_bytes(key)) for key in files), schema, others)


def parse_files(
    files: Iterable[tuple[str, bytes]], schema: LabelSchema, skipped: Sequence[str] = ()
) -> Labels:
    """The labels of each ``(key, bytes)`` file, checked against ``schema``."""
    result = Labels(empty_frame(), skipped_files=list(skipped))
    frames = []
    for key, data in files:
        result.files.append(key)
        frames.append(parse_file(key, data, schema, result))
    kept = [frame for frame in frames if len(frame)]
    if kept:
        result.frame = pd.concat(kept, ignore_index=True)
    return result


def parse_file(key: str, data: bytes, schema: LabelSchema, into: Labels) -> pd.DataFrame:
    """One file's valid labels; its problems are recorded in ``into``."""
    try:
        raw, lines = _read_table(key, data)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        into.reject(f"{key}: not a readable {_kind(key)} file, skipped whole: {_short(exc)}")
        return empty_frame()
    except _FileRejectedError as exc:
        into.reject(f"{key}: {exc}")
        return empty_frame()
    return check_table(raw, key, schema, into, lines=lines)


class _FileRejectedError(Exception):
    pass


def _kind(key: str) -> str:
    return {CSV: "CSV", PARQUET: "Parquet"}.get(key[key.rfind(".") :], "JSON lines")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _read_table(key: str, data: bytes) -> tuple[pd.DataFrame, list[int] | None]:
    """The file's columns, untyped where the format has no types (CSV: strings, "" as null),
    and for JSON lines each row's line number (blank lines are skipped)."""
    if not data.strip():
        return pd.DataFrame(), None
    if key.endswith(CSV):
        frame = pd.read_csv(
            io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8"
        )
        return frame, None
    if key.endswith(PARQUET):
        return pd.read_parquet(io.BytesIO(data)), None
    return _read_json_lines(data)


def _read_json_lines(data: bytes) -> tuple[pd.DataFrame, list[int]]:
    records, lines = [], []
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise _FileRejectedError(
                f"line {number} is not JSON ({_short(exc)}); file skipped"
            ) from exc
        if not isinstance(record, dict):
            raise _FileRejectedError(f"line {number} is not a JSON object; file skipped")
        records.append(record)
        lines.append(number)
    return (pd.DataFrame.from_records(records) if records else pd.DataFrame()), lines


# ---------------------------------------------------------------- checks


def check_table(
    raw: pd.DataFrame,
    source: str,
    schema: LabelSchema,
    into: Labels,
    row_name: Callable[[int], str] | None = None,
    *,
    lines: Sequence[int] | None = None,
) -> pd.DataFrame:
    """The valid rows of ``raw`` (one label file or feedback request) as a :data:`COLUMNS` frame.

    ``source`` names the file (or request) in every rejection message, ``row_name`` a row
    by its number ``lines[i]`` (default: its place, 1-based; name: ``"<source> row <n>"``).
    The numbers are an argument, not ``raw.attrs``: pandas deep-copies ``attrs`` into every
    frame and column derived from it, which took 2.0 of 8.5 s reading 200,000 labels.
    """
    name_of = row_name or (lambda line: f"{source} row {line}")
    missing = [name for name in (ID, LABEL) if name not in raw.columns]
    if missing and len(raw):
        into.reject(f"{source}: no column {' or '.join(map(repr, missing))}: a label file "
                    f"needs columns 'id' and 'label' (optional 'row', 'time'); file skipped",
                    len(raw))  # fmt: skip
        return empty_frame()
    if not len(raw):
        return empty_frame()
    numbers = np.asarray(range(1, len(raw) + 1) if lines is None else lines, dtype=np.int64)
    bad = np.zeros(len(raw), dtype=bool)
    checks: list[tuple[str, Callable[[pd.Series], tuple[pd.Series, np.ndarray, str]]]] = [
        (ID, _ids),
        (ROW, _rows),
        (LABEL, lambda column: _labels(column, schema)),
        (TIME, _times),
    ]
    out: dict[str, Any] = {}
    problems: list[tuple[int, str]] = []
    for name, check in checks:
        column = raw[name] if name in raw.columns else pd.Series([None] * len(raw))
        values, invalid, what = check(column.reset_index(drop=True))
        for position in np.flatnonzero(invalid & ~bad).tolist():  # a row's first problem only
            problems.append((position, f"{name} {_shown(column.iloc[position])} {what}"))
        bad |= invalid
        out[name] = values
    for at, problem in sorted(problems):
        into.reject(f"{name_of(int(numbers[at]))}: {problem}")
    keep = ~bad
    frame = pd.DataFrame({name: out[name][keep].reset_index(drop=True) for name in out})
    frame[SOURCE] = source
    frame[LINE] = numbers[keep]
    return frame[list(COLUMNS)]


def _shown(value: Any) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_null(column: pd.Series) -> np.ndarray:
    return np.asarray(column.isna(), dtype=bool)


def _ids(column: pd.Series) -> tuple[pd.Series, np.ndarray, str]:
    """Strings as they are; integers (and integral floats, which Parquet makes of them when
    one is missing) as their digits; anything else, and empty ids, rejected."""
    if pd.api.types.is_bool_dtype(column.dtype):
        return column.astype(str), np.ones(len(column), dtype=bool), _ID_TYPE
    if pd.api.types.is_integer_dtype(column.dtype):
        null = _is_null(column)
        return column.astype(str).where(~null, ""), null, _ID_TYPE
    values = [_id_text(value) for value in column.tolist()]
    ids = pd.Series([v if v is not None else "" for v in values], dtype=object)
    return ids, np.array([v is None or v == "" for v in values], dtype=bool), _ID_TYPE


_ID_TYPE = "is not an id: ids are non-empty strings or integers"


def _id_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_) or value is None:
        return None
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and math.isfinite(value) and value == int(value):
        return str(int(value))
    return None


def _rows(column: pd.Series) -> tuple[pd.Series, np.ndarray, str]:
    null = _is_null(column)
    if pd.api.types.is_bool_dtype(column.dtype):
        return pd.Series(np.zeros(len(column), dtype=np.int64)), ~null, _ROW_TYPE
    if column.dtype == object:
        bools = np.array([isinstance(v, bool | np.bool_) for v in column.tolist()], dtype=bool)
    else:
        bools = np.zeros(len(column), dtype=bool)
    numbers = pd.to_numeric(column.where(~bools, None), errors="coerce").astype("float64")
    number = numbers.to_numpy()
    with np.errstate(invalid="ignore"):
        whole = (number >= 0) & (number < _ROW_LIMIT) & (number == np.floor(number))
    invalid = bools | (~null & ~whole)
    rows = np.where(whole, number, 0).astype(np.int64)
    return pd.Series(rows), invalid, _ROW_TYPE


_ROW_LIMIT = 2.0**53  # beyond it a float no longer holds every integer (and int64 casts warn)
_ROW_TYPE = "is not a row index: rows are integers 0, 1, 2, ... (empty means 0)"


def _labels(column: pd.Series, schema: LabelSchema) -> tuple[pd.Series, np.ndarray, str]:
    if schema.classes is None:
        return _numbers(column)
    spelled = class_spellings(schema.classes)
    found = [spelled.get(_spelling(value) or "\0") for value in column.tolist()]
    invalid = np.array([value is None for value in found], dtype=bool)
    what = f"is not a class of the model (classes: {schema.describe_classes()})"
    return pd.Series(found, dtype=object), invalid, what


def class_spellings(classes: Sequence[Any]) -> dict[str, Any]:
    """Each way a label file may write each class: ``1``, ``1.0``, ``"1"``; ``True``,
    ``"true"``; the class value itself for strings."""
    spelled: dict[str, Any] = {}
    for value in classes:
        spelled[str(value)] = value
        if isinstance(value, bool):
            spelled[str(value).lower()] = value
    return spelled


def _spelling(value: Any) -> str | None:
    """The text a label value is looked up by; None for a missing one (never a class)."""
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value) if isinstance(value, str | int | float | bool) else None


def _numbers(column: pd.Series) -> tuple[pd.Series, np.ndarray, str]:
    what = "is not a finite number (this model is a regressor)"
    if pd.api.types.is_bool_dtype(column.dtype):
        return column.astype("float64"), np.ones(len(column), dtype=bool), what
    if column.dtype == object:
        bools = np.array([isinstance(v, bool | np.bool_) for v in column.tolist()], dtype=bool)
        column = column.where(~bools, None)
    else:
        bools = np.zeros(len(column), dtype=bool)
    numbers = pd.to_numeric(column, errors="coerce").astype("float64")
    invalid = bools | ~np.isfinite(numbers.to_numpy())
    return numbers, invalid, what


def _times(column: pd.Series) -> tuple[pd.Series, np.ndarray, str]:
    what = "is not a time: write ISO 8601, e.g. 2026-12-04T12:00:00Z (no zone: UTC)"
    null = _is_null(column)
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        times = pd.Series(column)
        times = times.dt.tz_localize("UTC") if times.dt.tz is None else times.dt.tz_convert("UTC")
        return times.astype("datetime64[ns, UTC]"), np.zeros(len(column), dtype=bool), what
    texts = column.where(~null, None)
    not_text = ~null & np.array([not isinstance(v, str) for v in texts.tolist()], dtype=bool)
    parsed = pd.to_datetime(
        texts.where(~not_text, None), errors="coerce", utc=True, format="ISO8601"
    ).astype("datetime64[ns, UTC]")
    invalid = not_text | (~null & _is_null(parsed))
    return pd.Series(parsed), invalid, what


# ---------------------------------------------------------------- duplicates


@dataclass(frozen=True)
class Resolved:
    """Labels with one per (id, row), and how many were dropped by the duplicate rule."""

    frame: pd.DataFrame
    duplicates: int  # labels dropped because another label of the same (id, row) won
    conflicts: int  # of those, the ones whose value differed from the winner's


def resolve_duplicates(frame: pd.DataFrame) -> Resolved:
    """One label per (id, row): the latest ``time`` (none = oldest), then the last file in key
    order, then the last row of that file (module doc)."""
    if not len(frame):
        return Resolved(frame, 0, 0)
    has_time = frame[TIME].notna()
    ordered = frame.assign(_has_time=has_time).sort_values(
        ["_has_time", TIME, SOURCE, LINE], kind="stable", na_position="first"
    )
    winners = ordered.drop_duplicates([ID, ROW], keep="last")
    dropped = len(frame) - len(winners)
    conflicts = 0
    if dropped:
        losers = ordered[ordered.duplicated([ID, ROW], keep="last")]
        paired = losers.merge(winners[[ID, ROW, LABEL]], on=[ID, ROW], suffixes=("", "_won"))
        conflicts = int((paired[LABEL] != paired[f"{LABEL}_won"]).sum())
    kept = winners.drop(columns="_has_time").sort_index().reset_index(drop=True)
    return Resolved(kept, dropped, conflicts)
