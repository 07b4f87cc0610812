"""Lanes: child creates go at once; reads and status writes wait for them, a few at a time."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager

from continuum.kube.lanes import Lanes


async def record(
    lane: AbstractAsyncContextManager[None], name: str, log: list[str], hold: float = 0.0
) -> None:
    async with lane:
        log.append(f"{name} starts")
        await asyncio.sleep(hold)
        log.append(f"{name} ends")


def test_background_requests_wait_while_an_urgent_one_is_in_flight() -> None:
    async def scenario() -> list[str]:
        lanes, log = Lanes(background=2), []
        urgent = asyncio.create_task(record(lanes.urgent(), "create", log, hold=0.05))
        await asyncio.sleep(0)
        await asyncio.gather(urgent, record(lanes.background(), "status", log))
        return log

    assert asyncio.run(scenario()) == [
        "create starts",
        "create ends",
        "status starts",
        "status ends",
    ]


def test_at_most_the_background_limit_runs_at_once() -> None:
    async def scenario() -> int:
        lanes, running, most = Lanes(background=2), 0, 0

        async def one() -> None:
            nonlocal running, most
            async with lanes.background():
                running += 1
                most = max(most, running)
                await asyncio.sleep(0.01)
                running -= 1

        await asyncio.gather(*(one() for _ in range(6)))
        return most

    assert asyncio.run(scenario()) == 2


def test_urgent_requests_never_wait() -> None:
    async def scenario() -> list[str]:
        lanes, log = Lanes(background=1), []
        slow = asyncio.create_task(record(lanes.background(), "read", log, hold=0.05))
        await asyncio.sleep(0.01)
        await record(lanes.urgent(), "create", log)
        await slow
        return log

    assert asyncio.run(scenario()) == ["read starts", "create starts", "create ends", "read ends"]
