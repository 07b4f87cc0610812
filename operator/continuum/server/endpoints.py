"""The two inference endpoints, once the router (:mod:`continuum.server.router`) chose them.

``answer`` turns one inference call — endpoint, model name and version, a few headers and a
way to read the body — into a status and a JSON body: it reads the body within the byte limit,
has :func:`continuum.server.decoding.decode_request` make it into rows, hands the rows to the
batcher and renders the prediction (:mod:`continuum.server.responses`).

Every client mistake is a ServingError, answered ``{"error": message}`` with its status; only
a bug escapes as another exception (the router answers 500).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from continuum.server.binary import HEADER_LENGTH
from continuum.server.decoding import PREDICT, DecodedRequest, decode_request
from continuum.server.errors import PayloadTooLarge, ServingError
from continuum.server.responses import chosen_outputs, infer_response, predict_response
from continuum.server.state import ModelServer

JSON_TYPE = "application/json"
REQUEST_ID = "x-request-id"
# The only request headers these endpoints read (lower-case, as ASGI gives them).
HEADERS = ("content-length", HEADER_LENGTH, REQUEST_ID)


@dataclass(frozen=True)
class Call:
    """One inference request: which endpoint and model, its headers, its body's chunks."""

    endpoint: str  # INFER | PREDICT
    name: str
    version: str | None
    headers: Mapping[str, str]
    chunks: AsyncIterator[bytes]


def encode_json(content: Any) -> bytes:
    """JSON bytes exactly as FastAPI's JSONResponse renders them."""
    text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8")


def error_body(exc: ServingError) -> bytes:
    return encode_json({"error": exc.message})


async def answer(server: ModelServer, call: Call) -> tuple[int, bytes]:
    """(status, JSON body) of one inference call; client mistakes are 4xx answers, not raised."""
    try:
        async with server.inference(call.endpoint):
            return 200, await _answer(server, call)
    except ServingError as exc:
        return exc.status_code, error_body(exc)


async def _answer(server: ModelServer, call: Call) -> bytes:
    model = server.require(call.name, call.version)
    batcher = server.ready_batcher()
    with batcher.announce():
        body = await read_body(call, server.settings.max_request_bytes)
        request = decode_request(call.endpoint, model, body, call.headers)
    prediction = await batcher.predict(request.rows)
    server.served(_request_id(server, call, request), request.rows, prediction)
    if call.endpoint == PREDICT:
        return encode_json(predict_response(model, prediction.labels, prediction.proba))
    outputs = chosen_outputs(model, request.outputs)
    return encode_json(
        infer_response(
            model, prediction.labels, prediction.proba, request_id=request.id, outputs=outputs
        )
    )


def _request_id(server: ModelServer, call: Call, request: DecodedRequest) -> str:
    """The id the inference log records: the body's, the header's, or a new one."""
    if request.id:
        return request.id
    if server.logger is None:
        return ""  # nothing records it: no need to make one up
    return call.headers.get(REQUEST_ID) or uuid.uuid4().hex


async def read_body(call: Call, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = call.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(_too_large(int(declared), limit))
    chunks, size = [], 0
    async for chunk in call.chunks:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(_too_large(size, limit))
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(size: int, limit: int) -> str:
    return f"request body of {size}+ bytes exceeds the limit of {limit} bytes (--max-request-bytes)"
