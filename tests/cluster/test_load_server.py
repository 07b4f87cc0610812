"""The model server under sustained, open-loop load on the real cluster (issue 7, "Load").

A real TrainingJob trains version 1, a ModelDeployment serves it, and this process sends
`POST /v1/models/churn:predict` (three rows per request) straight to the server pod's address on
the local pod bridge, so no traffic leaves the machine. (Service IPs answer only from inside
pods: the host's traffic guard blackholes the service range for traffic the host sends itself.)

First a short closed-loop burst measures what the server answers per second here; the load then
runs open-loop at a fixed fraction of that (or `CONTINUUM_LOAD_RATE` requests/s) for
`CONTINUUM_LOAD_SECONDS` (default 600). Requests are sent on schedule whether or not earlier
ones have been answered, and each latency is counted from the moment the request was due, so a
server that falls behind shows in p99 instead of quietly slowing the client down.

The server's memory is the resident set of its process, read from /proc on this host (the
container runs in the host's PID namespace under the cluster's containerd), sampled during the
run. It asserts: zero failed requests (status, body shape, timeouts, connection errors), the
rate held, p99 within a bound, no inference-log rows dropped, the same server process throughout
(no restart), and RSS growth after warm-up within `RSS_GROWTH_BOUND`. The figures are printed to
the terminal even when pytest captures output.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from kubernetes import client

from tests.kit.kinds import (
    GROUP,
    MODELDEPLOYMENTS,
    ROWS,
    VERSION,
    Ctx,
    model_deployment,
    objs,
    stop_serving,
)

pytestmark = [pytest.mark.reliability, pytest.mark.load]

LOAD_SECONDS = int(os.environ.get("CONTINUUM_LOAD_SECONDS", "600"))
FIXED_RATE = os.environ.get("CONTINUUM_LOAD_RATE")  # requests/s; unset: calibrated
# A quarter of the closed-loop capacity leaves room for the other work on a shared 2-core CI
# machine (the client itself, the operator, MinIO, other tests), so the rate is one it can hold.
RATE_FRACTION = 0.25
RATE_FLOOR, RATE_CEILING = 10.0, 200.0
CALIBRATION_SECONDS = 10
CALIBRATION_WORKERS = 4
# The first minute or so grows the heap to its working size (allocator arenas, label children,
# first inference-log batches); "flat" is judged from the end of the warm-up on.
WARMUP_SECONDS = min(60.0, LOAD_SECONDS / 5)
RSS_SAMPLES = 10
# Flat memory: at most this much growth from the end of warm-up to the end of the run, about a
# tenth of an idle server's RSS; it allows the allocator's own noise and fails a leak of ~300
# bytes per request at 100 req/s over the default run. The growth per request is printed too.
RSS_GROWTH_BOUND = 16 * 2**20
# A rate the server cannot hold builds a backlog: latencies then grow through the run until they
# hit REQUEST_TIMEOUT. A held rate's p99 is tens of milliseconds, plus the stalls of a shared
# 2-core machine (a second or two when other runs load it to a load average of 10 or more).
P99_BOUND = 2.5  # seconds
SLOW = 0.25  # seconds: answers slower than this are listed by the second they were due
ACHIEVED_FRACTION = 0.95  # of the target rate
REQUEST_TIMEOUT = 10.0
MAX_CONNECTIONS = 64
CONTAINERD = "/run/continuum/containerd/containerd.sock"
SERVER_SELECTOR = "app.kubernetes.io/name=continuum-server"
BODY = json.dumps({"instances": ROWS}).encode()

Report = Callable[[str], None]


@dataclass
class Tally:
    """What a run of requests came to: latencies of good answers and a sample of failures."""

    origin: float = 0.0  # loop time the schedule starts at
    latencies: list[float] = field(default_factory=list)
    slow_seconds: dict[int, int] = field(default_factory=dict)  # second due -> slow answers
    failures: int = 0
    failure_samples: list[str] = field(default_factory=list)
    max_send_lag: float = 0.0

    def answer(self, due: float, latency: float) -> None:
        self.latencies.append(latency)
        if latency > SLOW:
            second = int(due - self.origin)
            self.slow_seconds[second] = self.slow_seconds.get(second, 0) + 1

    def fail(self, why: str) -> None:
        self.failures += 1
        if len(self.failure_samples) < 10:
            self.failure_samples.append(why)

    @property
    def answered(self) -> int:
        return len(self.latencies)


@dataclass(frozen=True)
class RssSample:
    seconds: float  # since the load started
    rss: int  # bytes
    answered: int  # requests answered so far


@dataclass
class ServerProcess:
    """The model server's main process as this host sees it."""

    pod: str
    pid: int

    def rss(self) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        assert match, f"no VmRSS in /proc/{self.pid}/status"
        return int(match.group(1)) * 1024


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (share in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


async def post_once(session: aiohttp.ClientSession, url: str, due: float, tally: Tally) -> None:
    """One predict request; a good answer is 200 with one prediction per row sent."""
    loop = asyncio.get_running_loop()
    try:
        async with session.post(url, data=BODY, headers={"Content-Type": "application/json"}) as r:
            text = await r.text()
    except (TimeoutError, aiohttp.ClientError) as err:
        tally.fail(f"{type(err).__name__}: {err}")
        return
    latency = loop.time() - due
    if r.status != 200:
        tally.fail(f"HTTP {r.status}: {text[:200]}")
    elif len(json.loads(text).get("predictions", [])) != len(ROWS):
        tally.fail(f"wrong answer: {text[:200]}")
    else:
        tally.answer(due, latency)


def new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
    )


