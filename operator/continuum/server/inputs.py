"""From request tensors (OIP v2) or instances (v1) to validated feature columns.

Accepted shapes of a request (the model's feature schema decides what is valid):

- one tensor per feature, named after it, shape ``[N]`` or ``[N, 1]``;
- one tensor of any name with shape ``[N, n_features]``, columns in schema order;
- v1: ``instances`` as objects keyed by feature name, or arrays in schema order.

Numeric features take FP32/FP64/INT32/INT64 (or BYTES holding numbers); categorical features
take any datatype and are compared as strings, as the trainer did. A missing value (JSON
``null``, NaN) is accepted only where the pipeline imputes it. Every failure is an
InputInvalid naming the input or feature and the problem; nothing here raises anything else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from continuum.server.errors import InputInvalid
from continuum.server.model import NUMERIC, FeatureSpec

NUMERIC_DATATYPES: dict[str, np.dtype[Any]] = {
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
}
BYTES = "BYTES"
SUPPORTED_DATATYPES = (*NUMERIC_DATATYPES, BYTES)
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Tensor:
    """One input tensor: its declared name, shape and datatype, and its values, flattened."""

    name: str
    shape: tuple[int, ...]
    datatype: str
    values: np.ndarray


@dataclass(frozen=True)
class FeatureRows:
    """Validated rows as one array per feature: float64 for numeric, str/NaN objects else."""

    columns: dict[str, np.ndarray]
    n_rows: int


def check_datatype(name: str, datatype: str) -> None:
    if datatype not in SUPPORTED_DATATYPES:
        supported = ", ".join(SUPPORTED_DATATYPES)
        raise InputInvalid(f"input {name!r}: datatype {datatype!r} is not one of {supported}")


def check_shape(name: str, shape: Sequence[int], count: int) -> None:
    if any(dim < 0 for dim in shape):
        raise InputInvalid(f"input {name!r}: shape {list(shape)} has a negative dimension")
    if math.prod(shape) != count:
        raise InputInvalid(
            f"input {name!r}: shape {list(shape)} needs {math.prod(shape)} values, got {count}"
        )


def json_tensor(name: str, shape: Sequence[int], datatype: str, data: list[Any]) -> Tensor:
    """A tensor from JSON ``data`` (flat or nested, row-major)."""
    check_datatype(name, datatype)
    try:
        values = np.asarray(data).ravel()
    except ValueError as exc:  # ragged nesting
        raise InputInvalid(f"input {name!r}: data is not a regular array: {exc}") from exc
    check_shape(name, shape, values.size)
    tensor = Tensor(name, tuple(shape), datatype, values)
    _check_numeric_datatype(tensor)
    return tensor


def _check_numeric_datatype(tensor: Tensor) -> None:
    if tensor.datatype not in NUMERIC_DATATYPES:
        return
    if tensor.values.dtype.kind in "US":
        raise InputInvalid(
            f"input {tensor.name!r} is {tensor.datatype} but holds strings; send numbers "
            "(or declare BYTES)"
        )
    if tensor.datatype.startswith("INT") and tensor.values.dtype.kind == "f":
        finite = tensor.values[np.isfinite(tensor.values)]
        if np.any(finite != np.floor(finite)):
            raise InputInvalid(
                f"input {tensor.name!r} is {tensor.datatype} but holds non-integer numbers"
            )


def rows_from_tensors(tensors: Sequence[Tensor], features: Sequence[FeatureSpec]) -> FeatureRows:
    """Feature columns from named per-feature tensors or from one [N, n_features] tensor."""
    known = {feature.name for feature in features}
    names = [tensor.name for tensor in tensors]
    if all(name in known for name in names):
        return _rows_by_name(tensors, features)
    if len(tensors) == 1 and len(tensors[0].shape) == 2:
        return _rows_from_matrix(tensors[0], features)
    unknown = [name for name in names if name not in known]
    raise InputInvalid(
        f"unknown input(s) {unknown}: send one tensor per feature named after it "
        f"({_names(features)}), or a single [N, {len(features)}] tensor in that order"
    )


def _rows_by_name(tensors: Sequence[Tensor], features: Sequence[FeatureSpec]) -> FeatureRows:
    by_name = _unique(tensors)
    missing = [feature.name for feature in features if feature.name not in by_name]
    if missing:
        raise InputInvalid(f"missing feature(s) {missing}: the model needs {_names(features)}")
    n_rows = _common_rows(tensors)
    columns = {f.name: to_column(f, by_name[f.name].values) for f in features}
    return FeatureRows(columns, n_rows)


def _unique(tensors: Sequence[Tensor]) -> dict[str, Tensor]:
    by_name: dict[str, Tensor] = {}
    for tensor in tensors:
        if tensor.name in by_name:
            raise InputInvalid(f"input {tensor.name!r} is given more than once")
        by_name[tensor.name] = tensor
    return by_name


def _common_rows(tensors: Sequence[Tensor]) -> int:
    counts = {tensor.name: _column_rows(tensor) for tensor in tensors}
    if len(set(counts.values())) != 1:
        raise InputInvalid(f"inputs have different numbers of rows: {counts}")
    return _at_least_one_row(next(iter(counts.values())))


def _column_rows(tensor: Tensor) -> int:
    shape = tensor.shape
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        return shape[0]
    raise InputInvalid(
        f"input {tensor.name!r}: shape {list(shape)} is not [N] or [N, 1] (one feature per input)"
    )


def _at_least_one_row(n_rows: int) -> int:
    if n_rows < 1:
        raise InputInvalid("the request has no rows")
    return n_rows


def _rows_from_matrix(tensor: Tensor, features: Sequence[FeatureSpec]) -> FeatureRows:
    n_rows, width = tensor.shape
    if width != len(features):
        raise InputInvalid(
            f"input {tensor.name!r}: shape {list(tensor.shape)} has {width} columns but the "
            f"model has {len(features)} features ({_names(features)})"
        )
    matrix = tensor.values.reshape(n_rows, width)
    columns = {f.name: to_column(f, matrix[:, i]) for i, f in enumerate(features)}
    return FeatureRows(columns, _at_least_one_row(n_rows))


def rows_from_instances(
    instances: Sequence[dict[str, Any] | list[Any]], features: Sequence[FeatureSpec]
) -> FeatureRows:
    """Feature columns from v1 ``instances`` (all objects or all arrays)."""
    if all(isinstance(row, dict) for row in instances):
        raw = _columns_of_objects(instances, features)  # type: ignore[arg-type]
    elif all(isinstance(row, list) for row in instances):
        raw = _columns_of_arrays(instances, features)  # type: ignore[arg-type]
    else:
        raise InputInvalid("instances mix objects and arrays: use one form for all rows")
    columns = {f.name: to_column(f, _object_array(raw[f.name])) for f in features}
    return FeatureRows(columns, _at_least_one_row(len(instances)))


def _columns_of_objects(
    rows: Sequence[dict[str, Any]], features: Sequence[FeatureSpec]
) -> dict[str, list[Any]]:
    names = [feature.name for feature in features]
    for index, row in enumerate(rows):
        if row.keys() != set(names):
            _explain_keys(index, row, names)
    return {name: [row[name] for row in rows] for name in names}


def _explain_keys(index: int, row: dict[str, Any], names: Sequence[str]) -> None:
    unknown = sorted(set(row) - set(names))
    if unknown:
        raise InputInvalid(f"instance {index}: unknown feature(s) {unknown}; expected {names}")
    missing = [name for name in names if name not in row]
    raise InputInvalid(f"instance {index}: missing feature(s) {missing}")


def _columns_of_arrays(
    rows: Sequence[list[Any]], features: Sequence[FeatureSpec]
) -> dict[str, list[Any]]:
    for index, row in enumerate(rows):
        if len(row) != len(features):
            raise InputInvalid(
                f"instance {index} has {len(row)} values but the model has {len(features)} "
                f"features ({_names(features)})"
            )
    return {f.name: [row[i] for row in rows] for i, f in enumerate(features)}


def _object_array(values: list[Any]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def to_column(feature: FeatureSpec, values: np.ndarray) -> np.ndarray:
    """One feature's values in the form the pipeline was trained on, or InputInvalid."""
    if feature.kind == NUMERIC:
        column = _as_float(feature.name, values)
        _check_missing(feature, np.isnan(column))
        if np.isinf(column).any():
            raise InputInvalid(f"feature {feature.name!r}: infinite values are not accepted")
        return column
    column = _as_category(feature.name, values)
    _check_missing(feature, np.array([value is None for value in column], dtype=bool))
    column[column == None] = np.nan  # noqa: E711 -- elementwise comparison on an object array
    return column


def _check_missing(feature: FeatureSpec, missing: np.ndarray) -> None:
    if not feature.nullable and missing.any():
        row = int(np.argmax(missing))
        raise InputInvalid(
            f"feature {feature.name!r}: row {row} is missing a value and this model does not "
            "impute it"
        )


def _as_float(name: str, values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "iufb":
        return values.astype(np.float64)
    return np.array([_one_float(name, value) for value in values.tolist()], dtype=np.float64)


def _one_float(name: str, value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, int | float):  # bool is an int: True -> 1.0, as pandas does
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise InputInvalid(f"feature {name!r} is numeric but got {_short(value)}")


def _as_category(name: str, values: np.ndarray) -> np.ndarray:
    return _object_array([_one_category(name, value) for value in values.tolist()])


def _one_category(name: str, value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and math.isnan(value):
        return None
    if not isinstance(value, _SCALARS):
        raise InputInvalid(f"feature {name!r} needs a single value per row, got {_short(value)}")
    return None if value is None else str(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _names(features: Sequence[FeatureSpec]) -> str:
    return ", ".join(feature.name for feature in features)
