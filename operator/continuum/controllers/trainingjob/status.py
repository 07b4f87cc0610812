"""Pure status logic of a TrainingJob: (TrainingJob, observed Job, trainer summary, manifest
read) -> status.

The trainer writes a JSON summary to its termination message (a success: see
``continuum.trainer.result``; a failure: ``continuum.workload.failure_summary``). A failed run's
reason comes from it. A successful run's summary only points at the version: the
result fields are taken from that version's manifest in S3 (``manifest.ManifestRead``), after
checking that it is the one the summary names (model, version, sha256, TrainingJob). While the
manifest cannot be read the run stays Running with ``Reconciling`` (reason
``ManifestUnreadable``, ``Stalled`` when only a change of Secret, bucket or certificate can fix
it); a damaged or mismatching manifest fails the run. Phases only move forward
(Pending -> Running -> Succeeded | Failed) and a finished TrainingJob never changes, so a stale
observation can neither undo progress nor rewrite a result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from continuum.api import TrainingJob, TrainingJobStatus, dump, load
from continuum.api.common import CONDITION_REASON, first_error
from continuum.api.vocabulary import (
    JOB_FAILED,
    MANIFEST_UNREADABLE,
    NOT_QUALIFIED,
    QUALIFIED,
    READY,
    RECONCILING,
    STALLED,
    SUCCEEDED,
    TRAINING_FAILED,
    TRAINING_SUCCEEDED,
)
from continuum.controllers.shared.conditions import Status, Want, find, merge_conditions
from continuum.controllers.shared.pods import parse_summary
from continuum.controllers.trainingjob.job import job_name
from continuum.controllers.trainingjob.manifest import ManifestRead

Phase = Literal["Pending", "Running", "Succeeded", "Failed"]
RANK: dict[str | None, int] = {None: 0, "Pending": 1, "Running": 2, "Succeeded": 3, "Failed": 3}
TERMINAL = frozenset({"Succeeded", "Failed"})
MAX_STATUS_MESSAGE = 4096
MAX_LOG_TAIL = 500
MAX_WARNINGS, MAX_WARNING = 10, 512  # TrainingJobStatus.warnings' bounds
MAX_LIBRARIES, MAX_LIBRARY_VERSION = 8, 64  # TrainingJobStatus.libraries' bounds
DIGEST = re.compile(r"sha256:[a-f0-9]{64}$")
# Summary fields that must agree with the manifest of the version it names.
CHECKED_FIELDS = ("model", "version", "uri", "sha256")


@dataclass(frozen=True)
class JobState:
    """What the batch Job says about the run."""

    phase: Phase
    reason: str
    message: str
    start_time: str | None = None
    completion_time: str | None = None


@dataclass(frozen=True)
class Outcome:
    """The phase, wanted conditions and result fields derived from one observation."""

    phase: Phase
    wants: list[Want]
    message: str
    result: dict[str, Any] = field(default_factory=dict)


def is_terminal(status: TrainingJobStatus) -> bool:
    """Whether the TrainingJob has finished (its status no longer changes)."""
    return status.phase in TERMINAL


def status_from_job(
    tj: TrainingJob,
    job: Mapping[str, Any] | None,
    pod_termination_message: str | None,
    manifest: ManifestRead | None = None,
    *,
    now: datetime | None = None,
    image: Mapping[str, str] | None = None,
) -> TrainingJobStatus:
    """The status ``tj`` should have, given its Job (or None), the trainer's message and the
    read of the manifest it names (``manifest_wanted`` says when one is needed), and the
    image the trainer's pod ran (``image_fields``: recorded once the Job has finished)."""
    if is_terminal(tj.status):
        return tj.status
    state = observe_job(job)
    if RANK[state.phase] < RANK[tj.status.phase]:
        return tj.status
    summary = parse_summary(pod_termination_message)
    outcome = outcome_of(state, summary, pod_termination_message)
    if outcome.phase == "Succeeded" and summary is not None:
        outcome = verified(tj, summary, manifest)
    if image and outcome.phase in TERMINAL:
        outcome = replace(outcome, result={**outcome.result, "image": dict(image)})
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    try:
        return _status(tj, job, state, outcome, moment)
    except ValidationError as exc:
        bad = _failed(
            "ResultInvalid",
            f"the run's result (its summary or manifest) is invalid: {first_error(exc)}",
        )
        return _status(tj, job, state, bad, moment)


