"""How the server reacts when loading its model fails: refuse at once, or retry."""

from __future__ import annotations

import asyncio
import gc

import pytest
from tests.kit.memory_store import MemoryObjectStore
from tests.unit.server.conftest import settings_for

from continuum.errors import (
    AccessDenied,
    CertificateNotTrusted,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
)
from continuum.server.state import ModelServer


def failing_loader(error: StorageError, calls: list[int]):
    def load(store, model, version):
        calls.append(version)
        raise error

    return load


@pytest.mark.parametrize("error", [ObjectNotFound, AccessDenied, CertificateNotTrusted])
def test_errors_no_retry_can_fix_refuse_at_once_and_say_why(error):
    calls: list[int] = []

    async def scenario():
        loader = failing_loader(error("the reason it gives"), calls)
        server = ModelServer(settings_for("churn"), MemoryObjectStore("data"), loader=loader)
        await server.start()
        await asyncio.wait_for(server.load_finished.wait(), 5)
        await server.stop()
        return server.not_ready_reason

    reason = asyncio.run(scenario())
    assert calls == [1]
    assert reason == "refusing to serve model churn/1: the reason it gives"


def test_an_unavailable_store_is_retried():
    calls: list[int] = []

    async def scenario():
        loader = failing_loader(StorageUnavailable("S3 refused the connection"), calls)
        server = ModelServer(settings_for("churn"), MemoryObjectStore("data"), loader=loader)
        await server.start()
        await asyncio.sleep(1.5)  # the first retry comes after 1 s
        finished = server.load_finished.is_set()
        await server.stop()
        return finished, server.not_ready_reason

    finished, reason = asyncio.run(scenario())
    assert len(calls) == 2
    assert not finished
    assert reason.startswith("loading")


def test_a_served_model_and_everything_alive_then_are_out_of_the_collectors_sight(client):
    """The heap is frozen once the model is loaded (state.freeze_heap): a full collection
    no longer walks the pipeline and the libraries, only what requests made since."""
    model = client.app.state.server.model
    assert model is not None
    assert gc.get_freeze_count() > 10_000
    assert not any(obj is model.pipeline for obj in gc.get_objects())  # frozen: not listed
    made_later = [{"a": 1}]
    assert any(obj is made_later for obj in gc.get_objects())
