import json

from continuum.errors import DatasetInvalid
from continuum.trainer.result import MAX_TERMINATION_BYTES, TrainingResult, termination_message
from continuum.workload import failure_summary, write_termination_message


def result(**overrides):
    values = {
        "model": "m",
        "version": 3,
        "uri": "s3://b/models/m/3/",
        "sha256": "a" * 64,
        "metric": "accuracy",
        "metrics": {"accuracy": 0.9, "f1": 0.8},
        "qualified": True,
        "reasons": (),
        "dataset": {"uri": "s3://b/d.csv", "fingerprint": "sha256:x", "rows": 10},
    }
    return TrainingResult(**(values | overrides))


def test_success_summary_shape():
    summary = result().summary()
    assert summary["status"] == "Succeeded"
    assert summary["version"] == 3
    assert json.loads(termination_message(summary)) == summary


def test_failure_summary_names_the_error_class():
    summary = failure_summary(DatasetInvalid("age", "not numeric"))
    assert summary == {
        "status": "Failed",
        "reason": "DatasetInvalid",
        "message": "dataset invalid: column 'age': not numeric",
    }


def test_termination_message_stays_under_4_kib():
    huge = result(
        metrics={f"m{i}": 0.123456789 for i in range(500)} | {"accuracy": 0.9},
        reasons=tuple("x" * 1000 for _ in range(10)),
    ).summary()
    text = termination_message(huge)
    assert len(text.encode()) <= MAX_TERMINATION_BYTES
    assert json.loads(text)["metrics"] == {"accuracy": 0.9}
    failure = failure_summary(RuntimeError("y" * 10_000))
    assert len(termination_message(failure).encode()) <= MAX_TERMINATION_BYTES


def test_unwritable_path_is_not_an_error(tmp_path):
    message = termination_message({"status": "Failed"})
    assert not write_termination_message(message, str(tmp_path / "no" / "such"))
    target = tmp_path / "termination-log"
    assert write_termination_message(message, str(target))
    assert json.loads(target.read_text()) == {"status": "Failed"}
