"""The inference endpoints as bare ASGI, in front of the FastAPI app.

FastAPI's routing, dependency resolution and middleware cost more per request than predicting
a batch; the inference endpoints need none of it (:mod:`continuum.server.endpoints` reads and
checks their bodies itself). :class:`ServerApp` is the FastAPI app with one change: a ``POST``
to an inference path goes straight to :func:`endpoints.answer`, everything else to FastAPI.
The FastAPI routes of the inference paths stay: they are the OpenAPI description, and they
call ``answer`` as well, so a request reaching them some other way gets the same answer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from continuum.server.endpoints import HEADERS, INFER, JSON_TYPE, PREDICT, Call, answer, encode_json
from continuum.server.state import ModelServer

log = logging.getLogger(__name__)

# Path parameters match as FastAPI's {name} does: one non-empty segment.
INFER_PATH = re.compile(r"/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer")
PREDICT_PATH = re.compile(r"/v1/models/(?P<name>[^/]+):predict")
_WANTED = {name.encode("latin-1"): name for name in HEADERS}


class ServerApp(FastAPI):
    """The FastAPI app, with inference requests answered before FastAPI sees them."""

    model_server: ModelServer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = inference_call(scope, receive)
        if call is None:
            await super().__call__(scope, receive, send)
            return
        await respond(self.model_server, call, send)


def inference_call(scope: Scope, receive: Receive) -> Call | None:
    """The inference call ``scope`` is, or None for any other request."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path = _route_path(scope)
    if match := INFER_PATH.fullmatch(path):
        endpoint = INFER
    elif match := PREDICT_PATH.fullmatch(path):
        endpoint = PREDICT
    else:
        return None
    groups = match.groupdict()
    return Call(endpoint, groups["name"], groups.get("version"), _headers(scope), chunks(receive))


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
        status, body = await answer(server, call)
    except ClientDisconnect:
        return  # nobody to answer
    except Exception as exc:  # a bug: answer 500 as FastAPI would, and log it
        log.exception("inference request failed")
        status, body = 500, encode_json({"error": f"internal error: {type(exc).__name__}"})
    await send_json(send, status, body)


async def send_json(send: Send, status: int, body: bytes) -> None:
    headers: list[tuple[bytes, bytes]] = [
        (b"content-length", str(len(body)).encode("latin-1")),
        (b"content-type", JSON_TYPE.encode("latin-1")),
    ]
    start: dict[str, Any] = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})
