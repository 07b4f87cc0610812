"""The common inference body, read without pydantic: JSON numbers, one tensor per feature.

Nearly every request a deployed model gets has one shape: a JSON body holding one FP64 or FP32
tensor per numeric feature, named after it, of N finite numbers, perhaps with an id and the
outputs wanted. Validating that body with the pydantic models and then tensor by tensor costs
more than predicting a batch of it, so :func:`lean_request` recognises exactly that shape with
the standard ``json`` module and a few type checks, and builds the rows in one numpy call.

Anything else gives None, and the request takes the full path (:mod:`continuum.server.protocol`
and :mod:`continuum.server.inputs`), which decides and words every error: another form (a
matrix tensor, binary data, categorical features), a datatype whose values need checking
(INT32/INT64, BYTES), a missing or non-finite value, a string where a number belongs, any
``\\u`` escape (the full parser refuses lone surrogates, ``json`` does not), a JSON constant such
as NaN, text that is not UTF-8 or not JSON. A body accepted here therefore gives the same id,
outputs and rows as the full path, and a body refused here gets the full path's own answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from continuum.server.inputs import FeatureRows

FLOAT_DATATYPES = ("FP64", "FP32")  # JSON numbers either way: no rounding to float32 here


@dataclass(frozen=True)
class LeanRequest:
    """What the full path would have made of the body: its id, outputs asked for, and rows."""

    id: str | None
    outputs: list[str] | None
    rows: FeatureRows


class _UncommonBodyError(Exception):
    """The body is not of the common shape: the full path reads it."""


def lean_request(body: bytes, positions: dict[str, int] | None) -> LeanRequest | None:
    """The request when ``body`` has the common shape for features at ``positions``, else None.

    ``positions`` maps each feature name to its schema index (None when a feature is not
    numeric, which the lean path does not handle).
    """
    if positions is None:
        return None
    try:
        message = _json_object(body)
        request_id = message.get("id")
        if request_id is not None and type(request_id) is not str:
            raise _UncommonBodyError
        _optional_object(message.get("parameters"))
        outputs = _output_names(message.get("outputs"))
        rows = _rows(message.get("inputs"), positions)
    except _UncommonBodyError:
        return None
    return LeanRequest(request_id, outputs, rows)


def _json_object(body: bytes) -> dict[str, Any]:
    if b"\\u" in body:
        raise _UncommonBodyError
    try:
        message = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise _UncommonBodyError from None
    if type(message) is not dict:
        raise _UncommonBodyError
    return message


def _refuse_constant(_: str) -> Any:
    raise _UncommonBodyError


def _optional_object(value: Any) -> None:
    if value is not None and type(value) is not dict:
        raise _UncommonBodyError


def _output_names(outputs: Any) -> list[str] | None:
    if outputs is None:
        return None
    if type(outputs) is not list:
        raise _UncommonBodyError
    names = []
    for output in outputs:
        if type(output) is not dict or type(output.get("name")) is not str:
            raise _UncommonBodyError
        _optional_object(output.get("parameters"))
        names.append(output["name"])
    return names


def _rows(inputs: Any, positions: dict[str, int]) -> FeatureRows:
    """One float64 column per feature, from exactly one well-formed tensor per feature."""
    if type(inputs) is not list or len(inputs) != len(positions):
        raise _UncommonBodyError
    data: list[Any] = [None] * len(positions)
    n_rows = None
    for tensor in inputs:
        position, values = _feature_tensor(tensor, positions)
        if data[position] is not None or (n_rows is not None and len(values) != n_rows):
            raise _UncommonBodyError  # given twice, or a different number of rows
        data[position], n_rows = values, len(values)
    matrix = _finite_matrix(data)
    columns = {name: matrix[position] for name, position in positions.items()}
    return FeatureRows(columns, matrix.shape[1])


def _feature_tensor(tensor: Any, positions: dict[str, int]) -> tuple[int, list[Any]]:
    """(schema position, values) of a tensor named after a feature, shape [N] or [N, 1]."""
    if type(tensor) is not dict:
        raise _UncommonBodyError
    name, values = tensor.get("name"), tensor.get("data")
    if type(name) is not str or name not in positions or type(values) is not list:
        raise _UncommonBodyError
    if tensor.get("datatype") not in FLOAT_DATATYPES:
        raise _UncommonBodyError
    parameters = tensor.get("parameters")
    _optional_object(parameters)
    if parameters and "binary_data_size" in parameters:
        raise _UncommonBodyError
    if not _is_column_shape(tensor.get("shape"), len(values)):
        raise _UncommonBodyError
    return positions[name], values


def _is_column_shape(shape: Any, count: int) -> bool:
    """``shape`` is [count] or [count, 1] of plain ints, with at least one row."""
    if type(shape) is not list or not 1 <= len(shape) <= 2 or count < 1:
        return False
    if any(type(dim) is not int for dim in shape):
        return False
    return shape[0] == count and (len(shape) == 1 or shape[1] == 1)


def _finite_matrix(data: list[list[Any]]) -> np.ndarray:
    """[feature, row] float64 values; numbers only (ints and bools as the full path casts them)."""
    try:
        matrix = np.array(data)
    except (ValueError, TypeError):
        raise _UncommonBodyError from None
    if matrix.ndim != 2 or matrix.dtype.kind not in "fi":
        raise _UncommonBodyError  # strings, nulls, nested lists, integers beyond int64
    if matrix.dtype.kind == "i":
        matrix = matrix.astype(np.float64)
    if not np.isfinite(matrix).all():
        raise _UncommonBodyError  # overflowed to infinity: the full path names the feature
    return matrix
