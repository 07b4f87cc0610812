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
    POST /v2/models/{name}[/versions/{v}]/feedback  labels for served predictions
                                                (continuum.server.feedback, docs/feedback.md)
    GET  /metrics                               Prometheus text format

The two inference operations are routed by :mod:`continuum.server.router` and answered by
:mod:`continuum.server.endpoints`, never by FastAPI: their bodies are read there, so the byte
limit holds before the body is read in full and every problem becomes a ServingError answered
``{"error": ...}``. FastAPI has routes for everything else, and describes the inference
operations too (:func:`_describe_inference`), so that the OpenAPI description covers the
whole surface.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from continuum import __version__
from continuum.server.decoding import INFER, PREDICT
from continuum.server.endpoints import Call, read_body
from continuum.server.errors import ServingError
from continuum.server.feedback import FEEDBACK
from continuum.server.protocol import (
    ErrorBody,
    FeedbackRequest,
    FeedbackResponse,
    InferenceRequest,
    InferenceResponse,
    Liveness,
    ModelMetadata,
    PredictRequest,
    PredictResponse,
    Readiness,
    ServerMetadata,
)
from continuum.server.responses import model_metadata
from continuum.server.rollout import RolloutSettings
from continuum.server.router import INFERENCE_ROUTES, ServerApp
from continuum.server.settings import ServerSettings
from continuum.server.state import Loader, ModelServer
from continuum.storage import ObjectStore

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
    settings: ServerSettings,
    store: ObjectStore,
    *,
    loader: Loader | None = None,
    rollout: RolloutSettings | None = None,
) -> FastAPI:
    server = ModelServer(settings, store, rollout=rollout, **({"loader": loader} if loader else {}))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await server.start()
        yield
        await server.stop()

    app = ServerApp(title="Continuum model server", version=__version__, lifespan=lifespan)
    app.state.server = app.model_server = server
    app.add_exception_handler(ServingError, _error_response)  # type: ignore[arg-type]
    _health_routes(app, server)
    _v2_routes(app, server)
    _v1_routes(app, server)
    _rollout_route(app, server)
    _describe_inference(app)
    return app


async def _error_response(_: Request, exc: ServingError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status_code)


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


def _rollout_route(app: FastAPI, server: ModelServer) -> None:
    """The rollout counters the operator reads through the pod proxy (issue 18)."""
    missing = {"model": ErrorBody, "description": "No candidate beside the champion here"}

    @app.get("/v2/rollout", responses={404: missing}, tags=["rollout"])
    async def rollout() -> JSONResponse:
        if server.rollout is None:
            reason = f"no rollout: this server serves {server.target} alone"
            if server.rollout_settings.candidate is not None:
                reason = server.not_ready_reason
            return JSONResponse({"error": reason}, status_code=404)
        return JSONResponse(server.rollout.counters.snapshot())


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
        f"{prefix}/feedback", response_model=FeedbackResponse, responses=_ERRORS,
        openapi_extra=_body_of(FeedbackRequest), tags=["feedback"],
    )  # fmt: skip
    async def feedback(request: Request, name: str, version: str | None = None) -> JSONResponse:
        async with server.inference(FEEDBACK):
            server.require(name, version)
            writer = server.ready_feedback()
            headers = {"content-length": request.headers.get("content-length", "")}
            call = Call(FEEDBACK, name, version, headers, request.stream())
            body = await read_body(call, server.settings.max_request_bytes)
            verdict = await asyncio.to_thread(writer.receive, body)
            if server.rollout is not None:  # in the loop, where the rollout's answers change
                server.rollout.labelled(verdict.kept)
        return JSONResponse(verdict.body, status_code=verdict.status)


def _v1_routes(app: FastAPI, server: ModelServer) -> None:
    @app.get("/v1/models/{name}", responses=_ERRORS, tags=["v1"])
    async def v1_status(name: str) -> dict[str, Any]:
        server.require_name(name, None)
        return {"name": name, "ready": server.model is not None}


# The inference operations' parameters as the OpenAPI description declares them: name and
# version from the path (v2 also takes ``version`` as a query parameter, as it always has).
# Never called: the router answers these paths (module doc).
async def infer(name: str, version: str | None = None) -> None: ...


async def v1_predict(name: str) -> None: ...


def _body_of(message: type[BaseModel]) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{message.__name__}"}
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


_DESCRIBED: dict[str, tuple[Any, type[BaseModel], type[BaseModel], str]] = {
    INFER: (infer, InferenceRequest, InferenceResponse, "v2"),
    PREDICT: (v1_predict, PredictRequest, PredictResponse, "v1"),
}


def _described_route(path: str, endpoint: str) -> APIRoute:
    function, request, response, tag = _DESCRIBED[endpoint]
    return APIRoute(
        path, function, methods=["POST"], response_model=response, responses=_ERRORS,
        openapi_extra=_body_of(request), tags=[tag],
    )  # fmt: skip


def _describe_inference(app: FastAPI) -> None:
    """Describe the router's inference operations in the app's OpenAPI description."""
    described = [_described_route(route.path, route.endpoint) for route in INFERENCE_ROUTES]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            routes = [*app.routes, *described]
            spec = get_openapi(title=app.title, version=app.version, routes=routes)
            _add_request_bodies(spec.setdefault("components", {}).setdefault("schemas", {}))
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_request_bodies(components: dict[str, Any]) -> None:
    """The hand-read request bodies' schemas (pydantic's own), which FastAPI does not see."""
    for message in (InferenceRequest, PredictRequest, FeedbackRequest):
        schema = message.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[message.__name__] = schema
