"""uvicorn's HTTP protocol with each response written to the socket once, not twice.

uvicorn writes a response in two ``transport.write`` calls, the status line and headers on
``http.response.start``, then the body on ``http.response.body``; the event loop sends each
at once, so every answer costs two ``send`` system calls and reaches the client as two TCP
segments. On loopback that second send is a good part of a small request's cost: a bare
ASGI app answering a 150-byte JSON body under ``wrk -c16`` (one pinned CPU, 2026-12-04, this
2-CPU machine, alternating runs) did 10,100-12,700 req/s with the two writes and 13,400-16,900
with them joined.

:class:`HttpProtocol` is uvicorn's own ``HttpToolsProtocol`` whose transport is wrapped in a
:class:`CoalescingTransport`: a write that starts a response (``HTTP/1.1 ...``) is held, and
sent together with the next write on the connection (the body, written by the same request
right after); if no write follows within the current turn of the event loop (a response
without body, a ``100 Continue``, a streaming response's first chunk not ready yet), it is
sent on the loop's next turn. Bytes leave in the order they were written; closing flushes
first. Nothing else of uvicorn's changes. The server passes it as ``uvicorn.run(http=...)``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

RESPONSE_START = b"HTTP/1.1 "


class CoalescingTransport(asyncio.Transport):
    """A transport that joins a response's head with the write that follows it."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is None:
            if bytes(data[: len(RESPONSE_START)]) == RESPONSE_START:
                self._held = bytes(data)
                self._loop.call_soon(self.flush)
                return
            self._transport.write(data)
            return
        joined, self._held = self._held + bytes(data), None
        self._transport.write(joined)

    def flush(self) -> None:
        """Send a held response head now (no write followed it this turn)."""
        if self._held is not None:
            held, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(held)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)
