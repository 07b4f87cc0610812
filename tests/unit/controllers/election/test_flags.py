"""``continuum operator --leader-elect``: its flags, defaults and the usage errors it gives."""

from __future__ import annotations

import pytest

from continuum.controllers import election
from continuum.controllers.election import elector
from continuum.controllers.main import build_parser, election_settings


def settings(*argv: str) -> tuple[election.Timings, str]:
    parser = build_parser()
    return election_settings(parser, parser.parse_args(list(argv)))


def test_defaults_are_off_and_controller_runtimes_timings() -> None:
    args = build_parser().parse_args([])
    assert args.leader_elect is False
    assert args.leader_election_name == "continuum-operator"
    timings, namespace = settings("--leader-elect", "--leader-election-namespace", "ops")
    assert timings == election.Timings(15, 10, 2)
    assert namespace == "ops"


def test_the_namespace_comes_from_the_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "continuum-system")
    assert settings("--leader-elect")[1] == "continuum-system"
    assert settings("--leader-elect", "--leader-election-namespace", "x")[1] == "x"


def test_no_namespace_outside_a_pod_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    monkeypatch.setattr(elector, "NAMESPACE_FILE", elector.Path("/nonexistent/namespace"))
    with pytest.raises(SystemExit) as exited:
        settings("--leader-elect")
    assert exited.value.code == 2
    assert "--leader-election-namespace" in capsys.readouterr().err


def test_inconsistent_timings_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        settings(
            "--leader-elect", "--leader-election-namespace", "ops",
            "--leader-election-lease-duration", "8", "--leader-election-renew-deadline", "10",
        )  # fmt: skip
    assert "lease duration must exceed the renew deadline" in capsys.readouterr().err


def test_identities_are_unique_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "continuum-5f7-abcde")
    first, second = elector.new_identity(), elector.new_identity()
    assert first.startswith("continuum-5f7-abcde_")
    assert first != second
