"""Settings: defaults, environment, flags winning over environment, and bad values."""

from __future__ import annotations

import pytest

from continuum.errors import ConfigError
from continuum.server import main
from continuum.server.settings import parse_settings

ENV = {"CONTINUUM_MODEL": "churn", "CONTINUUM_MODEL_VERSION": "3", "CONTINUUM_S3_BUCKET": "b"}


def test_defaults():
    settings = parse_settings([], ENV)
    assert (settings.model, settings.version, settings.s3.bucket) == ("churn", 3, "b")
    assert (settings.port, settings.max_batch_size, settings.max_latency_ms) == (8080, 32, 5)
    assert settings.max_request_bytes == 1024 * 1024
    log = settings.inference_log
    assert (log.enabled, log.sample_rate, log.flush_rows, log.flush_seconds) == (
        True,
        1.0,
        1000,
        60,
    )


def test_environment_and_flags():
    env = ENV | {"CONTINUUM_PORT": "9000", "CONTINUUM_INFERENCE_LOG_ENABLED": "false",
                 "CONTINUUM_INFERENCE_LOG_SAMPLE_RATE": "0.25"}  # fmt: skip
    settings = parse_settings(["--port", "9100", "--max-batch-size", "1", "--bucket", "c"], env)
    assert (settings.port, settings.max_batch_size, settings.s3.bucket) == (9100, 1, "c")
    assert not settings.inference_log.enabled
    assert settings.inference_log.sample_rate == 0.25


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CONTINUUM_MODEL_VERSION": "0"}, "--version / CONTINUUM_MODEL_VERSION = '0'"),
        ({"CONTINUUM_MODEL": "Bad/Name"}, "model name 'Bad/Name'"),
        ({"CONTINUUM_INFERENCE_LOG_SAMPLE_RATE": "2"}, "must be between 0 and 1"),
        ({"CONTINUUM_MAX_LATENCY_MS": "soon"}, "CONTINUUM_MAX_LATENCY_MS = 'soon'"),
        ({"CONTINUUM_INFERENCE_LOG_ENABLED": "maybe"}, "must be true or false"),
    ],
)
def test_bad_values_name_the_setting(env, message):
    with pytest.raises(ConfigError, match=None) as caught:
        parse_settings([], ENV | env)
    assert message in caught.value.message


def test_missing_model_is_required():
    with pytest.raises(ConfigError, match="CONTINUUM_MODEL"):
        parse_settings([], {"CONTINUUM_S3_BUCKET": "b"})


def test_main_reports_config_errors(monkeypatch, capsys):
    monkeypatch.delenv("CONTINUUM_MODEL", raising=False)
    assert main(["--bucket", "b"]) == 2
    assert "--model is required" in capsys.readouterr().err
