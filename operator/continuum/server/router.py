"""The one router: it decides which code answers each HTTP request to the server.

A request to an inference path (:data:`INFERENCE_ROUTES`) is answered here, in bare ASGI:
a ``POST`` by :func:`continuum.server.endpoints.answer`, which reads and checks its body
itself. Every other request goes to the FastAPI app (:mod:`continuum.server.app`: health,
metadata, metrics, the OpenAPI description), which has no route of its own for the inference
paths, so each answer has exactly one way in. FastAPI's routing, dependency resolution and
middleware cost more per request than predicting a batch, and the inference endpoints need
none of it: with the same server's inference requests sent through FastAPI's routes instead
(measured 2026-12-03 with wrk on the bench's LogisticRegression, server on one CPU), each took
1.5x the server's CPU at concurrency 1 (525 against 346 us) and 1.9x at 16 (313 against
167 us). The router's own decision costs about 2 us.

What FastAPI's router would answer on the inference paths stays as it was when it routed
them too: another method gets 405 (``Allow: POST``) unless one of FastAPI's routes takes it
(``GET /v1/models/{name}:predict`` is the v1 status of a model named ``{name}:predict``), and
a trailing slash gets a 307 redirect to the path without it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import URL
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Match, compile_path
from starlette.types import Receive, Scope, Send

from continuum.server.decoding import INFER, PREDICT
from continuum.server.endpoints import (
    HEADERS,
    JSON_TYPE,
    REQUEST_ID,
    Answer,
    Call,
    answer,
    encode_json,
)
from continuum.server.state import ModelServer

log = logging.getLogger(__name__)

_WANTED = {name.encode("latin-1"): name for name in HEADERS}


@dataclass(frozen=True)
class InferenceRoute:
    """An inference path, as the OpenAPI description writes it, and the endpoint behind it."""

    path: str
    endpoint: str  # INFER | PREDICT
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Starlette's own compilation: {name} matches one non-empty segment, as in FastAPI.
        object.__setattr__(self, "pattern", compile_path(self.path)[0])


INFERENCE_ROUTES = (
    InferenceRoute("/v2/models/{name}/infer", INFER),
    InferenceRoute("/v2/models/{name}/versions/{version}/infer", INFER),
    InferenceRoute("/v1/models/{name}:predict", PREDICT),
)


class ServerApp(FastAPI):
    """The FastAPI app behind the router: inference requests never reach FastAPI's routes."""

    model_server: ModelServer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = _route_path(scope)
            found = find_route(path)
            if found is not None and scope["method"] == "POST":
                await respond(self.model_server, inference_call(scope, receive, *found), send)
                return
            if (found or find_route(path.rstrip("/"))) and not self._has_route(scope):
                await _routing_answer(scope, found is not None)(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _has_route(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] is not Match.NONE for route in self.router.routes)


def find_route(path: str) -> tuple[str, dict[str, str]] | None:
    """(endpoint, path parameters) of the inference path ``path``, or None for any other."""
    for route in INFERENCE_ROUTES:
        if match := route.pattern.match(path):
            return route.endpoint, match.groupdict()
    return None


def inference_call(
    scope: Scope, receive: Receive, endpoint: str, parameters: dict[str, str]
) -> Call:
    name, version = parameters["name"], parameters.get("version")
    return Call(endpoint, name, version, _headers(scope), chunks(receive))


def _routing_answer(scope: Scope, method_not_allowed: bool) -> JSONResponse | RedirectResponse:
    """FastAPI's answers on an inference path: 405 for another method, 307 off a last slash."""
    if method_not_allowed:
        detail = {"detail": "Method Not Allowed"}
        return JSONResponse(detail, status_code=405, headers={"Allow": "POST"})
    return RedirectResponse(URL(scope={**scope, "path": scope["path"].rstrip("/")}))


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root + "/") else path


def _headers(scope: Scope) -> dict[str, str]:
    """The headers the endpoints read; the first of repeated ones, as Starlette gives."""
    found: dict[str, str] = {}
    for key, value in scope["headers"]:
        name = _WANTED.get(key)
        if name is not None and name not in found:
            found[name] = value.decode("latin-1")
    return found


def header_safe(value: str) -> bool:
    """Whether ``value`` can be sent as a header value as it is: printable ASCII, no edge spaces.

    A body ``id`` may hold anything JSON can (a line break would split the header, non-ASCII
    has no agreed encoding): such an id is answered in the body only, never in the header.
    """
    return value.isascii() and value.isprintable() and value == value.strip()


async def chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The body as it arrives; ClientDisconnect if the client goes away first."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def respond(server: ModelServer, call: Call, send: Send) -> None:
    try:
        reply = await answer(server, call)
    except ClientDisconnect:
        return  # nobody to answer
    except Exception as exc:  # a bug: answer 500 as FastAPI would, and log it
        log.exception("inference request failed")
        body = encode_json({"error": f"internal error: {type(exc).__name__}"})
        reply = Answer(500, body, call.headers.get(REQUEST_ID))
    await send_json(send, reply.status, reply.body, reply.request_id, reply.model_version)


_REQUEST_ID_HEADER = REQUEST_ID.encode("latin-1")
_MODEL_VERSION_HEADER = b"x-model-version"


async def send_json(
    send: Send,
    status: int,
    body: bytes,
    request_id: str | None = None,
    model_version: int | None = None,
) -> None:
    headers: list[tuple[bytes, bytes]] = [
        (b"content-length", str(len(body)).encode("latin-1")),
        (b"content-type", JSON_TYPE.encode("latin-1")),
    ]
    if request_id and header_safe(request_id):
        headers.append((_REQUEST_ID_HEADER, request_id.encode("ascii")))
    if model_version is not None:  # which version answered (issue 18: during a rollout)
        headers.append((_MODEL_VERSION_HEADER, str(model_version).encode("ascii")))
    start: dict[str, Any] = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})
