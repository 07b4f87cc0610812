"""Pure rollout logic of a ModelDeployment: (spec, qualified versions, observed Deployment) -> plan.

The qualified versions are ``{version: TrainingJob name}`` of the model's Succeeded, qualified
TrainingJobs (kopf's index of them, ``versions``).

* ``resolve_version``: the version to serve — pinned, or the newest qualified version of the
  model — skipping versions whose rollout already failed.
* ``observe_deployment``: which version the Deployment runs and whether its rollout is in
  progress, complete or past its progress deadline.
* ``plan``: the version the Deployment should run next, the new status (servingVersion,
  previousVersion, bounded history, kstatus conditions) and the Events to post.

The memory of failed versions is the history itself: a version with a ``RolledBack`` record
is never rolled out again by ``latestQualified`` (nor re-tried for the same pin), so no
schema field is needed; a newer qualified version, or a different pin, moves on.

With ``spec.rollout.strategy`` other than ``Immediate`` a new version wanted while another one
serves goes through the steps of ``progressive`` first (``_progressive``): the Deployment
keeps the champion's version and runs the candidate beside it (``Plan.pods``) until the
analysis promotes it (then the Deployment runs it alone, and the usual promotion follows) or
rolls it back (a ``RolledBack`` record with the failed signal: never tried again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from continuum.api import ModelDeployment, ModelDeploymentStatus, RolloutProgress, RolloutRecord
from continuum.api import ModelDeploymentSpec as Spec
from continuum.api.vocabulary import (
    ANALYSING,
    ANALYSIS_FAILED,
    AS_EXPECTED,
    AVAILABLE,
    DEGRADED,
    EVIDENCE_UNREADABLE,
    MODEL_VERSION_LABEL,
    NO_READY_REPLICAS,
    NO_VERSION,
    PROGRESS_DEADLINE_EXCEEDED,
    PROGRESSING,
    PROMOTED,
    READY,
    RECONCILING,
    ROLLED_BACK,
    ROLLING_BACK,
    ROLLING_OUT,
    ROLLOUT_ABORTED,
    ROLLOUT_COMPLETE,
    ROLLOUT_FAILED,
    ROLLOUT_PAUSED,
    ROLLOUT_STARTED,
    ROLLOUT_STEP_LABEL,
    SCALED_TO_ZERO,
    SERVING,
    STALLED,
    WAITING_FOR_VERSION,
)
from continuum.api.vocabulary import ROLLOUT_ACTION_ANNOTATION as ROLLOUT_ACTION
from continuum.controllers.modeldeployment import progressive
from continuum.controllers.modeldeployment.analysis import Counters
from continuum.controllers.modeldeployment.children import url_of
from continuum.controllers.modeldeployment.progressive import Pods
from continuum.controllers.shared.conditions import Want, merge_conditions
from continuum.controllers.shared.objects import Event

MAX_HISTORY = 20

State = Literal["Absent", "Progressing", "Complete", "Failed"]
Outcome = Literal["Promoted", "RolledBack"]


@dataclass(frozen=True)
class Observed:
    """What the Deployment says about the version it runs."""

    state: State
    version: int | None = None
    ready_replicas: int = 0
    available: bool = False
    message: str = ""


@dataclass(frozen=True)
class Plan:
    """What to do: run ``target`` (None: create nothing yet), write ``status``, post ``events``."""

    target: int | None
    status: ModelDeploymentStatus
    events: list[Event] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    pods: Pods | None = None  # a progressive rollout's step: the candidate beside ``target``

    @property
    def deciding(self) -> bool:
        """Whether a progressive rollout gathers evidence (reconcile again soon)."""
        return self.pods is not None


def resolve_version(spec: Spec, qualified: Iterable[int], failed: Iterable[int] = ()) -> int | None:
    """The version to serve: the pin, or the newest ``qualified`` one not in ``failed``."""
    skip = set(failed)
    if spec.version.pinned is not None:
        return None if spec.version.pinned in skip else spec.version.pinned
    candidates = [v for v in qualified if v not in skip]
    return max(candidates, default=None)


def failed_versions(history: Iterable[RolloutRecord]) -> set[int]:
    """Versions whose rollout was rolled back (the memory that stops endless retries)."""
    return {record.version for record in history if record.outcome == "RolledBack"}


def observe_deployment(deployment: Mapping[str, Any] | None) -> Observed:
    """The Deployment's version and rollout state (as ``kubectl rollout status`` sees it)."""
    if deployment is None:
        return Observed("Absent")
    status = deployment.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    return Observed(
        state=_state(deployment, status, conditions),
        version=template_version(deployment),
        ready_replicas=int(status.get("readyReplicas") or 0),
        available=(conditions.get("Available") or {}).get("status") == "True",
        message=str((conditions.get(PROGRESSING) or {}).get("message") or ""),
    )


