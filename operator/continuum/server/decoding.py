"""The one request decoder: an inference body's bytes and headers in, feature rows out.

:func:`decode_request` is the only entry point. For an OIP v2 ``infer`` body it splits off
the binary tail (the binary tensor extension, :mod:`continuum.server.binary`), then reads the
JSON through one of two branches; a KServe v1 ``predict`` body always takes the full one.

- **Fast branch** (:func:`fast_path`): nearly every request a deployed model gets has one
  shape, a JSON body holding one tensor per feature, named after it, of N values: FP64 or
  FP32 finite numbers for a numeric feature, BYTES strings for a categorical one; perhaps with
  an id and the outputs wanted. Validating that body with the pydantic models and then tensor
  by tensor costs more than predicting a batch of it, so the fast branch recognises exactly
  that shape with the standard ``json`` module and a few type checks and builds the numeric
  rows in one numpy call (the bench's demo body, 3 numbers and a ``plan``: 12 us here against
  23 us through the full branch, one CPU, 2026-12-04).
- **Full branch**: the pydantic models of :mod:`continuum.server.protocol`, then
  :mod:`continuum.server.binary` and :mod:`continuum.server.inputs`, which decide and word
  every error.

A body leaves the fast branch, and is read by the full one, when it has a binary tail, or
when it is of any other form: a matrix tensor, a datatype whose values need checking
(INT32/INT64, BYTES for a numeric feature, anything but BYTES for a categorical one), a
missing or non-finite value, a string where a number belongs or anything but a string where a
category belongs, any ``\\u`` escape (the full parser refuses lone surrogates,
``json`` does not), a JSON constant such as NaN, text that is not UTF-8 or not JSON. A body
the fast branch accepts therefore gives the same id, outputs and rows as the full branch
(``tests/unit/server/test_server_decoding.py`` holds it to that), and a body it refuses gets
the full branch's own answer.

Every problem is a ServingError (400 for a body that is not a request of the protocol, 422
for one that does not fit the model); nothing here raises anything else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError

from continuum.server.binary import HEADER_LENGTH, request_tensors, split_body
from continuum.server.errors import RequestInvalid
from continuum.server.inputs import FeatureRows, rows_from_instances, rows_from_tensors
from continuum.server.model import ServedModel
from continuum.server.protocol import InferenceRequest, PredictRequest
from continuum.server.responses import chosen_outputs

INFER, PREDICT = "infer", "predict"  # the two endpoints (also the label of the request metrics)
FLOAT_DATATYPES = ("FP64", "FP32")  # JSON numbers either way: no rounding to float32 here
CATEGORY_DATATYPES = ("BYTES",)  # of JSON strings: the category as the trainer compared it
Message = TypeVar("Message", bound=BaseModel)


@dataclass(frozen=True)
class DecodedRequest:
    """A request body made into rows, with what the answer needs of it."""

    rows: FeatureRows
    id: str | None = None
    outputs: list[str] | None = None  # the outputs asked for by name; None: all of them


def decode_request(
    endpoint: str, model: ServedModel, body: bytes, headers: Mapping[str, str]
) -> DecodedRequest:
    """The request ``body`` (with its ``headers``) to ``endpoint`` makes for ``model``."""
    if endpoint == PREDICT:
        request = parse_body(PredictRequest, body)
        return DecodedRequest(rows_from_instances(request.instances, model.features))
    header, tail = split_body(body, headers.get(HEADER_LENGTH))
    decoded = None if tail else fast_path(header, model.positions, model.categorical_names)
    if decoded is not None:
        chosen_outputs(model, decoded.outputs)  # an unknown output is refused before predicting
        return decoded
    return _full_path(model, header, tail)


def _full_path(model: ServedModel, header: bytes, tail: bytes) -> DecodedRequest:
    request = parse_body(InferenceRequest, header)
    names = None if request.outputs is None else [output.name for output in request.outputs]
    chosen_outputs(model, names)
    rows = rows_from_tensors(request_tensors(request, tail), model.features)
    return DecodedRequest(rows, request.id, names)


def parse_body(message: type[Message], body: bytes) -> Message:
    """``body`` read as ``message`` by pydantic; RequestInvalid saying what is wrong with it."""
    try:
        return message.model_validate_json(body)
    except ValidationError as exc:
        raise RequestInvalid(_describe(exc, message.__name__)) from exc


def _describe(exc: ValidationError, what: str) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    if any(error["type"] == "json_invalid" for error in errors):
        return f"body is not valid JSON: {errors[0]['msg']}"
    details = "; ".join(
        f"{'.'.join(map(str, error['loc'])) or 'body'}: {error['msg']}" for error in errors[:5]
    )
    return f"body is not a valid {what}: {details}"


# ---------------------------------------------------------------- the fast branch


class _UncommonBodyError(Exception):
    """The body is not of the common shape: the full branch reads it."""


def fast_path(
    body: bytes, positions: dict[str, int], categorical: frozenset[str] = frozenset()
) -> DecodedRequest | None:
    """The request when ``body`` has the common shape for features at ``positions``, else None.

    ``positions`` maps each feature name to its schema index, ``categorical`` names the
    categorical ones. Only :func:`decode_request` and the tests that hold this branch to the
    full one's answers call it.
    """
    try:
        message = _json_object(body)
        request_id = message.get("id")
        if request_id is not None and type(request_id) is not str:
            raise _UncommonBodyError
        _optional_object(message.get("parameters"))
        outputs = _output_names(message.get("outputs"))
        rows = _rows(message.get("inputs"), positions, categorical)
    except _UncommonBodyError:
        return None
    return DecodedRequest(rows, request_id, outputs)


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


def _rows(inputs: Any, positions: dict[str, int], categorical: frozenset[str]) -> FeatureRows:
    """One column per feature (float64, or str objects), from exactly one well-formed tensor
    per feature."""
    if type(inputs) is not list or len(inputs) != len(positions):
        raise _UncommonBodyError
    data: list[Any] = [None] * len(positions)
    n_rows = None
    for tensor in inputs:
        position, values = _feature_tensor(tensor, positions, categorical)
        if data[position] is not None or (n_rows is not None and len(values) != n_rows):
            raise _UncommonBodyError  # given twice, or a different number of rows
        data[position], n_rows = values, len(values)
    numbers = [data[p] for name, p in positions.items() if name not in categorical]
    matrix = iter(_finite_matrix(numbers)) if numbers else iter(())
    columns = {
        name: _categories(data[position]) if name in categorical else next(matrix)
        for name, position in positions.items()
    }
    return FeatureRows(columns, len(data[0]))


def _feature_tensor(
    tensor: Any, positions: dict[str, int], categorical: frozenset[str]
) -> tuple[int, list[Any]]:
    """(schema position, values) of a tensor named after a feature, shape [N] or [N, 1]."""
    if type(tensor) is not dict:
        raise _UncommonBodyError
    name, values = tensor.get("name"), tensor.get("data")
    if type(name) is not str or name not in positions or type(values) is not list:
        raise _UncommonBodyError
    datatype = tensor.get("datatype")
    if datatype not in (CATEGORY_DATATYPES if name in categorical else FLOAT_DATATYPES):
        raise _UncommonBodyError
    parameters = tensor.get("parameters")
    _optional_object(parameters)
    if parameters and "binary_data_size" in parameters:
        raise _UncommonBodyError
    if not _is_column_shape(tensor.get("shape"), len(values)):
        raise _UncommonBodyError
    return positions[name], values


def _categories(values: list[Any]) -> np.ndarray:
    """A categorical column: str objects, as the full branch makes of BYTES strings."""
    if any(type(value) is not str for value in values):
        raise _UncommonBodyError  # a missing value, a number, a list: the full branch judges
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


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
