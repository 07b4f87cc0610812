"""API failures map to our own exceptions with readable messages; a 429 or 5xx carries the
delay the API server asked for (``Retry-After``), as kopf's own client reads it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import formatdate

import kopf
import pytest
from aiohttp import web

from continuum.errors import ContinuumError
from continuum.kube import (
    Kube,
    KubeError,
    KubeUnavailable,
    RequestForbidden,
    RequestThrottled,
    ResourceConflict,
    ResourceInvalid,
    ResourceNotFound,
)
from continuum.kube.errors import error_for, retry_after_seconds

NOW = 1_800_000_000  # a whole second: an HTTP date has no fraction


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (404, ResourceNotFound),
        (409, ResourceConflict),
        (403, RequestForbidden),
        (422, ResourceInvalid),
        (400, ResourceInvalid),
        (429, RequestThrottled),
        (500, KubeUnavailable),
        (502, KubeUnavailable),
        (503, KubeUnavailable),
        (504, KubeUnavailable),
    ],
)
def test_status_codes(status: int, cls: type[KubeError]) -> None:
    body = json.dumps({"kind": "Status", "reason": "Whatever", "message": "details here"})
    error = error_for(status, body.encode(), "create Job ml/x")
    assert type(error) is cls
    assert isinstance(error, ContinuumError)
    assert error.status == status
    assert str(error) == f"create Job ml/x: HTTP {status} Whatever: details here"


def test_other_statuses_and_odd_bodies() -> None:
    error = error_for(418, b"<html>oops</html>", "read Job ml/x")
    assert type(error) is KubeError
    assert str(error) == "read Job ml/x: HTTP 418"
    assert str(error_for(503, None, "w")) == "w: HTTP 503"
    assert type(error_for(503, b"<html>down</html>", "w")) is KubeUnavailable


def test_only_throttling_and_server_failures_are_retryable() -> None:
    retryable = {status for status in range(400, 600) if error_for(status, None, "w").retryable}
    assert retryable == {429, *range(500, 600)}


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (formatdate(NOW + 30, usegmt=True), 30.0),
        ("Fri, 15 Jan 2027 08:00:30 GMT", 30.0),  # NOW is 08:00:00 that day
        (formatdate(NOW - 30, usegmt=True), 0.0),  # a date already past: go now
    ],
)
def test_retry_after_in_seconds_or_as_an_http_date(header: str, seconds: float) -> None:
    assert retry_after_seconds(header, now=NOW) == seconds


def test_a_date_is_read_against_the_clock() -> None:
    wait = error_for(429, None, "w", formatdate(time.time() + 60, usegmt=True)).retry_after
    assert wait is not None
    assert 57 < wait <= 60


@pytest.mark.parametrize(
    "header",
    [None, "", "   ", "soon", "-5", "5s", "1e3", "inf", "NaN", "²", "Thu, 99 Foo 2027 GMT"],
)
def test_a_missing_or_unreadable_retry_after_asks_for_nothing(header: str | None) -> None:
    assert retry_after_seconds(header, now=NOW) is None
    assert error_for(429, None, "w", header).retry_after is None


def test_the_header_wins_over_the_status_body_which_is_the_fallback() -> None:
    body = json.dumps(
        {"kind": "Status", "reason": "TooManyRequests", "details": {"retryAfterSeconds": 4}}
    )
    assert error_for(429, body, "w", "9").retry_after == 9.0
    assert error_for(429, body, "w", None).retry_after == 4.0
    assert error_for(429, body, "w", "garbage").retry_after == 4.0
    assert error_for(503, body, "w").retry_after == 4.0


@pytest.mark.parametrize("asked", ["4", -1, True, None, float("nan"), [4]])
def test_an_odd_retry_after_seconds_in_the_body_asks_for_nothing(asked: object) -> None:
    body = json.dumps({"kind": "Status", "details": {"retryAfterSeconds": asked}})
    assert error_for(429, body, "w").retry_after is None


def test_an_error_that_is_not_retryable_carries_no_retry_after() -> None:
    assert error_for(409, None, "w", "5").retry_after is None
    assert error_for(404, None, "w", "5").retry_after is None


@asynccontextmanager
async def api_server(status: int, headers: dict[str, str]) -> AsyncIterator[tuple[Kube, list[str]]]:
    """A loopback API server answering every request with ``status``, and a Kube on it."""
    seen: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path}")
        body = {"kind": "Status", "reason": "TooManyRequests", "message": "slow down"}
        return web.json_response(body, status=status, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    kube = Kube(lambda: kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}", token="t"))
    kube._login()
    try:
        yield kube, seen
    finally:
        await kube.close()
        await runner.cleanup()


async def read_job_error(status: int, headers: dict[str, str]) -> tuple[KubeError, list[str]]:
    async with api_server(status, headers) as (kube, seen):
        with pytest.raises(KubeError) as caught:
            await kube.read_job("ml", "x")
    return caught.value, seen


def test_the_gateway_raises_a_throttled_request_with_the_servers_delay_once() -> None:
    error, seen = asyncio.run(read_job_error(429, {"Retry-After": "3"}))
    assert type(error) is RequestThrottled
    assert error.retry_after == 3.0
    assert str(error) == "read Job ml/x: HTTP 429 TooManyRequests: slow down"
    assert seen == ["GET /apis/batch/v1/namespaces/ml/jobs/x"]  # no retry in the gateway


def test_the_gateway_raises_a_server_failure_without_a_delay_when_none_is_asked() -> None:
    error, seen = asyncio.run(read_job_error(503, {}))
    assert type(error) is KubeUnavailable
    assert error.retry_after is None
    assert len(seen) == 1


async def unanswered_error(behaviour: str) -> KubeError:
    """The error of a read from a loopback server that resets, stalls or is not there."""

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        if behaviour == "stall":
            await asyncio.sleep(5)
        writer.transport.abort()  # RST, no HTTP answer

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    if behaviour == "refused":
        server.close()
        await server.wait_closed()
    kube = Kube(
        lambda: kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}", token="t"), timeout=0.3
    )
    kube._login()
    try:
        with pytest.raises(KubeError) as caught:
            await kube.read_job("ml", "x")
    finally:
        await kube.close()
        server.close()
    return caught.value


@pytest.mark.parametrize("behaviour", ["reset", "stall", "refused"])
def test_a_request_without_an_answer_is_unavailable_and_retryable(behaviour: str) -> None:
    error = asyncio.run(unanswered_error(behaviour))
    assert type(error) is KubeUnavailable
    assert error.retryable
    assert error.status is None
    assert "GET /apis/batch/v1/namespaces/ml/jobs/x: no answer from the API server" in str(error)
    if behaviour == "stall":
        assert "timed out" in str(error)
