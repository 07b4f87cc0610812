"""The command line dispatches to workloads and rejects unknown commands clearly."""

from __future__ import annotations

import pytest

from continuum import __version__, cli


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out.strip() == __version__


def test_unknown_command_names_it_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["trian"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'trian'" in err
    assert "continuum train" in err


def test_no_arguments_prints_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "continuum operator" in capsys.readouterr().out


def test_train_dispatches_to_the_trainer() -> None:
    entry = cli.load_workload("train")
    assert entry.__module__ == "continuum.trainer.cli"
