"""TrainingJob status from (TrainingJob, Job, termination message, manifest read): phases,
conditions, results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from continuum.api import TrainingJob, TrainingJobStatus, dump, load
from continuum.controllers.shared.conditions import Want, find, merge_conditions
from continuum.controllers.shared.pods import parse_summary
from continuum.controllers.trainingjob.manifest import ManifestRead
from continuum.controllers.trainingjob.status import (
    awaiting_manifest,
    image_fields,
    manifest_wanted,
    observe_job,
    status_from_job,
)
from tests.unit.controllers.trainingjob.builders import (
    FAILURE,
    MANIFEST_URI,
    SUCCESS,
    body,
    job,
    manifest_of,
    manifest_read,
    message,
    training_job,
    unreadable,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


def conditions(status: TrainingJobStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def with_status(status: TrainingJobStatus) -> TrainingJob:
    return load(TrainingJob, body(status=dump(status)))


def completed(
    tj: TrainingJob,
    summary: dict[str, Any] | None = None,
    read: ManifestRead | None = None,
    *,
    now: datetime = NOW,
) -> TrainingJobStatus:
    """The status after the Job completed with ``summary`` (``SUCCESS``) and its manifest was
    read as ``read`` (by default the manifest the trainer wrote with that summary)."""
    summary = SUCCESS if summary is None else summary
    read = manifest_read(manifest_of(summary)) if read is None else read
    return status_from_job(tj, job("Complete"), message(summary), read, now=now)


def test_no_job_yet_is_pending(tj: TrainingJob) -> None:
    status = status_from_job(tj, None, None, now=NOW)
    assert status.phase == "Pending"
    assert status.job_name == "iris-1-train"
    assert status.observed_generation == 1
    got = conditions(status)
    assert got["Ready"][0] == "False"
    assert got["Reconciling"][0] == "True"
    assert got["Stalled"][0] == "False"
    assert got["Succeeded"][0] == "Unknown"


def test_started_job_without_ready_pod_is_pending(tj: TrainingJob) -> None:
    status = status_from_job(tj, job(), None, now=NOW)
    assert status.phase == "Pending"
    assert status.start_time is None  # it comes with Running: no write only to add it


def test_a_job_starting_needs_no_second_pending_write(tj: TrainingJob) -> None:
    just_created = job()
    just_created["status"] = {}
    first = status_from_job(tj, just_created, None, now=NOW)
    again = status_from_job(with_status(first), job(), None, now=LATER)
    assert dump(again) == dump(first)


def test_running_records_the_start_time(tj: TrainingJob) -> None:
    status = status_from_job(tj, job(ready=1), None, now=NOW)
    assert status.start_time == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def test_ready_pod_is_running(tj: TrainingJob) -> None:
    status = status_from_job(tj, job(ready=1), None, now=NOW)
    assert status.phase == "Running"
    assert conditions(status)["Reconciling"] == ("True", "Training")
    assert status.completion_time is None


def test_success_copies_the_manifest(tj: TrainingJob) -> None:
    status = completed(tj)
    assert status.phase == "Succeeded"
    assert status.model is not None
    assert (status.model.version, status.model.uri) == (3, "s3://continuum/models/iris/3/")
    assert status.model.sha256 == "a" * 64
    assert status.metrics == {"accuracy": 0.9667, "f1_macro": 0.96}
    assert status.dataset is not None
    assert (status.dataset.fingerprint, status.dataset.rows) == ("sha256:abc", 150)
    assert status.qualified is True
    assert status.completion_time == datetime(2026, 1, 1, 10, 1, 30, tzinfo=UTC)
    got = conditions(status)
    assert got["Ready"] == ("True", "Succeeded")
    assert got["Reconciling"][0] == "False"
    assert got["Stalled"][0] == "False"
    assert got["Succeeded"] == ("True", "TrainingSucceeded")
    assert got["Qualified"] == ("True", "Qualified")
    assert "version 3" in (status.message or "")


def test_not_qualified_says_why(tj: TrainingJob) -> None:
    summary = {**SUCCESS, "qualified": False, "reasons": ["accuracy 0.7 is below 0.8"]}
    status = completed(tj, summary)
    assert status.phase == "Succeeded"
    assert status.qualified is False
    gate = find(status.conditions, "Qualified")
    assert gate is not None
    assert (gate.status, gate.reason) == ("False", "NotQualified")
    assert "below 0.8" in gate.message


def test_champion_is_recorded_from_the_manifest_evaluation(tj: TrainingJob) -> None:
    champion = {"version": 2, "metrics": {"accuracy": 0.9}, "error": None}
    status = completed(tj, read=manifest_read(manifest_of(champion=champion)))
    assert status.champion is not None
    assert status.champion.version == 2
    assert status.champion.metrics == {"accuracy": 0.9}


def test_failure_takes_reason_and_message_from_the_trainer(tj: TrainingJob) -> None:
    status = status_from_job(tj, job("Failed"), message(FAILURE), now=NOW)
    assert status.phase == "Failed"
    got = conditions(status)
    assert got["Stalled"] == ("True", "DatasetInvalid")
    assert got["Ready"] == ("False", "DatasetInvalid")
    assert got["Succeeded"] == ("False", "DatasetInvalid")
    assert got["Reconciling"][0] == "False"
    stalled = find(status.conditions, "Stalled")
    assert stalled is not None
    assert "'species'" in stalled.message
    assert "'species'" in (status.message or "")
    assert status.model is None
    assert status.completion_time is not None


def test_failure_without_summary_uses_the_job_reason_and_log_tail(tj: TrainingJob) -> None:
    logs = "Traceback (most recent call last):\n  ...\nMemoryError\n"
    status = status_from_job(tj, job("Failed"), logs, now=NOW)
    assert status.phase == "Failed"
    assert conditions(status)["Stalled"] == ("True", "BackoffLimitExceeded")
    assert "MemoryError" in (status.message or "")


def test_complete_job_without_summary_fails(tj: TrainingJob) -> None:
    status = status_from_job(tj, job("Complete"), None, now=NOW)
    assert status.phase == "Failed"
    assert conditions(status)["Stalled"] == ("True", "ResultMissing")


def test_invalid_result_fails_instead_of_raising(tj: TrainingJob) -> None:
    summary = {**SUCCESS, "sha256": "not-a-digest"}
    status = completed(tj, summary)
    assert status.phase == "Failed"
    assert conditions(status)["Stalled"] == ("True", "ResultInvalid")
    assert "sha256" in (status.message or "")


def test_odd_reasons_are_replaced(tj: TrainingJob) -> None:
    summary = {**FAILURE, "reason": "not a CamelCase reason!"}
    status = status_from_job(tj, job("Failed"), message(summary), now=NOW)
    assert conditions(status)["Stalled"] == ("True", "TrainingFailed")


def test_unchanged_observation_gives_an_identical_status(tj: TrainingJob) -> None:
    first = status_from_job(tj, job(ready=1), None, now=NOW)
    again = status_from_job(with_status(first), job(ready=1), None, now=LATER)
    assert dump(again) == dump(first)


def test_transition_time_moves_only_when_status_changes(tj: TrainingJob) -> None:
    running = status_from_job(tj, job(ready=1), None, now=NOW)
    done = completed(with_status(running), now=LATER)
    times = {c.type: c.last_transition_time for c in done.conditions}
    assert times["Ready"] == LATER
    assert times["Reconciling"] == LATER
    assert times["Stalled"] == NOW, "Stalled stayed False"


def test_phase_never_moves_back(tj: TrainingJob) -> None:
    running = status_from_job(tj, job(ready=1), None, now=NOW)
    stale = status_from_job(with_status(running), job(), None, now=LATER)
    assert stale.phase == "Running"


def test_finished_status_is_final(tj: TrainingJob) -> None:
    done = completed(tj)
    after = status_from_job(with_status(done), job("Failed"), message(FAILURE), now=LATER)
    assert dump(after) == dump(done)


def test_status_round_trips_through_the_api_schema(tj: TrainingJob) -> None:
    status = completed(tj)
    assert load(TrainingJobStatus, dump(status)) == status


def test_no_secret_reaches_the_status() -> None:
    tj = training_job()
    status = completed(tj)
    assert status.phase == "Succeeded"
    text = str(dump(status))
    assert "s3-credentials" not in text
    assert "AWS_SECRET_ACCESS_KEY" not in text


def test_parse_summary() -> None:
    assert parse_summary(None) is None
    assert parse_summary("") is None
    assert parse_summary("plain log line") is None
    assert parse_summary("[1, 2]") is None
    assert parse_summary(message(FAILURE)) == FAILURE


def test_observe_job_failed_reason() -> None:
    state = observe_job(job("Failed"))
    assert (state.phase, state.reason) == ("Failed", "BackoffLimitExceeded")


def test_merge_keeps_other_conditions() -> None:
    first = merge_conditions([], [Want("Custom", "True", "Because")], generation=1, now=NOW)
    merged = merge_conditions(first, [Want("Ready", "False", "Pending")], generation=2, now=LATER)
    assert [c.type for c in merged] == ["Ready", "Custom"]
    assert merged[0].observed_generation == 2


def test_messages_are_bounded() -> None:
    merged = merge_conditions([], [Want("Ready", "False", "X", "m" * 40000)], generation=1, now=NOW)
    assert len(merged[0].message) == 32768


def test_result_fields_come_from_the_manifest_not_the_summary(tj: TrainingJob) -> None:
    stored = {
        **SUCCESS,
        "metrics": {"accuracy": 0.91},
        "qualified": False,
        "reasons": ["accuracy 0.91 does not beat champion 2"],
        "dataset": {"uri": "s3://data/iris.csv", "fingerprint": "sha256:def", "rows": 140},
    }
    status = completed(tj, SUCCESS, manifest_read(manifest_of(stored)))
    assert status.metrics == {"accuracy": 0.91}
    assert status.qualified is False
    assert status.dataset is not None
    assert (status.dataset.fingerprint, status.dataset.rows) == ("sha256:def", 140)
    assert conditions(status)["Qualified"] == ("False", "NotQualified")
    assert "0.91" in (status.message or "")


@pytest.mark.parametrize("needs_change", [False, True])
def test_an_unreadable_manifest_keeps_the_run_running(tj: TrainingJob, needs_change: bool) -> None:
    problem = "cannot read the manifest: S3 said 503"
    status = completed(tj, read=unreadable(problem, needs_change=needs_change))
    assert status.phase == "Running"
    assert status.model is None
    assert status.completion_time is None
    got = conditions(status)
    assert got["Reconciling"] == ("True", "ManifestUnreadable")
    assert got["Stalled"] == ("True" if needs_change else "False", "ManifestUnreadable")
    assert got["Ready"] == ("False", "ManifestUnreadable")
    assert got["Succeeded"] == ("Unknown", "ManifestUnreadable")
    assert problem in (status.message or "")
    assert awaiting_manifest(status)


def test_a_run_waiting_for_its_manifest_succeeds_once_it_reads(tj: TrainingJob) -> None:
    waiting = completed(tj, read=unreadable())
    done = completed(with_status(waiting), now=LATER)
    assert done.phase == "Succeeded"
    assert not awaiting_manifest(done)
    assert conditions(done)["Reconciling"] == ("False", "Succeeded")
    assert done.completion_time == datetime(2026, 1, 1, 10, 1, 30, tzinfo=UTC)


def test_only_an_unfinished_status_with_an_unreadable_manifest_is_awaiting(tj: TrainingJob) -> None:
    assert not awaiting_manifest(status_from_job(tj, job(ready=1), None, now=NOW))
    assert not awaiting_manifest(completed(tj))
    assert not awaiting_manifest(completed(tj, read=manifest_read(kind="invalid")))
    waiting = completed(tj, read=unreadable())
    finished = waiting.model_copy(update={"phase": "Succeeded"})
    assert not awaiting_manifest(finished), "a finished run waits for nothing"


def test_an_invalid_manifest_fails_the_run(tj: TrainingJob) -> None:
    problem = "manifest of iris/3 lacks sha256; retrain to replace it"
    status = completed(tj, read=manifest_read(kind="invalid", problem=problem))
    assert status.phase == "Failed"
    assert conditions(status)["Stalled"] == ("True", "ManifestInvalid")
    assert problem in (status.message or "")
    assert status.model is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sha256", "b" * 64),
        ("version", 4),
        ("uri", "s3://continuum/models/iris/4/"),
        ("model", "wine"),
        ("trainingJob", "iris-2"),
    ],
)
def test_a_manifest_that_is_not_this_runs_fails_the_run(
    tj: TrainingJob, field: str, value: Any
) -> None:
    replaced = {**manifest_of(), field: value}
    status = completed(tj, read=manifest_read(replaced))
    assert status.phase == "Failed"
    assert conditions(status)["Stalled"] == ("True", "ManifestMismatch")
    assert repr(value) in (status.message or "")
    assert MANIFEST_URI in (status.message or "")
    assert status.model is None


def test_a_manifest_without_a_training_job_is_not_a_mismatch(tj: TrainingJob) -> None:
    status = completed(tj, read=manifest_read(manifest_of(training_job=None)))
    assert status.phase == "Succeeded"


def test_a_summary_without_a_version_fails_the_run(tj: TrainingJob) -> None:
    summary = {k: v for k, v in SUCCESS.items() if k != "version"}
    assert manifest_wanted(tj, job("Complete"), message(summary)) is None
    status = status_from_job(tj, job("Complete"), message(summary), None, now=NOW)
    assert status.phase == "Failed"
    assert conditions(status)["Stalled"] == ("True", "ResultInvalid")


def test_the_manifest_is_wanted_after_a_success_summary(tj: TrainingJob) -> None:
    assert manifest_wanted(tj, job("Complete"), message(SUCCESS)) == (3, MANIFEST_URI)


@pytest.mark.parametrize(
    ("observed", "text"),
    [
        (job(ready=1), message(SUCCESS)),
        (None, None),
        (job("Failed"), message(FAILURE)),
        (job("Failed"), message(SUCCESS)),
        (job("Complete"), None),
        (job("Complete"), "plain log line"),
        (job("Complete"), message({**SUCCESS, "version": "3"})),
        (job("Complete"), message({**SUCCESS, "version": True})),
        (job("Complete"), message({k: v for k, v in SUCCESS.items() if k != "uri"})),
    ],
    ids=[
        "running",
        "no-job",
        "failed",
        "failed-job-success-summary",
        "no-summary",
        "not-a-summary",
        "version-not-an-int",
        "version-a-bool",
        "no-uri",
    ],
)
def test_no_manifest_is_wanted_without_a_complete_job_and_a_usable_summary(
    tj: TrainingJob, observed: dict[str, Any] | None, text: str | None
) -> None:
    assert manifest_wanted(tj, observed, text) is None


def test_no_manifest_is_wanted_for_a_finished_training_job(tj: TrainingJob) -> None:
    done = with_status(completed(tj))
    assert manifest_wanted(done, job("Complete"), message(SUCCESS)) is None


def test_a_summary_champion_without_one_in_the_manifest_is_not_recorded(tj: TrainingJob) -> None:
    summary = {**SUCCESS, "champion": {"version": 2, "metrics": {"accuracy": 0.9}}}
    status = completed(tj, summary, manifest_read(manifest_of(summary)))
    assert status.champion is None


def test_data_warnings_of_the_manifest_reach_the_status(tj: TrainingJob) -> None:
    warning = "customer_id: 400 distinct values in 400 rows (100%, above 50%) looks like an id"
    manifest = manifest_of(SUCCESS) | {"warnings": [warning]}
    status = completed(tj, read=manifest_read(manifest))
    assert status.warnings == [warning]
    assert "1 data warning(s), see status.warnings" in (status.message or "")


def test_a_run_without_data_warnings_has_none_in_its_status(tj: TrainingJob) -> None:
    status = completed(tj)
    assert status.warnings == []
    assert "warning" not in (status.message or "")


def test_a_feedback_run_records_its_snapshot_counts_and_libraries(tj: TrainingJob) -> None:
    snapshot = "s3://continuum/snapshots/iris/" + "ab" * 16 + "/data.parquet"
    dataset = {**SUCCESS["dataset"], "uri": snapshot, "snapshot": snapshot,
               "feedbackRows": 120, "baseRows": 30}  # fmt: skip
    summary = {**SUCCESS, "dataset": dataset}
    manifest = manifest_of(summary) | {"libraries": {"python": "3.12.3", "scikit-learn": "1.5"}}
    status = completed(tj, summary, manifest_read(manifest))
    assert status.dataset is not None
    assert (status.dataset.snapshot, status.dataset.feedback_rows) == (snapshot, 120)
    assert status.dataset.base_rows == 30
    assert status.libraries == {"python": "3.12.3", "scikit-learn": "1.5"}
    assert dump(status)["dataset"]["feedbackRows"] == 120


def test_an_old_manifest_without_libraries_leaves_them_out(tj: TrainingJob) -> None:
    status = completed(tj)
    assert status.libraries == {}
    assert status.image is None


def test_the_image_and_its_digest_are_recorded_once_the_job_finished(tj: TrainingJob) -> None:
    digest = "sha256:" + "c" * 64
    image = image_fields("ghcr.io/x/continuum:1.2", f"ghcr.io/x/continuum@{digest}")
    assert image == {"name": "ghcr.io/x/continuum:1.2", "digest": digest}
    read = manifest_read(manifest_of(SUCCESS))
    done = status_from_job(tj, job("Complete"), message(SUCCESS), read, now=NOW, image=image)
    assert done.image is not None
    assert (done.image.name, done.image.digest) == ("ghcr.io/x/continuum:1.2", digest)
    running = status_from_job(tj, job(ready=1), None, None, now=NOW, image=image)
    assert running.image is None
    failed = status_from_job(tj, job("Failed"), message(FAILURE), None, now=NOW, image=image)
    assert failed.image is not None


@pytest.mark.parametrize(
    ("image_id", "digest"),
    [
        ("docker-pullable://repo/continuum@sha256:" + "d" * 64, "sha256:" + "d" * 64),
        ("sha256:" + "e" * 64, "sha256:" + "e" * 64),
        ("", None),
        ("repo/continuum:latest", None),
    ],
)
def test_image_ids_of_every_runtime_give_the_digest(image_id: str, digest: str | None) -> None:
    assert image_fields(None, image_id).get("digest") == digest
