"""Events posted from our own tasks (schedule, resync, retries) reach kopf's real Event queue."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Iterator

import kopf
import pytest
from kopf._core.engines import posting

from continuum.controllers.shared import kopf_events
from continuum.controllers.shared.objects import Event, post

BODY = {
    "apiVersion": "continuum.dev/v1alpha1",
    "kind": "DriftMonitor",
    "metadata": {"namespace": "team", "name": "drift", "uid": "u-1"},
}
DRIFT = Event("Warning", "DriftDetected", "2 of 3 features drifted")


@pytest.fixture(autouse=True)
def forget() -> Iterator[None]:
    kopf_events._SEEN.loop = kopf_events._SEEN.queue = None
    yield
    kopf_events._SEEN.loop = kopf_events._SEEN.queue = None


def in_our_task(coro: object) -> asyncio.Task[None]:
    """A task of ours, like the DriftMonitor schedule: it inherits what kopf set for the whole
    operator (its settings) but not the Event queue kopf binds per object task."""
    context = contextvars.Context()
    context.run(posting.settings_var.set, kopf.OperatorSettings())
    return asyncio.get_running_loop().create_task(coro, context=context)  # type: ignore[arg-type]


async def kopf_object_task(queue: asyncio.Queue[posting.K8sEvent]) -> None:
    """What kopf does in the task processing one object's events, then a reconcile there."""
    posting.event_queue_loop_var.set(asyncio.get_running_loop())
    posting.event_queue_var.set(queue)
    kopf_events.remember()


async def posting_from_our_task() -> None:
    post(BODY, [DRIFT])


def test_a_task_of_ours_posts_to_the_queue_kopf_bound_elsewhere() -> None:
    async def scenario() -> posting.K8sEvent:
        queue: asyncio.Queue[posting.K8sEvent] = asyncio.Queue()
        await in_our_task(kopf_object_task(queue))
        await in_our_task(posting_from_our_task())
        assert queue.qsize() == 1
        return queue.get_nowait()

    event = asyncio.run(scenario())
    assert (event.type, event.reason, event.message) == ("Warning", "DriftDetected", DRIFT.message)
    assert event.ref["name"] == "drift"


def test_without_kopf_our_task_raised_lookup_error() -> None:
    """The failure the module exists for: kopf.warn from an unbound task (the CI case)."""

    async def scenario() -> None:
        async def warn() -> None:
            posting.warn(BODY, reason="DriftDetected", message="x")  # type: ignore[arg-type]

        await in_our_task(warn())

    with pytest.raises(LookupError):
        asyncio.run(scenario())


def test_before_kopf_ran_anything_events_are_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        await in_our_task(posting_from_our_task())

    with caplog.at_level(logging.WARNING):
        asyncio.run(scenario())
    assert "Event not posted" in caplog.text
    assert "team/drift: DriftDetected" in caplog.text


def test_a_binding_from_another_loop_is_not_used() -> None:
    async def remember_in_a_loop() -> None:
        await in_our_task(kopf_object_task(asyncio.Queue()))

    asyncio.run(remember_in_a_loop())

    async def bind_in_another() -> bool:
        return kopf_events.bind()

    assert asyncio.run(bind_in_another()) is False
