"""The operator process ends once kopf has stopped (shared/exiting.py, main.until_stopped):
the guard's timing and message, and the exit code of a fatal kopf error."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import kopf
import pytest

from continuum.controllers import lifecycle
from continuum.controllers.main import FATAL_EXIT_CODE, run_kopf, until_stopped
from continuum.controllers.shared import exiting


@pytest.fixture(autouse=True)
def disarmed() -> Iterator[None]:
    exiting.reset_for_tests()
    yield
    exiting.reset_for_tests()


class Ends:
    """Stands in for os._exit: records the code, once."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


def test_a_process_still_up_after_the_grace_is_ended_with_code_1(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ends = Ends()
    started = time.monotonic()
    with caplog.at_level(logging.CRITICAL, logger=exiting.__name__):
        assert exiting.arm(0.2, end=ends)
        assert ends.called.wait(5)
    assert ends.codes == [exiting.STUCK_EXIT_CODE] == [1]
    assert time.monotonic() - started >= 0.2
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("kopf stopped 0.2 s ago and the process is still running")
    assert "so that Kubernetes restarts it" in line
    assert "Main thread at: " in line
    assert "test_exiting.py" in line, "where the main thread is"


def test_it_is_armed_once_per_process() -> None:
    ends = Ends()
    assert exiting.arm(60, end=ends)
    assert not exiting.arm(0.01, end=ends), "the first guard stands"
    time.sleep(0.1)
    assert ends.codes == []


def test_the_message_names_the_threads_still_running() -> None:
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, name="continuum-s3_0")
    worker.start()
    try:
        frame = sys._current_frames()[threading.main_thread().ident or 0]
        text = exiting.stuck_message("kopf stopped", 30, frame, threading.enumerate())
    finally:
        stop.set()
        worker.join()
    assert "Other threads: " in text
    assert "continuum-s3_0" in text
    assert "exit guard" not in text
    assert "test_the_message_names_the_threads_still_running (controllers/test_exiting.py" in text
    assert exiting.stuck_message("x", 1, None, []).endswith(
        "Main thread at: unknown. Other threads: none"
    )


def test_the_cleanup_handler_arms_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    armed: list[bool] = []
    monkeypatch.setattr(exiting, "arm", lambda: armed.append(True))
    asyncio.run(lifecycle.cleanup(memo=kopf.Memo()))
    assert armed == [True]


def test_a_fatal_kopf_error_exits_non_zero_naming_it(caplog: pytest.LogCaptureFixture) -> None:
    def fatal() -> int:
        raise RuntimeError("Error in the watch-stream: {'code': 500}")

    with caplog.at_level(logging.CRITICAL, logger="continuum.controllers.main"):
        assert until_stopped(fatal) == FATAL_EXIT_CODE == 1
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == (
        "kopf stopped on a fatal error (RuntimeError: Error in the watch-stream: {'code': 500}); "
        "exiting with code 1 so that Kubernetes restarts the operator"
    )


def test_a_stop_that_was_asked_for_exits_with_its_code() -> None:
    assert until_stopped(lambda: 0) == 0
    assert until_stopped(lambda: 3) == 3


def test_kopf_alone_is_run_with_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(kopf, "run", lambda **options: seen.append(options))
    assert run_kopf({"standalone": True}) == 0
    assert seen == [{"standalone": True}]
