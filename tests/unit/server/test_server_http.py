"""The server's HTTP protocol: each response in one write, and HTTP/1.1 as uvicorn speaks it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from continuum.server.http import CoalescingTransport, HttpProtocol


class Recorder(asyncio.Transport):
    """A transport that keeps what is written to it (the wrapper's unit under test)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_a_response_head_and_its_body_leave_in_one_write() -> None:
    loop = asyncio.new_event_loop()
    try:
        raw = Recorder()
        transport = CoalescingTransport(raw, loop)
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        assert raw.writes == []
        transport.write(b"{}")
        assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
        loop.run_until_complete(asyncio.sleep(0))  # the scheduled flush finds nothing held
        assert len(raw.writes) == 1
    finally:
        loop.close()


def test_a_head_nothing_follows_is_sent_on_the_next_turn_and_before_closing() -> None:
    loop = asyncio.new_event_loop()
    try:
        raw = Recorder()
        transport = CoalescingTransport(raw, loop)
        transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        loop.run_until_complete(asyncio.sleep(0))
        assert raw.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        transport.write(b"")  # other writes never wait
        transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        transport.close()
        assert raw.writes[1:] == [b"HTTP/1.1 204 No Content\r\n\r\n",
                                  b"HTTP/1.1 400 Bad Request\r\n\r\n"]  # fmt: skip
        assert raw.closed
    finally:
        loop.close()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """A JSON answer echoing the body's length; a streamed one in two pieces with a pause."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one,", "more_body": True})
        await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b"two"})
        return
    answer = b'{"length":%d}' % len(body)
    headers = [(b"content-length", b"%d" % len(answer)), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=free, http=HttpProtocol,
                            access_log=False, log_config=None, lifespan="off")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield free
    server.should_exit = True
    thread.join(10)


def exchange(port: int, data: bytes, *, until: bytes, expect_continue: bool = False) -> bytes:
    """Send ``data`` on a fresh connection, read until ``until`` has been seen as many times
    as the requests sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        if expect_continue:
            head, _, body = data.partition(b"\r\n\r\n")
            connection.sendall(head + b"\r\n\r\n")
            assert connection.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
            data = body
        connection.sendall(data)
        received = b""
        wanted = max(1, data.count(b"HTTP/1.1\r\n"))
        while received.count(until) < wanted:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def post(path: str, body: bytes, *extra: bytes) -> bytes:
    lines = [b"POST %s HTTP/1.1" % path.encode(), b"host: test",
             b"content-length: %d" % len(body), *extra]  # fmt: skip
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def test_requests_get_their_answers_over_a_real_socket(port: int) -> None:
    answer = exchange(port, post("/", b"12345"), until=b'{"length":5}')
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b'\r\n\r\n{"length":5}')


def test_pipelined_requests_are_answered_in_order(port: int) -> None:
    answers = exchange(port, post("/", b"1") + post("/", b"22") + post("/", b"333"), until=b"}")
    assert answers.count(b"HTTP/1.1 200 OK") == 3
    bodies = [part.split(b"\r\n\r\n")[1] for part in answers.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b'{"length":1}', b'{"length":2}', b'{"length":3}']


def test_a_head_request_and_a_streamed_answer_arrive_whole(port: int) -> None:
    head = exchange(port, b"HEAD / HTTP/1.1\r\nhost: test\r\n\r\n", until=b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert head.endswith(b"\r\n\r\n")  # headers only
    streamed = exchange(port, b"GET /stream HTTP/1.1\r\nhost: test\r\n\r\n", until=b"0\r\n\r\n")
    assert b"transfer-encoding: chunked" in streamed
    assert streamed.endswith(b"4\r\none,\r\n3\r\ntwo\r\n0\r\n\r\n")


def test_a_client_waiting_for_100_continue_gets_it_then_its_answer(port: int) -> None:
    request = post("/", b"abc", b"expect: 100-continue")
    answer = exchange(port, request, until=b'{"length":3}', expect_continue=True)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_malformed_request_gets_uvicorns_400(port: int) -> None:
    answer = exchange(port, b"NOT HTTP\r\n\r\n", until=b"Invalid HTTP request")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
