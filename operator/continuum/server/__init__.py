"""continuum.server: ``continuum serve`` — one verified model version over HTTP.

Modules: ``settings`` (flags/env), ``model`` (verified load, predict), ``inputs`` and
``binary`` (request tensors -> feature columns), ``batching`` (adaptive batching),
``responses``, ``protocol`` (OIP v2 / v1 bodies), ``metrics``, ``inference_log``,
``state`` (the model slot), ``app`` (routes), ``errors`` (the HTTP error tree).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import uvicorn

from continuum.errors import ConfigError
from continuum.server.app import create_app
from continuum.server.settings import parse_settings
from continuum.storage import ObjectStore

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse settings once, then serve until SIGTERM/SIGINT (uvicorn's graceful shutdown)."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    try:
        settings = parse_settings(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(f"continuum serve: {exc.message}", file=sys.stderr)
        return 2
    app = create_app(settings, ObjectStore(settings.s3))
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_config=None)
    return 0
