"""ModelDeployment ``spec.rollout`` and ``status.rollout``: progressive delivery (issue 18).

A new version proves itself on live traffic before it takes over: in ``Shadow`` it scores a
copy of every request and its answers are compared with the champion's, never returned; in
``Canary`` it answers a growing share of requests (the steps' weights). At every step the
servers' own counters are compared with the analysis thresholds: a failed signal rolls the
candidate back (the champion takes all traffic again and the candidate is never retried
automatically), a step with enough evidence and every signal passing advances, the last one
promotes. ``Immediate`` (the default) is the behaviour from before: the new version replaces
the champion by a rolling update.

How the servers split and compare traffic is in docs/architecture.md ("Progressive delivery").
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from continuum.api.common import ApiModel, cel, dump, nested, validations

Strategy = Literal["Immediate", "Shadow", "Canary", "ShadowThenCanary"]
Signal = Literal["errorRate", "latencyRatio", "agreement", "distributionDistance", "realisedDrop"]
Verdict = Literal["Wait", "Advance", "Promote", "RollBack", "Paused"]
STEP_WEIGHTS_MESSAGE = "rollout.canary.steps: weights must increase from step to step"


class ShadowStage(ApiModel):
    """The shadow stage: the candidate scores a copy of every request; it ends once both hold."""

    min_requests: int = Field(
        200, ge=1, le=100_000_000, description="Requests the candidate must have scored."
    )
    min_seconds: int = Field(60, ge=0, le=86_400, description="Seconds the stage lasts at least.")


class CanaryStep(ApiModel):
    """One canary step: the candidate answers ``weight`` percent of requests."""

    weight: int = Field(ge=1, le=99, description="Percent of requests the candidate answers.")
    min_requests: int = Field(
        100, ge=1, le=100_000_000, description="Requests the candidate must have answered."
    )
    min_seconds: int = Field(30, ge=0, le=86_400, description="Seconds the step lasts at least.")


def _default_steps() -> list[CanaryStep]:
    return [CanaryStep(weight=10), CanaryStep(weight=50)]


MAX_STEPS = 10


def _increasing_rule(steps: int) -> str:
    """CEL: each step's weight above the one before (list indexing: the API server's CEL has
    no ranges, and ``map`` over a list is beyond what our schema checks can follow)."""
    pairs = (
        f"(size(self.steps) <= {i} || self.steps[{i - 1}].weight < self.steps[{i}].weight)"
        for i in range(1, steps)
    )
    return " && ".join(pairs)


class Canary(ApiModel):
    """The canary steps; after the last one the candidate is promoted (100%)."""

    model_config = ConfigDict(
        json_schema_extra=validations(cel(_increasing_rule(MAX_STEPS), STEP_WEIGHTS_MESSAGE))
    )

    steps: list[CanaryStep] = Field(
        default_factory=_default_steps,
        min_length=1,
        max_length=MAX_STEPS,
        description="Steps in order, weights increasing (default 10% then 50%).",
        json_schema_extra={"default": [dump(step) for step in _default_steps()]},
    )

    @model_validator(mode="after")
    def _increasing(self) -> Canary:
        weights = [step.weight for step in self.steps]
        if any(b <= a for a, b in pairwise(weights)):
            raise ValueError(STEP_WEIGHTS_MESSAGE)
        return self


class Analysis(ApiModel):
    """Thresholds of the signals the servers measure; a signal outside its threshold fails."""

    max_error_rate: float = Field(
        0.01, ge=0, le=1, description="Highest share of the candidate's requests that fail."
    )
    max_latency_ratio: float = Field(
        1.5,
        ge=1,
        le=100,
        description="Highest p99 scoring latency of the candidate over the champion's.",
    )
    min_agreement: float = Field(
        0.95,
        ge=0,
        le=1,
        description="Lowest share of requests the candidate answers as the champion does.",
    )
    max_distribution_distance: float = Field(
        0.1,
        ge=0,
        le=100,
        description=(
            "Highest distance between the two prediction distributions: total variation of "
            "the label shares (classifiers), difference of means in champion standard "
            "deviations (regressors)."
        ),
    )
    regression_tolerance: float = Field(
        0.05,
        ge=0,
        le=100,
        description="Regressors: answers agree when their relative difference is at most this.",
    )
    max_realised_drop: float = Field(
        0.05,
        ge=0,
        le=100,
        description=(
            "When labels come back during a step (the feedback endpoint): highest loss of the "
            "candidate against the champion on the same labelled rows. Classifiers: accuracy "
            "points (0.05: five points); regressors: relative increase of the mean absolute "
            "error (0.05: 5% larger)."
        ),
    )
    min_labels: int = Field(
        30,
        ge=1,
        le=1_000_000,
        description=(
            "Labelled rows needed before realisedDrop is judged; with fewer (or no labels at "
            "all) the signal is shown, not judged, and never holds a step."
        ),
    )


class RolloutSpec(ApiModel):
    """How a new version replaces the serving one."""

    strategy: Strategy = Field(
        "Immediate",
        description=(
            "Immediate: a rolling update to the new version. Shadow: shadow stage, then "
            "promotion. Canary: canary steps, then promotion. ShadowThenCanary: both."
        ),
    )
    shadow: ShadowStage = nested(ShadowStage, "The shadow stage.")
    canary: Canary = nested(Canary, "The canary steps.")
    analysis: Analysis = nested(Analysis, "Analysis thresholds, evaluated at every step.")
    paused: bool = Field(False, description="Hold the current step: nothing is decided.")


class SignalEvidence(ApiModel):
    """One signal as measured at the current step, with its threshold."""

    signal: Signal = Field(description="Which signal.")
    value: float | None = Field(None, description="Measured value (absent: not measurable yet).")
    threshold: float = Field(description="The threshold it is compared with.")
    passed: bool | None = Field(None, description="Whether it passes (absent: too few requests).")


class RolloutProgress(ApiModel):
    """The rollout under way (or the last one decided), as the operator last measured it."""

    candidate: int = Field(ge=1, description="The version being rolled out.")
    champion: int = Field(ge=1, description="The version serving while it proves itself.")
    training_job: str | None = Field(
        None, max_length=253, description="TrainingJob that produced the candidate."
    )
    step: int = Field(ge=0, le=16, description="Current step, 0-based.")
    steps: int = Field(ge=1, le=16, description="Number of steps before promotion.")
    step_name: str = Field(max_length=64, description="Shadow, or Canary <weight>%.")
    weight: int = Field(ge=0, le=100, description="Percent of requests the candidate answers.")
    step_started_at: datetime = Field(description="When the current step started.")
    requests: int = Field(0, ge=0, description="Candidate requests counted at this step.")
    compared: int = Field(0, ge=0, description="Requests both versions scored at this step.")
    evidence: list[SignalEvidence] = Field(
        default_factory=list, max_length=8, description="Each signal with its threshold."
    )
    verdict: Verdict = Field("Wait", description="What the analysis decided.")
    message: str = Field("", max_length=1024, description="Why.")
