"""The periodic resync: each key once per period at a phase of its own, spread over the period,
skipped while its queue has a call scheduled, bounded in flight, off with period 0; and the
``--resync-seconds`` flag."""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import Callable

import pytest

from continuum.controllers.main import build_parser, kopf_options
from continuum.controllers.shared import resync as resync_module
from continuum.controllers.shared.queue import WorkQueue
from continuum.controllers.shared.resync import (
    DEFAULT_PERIOD,
    TRIGGER,
    Resync,
    due_between,
    phase_of,
)
from tests.kit import samples

Key = tuple[str, str]


def keys(n: int) -> list[Key]:
    return [("team-a", f"tj-{i:04d}") for i in range(n)]


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class NoQueue:
    """A queue with nothing scheduled, or with the keys of ``busy`` scheduled."""

    def __init__(self, busy: set[Key] | None = None) -> None:
        self.busy = busy or set()

    def scheduled(self, key: Key) -> bool:
        return key in self.busy


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.002)


# ---------------------------------------------------------------- phases and windows


def test_a_phase_is_stable_and_within_the_period() -> None:
    for key in keys(200):
        phase = phase_of(key, 600.0)
        assert 0.0 <= phase < 600.0
        assert phase == phase_of(key, 600.0)
    # the same in every process (no per-process hash seed): a fixed figure
    assert phase_of(("team-a", "tj-0000"), 600.0) == pytest.approx(255.065153052)


