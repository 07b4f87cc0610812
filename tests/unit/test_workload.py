"""continuum.workload: progress lines, the failure summary, the termination message, exit codes."""

from __future__ import annotations

import json

import pytest

from continuum.errors import ConfigError
from continuum.workload import (
    MAX_MESSAGE_CHARS,
    emit,
    failure_summary,
    run,
    write_termination_message,
)


@pytest.fixture
def termination_log(tmp_path, monkeypatch):
    path = tmp_path / "termination-log"
    monkeypatch.setenv("CONTINUUM_TERMINATION_LOG", str(path))
    return path


def test_a_progress_line_is_compact_json_with_the_event_first(capsys):
    emit("window_read", rows=3, uri=ValueError("x"))
    assert capsys.readouterr().out == '{"event":"window_read","rows":3,"uri":"x"}\n'


def test_a_failure_names_the_error_class_and_trims_its_message():
    assert failure_summary(ConfigError("no spec")) == {
        "status": "Failed", "reason": "ConfigError", "message": "no spec",
    }  # fmt: skip
    assert failure_summary(RuntimeError())["message"] == "RuntimeError"
    message = failure_summary(RuntimeError("y" * 10_000))["message"]
    assert (len(message), message[-4:]) == (MAX_MESSAGE_CHARS, "y...")


def test_the_message_goes_to_the_path_the_environment_names(termination_log, tmp_path):
    assert write_termination_message('{"status":"Failed"}')
    assert termination_log.read_text() == '{"status":"Failed"}'
    assert not write_termination_message("{}", str(tmp_path / "no" / "such"))


def test_a_summary_is_rendered_into_the_message_and_exits_0(termination_log):
    assert run(lambda: {"status": "Succeeded"}, render=lambda s: f"<{s['status']}>") == 0
    assert termination_log.read_text() == "<Succeeded>"


def test_a_continuum_error_exits_1_with_its_summary_and_a_failed_line(termination_log, capsys):
    def work() -> dict[str, object]:
        raise ConfigError("no spec given")

    assert run(work, render=json.dumps) == 1
    failure = {"status": "Failed", "reason": "ConfigError", "message": "no spec given"}
    assert json.loads(termination_log.read_text()) == failure
    line = json.loads(capsys.readouterr().err)
    assert line == {"event": "failed", "reason": "ConfigError", "message": "no spec given"}


def test_an_unexpected_error_is_written_then_raised_for_its_traceback(termination_log):
    def work() -> dict[str, object]:
        raise KeyError("model")

    with pytest.raises(KeyError):
        run(work, render=json.dumps)
    assert json.loads(termination_log.read_text())["reason"] == "KeyError"
