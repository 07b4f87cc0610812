"""The API fault proxy (tests/kit/faultproxy.py) against a tiny local TLS upstream: it forwards
faithfully when told to inject nothing, injects each kind of fault as the cluster test expects
it, counts what it injected, and replays the same decisions from the same seed."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from tests.kit.faultproxy import (
    WATCH_KINDS,
    Certificate,
    Dice,
    Fault,
    FaultProxy,
    Rates,
    Upstream,
    make_certificate,
    proxied_kubeconfig,
    upstream_of,
)

NOTHING = Rates(total=0, watch=0)
EVENT_EVERY = 0.02


class Backend:
    """A stand-in API server on 127.0.0.1 over TLS: echoes requests, streams watch events."""

    def __init__(self, certificate: Certificate) -> None:
        self.certificate = certificate
        self.seen: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def echo(self, request: web.Request) -> web.StreamResponse:
        body = (await request.read()).decode()
        seen = {"method": request.method, "path": request.path_qs, "body": body}
        seen["authorization"] = request.headers.get("Authorization", "")
        seen["accept-encoding"] = request.headers.get("Accept-Encoding", "")
        self.seen.append(seen)
        if request.query.get("watch") == "true":
            return await self.watch(request)
        return web.json_response(seen, status=201, headers={"X-Upstream": "yes"})

    async def watch(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # the proxy broke the watch
            for n in range(int(request.query.get("events", "1000"))):
                event = {"type": "ADDED", "object": {"kind": "Thing", "n": n}}
                await response.write(json.dumps(event).encode() + b"\n")
                await asyncio.sleep(EVENT_EVERY)
            await response.write_eof()
        return response

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.echo)
        self.runner = web.AppRunner(app, handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(
            self.runner, "127.0.0.1", 0, ssl_context=self.certificate.server_context()
        )
        await site.start()
        self.url = f"https://127.0.0.1:{self.runner.addresses[0][1]}"

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    def stop(self) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Certificate, Certificate]:
    """One certificate for the backend, one for the proxy (each with its own CA)."""
    root = tmp_path_factory.mktemp("certs")
    return make_certificate(root / "backend"), make_certificate(root / "proxy")


@pytest.fixture(scope="module")
def backend(certificates: tuple[Certificate, Certificate]) -> Iterator[Backend]:
    server = Backend(certificates[0])
    server.start()
    yield server
    server.stop()


def proxy(
    backend: Backend, certificates: tuple[Certificate, Certificate], rates: Rates, seed: int = 7
) -> FaultProxy:
    return FaultProxy(
        Upstream(backend.url, backend.certificate.ca_pem), certificates[1], seed, rates
    )


def connection(running: FaultProxy, timeout: float = 10) -> http.client.HTTPSConnection:
    """A client that trusts only the proxy's CA, as the operator's kubeconfig says."""
    context = ssl.create_default_context(cadata=running.certificate.ca_pem.decode())
    host, port = running.url.removeprefix("https://").split(":")
    return http.client.HTTPSConnection(host, int(port), context=context, timeout=timeout)


def call(
    running: FaultProxy, method: str = "GET", path: str = "/api/v1/things", body: str = ""
) -> tuple[int, dict[str, str], bytes]:
    conn = connection(running)
    headers = {"Authorization": "Bearer sa-token", "Accept-Encoding": "gzip"}
    conn.request(method, path, body=body or None, headers=headers)
    answer = conn.getresponse()
    data = answer.read()
    conn.close()
    return answer.status, dict(answer.getheaders()), data


def test_without_faults_it_forwards_method_path_body_credentials_and_answer(
    backend: Backend, certificates: tuple[Certificate, Certificate]
) -> None:
    with proxy(backend, certificates, NOTHING) as running:
        status, headers, data = call(running, "POST", "/apis/x/v1/things?dryRun=All", '{"a": 1}')
    seen = json.loads(data)
    assert status == 201
    assert headers["X-Upstream"] == "yes"
    assert seen["method"] == "POST"
    assert seen["path"] == "/apis/x/v1/things?dryRun=All"
    assert seen["body"] == '{"a": 1}'
    assert seen["authorization"] == "Bearer sa-token"  # the client's own credentials
    assert seen["accept-encoding"] == "identity"  # so that a watch can be cut between lines
    assert running.counts == Counter()
    assert running.requests == 1


def test_server_errors_are_answered_by_the_proxy_with_a_status_body(
    backend: Backend, certificates: tuple[Certificate, Certificate]
) -> None:
    before = len(backend.seen)
    rates = Rates(total=1, error=1, throttle=0, reset=0, slow=0)
    with proxy(backend, certificates, rates) as running:
        answers = [call(running) for _ in range(20)]
    assert {status for status, _, _ in answers} <= {500, 502, 503, 504}
    assert len({status for status, _, _ in answers}) > 1
    body = json.loads(answers[0][2])
    assert (body["kind"], body["code"]) == ("Status", answers[0][0])
    assert len(backend.seen) == before  # never forwarded
    assert running.counts == Counter({"5xx": 20})


def test_throttling_says_when_to_come_back(
    backend: Backend, certificates: tuple[Certificate, Certificate]
) -> None:
    rates = Rates(total=1, error=0, throttle=1, reset=0, slow=0, retry_after=3)
    with proxy(backend, certificates, rates) as running:
        status, headers, data = call(running)
    assert status == 429
    assert headers["Retry-After"] == "3"
    assert json.loads(data)["details"]["retryAfterSeconds"] == 3
    assert running.counts == Counter({"429": 1})


def test_resets_happen_before_and_after_the_api_server_acted(
    backend: Backend, certificates: tuple[Certificate, Certificate]
) -> None:
    before = len(backend.seen)
    rates = Rates(total=1, error=0, throttle=0, reset=1, slow=0)
    with proxy(backend, certificates, rates) as running:
        for n in range(16):
            with pytest.raises(OSError):  # noqa: PT011 (reset by peer, or TLS's EOF: both OSError)
                call(running, "POST", f"/api/v1/things?n={n}", "{}")
    assert running.counts["reset"] + running.counts["reset-late"] == 16
    assert running.counts["reset"] > 0
    assert running.counts["reset-late"] > 0
    # A late reset lost only the answer: the API server did the request.
    assert len(backend.seen) - before == running.counts["reset-late"]


def test_slow_answers_are_held_back_then_forwarded(
    backend: Backend, certificates: tuple[Certificate, Certificate]
) -> None:
    rates = Rates(total=1, error=0, throttle=0, reset=0, slow=1, slow_seconds=0.4)
    with proxy(backend, certificates, rates) as running:
        started = time.monotonic()
        statuses = [call(running)[0] for _ in range(6)]
        took = time.monotonic() - started
    assert statuses == [201] * 6
    assert 0.3 < took < 0.4 * 6 + 2  # six delays drawn from [0, 0.4) s, some of them sizeable
    assert running.counts == Counter({"slow": 6})


def watch(running: FaultProxy, events: int = 1000) -> tuple[int, list[dict[str, Any]], str]:
    """Open a watch with aiohttp, as kopf does; its status, the events and how it ended."""
    return asyncio.run(_watch(running, events))


async def _watch(running: FaultProxy, events: int) -> tuple[int, list[dict[str, Any]], str]:
    context = ssl.create_default_context(cadata=running.certificate.ca_pem.decode())
    url = f"{running.url}/api/v1/things?watch=true&events={events}"
    async with aiohttp.ClientSession() as session, session.get(url, ssl=context) as answer:
        if answer.status != 200:
            return answer.status, [await answer.json()], "refused"
        lines: list[dict[str, Any]] = []
        try:
            async for line in answer.content:
                lines.append(json.loads(line))
        except aiohttp.ClientPayloadError:
            return answer.status, lines, "reset"
        return answer.status, lines, "ended"


def test_watches_are_broken_in_each_of_the_four_ways(
    backend: Backend, certificates: tuple[Certificate, Certificate]
) -> None:
    rates = Rates(total=0, watch=1, watch_seconds=0.3)
    with proxy(backend, certificates, rates, seed=11) as running:
        outcomes = [watch(running) for _ in range(24)]
    assert set(running.counts) == set(WATCH_KINDS)
    assert sum(running.counts.values()) == 24
    gone = [o for o in outcomes if o[2] == "refused"]
    assert len(gone) == running.counts["watch-410-http"]
    assert all(status == 410 and body[0]["code"] == 410 for status, body, _ in gone)
    streamed = [lines for _, lines, end in outcomes if end != "refused"]
    expired = [lines for lines in streamed if lines and lines[-1]["type"] == "ERROR"]
    assert len(expired) == running.counts["watch-410"]
    assert all(lines[-1]["object"]["code"] == 410 for lines in expired)
    assert sum(end == "reset" for _, _, end in outcomes) == running.counts["watch-abort"]
    # Every stream broke before the backend's own end (1000 events, 20 s).
    assert all(len(lines) < 1000 for _, lines, _ in outcomes)


def test_a_watch_that_ends_before_its_break_is_passed_through_whole(
    backend: Backend, certificates: tuple[Certificate, Certificate]
) -> None:
    rates = Rates(total=0, watch=1, watch_seconds=60)
    with proxy(backend, certificates, rates, seed=3) as running:
        outcomes = [watch(running, events=5) for _ in range(8)]
    streamed = [o for o in outcomes if o[2] != "refused"]
    assert streamed
    assert all(len(lines) == 5 and end == "ended" for _, lines, end in streamed)
    assert set(running.counts) <= {"watch-410-http"}


def test_an_unbroken_watch_ends_cleanly_at_the_end_of_its_life(
    backend: Backend, certificates: tuple[Certificate, Certificate]
) -> None:
    """As the API server ends a watch at its timeoutSeconds: more streams, more draws."""
    rates = Rates(total=0, watch=0, watch_life=0.3)
    with proxy(backend, certificates, rates, seed=3) as running:
        outcomes = [watch(running) for _ in range(3)]
    assert all(end == "ended" and 0 < len(lines) < 1000 for _, lines, end in outcomes)
    assert sum(running.counts.values()) == 0, "not a fault"


def test_the_same_seed_draws_the_same_faults_at_the_configured_rates() -> None:
    rates = Rates()

    def draws(seed: int) -> list[Fault]:
        dice = Dice(seed, rates)
        return [dice.draw(watch=n % 5 == 0) for n in range(20000)]

    first, again, other = draws(42), draws(42), draws(43)
    assert first == again
    assert first != other
    kinds = Counter(f.kind for f in first)
    assert 0.09 < sum(n for k, n in kinds.items() if k is not None) / 20000 < 0.11, kinds
    for kind in ("5xx", "429", "slow"):
        assert 0.02 < kinds[kind] / 20000 < 0.03, kinds
    assert 0.02 < (kinds["reset"] + kinds["reset-late"]) / 20000 < 0.03, kinds
    watches = [f for n, f in enumerate(first) if n % 5 == 0 and f.kind in {None, "slow"}]
    broken = sum(f.watch is not None for f in watches) / len(watches)
    assert 0.27 < broken < 0.33
    assert all(0 <= f.watch_after < rates.watch_seconds for f in first)


def test_the_total_is_split_by_the_weights() -> None:
    """``total`` is the share of all requests faulted, whatever the number of kinds."""
    rates = Rates(total=0.2, error=3, throttle=1, reset=0, slow=0)
    dice = Dice(5, rates)
    kinds = Counter(dice.draw(watch=False).kind for _ in range(20000))
    assert 0.14 < kinds["5xx"] / 20000 < 0.16, kinds
    assert 0.04 < kinds["429"] / 20000 < 0.06, kinds
    assert set(kinds) == {None, "5xx", "429"}
    assert [rates.kind_at(x) for x in (0.0, 0.74, 0.75, 0.999)] == ["5xx", "5xx", "429", "429"]
    assert "20% of requests faulted (5xx 15.0%, 429 5.0%, reset 0.0%, slow 0.0%)" in str(rates)


def test_rates_parse_from_text_and_refuse_nonsense() -> None:
    rates = Rates.parse("total=0.2, error=2, watch=0.5,retry_after=2")
    assert (rates.total, rates.error, rates.watch, rates.retry_after) == (0.2, 2.0, 0.5, 2)
    assert rates.slow == 1.0
    assert Rates.parse("") == Rates()
    with pytest.raises(ValueError, match="unknown fault rate 'errors'"):
        Rates.parse("errors=0.1")
    with pytest.raises(ValueError, match=r"total=1.5 is not in \[0, 1\]"):
        Rates.parse("total=1.5")
    with pytest.raises(ValueError, match="every fault kind's weight is 0"):
        Rates.parse("error=0,throttle=0,reset=0,slow=0")
    with pytest.raises(ValueError, match="negative"):
        Rates.parse("slow=-1")


def test_the_proxied_kubeconfig_points_at_the_proxy_and_keeps_the_user(tmp_path: Path) -> None:
    original = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "other", "cluster": {"server": "https://10.0.0.9:6443"}},
            {
                "name": "local",
                "cluster": {
                    "server": "https://172.31.250.1:6443",
                    "certificate-authority-data": base64.b64encode(b"REAL CA").decode(),
                },
            },
        ],
        "users": [{"name": "op", "user": {"token": "sa-token"}}],
        "contexts": [{"name": "op", "context": {"cluster": "local", "user": "op"}}],
        "current-context": "op",
    }
    source = tmp_path / "kubeconfig"
    source.write_text(yaml.safe_dump(original))
    assert upstream_of(source) == Upstream("https://172.31.250.1:6443", b"REAL CA")
    out = proxied_kubeconfig(source, "https://127.0.0.1:4443", b"PROXY CA", tmp_path / "kc")
    assert upstream_of(out) == Upstream("https://127.0.0.1:4443", b"PROXY CA")
    config = yaml.safe_load(out.read_text())
    assert config["users"] == original["users"]
    assert config["clusters"][0] == original["clusters"][0]
    assert out.stat().st_mode & 0o777 == 0o600
