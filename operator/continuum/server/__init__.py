"""continuum.server: ``continuum serve`` — one verified model version over HTTP.

A request's path: ``router`` (the one router: inference paths answered in bare ASGI, the
rest by FastAPI) -> ``endpoints`` (read the body, predict, answer) -> ``decoding`` (the one
request decoder, with its fast branch for the common body; ``protocol``, ``binary`` and
``inputs`` for every other) -> ``batching`` (adaptive batching) -> ``model`` and ``scoring``
(verified load; predict by the ``compiled`` pipeline where its load-time check passes, else by
scikit-learn's own steps) -> ``responses``. Beside it: ``app`` (the
FastAPI routes and the OpenAPI description), ``state`` (the model slot), ``settings``
(flags/env), ``metrics``, ``inference_log``, ``errors`` (the HTTP error tree). The whole
path is described in docs/architecture.md ("The model server's request path").
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

import uvicorn

from continuum.errors import ConfigError
from continuum.server.app import create_app
from continuum.server.http import HttpProtocol
from continuum.server.rollout import rollout_from_env
from continuum.server.settings import parse_settings
from continuum.storage import ObjectStore

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse settings once, then serve until SIGTERM/SIGINT (uvicorn's graceful shutdown)."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    try:
        settings = parse_settings(sys.argv[1:] if argv is None else argv)
        rollout = rollout_from_env(os.environ)
    except ConfigError as exc:
        print(f"continuum serve: {exc.message}", file=sys.stderr)
        return 2
    app = create_app(settings, ObjectStore(settings.s3), rollout=rollout)
    uvicorn.run(
        app, host=settings.host, port=settings.port, access_log=False, log_config=None,
        http=HttpProtocol,  # each response in one write (server/http.py)
    )  # fmt: skip
    return 0
