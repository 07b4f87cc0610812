"""The binary tensor data extension of the Open Inference Protocol (what tritonclient sends).

The body is a JSON header of ``Inference-Header-Content-Length`` bytes, followed by the raw
bytes of every input whose ``parameters.binary_data_size`` is set, in input order. Numeric
tensors are little-endian arrays; BYTES tensors are, per element, a 4-byte little-endian
length followed by that many bytes.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from continuum.server.errors import InputInvalid, RequestInvalid
from continuum.server.inputs import (
    BYTES,
    NUMERIC_DATATYPES,
    Tensor,
    check_datatype,
    check_shape,
    json_tensor,
)
from continuum.server.protocol import InferenceRequest, RequestInput

HEADER_LENGTH = "inference-header-content-length"
_LENGTH = struct.Struct("<I")


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """(JSON header, binary tail); the tail is empty for a plain JSON body."""
    if header_length is None:
        return body, b""
    try:
        size = int(header_length)
    except ValueError:
        raise RequestInvalid(
            f"Inference-Header-Content-Length {header_length!r} is not a number"
        ) from None
    if not 0 < size <= len(body):
        raise RequestInvalid(
            f"Inference-Header-Content-Length {size} does not fit a {len(body)}-byte body"
        )
    return body[:size], body[size:]


def request_tensors(request: InferenceRequest, tail: bytes) -> list[Tensor]:
    """Every input as a Tensor, taking binary inputs' bytes from ``tail`` in order."""
    tensors: list[Tensor] = []
    offset = 0
    for item in request.inputs:
        size = _binary_size(item)
        if size is None:
            tensors.append(_json_input(item))
            continue
        tensors.append(binary_tensor(item, tail[offset : offset + size], size))
        offset += size
    if offset != len(tail):
        raise RequestInvalid(
            f"binary data is {len(tail)} bytes but the inputs' binary_data_size add up to {offset}"
        )
    return tensors


def _binary_size(item: RequestInput) -> int | None:
    size = (item.parameters or {}).get("binary_data_size")
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise RequestInvalid(f"input {item.name!r}: binary_data_size {size!r} is not a byte count")
    if item.data is not None:
        raise RequestInvalid(f"input {item.name!r} has both data and binary_data_size")
    return size


def _json_input(item: RequestInput) -> Tensor:
    if item.data is None:
        raise RequestInvalid(f"input {item.name!r} has no data (and no binary_data_size)")
    return json_tensor(item.name, item.shape, item.datatype, item.data)


def binary_tensor(item: RequestInput, chunk: bytes, size: int) -> Tensor:
    check_datatype(item.name, item.datatype)
    if len(chunk) != size:
        raise RequestInvalid(f"input {item.name!r}: body ends before its {size} binary bytes")
    values = _decode_bytes(item.name, chunk) if item.datatype == BYTES else _decode(item, chunk)
    check_shape(item.name, item.shape, values.size)
    return Tensor(item.name, tuple(item.shape), item.datatype, values)


def _decode(item: RequestInput, chunk: bytes) -> np.ndarray:
    dtype = NUMERIC_DATATYPES[item.datatype]
    if len(chunk) != math.prod(item.shape) * dtype.itemsize:
        raise InputInvalid(
            f"input {item.name!r}: {len(chunk)} bytes do not hold shape {item.shape} of "
            f"{item.datatype}"
        )
    return np.frombuffer(chunk, dtype=dtype)


def _decode_bytes(name: str, chunk: bytes) -> np.ndarray:
    items: list[Any] = []
    offset = 0
    while offset < len(chunk):
        if offset + 4 > len(chunk):
            raise InputInvalid(f"input {name!r}: BYTES element length is cut short")
        (length,) = _LENGTH.unpack_from(chunk, offset)
        start, offset = offset + 4, offset + 4 + length
        if offset > len(chunk):
            raise InputInvalid(f"input {name!r}: BYTES element runs past the tensor's data")
        items.append(chunk[start:offset])
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array
