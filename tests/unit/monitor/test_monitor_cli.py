"""``continuum monitor``: environment, exit codes, progress lines and the termination message."""

from __future__ import annotations

import json

import pytest

from continuum.cli import main as continuum_main
from continuum.errors import ConfigError
from continuum.monitor import cli
from continuum.monitor.report import termination_message
from continuum.monitor.settings import parse_check_settings, settings_from_env
from continuum.workload import write_termination_message
from tests.kit.datasets import customers
from tests.unit.monitor.conftest import MODEL, log_rows

ENV = {
    "CONTINUUM_MONITOR": "mon",
    "CONTINUUM_MODEL": MODEL,
    "CONTINUUM_MODEL_VERSION": "1",
    "CONTINUUM_S3_BUCKET": "bucket",
}


@pytest.fixture
def env(monkeypatch, tmp_path, store):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    log = tmp_path / "termination-log"
    monkeypatch.setenv("CONTINUUM_TERMINATION_LOG", str(log))
    # The one seam: the CLI's store is the in-memory one (cluster tests use real MinIO).
    monkeypatch.setattr(cli, "ObjectStore", lambda settings: store)
    return log


def test_success_writes_summary_to_termination_log_and_progress_to_stdout(env, store, capsys,
                                                                          monkeypatch):  # fmt: skip
    log_rows(store, customers(500, 3))
    spec = {"deployment": "churn", "tests": {"correction": "bh"}, "window": {"maxRows": 400}}
    monkeypatch.setenv("CONTINUUM_MONITOR_SPEC", json.dumps(spec))
    monkeypatch.setenv("CONTINUUM_REPORT_TIME", "20250131T120000Z")
    assert continuum_main(["monitor"]) == 0
    summary = json.loads(env.read_text())
    assert summary["status"] == "Succeeded"
    assert summary["verdict"] == "NoDrift"
    assert summary["rows"] == 400
    assert summary["reportURI"] == "s3://bucket/reports/mon/20250131T120000Z/"
    events = [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()]
    assert events == ["started", "reference_loaded", "window_read", "checked", "report_written",
                      "succeeded"]  # fmt: skip


def test_missing_environment_fails_with_a_message(env, monkeypatch):
    monkeypatch.delenv("CONTINUUM_MODEL")
    assert cli.main([]) == 1
    failure = json.loads(env.read_text())
    assert failure["status"] == "Failed"
    assert failure["reason"] == "ConfigError"
    assert "CONTINUUM_MODEL" in failure["message"]


def test_missing_model_version_fails_with_object_not_found(env, monkeypatch):
    monkeypatch.setenv("CONTINUUM_MODEL_VERSION", "7")
    assert cli.main([]) == 1
    failure = json.loads(env.read_text())
    assert failure["reason"] == "ObjectNotFound"
    assert "version 7" in failure["message"]


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("not json", "not valid JSON"),
        ("[1]", "JSON object"),
        ('{"tests": {"correction": "sidak"}}', "correction"),
        ('{"window": {"maxRows": 10, "minSamples": 20}}', "minSamples"),
        ('{"fairnessThreshold": 3}', "fairnessThreshold"),
    ],
)
def test_bad_specs_are_config_errors(spec, fragment):
    with pytest.raises(ConfigError, match=fragment):
        settings_from_env(ENV | {"CONTINUUM_MONITOR_SPEC": spec})


def test_version_must_be_a_positive_number():
    with pytest.raises(ConfigError, match="CONTINUUM_MODEL_VERSION"):
        settings_from_env(ENV | {"CONTINUUM_MODEL_VERSION": "latest"})


def test_whole_drift_monitor_object_and_defaults():
    document = {"apiVersion": "continuum.dev/v1alpha1", "spec": {"tests": {"pValue": 0.01}}}
    target, settings = settings_from_env(ENV | {"CONTINUUM_MONITOR_SPEC": json.dumps(document)})
    assert (target.monitor, target.model, target.version) == ("mon", MODEL, 1)
    assert settings.tests.p_value == 0.01
    assert settings.tests.correction == "holm"
    assert settings.window.min_samples == 200
    assert parse_check_settings({}).sensitive_feature is None


def test_bad_report_time_is_refused(env, monkeypatch):
    monkeypatch.setenv("CONTINUUM_REPORT_TIME", "yesterday")
    assert cli.main([]) == 1
    assert json.loads(env.read_text())["reason"] == "ConfigError"


def test_unwritable_termination_log_is_not_fatal(tmp_path):
    message = termination_message({"status": "Succeeded"})
    assert not write_termination_message(message, str(tmp_path / "no/such"))
