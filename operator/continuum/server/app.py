"""The HTTP surface: Open Inference Protocol v2 REST, KServe v1 predict, health and metrics.

::

    GET  /v2/health/live                        200 while the process runs
    GET  /v2/health/ready                       200 once a verified model is loaded, else 503
    GET  /v2                                    server metadata
    GET  /v2/models/{name}[/versions/{v}]       model metadata (inputs = features, outputs)
    GET  /v2/models/{name}[/versions/{v}]/ready 200 / 503
    POST /v2/models/{name}[/versions/{v}]/infer inference (JSON, or binary tensor extension)
    GET  /v1/models/{name}                      KServe v1 model status
    POST /v1/models/{name}:predict              KServe v1 {"instances": [...]}
    GET  /metrics                               Prometheus text format

Inference bodies are read here, not by FastAPI, so the byte limit holds before the body is
read in full and every problem becomes a ServingError (one handler turns those into
``{"error": ...}`` answers); their schemas are still declared in the OpenAPI description.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError

from continuum import __version__
from continuum.server.binary import HEADER_LENGTH, request_tensors, split_body
from continuum.server.errors import BadRequest, PayloadTooLarge, ServingError
from continuum.server.inputs import rows_from_instances, rows_from_tensors
from continuum.server.protocol import (
    ErrorBody,
    InferenceRequest,
    InferenceResponse,
    Liveness,
    ModelMetadata,
    PredictRequest,
    PredictResponse,
    Readiness,
    ServerMetadata,
)
from continuum.server.responses import (
    chosen_outputs,
    infer_response,
    model_metadata,
    predict_response,
)
from continuum.server.settings import ServerSettings
from continuum.server.state import Loader, ModelServer
from continuum.storage import ObjectStore

Message = TypeVar("Message", bound=BaseModel)
EXTENSIONS = ["binary_tensor_data"]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in [
        (400, "Not JSON, or not a request of this protocol"),
        (404, "Unknown model name or version"),
        (413, "Body larger than the server's limit"),
        (422, "Inputs do not fit the model's features"),
        (503, "No verified model loaded, or server busy"),
    ]
}


def create_app(
    settings: ServerSettings, store: ObjectStore, *, loader: Loader | None = None
) -> FastAPI:
    server = ModelServer(settings, store, **({"loader": loader} if loader else {}))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await server.start()
        yield
        await server.stop()

    app = FastAPI(title="Continuum model server", version=__version__, lifespan=lifespan)
    app.state.server = server
    app.add_exception_handler(ServingError, _error_response)  # type: ignore[arg-type]
    _health_routes(app, server)
    _v2_routes(app, server)
    _v1_routes(app, server)
    _document_request_bodies(app)
    return app


async def _error_response(_: Request, exc: ServingError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status_code)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(_too_large(int(declared), limit))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(_too_large(size, limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> str:
    return f"request body of {size}+ bytes exceeds the limit of {limit} bytes (--max-request-bytes)"


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


def _readiness(server: ModelServer) -> JSONResponse:
    if server.model is not None:
        return JSONResponse({"ready": True})
    return JSONResponse({"ready": False, "reason": server.not_ready_reason}, status_code=503)


def _health_routes(app: FastAPI, server: ModelServer) -> None:
    ready_doc: dict[int | str, dict[str, Any]] = {503: {"model": Readiness}}

    @app.get("/v2/health/live", response_model=Liveness, tags=["health"])
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready", response_model=Readiness, responses=ready_doc, tags=["health"])
    async def ready() -> JSONResponse:
        return _readiness(server)

    @app.get("/v2", response_model=ServerMetadata, tags=["health"])
    async def server_metadata() -> dict[str, Any]:
        return {"name": "continuum", "version": __version__, "extensions": EXTENSIONS}

    @app.get("/metrics", response_class=Response, tags=["health"])
    async def metrics() -> Response:
        return Response(generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _v2_routes(app: FastAPI, server: ModelServer) -> None:
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        _v2_model_routes(app, server, prefix)


def _v2_model_routes(app: FastAPI, server: ModelServer, prefix: str) -> None:
    @app.get(prefix, response_model=ModelMetadata, responses=_ERRORS, tags=["v2"])
    async def metadata(name: str, version: str | None = None) -> JSONResponse:
        return JSONResponse(model_metadata(server.require(name, version)))

    @app.get(f"{prefix}/ready", response_model=Readiness, responses=_ERRORS, tags=["v2"])
    async def model_ready(name: str, version: str | None = None) -> JSONResponse:
        server.require_name(name, version)
        return _readiness(server)

    @app.post(
        f"{prefix}/infer",
        response_model=InferenceResponse,
        responses=_ERRORS,
        openapi_extra=_body_of(InferenceRequest),
        tags=["v2"],
    )
    async def infer(request: Request, name: str, version: str | None = None) -> JSONResponse:
        async with server.inference("infer"):
            return await _infer(server, request, name, version)


async def _infer(
    server: ModelServer, request: Request, name: str, version: str | None
) -> JSONResponse:
    model = server.require(name, version)
    batcher = server.ready_batcher()
    with batcher.announce():
        body = await read_body(request, server.settings.max_request_bytes)
        header, tail = split_body(body, request.headers.get(HEADER_LENGTH))
        parsed = parse_body(InferenceRequest, header)
        outputs = chosen_outputs(model, parsed.outputs)
        rows = rows_from_tensors(request_tensors(parsed, tail), model.features)
    prediction = await batcher.predict(rows)
    server.served(parsed.id or _request_id(request), rows, prediction)
    body_out = infer_response(
        model, prediction.labels, prediction.proba, request_id=parsed.id, outputs=outputs
    )
    return JSONResponse(body_out)


def _request_id(request: Request) -> str:
    return request.headers.get("x-request-id") or uuid.uuid4().hex


def _v1_routes(app: FastAPI, server: ModelServer) -> None:
    @app.get("/v1/models/{name}", responses=_ERRORS, tags=["v1"])
    async def v1_status(name: str) -> dict[str, Any]:
        server.require_name(name, None)
        return {"name": name, "ready": server.model is not None}

    @app.post(
        "/v1/models/{name}:predict",
        response_model=PredictResponse,
        responses=_ERRORS,
        openapi_extra=_body_of(PredictRequest),
        tags=["v1"],
    )
    async def v1_predict(request: Request, name: str) -> JSONResponse:
        async with server.inference("predict"):
            return await _predict_v1(server, request, name)


async def _predict_v1(server: ModelServer, request: Request, name: str) -> JSONResponse:
    model = server.require(name)
    batcher = server.ready_batcher()
    with batcher.announce():
        body = await read_body(request, server.settings.max_request_bytes)
        parsed = parse_body(PredictRequest, body)
        rows = rows_from_instances(parsed.instances, model.features)
    prediction = await batcher.predict(rows)
    server.served(_request_id(request), rows, prediction)
    return JSONResponse(predict_response(model, prediction.labels, prediction.proba))


def _body_of(message: type[BaseModel]) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{message.__name__}"}
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


_BODY_MODELS: tuple[type[BaseModel], ...] = (InferenceRequest, PredictRequest)


def _document_request_bodies(app: FastAPI) -> None:
    """Add the hand-read request bodies' schemas to the generated OpenAPI components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            for message in _BODY_MODELS:
                schema = message.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(schema.pop("$defs", {}))
                components[message.__name__] = schema
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