async def closed_loop(url: str, seconds: float, workers: int) -> tuple[Tally, float]:
    """``workers`` clients each sending the next request when the last is answered."""
    tally = Tally()
    loop = asyncio.get_running_loop()
    async with new_session() as session:
        start = loop.time()

        async def worker() -> None:
            while loop.time() - start < seconds:
                await post_once(session, url, loop.time(), tally)

        await asyncio.gather(*(worker() for _ in range(workers)))
        return tally, loop.time() - start


async def open_loop(
    url: str, rate: float, seconds: float, server: ServerProcess, report: Report
) -> tuple[Tally, float, list[RssSample]]:
    """Send at ``rate`` per second on a fixed schedule for ``seconds``, sampling RSS meanwhile."""
    tally, samples = Tally(), []
    loop = asyncio.get_running_loop()
    async with new_session() as session:
        start = tally.origin = loop.time()
        sampler = asyncio.create_task(sample_rss(server, start, seconds, tally, samples, report))
        pending: set[asyncio.Task[None]] = set()
        for i in range(int(rate * seconds)):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - loop.time()))
            tally.max_send_lag = max(tally.max_send_lag, loop.time() - due)
            task = asyncio.create_task(post_once(session, url, due, tally))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
        elapsed = loop.time() - start
        await sampler
    samples.append(RssSample(elapsed, server.rss(), tally.answered))
    return tally, elapsed, samples


async def sample_rss(
    server: ServerProcess,
    start: float,
    seconds: float,
    tally: Tally,
    out: list[RssSample],
    report: Report,
) -> None:
    """RSS at the start, at the end of warm-up and at even steps up to the end of the load."""
    loop = asyncio.get_running_loop()
    steady = seconds - WARMUP_SECONDS
    moments = [0.0, *(WARMUP_SECONDS + steady * k / (RSS_SAMPLES - 1) for k in range(RSS_SAMPLES))]
    for moment in moments[:-1]:  # the last one is taken after every answer is in
        await asyncio.sleep(max(0.0, start + moment - loop.time()))
        recent = tally.latencies[out[-1].answered if out else 0 :] or [float("nan")]
        sample = RssSample(loop.time() - start, server.rss(), tally.answered)
        out.append(sample)
        report(
            f"load t={sample.seconds:5.0f}s answered={sample.answered:6d} "
            f"failed={tally.failures} server RSS={sample.rss / 2**20:.1f} MiB; since the last "
            f"line p50 {percentile(recent, 0.5) * 1000:.0f} ms p99 "
            f"{percentile(recent, 0.99) * 1000:.0f} ms"
        )


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> Report:
    """Print past pytest's capture, so the figures show in every run (`make test` included)."""

    def show(line: str) -> None:
        with capsys.disabled():
            print(line, flush=True)

    return show


