"""The liveness endpoint of a standby: kopf serves it only once it runs, i.e. once leading.

A standby is alive as long as its event loop answers; it says whom it waits for. The same URL
as kopf's (``--liveness``), so the pod's probes do not care which role the process has; the
server is closed just before kopf starts and binds the port itself.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import AsyncIterator, Callable

from aiohttp import web

DEFAULT_HOST = "localhost"  # what kopf binds when the URL names no host
DEFAULT_PORT = 80


@contextlib.asynccontextmanager
async def serving(
    endpoint: str | None, describe: Callable[[], dict[str, str]]
) -> AsyncIterator[None]:
    """Answer GET ``endpoint`` with 200 and ``describe()`` as JSON while the block runs."""
    if not endpoint:
        yield
        return
    parts = urllib.parse.urlsplit(endpoint)

    async def health(_: web.Request) -> web.Response:
        return web.Response(text=json.dumps(describe()), content_type="application/json")

    app = web.Application()
    app.router.add_get(parts.path or "/", health)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, parts.hostname or DEFAULT_HOST, parts.port or DEFAULT_PORT)
    await site.start()
    try:
        yield
    finally:
        await runner.cleanup()