def _state(
    deployment: Mapping[str, Any], status: Mapping[str, Any], conditions: Mapping[Any, Any]
) -> State:
    generation = int(deployment.get("metadata", {}).get("generation") or 0)
    if int(status.get("observedGeneration") or 0) < generation:
        return "Progressing"
    if (conditions.get(PROGRESSING) or {}).get("reason") == PROGRESS_DEADLINE_EXCEEDED:
        return "Failed"
    wanted = int((deployment.get("spec") or {}).get("replicas", 1) or 0)
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    done = updated >= wanted and total <= updated and available >= updated
    return "Complete" if done else "Progressing"


def template_version(deployment: Mapping[str, Any]) -> int | None:
    """The model version in the Deployment's pod template label."""
    template = (deployment.get("spec") or {}).get("template") or {}
    text = str((template.get("metadata") or {}).get("labels", {}).get(MODEL_VERSION_LABEL, ""))
    return int(text) if text.isdigit() else None


@dataclass
class Draft:
    """The mutable working state of one planning step."""

    serving: int | None
    previous: int | None
    history: list[RolloutRecord]
    events: list[Event] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


@dataclass(frozen=True)
class Evidence:
    """What the servers of the current step measured (``counters`` None: nothing read), and
    what could not be read (``problem``)."""

    counters: Counters | None = None
    problem: str | None = None


def plan(
    md: ModelDeployment,
    qualified: Mapping[int, str],
    deployment: Mapping[str, Any] | None,
    *,
    now: datetime,
    evidence: Evidence | None = None,
) -> Plan:
    """The next target version, status and Events, from the full observed state
    (``qualified``: ``{version: TrainingJob name}`` of the model's qualified versions;
    ``evidence``: the servers' counters while a progressive rollout decides)."""
    obs = observe_deployment(deployment)
    draft = Draft(md.status.serving_version, md.status.previous_version, list(md.status.history))
    _promote(draft, obs, qualified, now)
    _record_failure(draft, obs, qualified, now, md.spec.rollout_deadline_seconds)
    target = _target(md.spec, qualified, draft, obs)
    found = evidence or Evidence()
    target, pods, progress = _progressive(
        md, draft, deployment, target, names=qualified, evidence=found, now=now
    )
    _announce_start(draft, obs, target)
    status = status_from(md, obs, draft, target=target, qualified=qualified, now=now,
                         progress=progress, pods=pods, problem=found.problem)  # fmt: skip
    return Plan(target, status, draft.events, draft.outcomes, pods)


def _progressive(
    md: ModelDeployment,
    draft: Draft,
    deployment: Mapping[str, Any] | None,
    target: int | None,
    *,
    names: Mapping[int, str],
    evidence: Evidence,
    now: datetime,
) -> tuple[int | None, Pods | None, RolloutProgress | None]:
    """(target, pods, status.rollout) once the progressive rollout had its say."""
    current, serving = md.status.rollout, draft.serving
    if md.spec.rollout.strategy == "Immediate" or serving is None or target in {None, serving}:
        return target, None, current
    assert target is not None
    if current is not None and (current.candidate, current.champion) == (target, serving):
        if current.verdict == "Promote":
            return target, None, current  # the candidate alone, until the promotion is recorded
        action = progressive.action_for(md.metadata.annotations.get(ROLLOUT_ACTION), target)
        unready = _unready(deployment, current, md.spec.rollout_deadline_seconds)
        nxt = progressive.step(md.spec.rollout, current, evidence.counters, action=action,
                               unready=unready, now=now)  # fmt: skip
    else:
        nxt = progressive.start(md.spec.rollout, serving, target, names.get(target), now)
    draft.events.extend(nxt.events)
    if nxt.progress.verdict == "RollBack":
        _append(draft, RolloutRecord(version=target, training_job=names.get(target), time=now,
                                     outcome="RolledBack", failed_signal=nxt.failed,
                                     message=nxt.progress.message))  # fmt: skip
        draft.outcomes.append("RolledBack")
        return serving, None, nxt.progress
    if nxt.progress.verdict == "Promote":
        return target, None, nxt.progress
    return serving, nxt.pods, nxt.progress


