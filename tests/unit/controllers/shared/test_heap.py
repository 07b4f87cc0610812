"""The heap trimmer: glibc's malloc_trim where there is one, run on a period, cancellable."""

from __future__ import annotations

import asyncio
import platform

import pytest

from continuum import libc
from continuum.controllers.shared import heap as memory


def test_on_glibc_the_trimmer_runs() -> None:
    trim = memory.heap_trimmer()
    # The CI machine and the project image run glibc: there the trimmer must be found.
    if platform.libc_ver()[0] != "glibc":
        assert trim is None or trim() in {0, 1}
        return
    assert trim is not None, "glibc without malloc_trim"
    assert trim() in {0, 1}  # malloc_trim: 1 if memory was released


def test_without_glibc_the_trimmer_task_just_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "heap_trimmer", lambda: None)
    asyncio.run(asyncio.wait_for(memory.trim_forever(every=0.01), timeout=1))


def test_the_trimmer_trims_on_its_period_until_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(memory, "heap_trimmer", lambda: lambda: calls.append(1))

    async def scenario() -> None:
        task = asyncio.create_task(memory.trim_forever(every=0.01))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert len(calls) >= 3


def test_on_glibc_the_arena_cap_takes() -> None:
    took = memory.limit_arenas(8)  # glibc's own default on 1 core: harmless to this process
    assert took is (platform.libc_ver()[0] == "glibc")


def test_without_mallopt_the_arena_cap_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libc, "libc_function", lambda name: None)
    assert memory.limit_arenas() is False
