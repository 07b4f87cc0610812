"""An API fault proxy: a TLS-terminating HTTP proxy that breaks, at seeded random, the
requests of whoever talks to the kube-apiserver through it (the operator, in
tests/cluster/test_faults_api.py).

It listens on 127.0.0.1 with a certificate of its own (a throwaway CA made with ``openssl``,
whose PEM goes into the client's kubeconfig), forwards every request to the real API server
with the client's own ``Authorization`` header (so the operator keeps its least-privilege
ServiceAccount token), and injects, per request:

========== ==================================================================================
kind       what the client sees
========== ==================================================================================
5xx        500, 502, 503 or 504 with a ``Status`` body; the API server never saw the request
429        429 with ``Retry-After`` (and ``details.retryAfterSeconds``), never forwarded
reset      the TCP connection reset (``SO_LINGER`` 0) before the request is forwarded
reset-late the request forwarded and answered, then the connection reset: the API server *did*
           it (a create, a patch) but the client never learns so
slow       the answer held back by up to ``slow_seconds`` (then forwarded normally)
========== ==================================================================================

and, to a watch stream (``?watch=true``), at a random moment within ``watch_seconds``:

============== ==============================================================================
watch-cut      the stream ended cleanly mid-stream (as an API server going away does)
watch-abort    the stream's connection reset mid-stream
watch-410      an ``ERROR`` event with a ``Status`` of code 410 (Expired), then the end
watch-410-http the watch refused at once with HTTP 410 Gone
============== ==============================================================================

Every draw comes from one ``random.Random(seed)`` in the order requests arrive, so a seed
replays the same sequence of decisions (which request gets which fault still depends on the
cluster's timing). ``counts`` holds the injected faults by kind; ``log`` (when given) gets
one line per fault: request number, method, path and query, kind.

``python -m tests.kit.faultproxy --kubeconfig ADMIN --out KUBECONFIG`` runs it by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import random
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

REQUEST_KINDS = ("5xx", "429", "reset", "slow")
WATCH_KINDS = ("watch-cut", "watch-abort", "watch-410", "watch-410-http")
SERVER_ERRORS = (500, 502, 503, 504)
# Hop-by-hop headers and those aiohttp sets itself; Accept-Encoding is dropped so that the API
# server answers uncompressed and a watch stream can be cut between two JSON lines.
REQUEST_DROP = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding"}
RESPONSE_DROP = {"content-length", "transfer-encoding", "connection", "content-encoding"}
STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Rates:
    """How often faults are injected: ``total``, the share of all requests that get a request
    fault, split between the kinds in proportion to their weights (``error``: 5xx,
    ``throttle``: 429, ``reset``: split evenly between ``reset`` and ``reset-late``, ``slow``);
    ``watch``, the share of watch streams broken (split evenly between the four watch kinds);
    the sizes of the slow and watch faults; and ``watch_life``, after which a stream that was
    not broken ends cleanly, as the API server ends one at its ``timeoutSeconds`` (30-60 min
    there): the client watches again, and each new stream is another draw. Without it an
    operator opened 6 watch streams in a 2-minute run and, at 30%, often none was broken.

    ``total`` is a total across the kinds, as the issue's "10% of requests" means: a rate *per
    kind* of 10% faulted 40% of the requests, and a TrainingJob reconcile of ~5 calls then
    succeeded about 8% of the time (0.6^5), so convergence was bounded by the 5-minute
    backoff cap, not by lost work (docs/operations.md, "API faults"). A watch stream is counted
    apart: it is one long request whose break costs a relist, not a reconcile."""

    total: float = 0.1
    error: float = 1.0
    throttle: float = 1.0
    reset: float = 1.0
    slow: float = 1.0
    watch: float = 0.3
    slow_seconds: float = 3.0
    retry_after: int = 1
    watch_seconds: float = 20.0
    watch_life: float = 60.0

    @classmethod
    def parse(cls, text: str) -> Rates:
        """``"total=0.2,slow=0,watch=0.5"``: the named fields changed, others kept."""
        names = {f.name for f in fields(cls)}
        changes: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, _, value = item.partition("=")
            if name not in names:
                raise ValueError(f"unknown fault rate {name!r}: use one of {sorted(names)}")
            changes[name] = int(value) if name == "retry_after" else float(value)
        return replace(cls(), **changes).checked()

    def checked(self) -> Rates:
        """``self``, or a ValueError naming what makes no sense."""
        for name in ("total", "watch"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"fault rate {name}={getattr(self, name)} is not in [0, 1]")
        weights = self.weights()
        if any(w < 0 for w in weights.values()):
            raise ValueError(f"a fault kind's weight is negative: {weights}")
        if self.total > 0 and not sum(weights.values()):
            raise ValueError(f"total={self.total} but every fault kind's weight is 0")
        return self

    def weights(self) -> dict[str, float]:
        return {"5xx": self.error, "429": self.throttle, "reset": self.reset, "slow": self.slow}

    def kind_at(self, roll: float) -> str:
        """The request kind of ``roll`` in [0, 1): the weights laid end to end."""
        weights = self.weights()
        at = roll * sum(weights.values())
        for kind, weight in weights.items():
            if at < weight:
                return kind
            at -= weight
        return next(kind for kind, weight in reversed(weights.items()) if weight > 0)

    def __str__(self) -> str:
        share = {k: w / (sum(self.weights().values()) or 1) for k, w in self.weights().items()}
        kinds = ", ".join(f"{kind} {self.total * s:.1%}" for kind, s in share.items())
        return (f"{self.total:.0%} of requests faulted ({kinds}), {self.watch:.0%} of watch "
                f"streams broken; slow up to {self.slow_seconds:g}s, Retry-After "
                f"{self.retry_after}s")  # fmt: skip


@dataclass(frozen=True)
class Fault:
    """What to do to one request: ``kind`` (None: forward it untouched) and its details."""

    kind: str | None = None
    status: int = 0
    delay: float = 0.0
    watch: str | None = None
    watch_after: float = 0.0


class Dice:
    """The seeded decisions, drawn in request order (a fixed number of draws per request, so
    the sequence does not depend on which faults came before)."""

    def __init__(self, seed: int, rates: Rates) -> None:
        self.rng = random.Random(seed)
        self.rates = rates

    def draw(self, watch: bool) -> Fault:
        r = self.rates
        roll, kind, pick, size = (self.rng.random() for _ in range(4))
        watch_roll, watch_pick, watch_at = self.rng.random(), self.rng.random(), self.rng.random()
        fault = self._request_fault(roll, kind, pick, size)
        if watch and fault.kind in {None, "slow"} and watch_roll < r.watch:
            kind_of_break = WATCH_KINDS[int(watch_pick * len(WATCH_KINDS))]
            fault = replace(fault, watch=kind_of_break, watch_after=watch_at * r.watch_seconds)
        return fault

    def _request_fault(self, roll: float, kind: float, pick: float, size: float) -> Fault:
        r = self.rates
        if roll >= r.total:
            return Fault()
        match r.kind_at(kind):
            case "5xx":
                return Fault("5xx", status=SERVER_ERRORS[int(pick * len(SERVER_ERRORS))])
            case "429":
                return Fault("429", status=429)
            case "reset":
                return Fault("reset" if pick < 0.5 else "reset-late")
            case _:
                return Fault("slow", delay=size * r.slow_seconds)


# ---------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Certificate:
    """A server certificate for 127.0.0.1 and the PEM of the CA that signed it."""

    cert: Path
    key: Path
    ca_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_certificate(directory: Path, host: str = "127.0.0.1") -> Certificate:
    """A throwaway CA and a server certificate for ``host`` signed by it, with ``openssl``
    (an EC P-256 key each, valid for 2 days): no Python crypto package is needed."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    cert, key, csr = directory / "tls.crt", directory / "tls.key", directory / "tls.csr"
    ext = directory / "tls.ext"
    ext.write_text(
        f"subjectAltName=IP:{host}\nextendedKeyUsage=serverAuth\n"
        "keyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n"
    )
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *newkey, "-keyout", ca_key, "-out", ca, "-days", "2",
             "-subj", "/CN=continuum-fault-proxy-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    _openssl("req", *newkey, "-keyout", key, "-out", csr, "-subj", f"/CN={host}")
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
             "-out", cert, "-days", "2", "-extfile", ext)  # fmt: skip
    return Certificate(cert, key, ca.read_bytes())


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


