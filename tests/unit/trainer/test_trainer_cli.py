import json

import pytest
from tests.kit.memory_store import MemoryObjectStore

from continuum.errors import ConfigError, StorageUnavailable
from continuum.storage import RetryNotice
from continuum.trainer.cli import choose_champion, load_config, main, s3_retry, unwrap_resource
from continuum.trainer.config import TrainingConfig


@pytest.fixture
def termination_log(tmp_path, monkeypatch):
    path = tmp_path / "termination-log"
    monkeypatch.setenv("CONTINUUM_TERMINATION_LOG", str(path))
    return path


def test_missing_spec_fails_with_a_termination_message(termination_log, monkeypatch, capsys):
    monkeypatch.delenv("CONTINUUM_SPEC", raising=False)
    assert main([]) == 1
    message = json.loads(termination_log.read_text())
    assert message["reason"] == "ConfigError"
    assert "CONTINUUM_SPEC" in message["message"]
    assert '"event":"failed"' in capsys.readouterr().err


def test_invalid_json_spec(termination_log, tmp_path):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text("{not json")
    assert main(["--spec", str(spec_file)]) == 1
    assert "is not valid JSON" in json.loads(termination_log.read_text())["message"]


def test_a_spec_the_api_refuses_fails_naming_the_field(termination_log, spec, monkeypatch):
    spec["split"]["seed"] = True
    monkeypatch.setenv("CONTINUUM_SPEC", json.dumps(spec))
    assert main([]) == 1
    message = json.loads(termination_log.read_text())
    assert message["reason"] == "ConfigError"
    assert message["message"] == (
        "the TrainingJob spec is invalid: spec.split.seed: Input should be a valid integer, "
        "got True"
    )


def test_whole_resource_or_bare_spec(spec):
    resource = {"apiVersion": "continuum.dev/v1alpha1", "metadata": {"name": "tj-7"}, "spec": spec}
    assert unwrap_resource(resource) == (spec, "tj-7")
    assert unwrap_resource(spec) == (spec, None)


def test_config_from_env(spec):
    env = {"CONTINUUM_SPEC": json.dumps(spec), "CONTINUUM_TRAINING_JOB": "tj-9"}
    env["CONTINUUM_MAX_DATASET_BYTES"] = "1000"
    config = load_config(None, env)
    assert (config.training_job, config.max_dataset_bytes) == ("tj-9", 1000)


def test_champion_choice(spec):
    store = MemoryObjectStore()
    config = TrainingConfig.from_spec(spec)
    assert choose_champion(store, config, None) is None  # nothing qualified yet
    store.put_json(
        "models/churn/4/manifest.json",
        {"model": "churn", "version": 4, "sha256": "0" * 64, "qualified": True, "metrics": {}},
    )
    assert choose_champion(store, config, None) == 4
    assert choose_champion(store, config, "2") == 2
    assert choose_champion(store, config, "none") is None
    with pytest.raises(ConfigError, match="champion version must be a number"):
        choose_champion(store, config, "v2")


def test_s3_outages_are_ridden_out_for_180_seconds_by_default():
    policy = s3_retry({})
    assert policy is not None
    assert policy.deadline_seconds == 180
    assert s3_retry({"CONTINUUM_S3_RETRY_SECONDS": "0"}) is None
    assert s3_retry({"CONTINUUM_S3_RETRY_SECONDS": "30"}).deadline_seconds == 30


@pytest.mark.parametrize("text", ["-1", "soon", "3601"])
def test_a_bad_retry_window_is_a_config_error_naming_the_variable(text):
    with pytest.raises(ConfigError, match="CONTINUUM_S3_RETRY_SECONDS"):
        s3_retry({"CONTINUUM_S3_RETRY_SECONDS": text})


def test_each_wait_for_s3_is_one_json_line_in_the_log(capsys):
    policy = s3_retry({})
    assert policy is not None
    assert policy.on_retry is not None
    error = StorageUnavailable("cannot reach S3 at http://minio:9000: is it running?")
    policy.on_retry(RetryNotice(attempt=3, delay=4.0, waited=3.04, error=error))
    line = json.loads(capsys.readouterr().err)
    assert line == {
        "event": "s3_unavailable", "attempt": 3, "retry_in": 4.0, "waited": 3.0,
        "message": error.message,
    }  # fmt: skip
