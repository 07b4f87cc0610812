"""The two inference endpoints, once the router (:mod:`continuum.server.router`) chose them.

``answer`` turns one inference call — endpoint, model name and version, a few headers and a
way to read the body — into a status and a JSON body: it reads the body within the byte limit,
has :func:`continuum.server.decoding.decode_request` make it into rows, hands the rows to the
batcher and renders the prediction (:mod:`continuum.server.responses`).

Every client mistake is a ServingError, answered ``{"error": message}`` with its status; only
a bug escapes as another exception (the router answers 500).

**Every prediction has an identity** (docs/feedback.md): the OIP v2 body's ``id``, else the
``x-request-id`` header, else one made here (:func:`new_request_id`). The answer carries it
back: v2 in the body's ``id`` (as the protocol asks) and both endpoints in the ``x-request-id``
response header; the inference log records it with each row's index, so labels sent later can
be joined to the exact row they judge.
"""

from __future__ import annotations

import json
import os
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
class Answer:
    """What the router sends back: status, JSON body and the request's id (None: unknown)."""

    status: int
    body: bytes
    request_id: str | None = None
    model_version: int | None = None  # the version that answered (x-model-version)


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


async def answer(server: ModelServer, call: Call) -> Answer:
    """The answer to one inference call; client mistakes are 4xx answers, not raised.

    An error answer carries the client's ``x-request-id`` back, if it sent one.
    """
    try:
        async with server.inference(call.endpoint):
            return await _answer(server, call)
    except ServingError as exc:
        return Answer(exc.status_code, error_body(exc), call.headers.get(REQUEST_ID))


async def _answer(server: ModelServer, call: Call) -> Answer:
    model = server.require(call.name, call.version)
    batcher = server.ready_batcher()
    with batcher.announce():
        body = await read_body(call, server.settings.max_request_bytes)
        request = decode_request(call.endpoint, model, body, call.headers)
    request_id = request_id_of(request, call.headers)
    if server.rollout is None:
        prediction = await batcher.predict(request.rows)
    else:  # issue 18: the candidate may answer (server/rollout.py)
        model, prediction = await server.rollout.predict(request.rows, request_id)
    server.served(request_id, request.rows, prediction)
    if call.endpoint == PREDICT:
        content = predict_response(model, prediction.labels, prediction.proba)
    else:
        outputs = chosen_outputs(model, request.outputs)
        content = infer_response(
            model, prediction.labels, prediction.proba, request_id=request_id, outputs=outputs
        )
    return Answer(200, encode_json(content), request_id, model.version)


def request_id_of(request: DecodedRequest, headers: Mapping[str, str]) -> str:
    """The prediction's identity: the body's ``id``, the ``x-request-id`` header, or a new one.

    An empty id counts as none.
    """
    return request.id or headers.get(REQUEST_ID) or new_request_id()


def new_request_id() -> str:
    """32 random hex digits, as ``uuid.uuid4().hex`` (128 random bits instead of 122).

    ``os.urandom(16).hex()`` takes 0.34 us where ``uuid.uuid4().hex`` takes 1.76 us
    (``python -m timeit``, 2026-12-04, this machine); a request costs some 100 us. Clients that
    send their own id pay nothing.
    """
    return os.urandom(16).hex()


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
