"""Pure step machine of a progressive rollout: (spec, status.rollout, counters) -> next one.

``stages_of`` lists the steps the strategy asks for (shadow, then each canary weight);
``step`` takes the rollout as status last recorded it and what the servers measured since,
and returns the rollout to record, the verdict and what the pods should run (``Pods``).
Everything a restarted operator needs is in ``status.rollout``: the step, when it started
(its minimum time is not restarted) and the candidate; the counters are read again from the
same pods.

Manual controls: the ``continuum.dev/rollout-action`` annotation ``promote-<version>`` or
``abort-<version>`` acts on that candidate only (a stale annotation never acts on a later
one); ``spec.rollout.paused`` holds the step (a failing signal still rolls back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from continuum.api import RolloutProgress, RolloutSpec
from continuum.api.rollout import Signal
from continuum.api.vocabulary import (
    ANALYSIS_FAILED,
    ROLLOUT_ABORT,
    ROLLOUT_ABORTED,
    ROLLOUT_PROMOTE,
    ROLLOUT_STEP,
)
from continuum.controllers.modeldeployment.analysis import Counters, Decision, Stage, decide
from continuum.controllers.modeldeployment.analysis import requests_of as counted
from continuum.controllers.shared.objects import Event

PROMOTE = ROLLOUT_PROMOTE
ABORT = ROLLOUT_ABORT
ABORTED = "aborted by the continuum.dev/rollout-action annotation"  # the records' wording


@dataclass(frozen=True)
class Pods:
    """What the server pods of a step run: the champion, and the candidate beside it."""

    champion: int
    candidate: int
    weight: int  # percent of requests the candidate answers (0: shadow)
    step_id: str  # the counters' key: a pod counts only for the step it was started for


@dataclass(frozen=True)
class Step:
    """The outcome of one look at a rollout."""

    progress: RolloutProgress
    pods: Pods | None  # None: the candidate alone (Promote) or the champion alone (RollBack)
    events: list[Event]
    failed: Signal | None = None


def stages_of(spec: RolloutSpec) -> list[Stage]:
    """The steps of the strategy (``Immediate``: none)."""
    shadow = Stage("Shadow", 0, spec.shadow.min_requests, spec.shadow.min_seconds)
    canary = [Stage(f"Canary {s.weight}%", s.weight, s.min_requests, s.min_seconds)
              for s in spec.canary.steps]  # fmt: skip
    return {
        "Immediate": [],
        "Shadow": [shadow],
        "Canary": canary,
        "ShadowThenCanary": [shadow, *canary],
    }[spec.strategy]


def step_id(candidate: int, index: int) -> str:
    return f"v{candidate}-step{index}"


def action_for(annotation: str | None, candidate: int) -> str | None:
    """``promote`` or ``abort`` when the annotation names this candidate, else None."""
    if not annotation:
        return None
    verb, _, version = annotation.strip().partition("-")
    if version == str(candidate) and verb in {PROMOTE, ABORT}:
        return verb
    return None


def start(
    spec: RolloutSpec, champion: int, candidate: int, training_job: str | None, now: datetime
) -> Step:
    """Step 0 of a new rollout of ``candidate`` beside ``champion``."""
    stages = stages_of(spec)
    progress = _at(stages, 0, champion, candidate, training_job=training_job, now=now)
    message = f"version {candidate} {_describe(stages[0])} beside version {champion}"
    return Step(progress, _pods(progress), [Event("Normal", ROLLOUT_STEP, message)])


def step(
    spec: RolloutSpec,
    current: RolloutProgress,
    counters: Counters | None,
    *,
    action: str | None,
    unready: str | None,
    now: datetime,
) -> Step:
    """The next state of ``current`` (a rollout still deciding) from what was measured.

    ``unready``: why the step's pods did not become ready in time (None: they did or are
    still within their deadline) — a candidate that fails to load rolls back.
    """
    stages = stages_of(spec)
    index = min(current.step, len(stages) - 1)
    stage = stages[index]
    manual = _manual(current, action)
    if manual is not None:
        return manual
    if unready is not None:
        decision = Decision("RollBack", list(current.evidence), f"{stage.name}: {unready}")
    else:
        last = index == len(stages) - 1
        decision = decide(counters, stage, spec.analysis, started=current.step_started_at,
                          now=now, last=last, paused=spec.paused)  # fmt: skip
    return _apply(stages, index, current, counters, decision, now=now)


def _manual(current: RolloutProgress, action: str | None) -> Step | None:
    who = "by the continuum.dev/rollout-action annotation"
    if action == PROMOTE:
        message = f"version {current.candidate} promoted now {who}"
        progress = current.model_copy(update={"verdict": "Promote", "message": message})
        return Step(progress, None, [Event("Normal", ROLLOUT_STEP, message)])
    if action == ABORT:
        message = f"version {current.candidate} {ABORTED}; version {current.champion} serves"
        progress = current.model_copy(update={"verdict": "RollBack", "message": message})
        return Step(progress, None, [Event("Warning", ROLLOUT_ABORTED, message)])
    return None


def _apply(
    stages: list[Stage],
    index: int,
    current: RolloutProgress,
    counters: Counters | None,
    decision: Decision,
    *,
    now: datetime,
) -> Step:
    measured = _measured(current, counters, decision, stages[index])
    if decision.verdict == "Advance":
        progress = _at(stages, index + 1, current.champion, current.candidate,
                       training_job=current.training_job, now=now)  # fmt: skip
        message = f"{decision.message}; version {current.candidate} {_describe(stages[index + 1])}"
        progress = progress.model_copy(update={"message": message})
        return Step(progress, _pods(progress), [Event("Normal", ROLLOUT_STEP, message)])
    if decision.verdict == "Promote":
        message = f"{decision.message}; promoting version {current.candidate}"
        progress = measured.model_copy(update={"message": message})
        return Step(progress, None, [Event("Normal", ROLLOUT_STEP, message)])
    if decision.verdict == "RollBack":
        message = f"{decision.message}; version {current.champion} takes all traffic again"
        progress = measured.model_copy(update={"message": message})
        event = Event("Warning", ANALYSIS_FAILED, message)
        return Step(progress, None, [event], decision.failed)
    return Step(measured, _pods(measured), [])


def _measured(
    current: RolloutProgress, counters: Counters | None, decision: Decision, stage: Stage
) -> RolloutProgress:
    compared = counters.compared_rows if counters is not None else current.compared
    requests = counted(counters, stage) if counters is not None else current.requests
    return current.model_copy(
        update={
            "requests": requests,
            "compared": compared,
            "evidence": decision.evidence,
            "verdict": decision.verdict,
            "message": decision.message,
        }
    )


def _at(
    stages: list[Stage],
    index: int,
    champion: int,
    candidate: int,
    *,
    training_job: str | None,
    now: datetime,
) -> RolloutProgress:
    stage = stages[index]
    return RolloutProgress(
        candidate=candidate,
        champion=champion,
        training_job=training_job,
        step=index,
        steps=len(stages),
        step_name=stage.name,
        weight=stage.weight,
        step_started_at=now,
        verdict="Wait",
        message=f"{stage.name} started",
    )


def _pods(progress: RolloutProgress) -> Pods:
    return Pods(progress.champion, progress.candidate, progress.weight,
                step_id(progress.candidate, progress.step))  # fmt: skip


def _describe(stage: Stage) -> str:
    if stage.shadow:
        return "in shadow (scores a copy of every request, answers none)"
    return f"answers {stage.weight}% of requests"


def deciding(progress: RolloutProgress | None) -> bool:
    """Whether ``progress`` is a rollout still gathering evidence (not Promote or RollBack)."""
    return progress is not None and progress.verdict not in {"Promote", "RollBack"}