def _status(
    tj: TrainingJob,
    job: Mapping[str, Any] | None,
    state: JobState,
    outcome: Outcome,
    now: datetime,
) -> TrainingJobStatus:
    generation = tj.metadata.generation
    data = {
        "observedGeneration": generation,
        "phase": outcome.phase,
        "jobName": (job or {}).get("metadata", {}).get("name") or job_name(tj),
        "startTime": state.start_time,
        "completionTime": state.completion_time if outcome.phase in TERMINAL else None,
        "message": outcome.message[:MAX_STATUS_MESSAGE] or None,
        **outcome.result,
    }
    status = load(TrainingJobStatus, {k: v for k, v in data.items() if v is not None})
    conditions = merge_conditions(
        tj.status.conditions, outcome.wants, generation=generation, now=now
    )
    return status.model_copy(update={"conditions": conditions})


def observe_job(job: Mapping[str, Any] | None) -> JobState:
    """The run's phase as the batch Job reports it."""
    if job is None:
        return JobState("Pending", "JobPending", "the training Job is being created")
    status = job.get("status") or {}
    start, name = status.get("startTime"), job.get("metadata", {}).get("name", "")
    done = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in done:
        end = status.get("completionTime") or done["Complete"].get("lastTransitionTime")
        return JobState("Succeeded", "JobComplete", f"Job {name} completed", start, end)
    if "Failed" in done:
        return _job_failed(done["Failed"], start)
    if status.get("ready") or 0:
        return JobState("Running", "Training", f"Job {name} is training", start)
    # No start time while Pending: the Job controller sets it moments after creation, and
    # recording it would cost a status write that tells nothing (it comes with Running).
    return JobState("Pending", "JobPending", f"Job {name} is starting")


def _job_failed(condition: Mapping[str, Any], start: str | None) -> JobState:
    reason = condition.get("reason") or JOB_FAILED
    message = condition.get("message") or "the training Job failed"
    return JobState("Failed", reason, message, start, condition.get("lastTransitionTime"))


def manifest_wanted(
    tj: TrainingJob, job: Mapping[str, Any] | None, pod_termination_message: str | None
) -> tuple[int, str] | None:
    """(version, manifest URI) to read when the run completed with a success summary."""
    if is_terminal(tj.status) or observe_job(job).phase != "Succeeded":
        return None
    summary = parse_summary(pod_termination_message)
    if summary is None or summary.get("status") != "Succeeded":
        return None
    version, uri = summary.get("version"), summary.get("uri")
    if not isinstance(version, int) or isinstance(version, bool) or not isinstance(uri, str):
        return None  # verified() fails the run saying so
    return version, uri.rstrip("/") + "/manifest.json"


def verified(tj: TrainingJob, summary: Mapping[str, Any], read: ManifestRead | None) -> Outcome:
    """The outcome of a completed run, from its manifest once read and checked."""
    if read is None:
        return _failed(
            "ResultInvalid",
            "the trainer's summary does not say which version it wrote (an integer version "
            "and a uri)",
        )
    if read.kind == "unreadable":
        return _awaiting_manifest(read)
    if read.kind == "invalid" or read.manifest is None:
        return _failed("ManifestInvalid", read.problem or f"the manifest {read.uri} is invalid")
    mismatch = manifest_mismatch(tj, summary, read.manifest)
    if mismatch:
        return _failed("ManifestMismatch", f"the manifest {read.uri} {mismatch}")
    return _succeeded(summary_of_manifest(read.manifest))


def manifest_mismatch(
    tj: TrainingJob, summary: Mapping[str, Any], manifest: Mapping[str, Any]
) -> str:
    """Why ``manifest`` is not the one this run wrote ('' when it is)."""
    for name in CHECKED_FIELDS:
        if manifest.get(name) != summary.get(name):
            return (
                f"says {name} {manifest.get(name)!r} where the trainer reported "
                f"{summary.get(name)!r}: it was replaced after training; do not serve it"
            )
    owner, mine = manifest.get("trainingJob"), tj.metadata.name
    if owner is not None and owner != mine:
        return f"was written by TrainingJob {owner!r}, not {mine!r}"
    return ""


def summary_of_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The success summary's fields, as the manifest records them."""
    evaluation = manifest.get("evaluation") or {}
    dataset = manifest.get("dataset") or {}
    return {
        **{name: manifest.get(name) for name in CHECKED_FIELDS},
        "metric": evaluation.get("metric"),
        "metrics": manifest.get("metrics"),
        "qualified": manifest.get("qualified"),
        "reasons": evaluation.get("reasons") or [],
        "dataset": dataset_fields(dataset),
        "champion": evaluation.get("champion"),
        "warnings": manifest.get("warnings") or [],
        "libraries": manifest.get("libraries") or {},
        **_manifest_search(manifest.get("search")),
    }