def _unready(
    deployment: Mapping[str, Any] | None, current: RolloutProgress, deadline: int
) -> str | None:
    """Why the step's pods failed to become ready, when the Deployment says they did."""
    if deployment is None or observe_deployment(deployment).state != "Failed":
        return None
    template = (deployment.get("spec") or {}).get("template") or {}
    step = (template.get("metadata") or {}).get("labels", {}).get(ROLLOUT_STEP_LABEL)
    if step != progressive.step_id(current.candidate, current.step):
        return None
    return (f"the server pods with version {current.candidate} beside version "
            f"{current.champion} did not become ready within {deadline}s")  # fmt: skip


def _promote(draft: Draft, obs: Observed, names: Mapping[int, str], now: datetime) -> None:
    if obs.state != "Complete" or obs.version is None or obs.version == draft.serving:
        return
    if obs.version in failed_versions(draft.history):
        return  # a rolled-back version that later became ready is still not promoted
    was = f" (was {draft.serving})" if draft.serving is not None else ""
    draft.previous, draft.serving = draft.serving, obs.version
    _append(draft, RolloutRecord(version=obs.version, training_job=names.get(obs.version),
                                 time=now, outcome="Promoted"))  # fmt: skip
    draft.events.append(Event("Normal", PROMOTED, f"version {obs.version} is serving{was}"))
    draft.outcomes.append("Promoted")


def _record_failure(
    draft: Draft, obs: Observed, names: Mapping[int, str], now: datetime, deadline: int
) -> None:
    version = obs.version
    if obs.state != "Failed" or version is None or version == draft.serving:
        return
    if version in failed_versions(draft.history):
        return
    _append(draft, RolloutRecord(version=version, training_job=names.get(version),
                                 time=now, outcome="RolledBack"))  # fmt: skip
    back = f"rolled back to version {draft.serving}" if draft.serving else "nothing to roll back to"
    message = f"version {version} did not become ready within {deadline}s; {back}"
    draft.events.append(Event("Warning", ROLLED_BACK, message))
    draft.outcomes.append("RolledBack")


def _append(draft: Draft, record: RolloutRecord) -> None:
    draft.history = [*draft.history, record][-MAX_HISTORY:]


def _target(spec: Spec, qualified: Iterable[int], draft: Draft, obs: Observed) -> int | None:
    wanted = resolve_version(spec, qualified, failed_versions(draft.history))
    if _would_downgrade(spec, wanted, draft.serving):
        # A served version stays qualified (its manifest is immutable) even when its
        # TrainingJob object is deleted: latestQualified never moves back on its own.
        wanted = draft.serving
    for choice in (wanted, draft.serving, obs.version):
        if choice is not None:
            return choice
    return None


def _would_downgrade(spec: Spec, wanted: int | None, serving: int | None) -> bool:
    if spec.version.pinned is not None or serving is None:
        return False
    return wanted is None or wanted < serving


def _announce_start(draft: Draft, obs: Observed, target: int | None) -> None:
    if target is None or target in {obs.version, draft.serving}:
        return  # nothing new, or a rollback (the RolledBack Event says so)
    serving = f" (serving {draft.serving})" if draft.serving is not None else ""
    draft.events.append(Event("Normal", ROLLOUT_STARTED, f"rolling out version {target}{serving}"))


def degraded_version(spec: Spec, qualified: Iterable[int], draft: Draft) -> int | None:
    """The version the spec asks for whose rollout failed, if that is the case."""
    wanted = resolve_version(spec, qualified)
    return wanted if wanted is not None and wanted in failed_versions(draft.history) else None


def status_from(
    md: ModelDeployment,
    obs: Observed,
    draft: Draft,
    *,
    target: int | None,
    qualified: Iterable[int],
    now: datetime,
    progress: RolloutProgress | None = None,
    pods: Pods | None = None,
    problem: str | None = None,
) -> ModelDeploymentStatus:
    """The status: versions, URL, history, the progressive rollout and kstatus conditions."""
    generation = md.metadata.generation
    failed = degraded_version(md.spec, qualified, draft)
    analysing = _analysing(progress, problem) if pods is not None else None
    wants = conditions_for(md, obs, draft, target, failed, analysing=analysing)
    return ModelDeploymentStatus(
        conditions=merge_conditions(md.status.conditions, wants, generation=generation, now=now),
        observed_generation=generation,
        serving_version=draft.serving,
        previous_version=draft.previous,
        url=url_of(md),
        ready_replicas=obs.ready_replicas if obs.state != "Absent" else None,
        history=draft.history,
        rollout=progress,
    )


