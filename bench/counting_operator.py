"""`continuum operator` with every HTTP request it makes to the API server tallied.

    BENCH_COUNTS=/tmp/counts.json python bench/counting_operator.py -n NS [operator options]

Both HTTP stacks of the operator (kopf's own client and ``kubernetes.aio``, the gateway of
``continuum.kube``) send their requests through ``aiohttp.ClientSession._request``; this wrapper
counts each request there, by ``<METHOD> <namespace> <resource>[/<subresource>] <status>``
(object names dropped, watches marked ``WATCH``), and rewrites the tally as JSON to
``$BENCH_COUNTS`` twice a second and at exit. Nothing else about the operator changes: it is the
same entry point (``continuum.cli.main``) in the same process.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

COUNTS: collections.Counter[str] = collections.Counter()
LOCK = threading.Lock()
OUT = Path(os.environ.get("BENCH_COUNTS", "/dev/null"))
_original = aiohttp.ClientSession._request


def request_key(method: str, url: str, status: int | str) -> str:
    """``POST bench-x jobs 201``, ``PATCH bench-x trainingjobs/status 200``, ``WATCH - jobs``."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    namespace = "-"
    if "namespaces" in segments:
        at = segments.index("namespaces")
        if at + 1 < len(segments):
            namespace = segments[at + 1]
        rest = segments[at + 2 :]
    else:
        rest = segments[3:] if segments[:1] == ["apis"] else segments[2:]
    resource = rest[0] if rest else "namespaces"
    if len(rest) >= 3:
        resource = f"{resource}/{rest[2]}"
    if method == "GET" and parse_qs(parts.query).get("watch") in (["true"], ["1"]):
        method = "WATCH"
    return f"{method} {namespace} {resource} {status}"


async def _counted(
    self: aiohttp.ClientSession, method: str, url: Any, *args: Any, **kw: Any
) -> Any:
    params = kw.get("params")
    full = str(url)
    if params and "watch" in str(params):
        full += "?watch=true"
    try:
        response = await _original(self, method, url, *args, **kw)
    except Exception:
        _count(request_key(method.upper(), full, "error"))
        raise
    _count(request_key(method.upper(), full, response.status))
    return response


def _count(key: str) -> None:
    with LOCK:
        COUNTS[key] += 1


def dump() -> None:
    with LOCK:
        data = dict(COUNTS)
    tmp = OUT.with_name(OUT.name + ".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))
    tmp.replace(OUT)


def _dump_forever() -> None:
    while True:
        time.sleep(0.5)
        dump()


aiohttp.ClientSession._request = _counted  # type: ignore[method-assign]


def main() -> int:
    if str(OUT) != "/dev/null":
        threading.Thread(target=_dump_forever, daemon=True).start()
        atexit.register(dump)
    from continuum.cli import main as continuum  # noqa: PLC0415 (after the patch)

    return continuum(["operator", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
