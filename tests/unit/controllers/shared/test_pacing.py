"""Status writes give way to Job creations in flight, for a bounded time."""

from __future__ import annotations

import asyncio

from continuum.controllers.shared.pacing import CreationsFirst


def test_a_status_write_goes_at_once_when_nothing_is_being_created():
    async def scenario():
        pacing = CreationsFirst(patience=3600)
        await asyncio.wait_for(pacing.status_turn(), 1)

    asyncio.run(scenario())


def test_a_status_write_waits_for_every_creation_in_flight():
    order: list[str] = []

    async def create(pacing: CreationsFirst, name: str, gate: asyncio.Event) -> None:
        with pacing.creating():
            await gate.wait()
            order.append(name)

    async def write_status(pacing: CreationsFirst) -> None:
        await pacing.status_turn()
        order.append("status")

    async def scenario():
        pacing = CreationsFirst(patience=3600)
        first, second = asyncio.Event(), asyncio.Event()
        tasks = [
            asyncio.create_task(create(pacing, "job-1", first)),
            asyncio.create_task(create(pacing, "job-2", second)),
        ]
        await asyncio.sleep(0)
        status = asyncio.create_task(write_status(pacing))
        first.set()
        await asyncio.sleep(0.01)
        assert order == ["job-1"]  # one creation is still in flight
        second.set()
        await asyncio.gather(*tasks, status)

    asyncio.run(scenario())
    assert order == ["job-1", "job-2", "status"]


def test_a_creation_that_never_ends_holds_status_back_only_for_the_patience():
    async def scenario():
        pacing = CreationsFirst(patience=0.05)
        with pacing.creating():
            started = asyncio.get_running_loop().time()
            await asyncio.wait_for(pacing.status_turn(), 1)
            return asyncio.get_running_loop().time() - started

    assert 0.04 <= asyncio.run(scenario()) < 1


def test_a_failed_creation_is_no_longer_in_flight():
    pacing = CreationsFirst()
    try:
        with pacing.creating():
            raise RuntimeError("the API server refused")
    except RuntimeError:
        pass
    assert pacing.in_flight == 0
