"""Two lanes for the requests of one process to the API server.

Urgent requests create or update children (a Job, a Deployment: what makes an object
progress) and go at once. Background requests (reads, status writes) wait while any urgent
request is in flight, and only a few run at once. On a burst of new objects this sends every
Job creation ahead of the status writes of objects that arrived earlier, on an API server that
is the bottleneck (it shares its CPUs with etcd, the controllers and the operator); the
statuses catch up as soon as the burst is over. Outside bursts the lanes change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class Lanes:
    def __init__(self, background: int) -> None:
        self._background = asyncio.Semaphore(background)
        self._urgent_in_flight = 0
        self._no_urgent = asyncio.Event()
        self._no_urgent.set()

    @contextlib.asynccontextmanager
    async def urgent(self) -> AsyncIterator[None]:
        self._urgent_in_flight += 1
        self._no_urgent.clear()
        try:
            yield
        finally:
            self._urgent_in_flight -= 1
            if not self._urgent_in_flight:
                self._no_urgent.set()

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        async with self._background:
            await self._no_urgent.wait()
            yield