# ---------------------------------------------------------------------------- kubeconfigs


@dataclass(frozen=True)
class Upstream:
    """The real API server: its URL and the CA that signs its certificate."""

    server: str
    ca_pem: bytes

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem.decode())


def upstream_of(kubeconfig: Path) -> Upstream:
    """The API server of the kubeconfig's current context (its CA inline or as a file)."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = _current_cluster(config)
    if "certificate-authority-data" in cluster:
        ca = base64.b64decode(cluster["certificate-authority-data"])
    else:
        ca = Path(cluster["certificate-authority"]).read_bytes()
    return Upstream(cluster["server"], ca)


def _current_cluster(config: dict[str, Any]) -> dict[str, Any]:
    contexts = {c["name"]: c["context"] for c in config["contexts"]}
    name = contexts[config["current-context"]]["cluster"]
    return dict(next(c["cluster"] for c in config["clusters"] if c["name"] == name))


def proxied_kubeconfig(kubeconfig: Path, proxy_url: str, ca_pem: bytes, out: Path) -> Path:
    """A copy of ``kubeconfig`` whose current cluster is the proxy (its URL and CA); the
    users (token, client certificate) are kept, so the client's credentials are forwarded."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = _current_cluster(config)
    cluster.pop("certificate-authority", None)
    cluster |= {"server": proxy_url, "certificate-authority-data": base64.b64encode(ca_pem)}
    cluster["certificate-authority-data"] = cluster["certificate-authority-data"].decode()
    name = {c["name"]: c["context"] for c in config["contexts"]}[config["current-context"]]
    for entry in config["clusters"]:
        if entry["name"] == name["cluster"]:
            entry["cluster"] = cluster
    out.write_text(yaml.safe_dump(config))
    out.chmod(0o600)
    return out


