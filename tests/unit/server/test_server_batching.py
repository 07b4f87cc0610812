"""Adaptive batching, driven deterministically by awaiting (no sleeps on the happy path)."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from continuum.server.batching import Batcher, combine, split
from continuum.server.errors import InputInvalid, PredictionFailed, ServerUnavailable
from continuum.server.inputs import FeatureRows
from continuum.server.model import Prediction


def rows(*values: float) -> FeatureRows:
    return FeatureRows({"x": np.array(values, dtype=float)}, len(values))


def doubling(columns: dict[str, np.ndarray]) -> Prediction:
    if np.any(columns["x"] < 0):
        raise ValueError("negative x")
    return Prediction(labels=columns["x"] * 2, proba=None)


def test_combine_then_split_round_trips():
    parts = [rows(1, 2), rows(3), rows(4, 5, 6)]
    combined = combine(parts)
    assert combined["x"].tolist() == [1, 2, 3, 4, 5, 6]
    pieces = split(doubling(combined), [2, 1, 3])
    assert [p.labels.tolist() for p in pieces] == [[2, 4], [6], [8, 10, 12]]


def test_a_lone_request_does_not_wait_for_the_latency_budget():
    async def scenario():
        batcher = Batcher(doubling, max_batch_size=32, max_latency=3600)
        waiting = asyncio.create_task(batcher.predict(rows(1)))
        await asyncio.sleep(0)
        batch = await asyncio.wait_for(batcher.collect(), 1)  # would hang if it waited
        await batcher.execute(batch)
        return await waiting

    assert asyncio.run(scenario()).labels.tolist() == [2]


def test_queued_requests_share_one_predict_call_up_to_max_rows():
    calls: list[int] = []

    def counting(columns):
        calls.append(len(columns["x"]))
        return doubling(columns)

    async def scenario():
        batcher = Batcher(counting, max_batch_size=4, max_latency=0)
        tasks = [asyncio.create_task(batcher.predict(rows(i, i))) for i in range(3)]
        await asyncio.sleep(0)
        await batcher.execute(await batcher.collect())  # two requests: 4 rows
        await batcher.execute(await batcher.collect())  # the third
        return [r.labels.tolist() for r in await asyncio.gather(*tasks)]

    assert asyncio.run(scenario()) == [[0, 0], [2, 2], [4, 4]]
    assert calls == [4, 2]


def test_an_announced_request_is_waited_for_within_the_latency_budget():
    async def scenario():
        batcher = Batcher(doubling, max_batch_size=32, max_latency=3600)
        first = asyncio.create_task(batcher.predict(rows(1)))

        async def late_arrival():
            with batcher.announce():
                await asyncio.sleep(0)  # "parsing"
            return await batcher.predict(rows(2))

        second = asyncio.create_task(late_arrival())
        await asyncio.sleep(0)
        batch = await asyncio.wait_for(batcher.collect(), 1)
        await batcher.execute(batch)
        return len(batch), (await first).labels.tolist(), (await second).labels.tolist()

    assert asyncio.run(scenario()) == (2, [2], [4])


def test_waiting_for_an_announced_request_stops_at_the_deadline():
    now = [0.0]

    async def scenario():
        batcher = Batcher(doubling, max_batch_size=32, max_latency=0.01, clock=lambda: now[0])
        task = asyncio.create_task(batcher.predict(rows(1)))
        with batcher.announce():  # announced, never sent
            await asyncio.sleep(0)
            now[0] = 1.0  # the clock jumps past the deadline
            batch = await asyncio.wait_for(batcher.collect(), 1)
        await batcher.execute(batch)
        return len(batch), (await task).labels.tolist()

    assert asyncio.run(scenario()) == (1, [2])


def test_one_bad_request_does_not_fail_the_others_in_its_batch():
    async def scenario():
        batcher = Batcher(doubling, max_batch_size=32, max_latency=0)
        good = asyncio.create_task(batcher.predict(rows(1)))
        bad = asyncio.create_task(batcher.predict(rows(-1)))
        await asyncio.sleep(0)
        await batcher.execute(await batcher.collect())
        return await asyncio.gather(good, bad, return_exceptions=True)

    good, bad = asyncio.run(scenario())
    assert good.labels.tolist() == [2]
    assert isinstance(bad, InputInvalid)
    assert "negative x" in bad.message


def test_run_serves_until_cancelled_and_fails_waiting_requests():
    async def scenario():
        batcher = Batcher(doubling, max_batch_size=8, max_latency=0.001)
        worker = asyncio.create_task(batcher.run())
        result = await asyncio.gather(*(batcher.predict(rows(i)) for i in range(20)))
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker
        return [r.labels.tolist() for r in result]

    assert asyncio.run(scenario()) == [[2 * i] for i in range(20)]


def test_the_worker_holds_a_request_from_taking_it_until_it_is_answered():
    seen: list[int] = []

    async def scenario():
        batcher = Batcher(doubling, max_batch_size=2, max_latency=3600)

        def observing(columns):
            seen.append(len(batcher._in_hand))
            return doubling(columns)

        batcher._predict = observing
        waiting = asyncio.create_task(batcher.predict(rows(1)))
        await asyncio.sleep(0)
        await batcher.run_once()
        await waiting
        seen.append(len(batcher._in_hand))

    asyncio.run(scenario())
    assert seen == [1, 0]


def test_a_fault_past_predict_fails_its_batch_and_the_worker_goes_on():
    answers = iter([np.zeros((3, 3)), None])  # first: not a Prediction, so splitting it fails

    def broken_then_fine(columns):
        bad = next(answers)
        return bad if bad is not None else doubling(columns)

    async def scenario():
        batcher = Batcher(broken_then_fine, max_batch_size=4, max_latency=0)
        worker = asyncio.create_task(batcher.run())
        first = asyncio.gather(batcher.predict(rows(1)), batcher.predict(rows(2)))
        with pytest.raises(PredictionFailed, match="prediction failed"):
            await asyncio.wait_for(first, 1)
        second = await asyncio.wait_for(batcher.predict(rows(3)), 1)
        worker.cancel()
        return second.labels.tolist(), worker

    labels, _ = asyncio.run(scenario())
    assert labels == [6]


def test_shutdown_fails_a_batch_that_was_still_being_collected():
    async def scenario():
        batcher = Batcher(doubling, max_batch_size=4, max_latency=3600)
        worker = asyncio.create_task(batcher.run())
        with batcher.announce():  # another request on its way: the worker waits for it
            waiting = asyncio.create_task(batcher.predict(rows(1)))
            await asyncio.sleep(0.01)
            worker.cancel()
            with pytest.raises(ServerUnavailable, match="shutting down"):
                await asyncio.wait_for(waiting, 1)

    asyncio.run(scenario())


def test_requests_that_come_in_together_share_a_batch_even_when_predicting_is_cheap():
    sizes: list[int] = []

    async def request(batcher: Batcher, x: float) -> Prediction:
        with batcher.announce():
            pass  # the body was already buffered: reading it did not yield
        return await batcher.predict(rows(x))

    async def scenario():
        batcher = Batcher(doubling, max_batch_size=32, max_latency=0.005, on_batch=sizes.append)
        batcher.last_cpu = 0.0  # cheap: small batches run inline on the loop
        worker = asyncio.create_task(batcher.run())
        answers = await asyncio.gather(*(request(batcher, i) for i in range(16)))
        worker.cancel()
        return [a.labels.tolist() for a in answers]

    assert asyncio.run(scenario()) == [[2 * i] for i in range(16)]
    assert sizes == [16]


def test_a_cheap_predict_runs_on_the_loop_and_a_costly_one_sends_the_next_to_a_thread():
    """Inline calls are timed by the wall clock, threaded ones by the thread's CPU: a call that
    took 50 ms on the loop (over the 10 ms allowed) sends the next batch to a thread, where
    sleeping costs no CPU, so the one after is inline again."""
    threads: list[bool] = []
    naps = iter([0.0, 0.0, 0.05, 0.05, 0.0])

    def predict(columns: dict[str, np.ndarray]) -> Prediction:
        threads.append(threading.current_thread() is threading.main_thread())
        time.sleep(next(naps))
        return doubling(columns)

    async def scenario():
        batcher = Batcher(predict, max_batch_size=4, max_latency=0.001, inline_cpu=0.01)
        worker = asyncio.create_task(batcher.run())
        for x in range(5):
            await batcher.predict(rows(x))
        worker.cancel()

    asyncio.run(scenario())
    # unknown cost: a thread; cheap: inline; 50 ms inline: next in a thread; no CPU: inline
    assert threads == [False, True, True, False, True]