def _analysing(progress: RolloutProgress | None, problem: str | None) -> Want | None:
    """Progressing while a progressive rollout's step gathers evidence (or is paused)."""
    if progress is None:
        return None
    if progress.verdict == "Paused":
        return Want(PROGRESSING, "True", ROLLOUT_PAUSED, progress.message)
    if problem is not None and progress.requests == 0:
        return Want(PROGRESSING, "True", EVIDENCE_UNREADABLE, f"{progress.message} ({problem})")
    return Want(PROGRESSING, "True", ANALYSING, progress.message)


def conditions_for(
    md: ModelDeployment,
    obs: Observed,
    draft: Draft,
    target: int | None,
    failed: int | None,
    *,
    analysing: Want | None = None,
) -> list[Want]:
    """Available / Progressing / Degraded and the kstatus Ready / Reconciling / Stalled."""
    if target is None:
        return _waiting(md)
    available = _available(obs, draft)
    degraded = _degraded(failed, draft, md.spec.rollout_deadline_seconds)
    progressing = _progressing(obs, target, degraded is not None)
    if analysing is not None and degraded is None:
        progressing = analysing
    return [available, progressing, degraded or Want(DEGRADED, "False", AS_EXPECTED),
            *_kstatus(available, progressing, degraded)]  # fmt: skip


def _waiting(md: ModelDeployment) -> list[Want]:
    pinned = md.spec.version.pinned
    what = f"version {pinned}" if pinned else f"a qualified version of model {md.spec.model}"
    message = f"waiting for {what}"
    return [
        Want(AVAILABLE, "False", NO_VERSION, message),
        Want(PROGRESSING, "False", NO_VERSION, message),
        Want(DEGRADED, "False", AS_EXPECTED),
        Want(READY, "False", NO_VERSION, message),
        Want(RECONCILING, "True", WAITING_FOR_VERSION, message),
        Want(STALLED, "False", WAITING_FOR_VERSION),
    ]


def _available(obs: Observed, draft: Draft) -> Want:
    if obs.available and obs.ready_replicas > 0 and draft.serving is not None:
        message = f"version {draft.serving} serving, {obs.ready_replicas} ready replica(s)"
        return Want(AVAILABLE, "True", SERVING, message)
    if obs.available and draft.serving is not None:
        return Want(AVAILABLE, "True", SCALED_TO_ZERO, f"version {draft.serving}, no replicas")
    return Want(AVAILABLE, "False", NO_READY_REPLICAS, "no server replica is ready")


def _degraded(failed: int | None, draft: Draft, deadline: int) -> Want | None:
    if failed is None:
        return None
    serving = f"; serving version {draft.serving}" if draft.serving is not None else ""
    record = _last_rollback(draft.history, failed)
    if record is not None and record.message:
        return Want(DEGRADED, "True", _rollback_reason(record), record.message)
    message = f"version {failed} did not become ready within {deadline}s{serving}"
    return Want(DEGRADED, "True", ROLLOUT_FAILED, message)


def _last_rollback(history: Iterable[RolloutRecord], version: int) -> RolloutRecord | None:
    found = [r for r in history if r.version == version and r.outcome == "RolledBack"]
    return found[-1] if found else None


def _rollback_reason(record: RolloutRecord) -> str:
    """AnalysisFailed (a signal), RolloutAborted (the annotation), else RolloutFailed."""
    if record.failed_signal is not None:
        return ANALYSIS_FAILED
    if record.message and progressive.ABORTED in record.message:
        return ROLLOUT_ABORTED
    return ROLLOUT_FAILED


def _progressing(obs: Observed, target: int, degraded: bool) -> Want:
    if obs.version != target or obs.state == "Progressing":
        reason = ROLLING_BACK if degraded else ROLLING_OUT
        return Want(PROGRESSING, "True", reason, f"rolling out version {target}")
    if obs.state == "Failed":
        return Want(PROGRESSING, "False", PROGRESS_DEADLINE_EXCEEDED, obs.message)
    reason = ROLLED_BACK if degraded else ROLLOUT_COMPLETE
    return Want(PROGRESSING, "False", reason, f"version {target} rolled out")


def _kstatus(available: Want, progressing: Want, degraded: Want | None) -> list[Want]:
    if degraded is not None:
        return [
            Want(READY, "False", degraded.reason, degraded.message),
            Want(RECONCILING, progressing.status, progressing.reason, progressing.message),
            Want(STALLED, "True", degraded.reason, degraded.message),
        ]
    if progressing.status == "True":
        return [
            Want(READY, "False", progressing.reason, progressing.message),
            Want(RECONCILING, "True", progressing.reason, progressing.message),
            Want(STALLED, "False", progressing.reason),
        ]
    return [
        Want(READY, available.status, available.reason, available.message),
        Want(RECONCILING, "False", available.reason),
        Want(STALLED, "False", available.reason),
    ]