# ---------------------------------------------------------------------------- the proxy


def _status(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"{message} (injected by the fault proxy)",
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def _status_response(code: int, reason: str, message: str, **details: Any) -> web.Response:
    headers = {"Retry-After": str(details["retryAfterSeconds"])} if details else {}
    body = json.dumps(_status(code, reason, message, **details))
    return web.Response(status=code, text=body, content_type="application/json", headers=headers)


def _is_watch(request: web.Request) -> bool:
    return request.query.get("watch", "").lower() in {"true", "1"}


def _reset(request: web.BaseRequest) -> None:
    """Reset the client's TCP connection (RST, not FIN): SO_LINGER 0, then abort."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class ConnectionResetByProxyError(Exception):
    """Raised in a handler after it reset its client's connection: nothing more to answer."""


class FaultProxy:
    """The proxy, run on its own event loop in a background thread (``start``/``stop``, or a
    ``with`` block); ``url`` is where clients connect, ``counts`` what it injected."""

    def __init__(
        self,
        upstream: Upstream,
        certificate: Certificate,
        seed: int,
        rates: Rates | None = None,
        log: Path | None = None,
    ) -> None:
        self.upstream = upstream
        self.certificate = certificate
        self.seed = seed
        self.rates = rates or Rates()
        self.dice = Dice(seed, self.rates)
        self.counts: Counter[str] = Counter()
        self.requests = 0
        self.watches = 0
        self.log = log
        self.enabled = True
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- lifecycle

    def start(self) -> FaultProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(timeout=STARTUP_TIMEOUT)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(STARTUP_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STARTUP_TIMEOUT)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ssl=self.upstream.client_context())
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, timeout=aiohttp.ClientTimeout(None)
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, "127.0.0.1", 0, ssl_context=self.certificate.server_context()
        )
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"https://127.0.0.1:{port}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # -- the numbers

    def summary(self) -> str:
        """``"5xx 12, 429 9, ..."`` in the kinds' fixed order, then the totals."""
        kinds = [*REQUEST_KINDS[:3], "reset-late", REQUEST_KINDS[3], *WATCH_KINDS]
        parts = [f"{kind} {self.counts[kind]}" for kind in kinds]
        total = sum(self.counts.values())
        faulted = sum(self.counts[kind] for kind in (*REQUEST_KINDS, "reset-late"))
        share = faulted / self.requests if self.requests else 0.0
        return (f"{', '.join(parts)}; {total} faults in {self.requests} requests "
                f"({share:.1%} of them request faults; {self.watches} watches)")  # fmt: skip

    def _note(self, kind: str, request: web.BaseRequest) -> None:
        self.counts[kind] += 1
        if self.log is not None:
            with self.log.open("a") as out:
                stamp = time.strftime("%H:%M:%S", time.gmtime())
                out.write(f"{stamp} #{self.requests} {request.method} {request.path_qs} {kind}\n")

    # -- one request

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        watch = _is_watch(request)
        self.watches += watch
        fault = self.dice.draw(watch) if self.enabled else Fault()
        if fault.kind is not None:
            self._note(fault.kind, request)
        try:
            return await self._answer(request, fault, watch)
        except ConnectionResetByProxyError:
            return web.Response(status=499)  # never sent: the connection is gone

    async def _answer(self, request: web.Request, fault: Fault, watch: bool) -> web.StreamResponse:
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        elif fault.kind == "5xx":
            return _status_response(fault.status, "InternalError", "the server failed")
        elif fault.kind == "429":
            seconds = self.rates.retry_after
            return _status_response(429, "TooManyRequests", "slow down", retryAfterSeconds=seconds)
        elif fault.kind == "reset":
            await request.read()  # the whole request sent, then no answer
            _reset(request)
            raise ConnectionResetByProxyError
        if fault.watch == "watch-410-http":
            self._note(fault.watch, request)
            return _status_response(410, "Expired", "too old resource version")
        upstream = await self._forward(request)
        if fault.kind == "reset-late":
            await upstream.read()
            upstream.release()
            _reset(request)
            raise ConnectionResetByProxyError
        if watch and upstream.status == 200:
            return await self._stream(request, upstream, fault)
        body = await upstream.read()
        upstream.release()
        return web.Response(status=upstream.status, body=body, headers=_headers(upstream))

    async def _forward(self, request: web.Request) -> aiohttp.ClientResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in REQUEST_DROP}
        headers["Accept-Encoding"] = "identity"  # aiohttp would ask for gzip
        body = await request.read()
        url = self.upstream.server.rstrip("/") + request.path_qs
        return await self._session.request(
            request.method, url, headers=headers, data=body or None, allow_redirects=False
        )

    async def _stream(
        self, request: web.Request, upstream: aiohttp.ClientResponse, fault: Fault
    ) -> web.StreamResponse:
        """Pass the watch's JSON lines through until the upstream ends it, or break it."""
        response = web.StreamResponse(status=upstream.status, headers=_headers(upstream))
        await response.prepare(request)
        broken = fault.watch is not None and fault.watch_after < self.rates.watch_life
        life = fault.watch_after if broken else self.rates.watch_life
        deadline = time.monotonic() + life
        try:
            while True:
                left = max(0.0, deadline - time.monotonic())
                try:
                    line = await asyncio.wait_for(upstream.content.readline(), left)
                except TimeoutError:
                    break
                if not line:
                    await response.write_eof()
                    return response
                await response.write(line)
        finally:
            upstream.close()
        if not broken or fault.watch is None:
            await response.write_eof()  # its life is over: a clean end, not a fault
            return response
        return await self._break(request, response, fault.watch)

    async def _break(
        self, request: web.Request, response: web.StreamResponse, kind: str
    ) -> web.StreamResponse:
        self._note(kind, request)
        if kind == "watch-abort":
            _reset(request)
            raise ConnectionResetByProxyError
        if kind == "watch-410":
            status = _status(410, "Expired", "too old resource version")
            await response.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
        await response.write_eof()
        return response


