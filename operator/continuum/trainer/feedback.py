"""The pure parts of a training set built from served traffic (``spec.dataset.feedback``).

A feedback training set is the model's logged predictions of a time window joined with the
labels that came back, the logged feature values as the feature columns and the label as the
target, optionally stacked under the base dataset's rows. The choices, and why:

* **The window** is ``[run start - sinceSeconds, run start]``, both ends included, on the
  time the server answered (``ts``). A label present at the run's start counts (no label
  delay: a training set wants every label there is, a performance check wants matured ones).
* **The cap** keeps the newest ``maxRows`` labelled rows in the one total order
  (``ts``, request id, row): the same inputs give the same rows in the same order, so the
  same snapshot bytes and key.
* **Features the log does not hold as served cannot be trained on.** A feature the
  ModelDeployment's ``spec.inferenceLog.drop`` leaves out is absent from the logged rows,
  one in ``spec.inferenceLog.hash`` holds ``hmac:<hex>``: training on either would silently
  train on nothing or on a keyed hash the model server never sees. The run fails naming the
  columns and the setting; listing the features to train on in ``spec.dataset.features``
  (without them) is the way to train without them, so nothing is left out unless the spec says
  so.
* **The union keeps the base's dtypes**: every feedback column is cast to the base frame's
  dtype (categories extended, never lost to NaN; nullable Int64, string, boolean, datetime,
  float NaN kept). An ``int64`` or ``bool`` base column that meets a missing logged value
  becomes nullable (``Int64``, ``boolean``) rather than losing the row or the value.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from continuum.api.trainingjob import Feedback
from continuum.errors import DatasetInvalid
from continuum.storage.ground_truth import TS
from continuum.storage.labels import ID, LABEL, ROW
from continuum.storage.privacy import is_hashed

ORDER = [TS, ID, ROW]  # the total order of feedback rows: answer time, request id, row
FEATURES = "features"
SHOWN = 10  # column names quoted in an error message


@dataclass(frozen=True)
class Window:
    """Predictions answered in ``[start, end]`` (UTC) are read."""

    start: datetime
    end: datetime

    def to_json(self) -> dict[str, str]:
        return {"start": _iso(self.start), "end": _iso(self.end)}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def window_of(feedback: Feedback, run_start: datetime) -> Window:
    """The window ending at the run's start, ``sinceSeconds`` long."""
    end = run_start.astimezone(UTC)
    return Window(end - timedelta(seconds=feedback.since_seconds), end)


def in_window(times: pd.Series, window: Window) -> np.ndarray:
    """Which answer times lie in the window (both ends included)."""
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    return np.asarray((times >= start) & (times <= end), dtype=bool)


def newest(joined: pd.DataFrame, max_rows: int) -> tuple[pd.DataFrame, int]:
    """The newest ``max_rows`` rows in :data:`ORDER` (oldest first), and how many were cut."""
    ordered = joined.sort_values(ORDER, kind="stable").reset_index(drop=True)
    cut = max(0, len(ordered) - max_rows)
    return ordered.iloc[cut:].reset_index(drop=True), cut


# ---------------------------------------------------------------- which features