def _awaiting_manifest(read: ManifestRead) -> Outcome:
    """Job complete, result not yet confirmed: Running, retried until the manifest reads."""
    message = f"the training Job completed; {read.problem}; the operator keeps retrying"
    stalled: Status = "True" if read.needs_change else "False"
    wants = [
        Want(READY, "False", MANIFEST_UNREADABLE, message),
        Want(RECONCILING, "True", MANIFEST_UNREADABLE, message),
        Want(STALLED, stalled, MANIFEST_UNREADABLE, message if read.needs_change else ""),
        Want(SUCCEEDED, "Unknown", MANIFEST_UNREADABLE, message),
        Want(QUALIFIED, "Unknown", MANIFEST_UNREADABLE),
    ]
    return Outcome("Running", wants, message)


def awaiting_manifest(status: TrainingJobStatus) -> bool:
    """Whether ``status`` waits for a manifest that could not be read yet."""
    reconciling = find(status.conditions, RECONCILING)
    waiting = reconciling is not None and reconciling.reason == MANIFEST_UNREADABLE
    return waiting and status.phase not in TERMINAL


def outcome_of(state: JobState, summary: Mapping[str, Any] | None, raw: str | None) -> Outcome:
    """Phase, conditions and result fields for one observation of the Job."""
    if state.phase == "Succeeded":
        if summary is not None and summary.get("status") == "Succeeded":
            return _succeeded(summary)
        return _failed("ResultMissing", "the training Job completed without a result summary")
    if state.phase == "Failed":
        if summary is not None and summary.get("status") == "Failed":
            return _failed(str(summary.get("reason", "")), str(summary.get("message", "")))
        return _failed(state.reason, _with_tail(state.message, raw))
    return _in_progress(state)


def _in_progress(state: JobState) -> Outcome:
    wants = [
        Want(READY, "False", state.reason, state.message),
        Want(RECONCILING, "True", state.reason, state.message),
        Want(STALLED, "False", state.reason),
        Want(SUCCEEDED, "Unknown", state.reason, state.message),
        Want(QUALIFIED, "Unknown", state.reason),
    ]
    return Outcome(state.phase, wants, state.message)


def _succeeded(summary: Mapping[str, Any]) -> Outcome:
    qualified = summary.get("qualified") is True
    message = _success_message(summary, qualified)
    gate = "; ".join(str(r) for r in summary.get("reasons") or [])
    wants = [
        Want(READY, "True", SUCCEEDED, message),
        Want(RECONCILING, "False", SUCCEEDED),
        Want(STALLED, "False", SUCCEEDED),
        Want(SUCCEEDED, "True", TRAINING_SUCCEEDED, message),
        Want(QUALIFIED, "True" if qualified else "False", _gate_reason(qualified), gate),
    ]
    return Outcome("Succeeded", wants, message, result_fields(summary))


def _failed(reason: str, message: str) -> Outcome:
    reason = reason if re.match(CONDITION_REASON, reason) else TRAINING_FAILED
    message = message or reason
    wants = [
        Want(READY, "False", reason, message),
        Want(RECONCILING, "False", reason),
        Want(STALLED, "True", reason, message),
        Want(SUCCEEDED, "False", reason, message),
        Want(QUALIFIED, "False", TRAINING_FAILED, "no model was produced"),
    ]
    return Outcome("Failed", wants, f"{reason}: {message}")


def _gate_reason(qualified: bool) -> str:
    return QUALIFIED if qualified else NOT_QUALIFIED


