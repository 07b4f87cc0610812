"""The work queue: one reconcile at a time per key, every failure retried with capped, jittered
exponential backoff, requeues while an object waits, nothing kept for keys that are fine."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import kopf
import pytest

from continuum.controllers.shared.queue import Backoff, WorkQueue
from continuum.kube import KubeUnavailable, ResourceConflict
from tests.kit import samples

QUICK = Backoff(first=0.01, cap=0.04, jitter=0.0)
T = TypeVar("T")


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.002)


class Work:
    """A reconcile that records its runs and raises on the first ``failing`` of them."""

    def __init__(self, failing: int = 0, error: Exception | None = None) -> None:
        self.runs = 0
        self.failing = failing
        self.error = error or RuntimeError("the API server is away")

    def ran(self, times: int) -> Callable[[], bool]:
        return lambda: self.runs == times

    async def __call__(self) -> None:
        self.runs += 1
        if self.runs <= self.failing:
            raise self.error


def test_delays_double_from_the_first_up_to_the_cap() -> None:
    backoff = Backoff(first=10.0, cap=60.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(1, 6)] == [10.0, 20.0, 40.0, 60.0, 60.0]
    assert backoff.delay(10_000) == 60.0, "no overflow after many failures"


def test_jitter_spreads_each_delay_within_its_bounds() -> None:
    backoff = Backoff(first=10.0, cap=60.0, jitter=0.2)
    rng = random.Random(7)
    delays = [backoff.delay(2, rng) for _ in range(200)]
    assert all(16.0 <= d <= 24.0 for d in delays)
    assert len({round(d, 3) for d in delays}) > 100, "objects failing together come back apart"


def test_a_failure_is_retried_until_it_succeeds() -> None:
    queue: WorkQueue[str] = WorkQueue("Test", backoff=QUICK)
    work = Work(failing=3)

    async def scenario() -> None:
        assert not await queue.run("a", work, again=work, trigger="event")
        assert queue.failures("a") == 1
        await until(work.ran(4))
        await until(lambda: len(queue) == 0)

    run(scenario())
    assert queue.failures("a") == 0


def test_retries_back_off_further_each_time() -> None:
    queue: WorkQueue[str] = WorkQueue("Test", backoff=QUICK)
    work = Work(failing=4)
    stamps: list[float] = []

    async def stamped() -> None:
        stamps.append(asyncio.get_running_loop().time())
        await work()

    async def scenario() -> None:
        await queue.run("a", stamped, again=stamped, trigger="event")
        await until(work.ran(5))

    run(scenario())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    waits = [0.01, 0.02, 0.04, 0.04]
    assert all(gap >= wait * 0.99 for gap, wait in zip(gaps, waits, strict=True)), gaps


def test_one_pending_retry_per_key() -> None:
    queue: WorkQueue[str] = WorkQueue("Test", backoff=Backoff(3600, 3600))

    async def scenario() -> None:
        await queue.run("a", Work(failing=1), again=Work(), trigger="event")
        await queue.run("a", Work(failing=1), again=Work(), trigger="event")
        await queue.run("b", Work(failing=1), again=Work(), trigger="event")
        assert queue.pending() == 2
        assert queue.failures("a") == 2

    run(scenario())


def test_the_delay_the_error_asks_for_is_honoured() -> None:
    queue: WorkQueue[str] = WorkQueue("Test", backoff=QUICK)
    throttled = RuntimeError("HTTP 429 TooManyRequests")
    throttled.retry_after = 0.15  # type: ignore[attr-defined]
    work = Work(failing=1, error=throttled)

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await queue.run("a", work, again=work, trigger="event")
        await until(work.ran(2))
        return loop.time() - start

    async def timed() -> None:
        assert await scenario() >= 0.15

    run(timed())


def test_a_permanent_error_is_not_retried() -> None:
    queue: WorkQueue[str] = WorkQueue("Test", backoff=QUICK)
    work = Work(failing=1, error=kopf.PermanentError("invalid ModelDeployment"))

    async def scenario() -> None:
        assert not await queue.run("a", work, again=work, trigger="event")
        await asyncio.sleep(0.05)

    run(scenario())
    assert work.runs == 1
    assert len(queue) == 0


def test_reconciles_of_one_key_never_overlap_and_others_do() -> None:
    queue: WorkQueue[str] = WorkQueue("Test")
    inside: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}

    def work(key: str) -> Callable[[], object]:
        async def reconcile() -> None:
            inside[key] += 1
            most[key] = max(most[key], inside[key], inside["a"] + inside["b"] - 1)
            await asyncio.sleep(0.01)
            inside[key] -= 1

        return reconcile

    async def scenario() -> None:
        jobs = [queue.run(k, work(k), again=work(k), trigger="event") for k in "aab" * 3]  # type: ignore[arg-type]
        await asyncio.gather(*jobs)

    run(scenario())
    assert most["a"] == 1, "one reconcile of a key at a time"
    assert most["b"] >= 1
    assert len(queue) == 0, "no lock is kept once nobody holds or waits for it"


def test_a_requeue_backs_off_until_settled() -> None:
    queue: WorkQueue[str] = WorkQueue("Test")
    work = Work()

    async def scenario() -> None:
        assert queue.requeue("a", work, QUICK) == 0.01
        assert queue.requeue("a", work, QUICK) is None, "one call pending at a time"
        await until(work.ran(1))
        assert queue.requeue("a", work, QUICK) == 0.04, "the third wait of a row"
        queue.settle("a")
        assert queue.pending() == 0
        assert len(queue) == 0
        assert queue.requeue("a", work, QUICK) == 0.01, "settled: the backoff starts over"
        queue.settle("a")

    run(scenario())
    assert work.runs == 1


@pytest.mark.parametrize("outcome", ["ok", "fails"])
def test_runs_and_failures_are_counted_by_kind_and_trigger(outcome: str) -> None:
    queue: WorkQueue[str] = WorkQueue("CountedKind", backoff=Backoff(3600, 3600))
    labels = {"kind": "CountedKind", "handler": f"counted-{outcome}"}
    error = KubeUnavailable("GET …: no answer from the API server (timed out)")
    work = Work(failing=1 if outcome == "fails" else 0, error=error)
    run(queue.run("a", work, again=work, trigger=f"counted-{outcome}"))
    assert samples.total("continuum_reconciles_total", **labels) == 1
    failed = samples.total("continuum_reconcile_errors_total", **labels, reason="KubeUnavailable")
    assert failed == (1 if outcome == "fails" else 0)
    assert samples.total("continuum_reconcile_errors_total", **labels) == failed


class Streak:
    """A ``Reporter`` that records what the queue told it."""

    def __init__(self, *clears: bool) -> None:
        self.calls: list[str] = []
        self.clears = list(clears)  # what each recovered() answers (then True)

    async def failing(self, error: Exception) -> None:
        self.calls.append(f"failing: {error}")

    async def recovered(self) -> bool:
        self.calls.append("recovered")
        return self.clears.pop(0) if self.clears else True


def test_a_streak_is_reported_from_the_third_failure_and_its_end_once() -> None:
    queue: WorkQueue[str] = WorkQueue("Test", backoff=QUICK)
    work, streak = Work(failing=4), Streak()

    async def scenario() -> None:
        await queue.run("a", work, again=work, trigger="event", reporter=streak)
        await until(work.ran(5))
        await until(lambda: queue.failures("a") == 0)

    run(scenario())
    error = "failing: the API server is away"
    assert streak.calls == [error, error, "recovered"], "failures 3 and 4, then the success"
    assert len(queue) == 0


def test_short_streaks_stay_off_the_object() -> None:
    queue: WorkQueue[str] = WorkQueue("Test", backoff=QUICK)
    work, streak = Work(failing=2), Streak()

    async def scenario() -> None:
        await queue.run("a", work, again=work, trigger="event", reporter=streak)
        await until(work.ran(3))

    run(scenario())
    assert streak.calls == []


def test_a_streak_keeps_the_reporter_of_its_first_trigger() -> None:
    queue: WorkQueue[str] = WorkQueue("Test", backoff=Backoff(3600, 3600))
    work, first, second = Work(failing=5), Streak(), Streak()

    async def scenario() -> None:
        for reporter in (first, first, second, second):
            await queue.run("a", work, again=work, trigger="event", reporter=reporter)

    run(scenario())
    assert len(first.calls) == 2, "failures 3 and 4"
    assert second.calls == [], "one streak, one reporter: one Warning Event"


@pytest.mark.parametrize(
    ("error", "traceback"),
    [(RuntimeError("a bug"), True), (ResourceConflict("changed", status=409), False)],
    ids=["bug", "expected"],
)
def test_a_bug_keeps_its_traceback_in_the_log(
    error: Exception, traceback: bool, caplog: pytest.LogCaptureFixture
) -> None:
    queue: WorkQueue[str] = WorkQueue("Test", backoff=Backoff(3600, 3600, jitter=0.0))
    work = Work(failing=1, error=error)
    with caplog.at_level("WARNING", logger="continuum.controllers.shared.queue"):
        run(queue.run("a", work, again=work, trigger="event"))
    [record] = caplog.records
    assert "reconcile (event) failed" in record.getMessage()
    assert "retrying in 3600.0 s" in record.getMessage()
    assert (record.exc_info is not None) is traceback


# ---------------------------------------------------------------- news cuts a long wait short


class Steps(Backoff):
    """A backoff of given delays (the last one repeats): a long wait reached in two steps."""

    def __init__(self, *delays: float) -> None:
        super().__init__(first=delays[0], cap=max(delays), jitter=0.0)
        object.__setattr__(self, "delays", delays)

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        delays: tuple[float, ...] = self.delays  # type: ignore[attr-defined]
        return delays[min(failures, len(delays)) - 1]


LONG = Steps(0.01, 0.01, 3600.0)


async def long_wait(queue: WorkQueue[str], work: Work, reporter: Streak | None = None) -> None:
    """Three failures in a row: the retry now waits an hour."""
    await queue.run("a", work, again=work, trigger="event", reporter=reporter)
    await until(work.ran(3))
    await until(lambda: queue.failures("a") == 3 and queue.scheduled("a"))


def test_news_that_succeeds_cancels_the_long_wait() -> None:
    queue: WorkQueue[str] = WorkQueue("Test", backoff=LONG)
    work, streak = Work(failing=3), Streak()

    async def scenario() -> None:
        await long_wait(queue, work, streak)
        assert await queue.run("a", work, again=work, trigger="deployment-event")
        assert queue.pending() == 0, "nothing left to retry"

    run(scenario())
    assert work.runs == 4
    assert streak.calls == ["failing: the API server is away", "recovered"]
    assert len(queue) == 0


def test_news_that_fails_retries_after_the_first_step_and_the_streak_goes_on() -> None:
    queue: WorkQueue[str] = WorkQueue("Test", backoff=LONG)
    work, streak = Work(failing=4), Streak()

    async def scenario() -> None:
        await long_wait(queue, work, streak)
        assert not await queue.run("a", work, again=work, trigger="trainingjob-event")
        assert queue.failures("a") == 4, "the streak counts across news"
        await until(work.ran(5), timeout=1.0)  # 0.01 s later, not in an hour
        await until(lambda: len(queue) == 0)

    run(scenario())
    error = "failing: the API server is away"
    assert streak.calls == [error, error, "recovered"]


@pytest.mark.parametrize("timer", ["retry", "resync", "schedule"])
def test_timers_bring_no_news_and_leave_the_wait_alone(timer: str) -> None:
    queue: WorkQueue[str] = WorkQueue("Test", backoff=LONG)
    work = Work(failing=10)

    async def scenario() -> tuple[float, float]:
        await long_wait(queue, work)
        due = queue._slots["a"].due
        await queue.run("a", work, again=work, trigger=timer)
        return due, queue._slots["a"].due

    before, after = run_value(scenario())
    assert after == before, "the hour-long retry stays"
    assert work.runs == 4


def test_a_nudge_runs_a_long_wait_now() -> None:
    queue: WorkQueue[str] = WorkQueue("Test", backoff=LONG)
    work, streak = Work(failing=3), Streak()

    async def scenario() -> None:
        await long_wait(queue, work, streak)
        assert queue.nudge("a")
        await until(work.ran(4), timeout=1.0)
        await until(lambda: len(queue) == 0)

    run(scenario())
    assert streak.calls == ["failing: the API server is away", "recovered"]


def test_a_nudge_leaves_short_waits_requeues_and_unknown_keys_alone() -> None:
    queue: WorkQueue[str] = WorkQueue("Test", backoff=Backoff(5.0, 5.0, jitter=0.0))
    work = Work(failing=1)

    async def scenario() -> list[bool]:
        await queue.run("a", work, again=work, trigger="event")  # retry due in 5 s (< 10 s)
        queue.requeue("b", work, Backoff(3600, 3600))  # waiting on something, not failing
        nudged = [queue.nudge("a"), queue.nudge("b"), queue.nudge("c")]
        queue.settle("a")
        queue.settle("b")
        return nudged

    assert run_value(scenario()) == [False, False, False]
    assert work.runs == 1


def test_a_successful_event_keeps_a_requeue() -> None:
    queue: WorkQueue[str] = WorkQueue("Test")
    work = Work()

    async def scenario() -> bool:
        queue.requeue("a", work, Backoff(3600, 3600))
        await queue.run("a", work, again=work, trigger="job-event")
        scheduled = queue.scheduled("a")
        queue.settle("a")
        return scheduled

    assert run_value(scenario()), "the object still waits: its requeue stays"


def run_value(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


# ---------------------------------------------------------------- coalescing


def test_full_reconciles_waiting_for_the_lock_are_coalesced() -> None:
    queue: WorkQueue[str] = WorkQueue("CoalescedKind")
    runs = 0
    release = asyncio.Event()

    async def reconcile() -> None:
        nonlocal runs
        runs += 1
        await release.wait()

    async def scenario() -> list[bool]:
        first = asyncio.create_task(queue.run("a", reconcile, again=reconcile, trigger="t",
                                              coalesce="ref-a"))  # fmt: skip
        await asyncio.sleep(0)  # it holds the lock
        second = asyncio.create_task(queue.run("a", reconcile, again=reconcile, trigger="t",
                                               coalesce="ref-a"))  # fmt: skip
        await asyncio.sleep(0)  # it waits for the lock
        folded = [await queue.run("a", reconcile, again=reconcile, trigger="t",
                                  coalesce="ref-a") for _ in range(998)]  # fmt: skip
        other = asyncio.create_task(queue.run("a", reconcile, again=reconcile, trigger="t",
                                              coalesce="ref-a-replaced"))  # fmt: skip
        await asyncio.sleep(0)
        release.set()
        return [*folded[:1], *await asyncio.gather(first, second, other)]

    before = samples.total("continuum_reconciles_coalesced_total", kind="CoalescedKind")
    assert all(run_value(scenario()))
    assert runs == 3, "the one running, the one waiting, and the other object's own"
    after = samples.total("continuum_reconciles_coalesced_total", kind="CoalescedKind")
    assert after - before == 998
    assert len(queue) == 0


def test_a_cancelled_waiter_leaves_nothing_to_coalesce_into() -> None:
    queue: WorkQueue[str] = WorkQueue("Test")
    runs = 0
    release = asyncio.Event()

    async def reconcile() -> None:
        nonlocal runs
        runs += 1
        await release.wait()

    async def scenario() -> None:
        first = asyncio.create_task(queue.run("a", reconcile, again=reconcile, trigger="t",
                                              coalesce="ref"))  # fmt: skip
        await asyncio.sleep(0)
        waiter = asyncio.create_task(queue.run("a", reconcile, again=reconcile, trigger="t",
                                               coalesce="ref"))  # fmt: skip
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.sleep(0)
        third = asyncio.create_task(queue.run("a", reconcile, again=reconcile, trigger="t",
                                              coalesce="ref"))  # fmt: skip
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(first, third)

    run_value(scenario())
    assert runs == 2, "the third one was not folded into the cancelled waiter"
    assert len(queue) == 0


def test_a_requeue_asked_by_news_that_succeeds_replaces_the_long_retry() -> None:
    """A TrainingJob whose reconcile failed (retry in an hour) gets a Job event whose sync
    succeeds but finds the manifest unreadable: it must be read again soon, not never."""
    queue: WorkQueue[str] = WorkQueue("Test", backoff=LONG)
    work = Work(failing=3)
    reads: list[str] = []

    async def manifest_again() -> None:
        reads.append("manifest")

    async def sync_waiting_for_manifest() -> None:
        queue.requeue("a", manifest_again, QUICK)

    async def scenario() -> None:
        await long_wait(queue, work)
        assert await queue.run("a", sync_waiting_for_manifest, again=work, trigger="job-event")
        assert queue.scheduled("a"), "the requeue took the retry's place"
        await until(lambda: reads == ["manifest"], timeout=1.0)
        queue.settle("a")

    run(scenario())
    assert work.runs == 3, "the hour-long retry was cancelled"


def test_a_recovery_the_api_refused_is_tried_again() -> None:
    queue: WorkQueue[str] = WorkQueue("Test", backoff=QUICK)
    work, streak = Work(failing=3), Streak(False)

    async def scenario() -> None:
        await queue.run("a", work, again=work, trigger="event", reporter=streak)
        await until(lambda: streak.calls.count("recovered") == 2)
        await until(lambda: len(queue) == 0)

    run(scenario())
    assert work.runs == 5, "three failures, the success whose clearing was refused, one more"
    assert streak.calls[-2:] == ["recovered", "recovered"]