def logged_names(rows: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every feature name some logged row holds."""
    return {name for row in rows for name in (row.get(FEATURES) or {})}


def wanted_features(
    features: Sequence[str] | None,
    target: str,
    base_columns: Sequence[str] | None,
    served: Sequence[str] | None,
) -> list[str]:
    """The training set's feature columns: ``spec.dataset.features``, else the base's columns
    but the target, else the features the newest logged version was trained on."""
    if features is not None:
        return list(features)
    if base_columns is not None:
        return [name for name in base_columns if name != target]
    return [name for name in served or () if name != target]


def check_usable(
    rows: Sequence[Mapping[str, Any]], wanted: Sequence[str], model: str, *, explicit: bool
) -> None:
    """DatasetInvalid if a wanted feature was dropped or hashed by the inference log."""
    dropped = sorted({n for row in rows for n in wanted if n not in (row.get(FEATURES) or {})})
    if dropped:
        raise DatasetInvalid(None, _dropped_message(dropped, model, explicit))
    hashed = sorted(
        {n for row in rows for n in wanted if is_hashed((row.get(FEATURES) or {}).get(n))}
    )
    if hashed:
        raise DatasetInvalid(None, _hashed_message(hashed, model))


def _names(names: Sequence[str]) -> str:
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(repr(n) for n in names[:SHOWN]) + more


def _dropped_message(names: Sequence[str], model: str, explicit: bool) -> str:
    fix = (
        "remove them from spec.dataset.features"
        if explicit
        else "list the features to train on, without them, in spec.dataset.features"
    )
    return (
        f"features {_names(names)} are missing from logged rows of model {model!r}: the "
        "ModelDeployment's spec.inferenceLog.drop leaves them out (or the served version did "
        f"not take them), so served traffic cannot train on them; {fix}, or stop dropping them"
    )


def _hashed_message(names: Sequence[str], model: str) -> str:
    return (
        f"features {_names(names)} are logged hashed for model {model!r} (the ModelDeployment's "
        "spec.inferenceLog.hash): a keyed hash is not the value the model is served, so it "
        "cannot be trained on; list the features to train on, without them, in "
        "spec.dataset.features, or log them as they are"
    )


def check_columns(base_columns: Sequence[str], wanted: Sequence[str], target: str, uri: str,
                  served: Iterable[str], *, explicit: bool) -> None:  # fmt: skip
    """DatasetInvalid unless base and logged rows have the same feature columns."""
    missing = [name for name in [*wanted, target] if name not in base_columns]
    if missing:
        raise DatasetInvalid(
            None,
            f"the base dataset at {uri} has no column {_names(missing)}, which the feedback "
            "rows have: base and feedback must share their columns (fix spec.dataset.features "
            "or spec.dataset.target)",
        )
    extra = sorted(set(served) - set(wanted) - {target})
    if extra and not explicit:
        raise DatasetInvalid(
            None,
            f"the served model logs features {_names(extra)} that the base dataset at {uri} "
            "lacks: base and feedback must share their columns; list the features to train on "
            "in spec.dataset.features",
        )


# ---------------------------------------------------------------- frames


def feedback_frame(joined: pd.DataFrame, wanted: Sequence[str], target: str) -> pd.DataFrame:
    """The joined rows as the training set's columns: the logged features, the label."""
    columns = {name: joined[name].astype(object) for name in wanted}
    columns[target] = joined[LABEL].astype(object)
    return pd.DataFrame(columns).reset_index(drop=True)


def inferred(frame: pd.DataFrame) -> pd.DataFrame:
    """Without a base: each column as pandas infers it from the logged values."""
    return pd.DataFrame(
        {name: pd.Series(frame[name].tolist(), dtype=object).infer_objects() for name in frame}
    )


def union_with_base(base: pd.DataFrame, fresh: pd.DataFrame) -> pd.DataFrame:
    """The base rows, then the feedback rows cast to the base's dtypes (module doc)."""
    pairs = {name: cast_pair(base[name], fresh[name], name) for name in base.columns}
    top = pd.DataFrame({name: pair[0] for name, pair in pairs.items()})
    bottom = pd.DataFrame({name: pair[1] for name, pair in pairs.items()})
    return pd.concat([top, bottom], ignore_index=True)


def cast_pair(base: pd.Series, values: pd.Series, name: str) -> tuple[pd.Series, pd.Series]:
    """(base column, feedback column) of one dtype: the base's, or its nullable form."""
    try:
        return _cast_pair(base.reset_index(drop=True), values.reset_index(drop=True))
    except (TypeError, ValueError) as exc:
        shown = values.dropna().head(3).tolist()
        raise DatasetInvalid(
            name,
            f"logged values (e.g. {shown!r}) cannot be cast to the base dataset's dtype "
            f"{base.dtype}: {exc}; the served features must have the base dataset's types",
        ) from exc


def _cast_pair(base: pd.Series, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    dtype = base.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _categories(base, values)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return base, _times(values, dtype)
    if isinstance(dtype, pd.api.extensions.ExtensionDtype):
        return base, pd.Series(pd.array(values.tolist(), dtype=dtype))
    if pd.api.types.is_object_dtype(dtype):
        return base, values.astype(object)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
        return _maybe_nullable(base, values)
    return base, pd.to_numeric(values.where(values.notna(), np.nan), errors="raise").astype(dtype)


def _categories(base: pd.Series, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Both columns on the base's categories plus the new logged ones (sorted by text)."""
    known = base.cat.categories
    typed = pd.Series(pd.array(values.tolist(), dtype=known.dtype)) if len(known) else values
    new = sorted({v for v in typed.dropna().tolist() if v not in set(known)}, key=str)
    dtype = pd.CategoricalDtype([*known.tolist(), *new], ordered=base.cat.ordered)
    return base.astype(dtype), typed.astype(dtype)


def _times(values: pd.Series, dtype: Any) -> pd.Series:
    tz = getattr(dtype, "tz", None)
    parsed = pd.to_datetime(values, utc=tz is not None, format="ISO8601")
    return (parsed.dt.tz_convert(tz) if tz is not None else parsed).astype(dtype)


def _maybe_nullable(base: pd.Series, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    nullable = "boolean" if pd.api.types.is_bool_dtype(base.dtype) else "Int64"
    cast = pd.Series(pd.array(values.tolist(), dtype=nullable))
    if cast.isna().any():
        return base.astype(nullable), cast
    return base, cast.astype(base.dtype)


# ---------------------------------------------------------------- the snapshot's bytes


def snapshot_bytes(frame: pd.DataFrame) -> bytes:
    """The training set as Parquet (no index): the same frame gives the same bytes."""
    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer, index=False, engine="pyarrow")
    except (TypeError, ValueError) as exc:  # pyarrow: a column of mixed types
        raise DatasetInvalid(
            None,
            f"the feedback training set cannot be written as Parquet: {exc}; a logged feature "
            "holds values of several types (numbers and text): list the features in "
            "spec.dataset.features or include a base dataset to fix their types",
        ) from exc
    return buffer.getvalue()


def content_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def label_classes(predictions: Iterable[Any], base_target: Iterable[Any]) -> tuple[Any, ...]:
    """A classifier's labels are checked against the classes served or in the base: the
    logged predictions' values, then the base target's (which win a same-text clash)."""
    seen: dict[str, Any] = {}
    for value in [*predictions, *base_target]:
        if value is not None and not (isinstance(value, float) and np.isnan(value)):
            seen[str(value)] = value.item() if isinstance(value, np.generic) else value
    return tuple(seen[text] for text in sorted(seen))