def _headers(upstream: aiohttp.ClientResponse) -> dict[str, str]:
    return {k: v for k, v in upstream.headers.items() if k.lower() not in RESPONSE_DROP}


# ---------------------------------------------------------------------------- by hand


@contextlib.contextmanager
def proxy_for(
    kubeconfig: Path, out: Path, seed: int, rates: Rates | None = None, log: Path | None = None
) -> Iterator[FaultProxy]:
    """A running proxy in front of ``kubeconfig``'s API server and, at ``out``, a kubeconfig
    that sends the same credentials through it."""
    with tempfile.TemporaryDirectory(prefix="faultproxy-") as tmp:
        certificate = make_certificate(Path(tmp))
        with FaultProxy(upstream_of(kubeconfig), certificate, seed, rates, log) as proxy:
            proxied_kubeconfig(kubeconfig, proxy.url, certificate.ca_pem, out)
            yield proxy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", type=Path, required=True, help="the client's kubeconfig")
    parser.add_argument("--out", type=Path, required=True, help="where to write the proxied one")
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    parser.add_argument("--rates", default="", help='e.g. "total=0.2,slow=0,watch=0.5"')
    parser.add_argument("--log", type=Path, help="one line per injected fault")
    args = parser.parse_args()
    with proxy_for(args.kubeconfig, args.out, args.seed, Rates.parse(args.rates), args.log) as p:
        print(f"fault proxy on {p.url} (seed {args.seed}); KUBECONFIG={args.out}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(30)
                print(p.summary(), flush=True)


if __name__ == "__main__":
    main()