def server_process(api: client.ApiClient, namespace: str) -> ServerProcess:
    """The single ready server pod and the host PID of its container's main process."""
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=SERVER_SELECTOR)
    running = [p for p in pods.items if p.status.phase == "Running"]
    assert len(running) == 1, [p.metadata.name for p in pods.items]
    pod = running[0]
    container_id = pod.status.container_statuses[0].container_id.removeprefix("containerd://")
    tasks = subprocess.run(
        ["ctr", "--address", CONTAINERD, "-n", "k8s.io", "tasks", "ls"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    pid = next(int(row.split()[1]) for row in tasks.splitlines() if row.startswith(container_id))
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"serve" in cmdline, cmdline
    return ServerProcess(pod.metadata.name, pid)


def restarts(api: client.ApiClient, namespace: str, pod: str) -> int:
    status = client.CoreV1Api(api).read_namespaced_pod(pod, namespace).status
    return int(status.container_statuses[0].restart_count)


def pod_url(api: client.ApiClient, namespace: str, server: ServerProcess) -> str:
    """The predict URL on the server pod's own address and container port."""
    pod = client.CoreV1Api(api).read_namespaced_pod(server.pod, namespace)
    port = pod.spec.containers[0].ports[0].container_port
    return f"http://{pod.status.pod_ip}:{port}/v1/models/churn:predict"


def scrape(url: str) -> str:
    """The server's /metrics text."""
    metrics = url.split("/v1/", maxsplit=1)[0] + "/metrics"
    with urllib.request.urlopen(metrics, timeout=30) as answer:
        return str(answer.read().decode())


def metric_sum(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def choose_rate(url: str) -> tuple[float, float | None]:
    """The open-loop rate, and the closed-loop capacity it came from (None when fixed)."""
    if FIXED_RATE:
        return float(FIXED_RATE), None
    tally, elapsed = asyncio.run(closed_loop(url, CALIBRATION_SECONDS, CALIBRATION_WORKERS))
    assert tally.failures == 0, tally.failure_samples
    capacity = tally.answered / elapsed
    return min(RATE_CEILING, max(RATE_FLOOR, round(capacity * RATE_FRACTION))), capacity


@pytest.fixture
def served(ctx: Ctx) -> Iterator[Ctx]:
    """Version 1 of `churn`, trained by a real TrainingJob and served by a ModelDeployment."""
    api, namespace, s3 = ctx.api, ctx.namespace, ctx.s3
    assert ctx.train("churn-1") == 1
    # Realistic inference-log batching (the API defaults' row count, a short interval so the
    # writer works throughout the run): every answered row is logged to MinIO.
    log = {"enabled": True, "sampleRate": 1.0, "flushRows": 1000, "flushSeconds": 10}
    # Half a core: with the 100m of the other tests, the server's CPU weight would be a tenth of
    # a host process's, and a shared machine would starve it rather than measure it.
    resources = {"requests": {"cpu": "500m", "memory": "256Mi"}}
    body = model_deployment(s3, ctx.bucket, ctx.secret, inferenceLog=log, resources=resources)
    objs(api).create_namespaced_custom_object(GROUP, VERSION, namespace, MODELDEPLOYMENTS, body)
    ctx.serving(1)
    try:
        yield ctx
    finally:
        stop_serving(ctx)


@pytest.mark.timeout(LOAD_SECONDS + 300)
def test_server_holds_a_steady_rate_without_errors_or_growth(served: Ctx, report: Report) -> None:
    server = server_process(served.api, served.namespace)
    url = pod_url(served.api, served.namespace, server)
    idle_rss = server.rss()
    rate, capacity = choose_rate(url)
    report(
        f"load: closed-loop capacity {capacity or 0:.0f} req/s ({CALIBRATION_WORKERS} clients), "
        f"open-loop rate {rate:.0f} req/s for {LOAD_SECONDS}s via {url}; "
        f"idle server RSS {idle_rss / 2**20:.1f} MiB"
    )
    tally, elapsed, samples = asyncio.run(open_loop(url, rate, LOAD_SECONDS, server, report))
    metrics = scrape(url)
    summarise(report, rate, tally, elapsed, samples, metrics)
    check(served, server, rate, tally, elapsed, samples, metrics)


def summarise(
    report: Report,
    rate: float,
    tally: Tally,
    elapsed: float,
    samples: list[RssSample],
    metrics: str,
) -> None:
    warm, end = samples[1], samples[-1]
    latencies = tally.latencies or [float("nan")]
    report(
        f"load result: target {rate:.0f} req/s, achieved {tally.answered / elapsed:.1f} req/s "
        f"({tally.answered} answered, {tally.failures} failed, {elapsed:.0f}s); "
        f"latency p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms; "
        f"client send lag max {tally.max_send_lag * 1000:.1f} ms"
    )
    worst = sorted(tally.slow_seconds.items(), key=lambda item: -item[1])[:8]
    report(
        f"load slow answers (> {SLOW * 1000:.0f} ms): {sum(tally.slow_seconds.values())} in "
        f"{len(tally.slow_seconds)} distinct seconds; worst (second due: count) "
        + ", ".join(f"{second}s: {count}" for second, count in sorted(worst))
    )
    report(
        f"load RSS: start {samples[0].rss / 2**20:.1f} MiB, after warm-up {warm.rss / 2**20:.1f} "
        f"MiB, end {end.rss / 2**20:.1f} MiB (growth after warm-up "
        f"{(end.rss - warm.rss) / 2**20:+.1f} MiB); inference-log rows written "
        f"{metric_sum(metrics, 'continuum_server_inference_log_rows_total'):.0f}, dropped "
        f"{metric_sum(metrics, 'continuum_server_inference_log_dropped_rows_total'):.0f}"
    )


def check(
    ctx: Ctx,
    server: ServerProcess,
    rate: float,
    tally: Tally,
    elapsed: float,
    samples: list[RssSample],
    metrics: str,
) -> None:
    assert tally.failures == 0, tally.failure_samples
    assert tally.answered == int(rate * LOAD_SECONDS)
    assert tally.answered / elapsed >= ACHIEVED_FRACTION * rate, "the rate was not held"
    p99 = percentile(tally.latencies, 0.99)
    assert p99 <= P99_BOUND, f"p99 {p99:.2f}s > {P99_BOUND}s: the rate was not held"
    # The server saw the same: no answer other than 200 was counted on its side.
    answered = metric_sum(metrics, "continuum_server_requests_total")
    assert answered == metric_sum(metrics, "continuum_server_requests_total", status="200")
    assert answered >= tally.answered
    assert metric_sum(metrics, "continuum_server_inference_log_dropped_rows_total") == 0
    assert restarts(ctx.api, ctx.namespace, server.pod) == 0
    assert server_process(ctx.api, ctx.namespace).pid == server.pid
    warm, end = samples[1], samples[-1]
    growth = end.rss - warm.rss
    assert growth <= RSS_GROWTH_BOUND, [(round(s.seconds), s.rss) for s in samples]