def result_fields(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The status result fields (camelCase JSON) from a success summary."""
    dataset = summary.get("dataset") or {}
    fields: dict[str, Any] = {
        "model": {k: summary.get(k) for k in ("version", "uri", "sha256")},
        "metrics": _numbers(summary.get("metrics")),
        "dataset": dataset_fields(dataset),
        "qualified": summary.get("qualified") is True,
    }
    if data_warnings(summary):
        fields["warnings"] = data_warnings(summary)
    if libraries_of(summary):
        fields["libraries"] = libraries_of(summary)
    search = summary.get("search")
    if isinstance(search, Mapping):
        fields["search"] = search_fields(search)
    champion = summary.get("champion")
    if isinstance(champion, Mapping) and champion.get("version") is not None:
        fields["champion"] = {
            "version": champion["version"],
            "metrics": _numbers(champion.get("metrics")),
        }
    # A None in search.bestParams (class_weight: null) is dropped too: the status is written
    # as a JSON merge patch, where null deletes the key, so status could never hold it (and a
    # planned null would differ from every read, a write per reconcile). The manifest keeps it.
    return {k: _drop_none(v) for k, v in fields.items()}


def search_fields(search: Mapping[str, Any]) -> dict[str, Any]:
    """status.search from the summary's search: trials, failed, best params and score."""
    params = search.get("bestParams")
    score = search.get("bestScore")
    fields = {
        "trials": search.get("trials"),
        "failed": search.get("failed"),
        "bestParams": dict(params) if isinstance(params, Mapping) else {},
        "bestScore": score
        if isinstance(score, int | float) and not isinstance(score, bool)
        else None,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _manifest_search(search: Any) -> dict[str, Any]:
    if not isinstance(search, Mapping) or not isinstance(search.get("best"), Mapping):
        return {}
    best = search["best"]
    found = {"trials": search.get("planned"), "failed": search.get("failed"),
             "bestParams": best.get("params"), "bestScore": best.get("score")}  # fmt: skip
    return {"search": found}


def dataset_fields(dataset: Mapping[str, Any]) -> dict[str, Any]:
    """status.dataset from the summary's or manifest's dataset: fingerprint and rows, and
    for a streamed dataset its mode and the size of the sample an estimator was fitted on."""
    fields = {"fingerprint": dataset.get("fingerprint"), "rows": dataset.get("rows")}
    mode = dataset.get("mode")
    if mode in ("memory", "stream"):
        fields["mode"] = mode
    for name in ("sampledRows", "feedbackRows", "baseRows"):
        if _count(dataset.get(name)):
            fields[name] = dataset[name]
    snapshot = dataset.get("snapshot")
    if isinstance(snapshot, str) and snapshot.startswith("s3://"):
        fields["snapshot"] = snapshot
    return fields


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def libraries_of(summary: Mapping[str, Any]) -> dict[str, str]:
    """status.libraries: the versions the trainer reported (at most 8, 64 characters each)."""
    found = summary.get("libraries")
    if not isinstance(found, Mapping):
        return {}
    items = sorted((str(k), str(v)[:MAX_LIBRARY_VERSION]) for k, v in found.items())
    return dict(items[:MAX_LIBRARIES])


def image_fields(image: str | None, image_id: str | None) -> dict[str, str]:
    """status.image from the pod's ``image`` and ``imageID``: the name and the sha256 digest
    (``docker.io/x/continuum@sha256:…``, ``docker-pullable://…@sha256:…`` or a bare
    ``sha256:…``, the image's id where the kubelet knows no repository digest)."""
    fields = {"name": image[:512]} if image else {}
    found = DIGEST.search(image_id or "")
    return fields | ({"digest": found.group(0)} if found else {})


def data_warnings(summary: Mapping[str, Any]) -> list[str]:
    """The manifest's data warnings as status.warnings holds them (10, 512 characters each)."""
    items = summary.get("warnings")
    if not isinstance(items, list):
        return []
    return [str(item)[:MAX_WARNING] for item in items[:MAX_WARNINGS]]


def _success_message(summary: Mapping[str, Any], qualified: bool) -> str:
    metric = summary.get("metric")
    value = _numbers(summary.get("metrics")).get(str(metric))
    score = f", {metric} {value:.4g}" if value is not None else ""
    verdict = "qualified" if qualified else "not qualified"
    warned = len(data_warnings(summary))
    notes = f"; {warned} data warning(s), see status.warnings" if warned else ""
    return f"model {summary.get('model')} version {summary.get('version')}{score}, {verdict}{notes}"


def _numbers(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        return {}
    items = ((str(k), v) for k, v in value.items())
    return {k: float(v) for k, v in items if isinstance(v, int | float) and not isinstance(v, bool)}


def _drop_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def _with_tail(message: str, raw: str | None) -> str:
    lines = [line for line in (raw or "").splitlines() if line.strip()]
    if not lines:
        return message
    return f"{message}; last output: {lines[-1][-MAX_LOG_TAIL:]}"


def same_status(a: TrainingJobStatus, b: TrainingJobStatus) -> bool:
    """Whether two statuses serialise identically (then no write is needed)."""
    return dump(a) == dump(b)
