"""Retries in this process: backoff, one pending attempt per key, forgetting, failing attempts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from continuum.controllers.retries import Retries

QUICK = 0.01


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


class Attempts:
    """An attempt that records its runs and raises on the first ``failing`` of them."""

    def __init__(self, failing: int = 0) -> None:
        self.runs = 0
        self.failing = failing

    def ran(self, times: int) -> Callable[[], bool]:
        """Whether the attempt has run ``times`` times (a condition for ``until``)."""
        return lambda: self.runs == times

    async def __call__(self) -> None:
        self.runs += 1
        if self.runs <= self.failing:
            raise RuntimeError("the API server is away")


def test_delays_double_from_the_first_up_to_the_cap() -> None:
    retries: Retries[str] = Retries(first=10.0, cap=60.0)
    assert [retries.delay(n) for n in range(5)] == [10.0, 20.0, 40.0, 60.0, 60.0]
    assert retries.delay(10_000) == 60.0, "no overflow after many failures"


def test_each_schedule_of_a_key_backs_off_further() -> None:
    retries: Retries[str] = Retries(first=QUICK, cap=0.04)
    attempt = Attempts()
    delays: list[float | None] = []

    async def scenario() -> None:
        for runs in range(1, 5):
            delays.append(retries.schedule("a", attempt))
            await until(attempt.ran(runs))

    run(scenario())
    assert delays == [0.01, 0.02, 0.04, 0.04]


def test_one_pending_attempt_per_key() -> None:
    retries: Retries[str] = Retries(first=3600.0, cap=3600.0)

    async def scenario() -> None:
        assert retries.schedule("a", Attempts()) == 3600.0
        assert retries.schedule("a", Attempts()) is None
        assert retries.schedule("b", Attempts()) == 3600.0
        assert retries.pending() == 2

    run(scenario())


def test_a_scheduled_attempt_runs_after_its_delay() -> None:
    retries: Retries[str] = Retries(first=QUICK, cap=QUICK)
    attempt = Attempts()

    async def scenario() -> None:
        retries.schedule("a", attempt)
        assert attempt.runs == 0
        await until(attempt.ran(1))
        assert retries.pending() == 0

    run(scenario())


def test_forget_cancels_the_pending_attempt_and_resets_the_backoff() -> None:
    retries: Retries[str] = Retries(first=QUICK, cap=1.0)
    attempt = Attempts()

    async def scenario() -> None:
        retries.schedule("a", attempt)
        retries.forget("a")
        assert retries.pending() == 0
        await asyncio.sleep(5 * QUICK)
        assert attempt.runs == 0
        assert retries.schedule("a", attempt) == QUICK
        retries.forget("a")

    run(scenario())


def test_forgetting_an_unknown_key_is_harmless() -> None:
    retries: Retries[str] = Retries(first=QUICK, cap=QUICK)
    retries.forget("never-scheduled")
    assert retries.pending() == 0


def test_an_attempt_that_raises_is_rescheduled(caplog: pytest.LogCaptureFixture) -> None:
    retries: Retries[str] = Retries(first=QUICK, cap=QUICK)
    attempt = Attempts(failing=2)

    async def scenario() -> None:
        retries.schedule("a", attempt)
        await until(attempt.ran(3))
        await asyncio.sleep(5 * QUICK)

    run(scenario())
    assert attempt.runs == 3, "rescheduled after each failure, not after the success"
    assert retries.pending() == 0
    assert "retry of a failed" in caplog.text


def test_an_attempt_may_schedule_the_next_one() -> None:
    retries: Retries[str] = Retries(first=QUICK, cap=QUICK)
    attempt = Attempts()
    delays: list[float | None] = []

    async def attempt_then_again() -> None:
        await attempt()
        if attempt.runs < 3:
            delays.append(retries.schedule("a", attempt_then_again))

    async def scenario() -> None:
        retries.schedule("a", attempt_then_again)
        await until(attempt.ran(3))

    run(scenario())
    assert delays == [QUICK, QUICK], "its own run is no longer pending"


def test_an_attempt_that_forgets_its_key_and_raises_is_not_rescheduled() -> None:
    retries: Retries[str] = Retries(first=QUICK, cap=QUICK)
    runs: list[int] = []

    async def attempt() -> None:
        runs.append(1)
        retries.forget("a")
        raise RuntimeError("gone")

    async def scenario() -> None:
        retries.schedule("a", attempt)
        await until(lambda: len(runs) == 1)
        await asyncio.sleep(5 * QUICK)

    run(scenario())
    assert runs == [1]
    assert retries.pending() == 0