def test_a_thousand_keys_are_spread_over_the_period() -> None:
    phases = sorted(phase_of(k, 600.0) for k in keys(1000))
    per_minute = Counter(int(p // 60) for p in phases)
    assert sorted(per_minute) == list(range(10)), "every minute of the period has some"
    assert max(per_minute.values()) < 140, per_minute  # 100 expected per minute
    per_second = Counter(int(p) for p in phases)
    assert max(per_second.values()) <= 8, "never a burst: about 1.7 a second"


def test_windows_cover_the_period_exactly_once() -> None:
    phases = sorted(phase_of(k, 600.0) for k in keys(500))
    fired: Counter[int] = Counter()
    start = 1_000_000.0
    for step in range(600):  # ticks of 1 s over exactly one period
        fired.update(due_between(phases, start + step, start + step + 1, 600.0))
    assert sorted(fired) == list(range(500)), "every key fired"
    assert set(fired.values()) == {1}, "each exactly once"


def test_a_window_that_wraps_past_the_period_takes_both_ends() -> None:
    phases = [1.0, 5.0, 595.0, 599.5]
    assert due_between(phases, 594.0, 602.0, 600.0) == [2, 3, 0]
    assert due_between(phases, 601.0, 604.0, 600.0) == []
    assert due_between(phases, 10.0, 10.0, 600.0) == []


def test_a_window_of_a_period_or_more_takes_every_key() -> None:
    phases = [1.0, 300.0, 599.0]
    assert due_between(phases, 0.0, 600.0, 600.0) == [0, 1, 2]
    assert due_between(phases, 0.0, 5000.0, 600.0) == [0, 1, 2]


# ---------------------------------------------------------------- the resync of a kind


def test_keys_fire_at_their_phase_once_per_period() -> None:
    clock = Clock()
    resync: Resync[Key] = Resync("Test", NoQueue(), clock=clock)
    resync.period = 600.0
    for key in keys(300):
        resync.track(key)
    fired: Counter[Key] = Counter()

    async def reconcile(key: Key) -> None:
        fired[key] += 1

    async def scenario() -> None:
        resync.tick(reconcile)  # the first tick only starts the clock
        for _ in range(1200):  # two periods, 1 s apart
            clock.now += 1.0
            resync.tick(reconcile)
            await asyncio.sleep(0)
        await until(lambda: sum(fired.values()) == 600)

    asyncio.run(scenario())
    assert set(fired) == set(keys(300))
    assert set(fired.values()) == {2}, "each key twice in two periods"


def test_forgotten_keys_stop_and_new_keys_join() -> None:
    clock = Clock(0.0)
    resync: Resync[Key] = Resync("Test", NoQueue(), clock=clock)
    resync.period = 10.0
    old, new = keys(2)
    resync.track(old)
    resync.track(old)
    assert len(resync) == 1
    assert resync.due(0.0, 10.0) == [old]
    resync.track(new)
    resync.forget(old)
    resync.forget(old)
    assert resync.due(0.0, 10.0) == [new]


def test_a_key_with_a_call_scheduled_is_skipped() -> None:
    a, b = keys(2)
    resync: Resync[Key] = Resync("Test", NoQueue(busy={a}), clock=Clock(0.0))
    resync.period = 10.0
    resync.track(a)
    resync.track(b)
    done: list[Key] = []

    async def reconcile(key: Key) -> None:
        done.append(key)

    async def scenario() -> list[Key]:
        resync.tick(reconcile)
        resync._clock = Clock(20.0)  # a whole period later: every key is due
        started = resync.tick(reconcile)
        await until(lambda: len(done) == 1)
        return started

    assert asyncio.run(scenario()) == [b]
    assert done == [b], "the retry that is scheduled is the reconcile of a"


def test_resyncs_in_flight_are_bounded_and_never_twice_for_a_key() -> None:
    clock = Clock(0.0)
    resync: Resync[Key] = Resync("Test", NoQueue(), concurrency=3, clock=clock)
    resync.period = 10.0
    for key in keys(10):
        resync.track(key)
    inside, most = 0, 0
    release = asyncio.Event()

    async def reconcile(_key: Key) -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await release.wait()
        inside -= 1

    async def scenario() -> tuple[int, int]:
        nonlocal release
        release = asyncio.Event()
        resync.tick(reconcile)
        clock.now = 20.0
        first = len(resync.tick(reconcile))
        await asyncio.sleep(0.01)
        clock.now = 40.0
        second = len(resync.tick(reconcile))  # all still running: none started again
        release.set()
        await until(lambda: not resync._running)
        return first, second

    assert asyncio.run(scenario()) == (10, 0)
    assert most == 3


def test_a_failing_reconcile_does_not_stop_the_resync(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(0.0)
    resync: Resync[Key] = Resync("Test", NoQueue(), clock=clock)
    resync.period = 10.0
    resync.track(keys(1)[0])
    runs = 0

    async def reconcile(_key: Key) -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("a bug")

    async def scenario() -> None:
        resync.tick(reconcile)
        for now in (20.0, 40.0):
            clock.now = now
            resync.tick(reconcile)
            await until(lambda: not resync._running)

    asyncio.run(scenario())
    assert runs == 2
    assert "resync failed" in caplog.text


def test_period_zero_turns_the_resync_off() -> None:
    resync: Resync[Key] = Resync("Test", NoQueue())
    resync.track(keys(1)[0])
    ran: list[Key] = []

    async def reconcile(key: Key) -> None:
        ran.append(key)

    async def scenario() -> None:
        task = resync.start(0.0, reconcile)
        await asyncio.wait_for(task, 1.0)

    asyncio.run(scenario())
    assert ran == []


def test_the_ticker_runs_through_the_work_queue_with_the_resync_trigger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(resync_module, "TICK_SECONDS", 0.01)
    clock = Clock(0.0)
    queue: WorkQueue[Key] = WorkQueue("ResyncedKind")
    resync: Resync[Key] = Resync("ResyncedKind", queue, clock=clock)
    key = keys(1)[0]
    resync.track(key)
    runs: list[Key] = []

    async def work() -> None:
        runs.append(key)

    def ran(n: int) -> bool:
        return len(runs) == n

    async def reconcile(k: Key) -> None:
        await queue.run(k, work, again=work, trigger=TRIGGER)

    async def scenario() -> None:
        task = resync.start(1.0, reconcile)  # a period of 1 s of the fake clock
        for n in range(1, 4):
            clock.now += 1.0
            await until(functools.partial(ran, n))
        await resync.stop(task)

    asyncio.run(scenario())
    assert runs == [key] * 3
    labels = {"kind": "ResyncedKind", "handler": "resync"}
    assert samples.total("continuum_reconciles_total", **labels) == 3


# ---------------------------------------------------------------- the flag


def test_the_flag_defaults_to_ten_minutes_and_reaches_the_memo() -> None:
    args = build_parser().parse_args([])
    assert args.resync_seconds == DEFAULT_PERIOD == 600.0
    memo = kopf_options(build_parser().parse_args(["--resync-seconds", "90"]))["memo"]
    assert memo["resync_seconds"] == 90.0
    assert build_parser().parse_args(["--resync-seconds", "0"]).resync_seconds == 0.0


@pytest.mark.parametrize("value", ["-1", "ten", "nan", "inf"])
def test_a_bad_period_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--resync-seconds", value])
    assert exited.value.code == 2
    assert "--resync-seconds" in capsys.readouterr().err
