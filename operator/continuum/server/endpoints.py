"""The two inference endpoints, independent of how the request reached them.

``answer`` turns one inference call — endpoint, model name and version, a few headers and a
way to read the body — into a status and a JSON body. The bare ASGI front
(:mod:`continuum.server.front`) calls it for every inference request; the FastAPI routes call
it too, so the answers are the same whichever way a request comes in.

Every client mistake is a ServingError, answered ``{"error": message}`` with its status; only
a bug escapes as another exception (the caller answers 500).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from continuum.server.binary import HEADER_LENGTH, request_tensors, split_body
from continuum.server.errors import BadRequest, PayloadTooLarge, ServingError
from continuum.server.inputs import FeatureRows, rows_from_instances, rows_from_tensors
from continuum.server.lean import lean_request
from continuum.server.model import ServedModel
from continuum.server.protocol import InferenceRequest, PredictRequest
from continuum.server.responses import chosen_outputs, infer_response, predict_response
from continuum.server.state import ModelServer

INFER, PREDICT = "infer", "predict"  # the endpoint label of the request metrics
JSON_TYPE = "application/json"
REQUEST_ID = "x-request-id"
# The only request headers these endpoints read (lower-case, as ASGI gives them).
HEADERS = ("content-length", HEADER_LENGTH, REQUEST_ID)
Message = TypeVar("Message", bound=BaseModel)


@dataclass(frozen=True)
class Call:
    """One inference request: which endpoint and model, its headers, its body's chunks."""

    endpoint: str  # INFER | PREDICT
    name: str
    version: str | None
    headers: Mapping[str, str]
    chunks: AsyncIterator[bytes]


@dataclass(frozen=True)
class Parsed:
    """A request body made into rows, with what the answer needs of it."""

    rows: FeatureRows
    request_id: str | None = None
    outputs: list[str] | None = None


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
        parsed = parse_infer(model, body, call.headers) if call.endpoint == INFER else (
            parse_predict(model, body))  # fmt: skip
    prediction = await batcher.predict(parsed.rows)
    server.served(_request_id(server, call, parsed), parsed.rows, prediction)
    if call.endpoint == PREDICT:
        return encode_json(predict_response(model, prediction.labels, prediction.proba))
    outputs = chosen_outputs(model, parsed.outputs)
    return encode_json(
        infer_response(
            model, prediction.labels, prediction.proba,
            request_id=parsed.request_id, outputs=outputs,
        )
    )  # fmt: skip


def _request_id(server: ModelServer, call: Call, parsed: Parsed) -> str:
    """The id the inference log records: the body's, the header's, or a new one."""
    if parsed.request_id:
        return parsed.request_id
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


def parse_infer(model: ServedModel, body: bytes, headers: Mapping[str, str]) -> Parsed:
    """OIP v2 body (JSON or binary extension) to rows: the lean path when it applies."""
    header, tail = split_body(body, headers.get(HEADER_LENGTH))
    lean = None if tail else lean_request(header, model.numeric_positions)
    if lean is not None:
        chosen_outputs(model, lean.outputs)  # an unknown output is refused before predicting
        return Parsed(lean.rows, lean.id, lean.outputs)
    request = parse_body(InferenceRequest, header)
    names = None if request.outputs is None else [output.name for output in request.outputs]
    chosen_outputs(model, names)
    rows = rows_from_tensors(request_tensors(request, tail), model.features)
    return Parsed(rows, request.id, names)


def parse_predict(model: ServedModel, body: bytes) -> Parsed:
    """KServe v1 ``{"instances": [...]}`` to rows."""
    request = parse_body(PredictRequest, body)
    return Parsed(rows_from_instances(request.instances, model.features))


def parse_body(message: type[Message], body: bytes) -> Message:
    try:
        return message.model_validate_json(body)
    except ValidationError as exc:
        raise BadRequest(_describe(exc, message.__name__)) from exc


def _describe(exc: ValidationError, what: str) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    if any(error["type"] == "json_invalid" for error in errors):
        return f"body is not valid JSON: {errors[0]['msg']}"
    details = "; ".join(
        f"{'.'.join(map(str, error['loc'])) or 'body'}: {error['msg']}" for error in errors[:5]
    )
    return f"body is not a valid {what}: {details}"
