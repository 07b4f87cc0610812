"""rollout.plan with spec.rollout (issue 18): the Deployment keeps the champion and runs the
candidate beside it step by step, the analysis rolls back or promotes, and Immediate stays the
plan it always was."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from continuum.api import ModelDeployment, dump, load
from continuum.controllers.modeldeployment.analysis import Counters, VersionCounts
from continuum.controllers.modeldeployment.children import desired_deployment
from continuum.controllers.modeldeployment.progressive import Pods
from continuum.controllers.modeldeployment.rollout import Evidence, Plan, plan
from tests.unit.controllers.modeldeployment.builders import NOW, deployment, md_body

QUALIFIED = {1: "iris-1", 2: "iris-2"}
LATER = NOW + timedelta(hours=1)
PROMOTED_1 = {"version": 1, "trainingJob": "iris-1", "time": "2026-02-01T00:00:00Z",
              "outcome": "Promoted"}  # fmt: skip


def md(rollout: dict[str, Any] | None = None, status: dict[str, Any] | None = None,
       annotations: dict[str, str] | None = None) -> ModelDeployment:  # fmt: skip
    body = md_body(status={"servingVersion": 1, "history": [PROMOTED_1], **(status or {})},
                   rollout={"strategy": "ShadowThenCanary", **(rollout or {})})  # fmt: skip
    body["metadata"]["annotations"] = annotations or {}
    return load(ModelDeployment, body)


def counters(step: str, agreed: int = 1000) -> Counters:
    side = VersionCounts(1000, 1000, 0, (0, 1000, 0), {"setosa": 1000})
    return Counters(step, (0.001, 0.002), side, side, 1000, agreed)


def again(previous: ModelDeployment, step: Plan, **kwargs: Any) -> Plan:
    """The next reconcile: the status the last one wrote, read back."""
    body = md_body(status=dump(step.status), rollout=dump(previous.spec.rollout))
    body["metadata"]["annotations"] = kwargs.pop("annotations", {})
    live = kwargs.pop("deployment", deployment(1))
    return plan(load(ModelDeployment, body), QUALIFIED, live, now=kwargs.pop("now", LATER),
                **kwargs)  # fmt: skip


def reasons(step: Plan) -> dict[str, str]:
    return {c.type: c.reason for c in step.status.conditions}


def test_immediate_rolls_the_new_version_out_at_once() -> None:
    step = plan(md({"strategy": "Immediate"}), QUALIFIED, deployment(1), now=NOW)
    assert (step.target, step.pods, step.status.rollout) == (2, None, None)
    assert not step.deciding


def test_a_new_version_starts_in_shadow_beside_the_champion() -> None:
    step = plan(md(), QUALIFIED, deployment(1), now=NOW)
    assert step.target == 1, "the Deployment keeps the champion's version"
    assert step.pods == Pods(champion=1, candidate=2, weight=0, step_id="v2-step0")
    assert step.deciding
    progress = step.status.rollout
    assert progress is not None
    assert (progress.candidate, progress.champion, progress.training_job) == (2, 1, "iris-2")
    assert (progress.step_name, progress.steps) == ("Shadow", 3)
    assert reasons(step)["Progressing"] == "Analysing"
    assert reasons(step)["Ready"] == "Analysing"
    assert [e.reason for e in step.events] == ["RolloutStep"]


def test_the_first_version_has_nothing_to_be_compared_with() -> None:
    first = md(status={"servingVersion": None, "history": []})
    step = plan(first, {1: "iris-1"}, None, now=NOW)
    assert (step.target, step.pods) == (1, None)


def test_a_good_candidate_walks_to_promotion_then_is_promoted() -> None:
    start = md()
    step = plan(start, QUALIFIED, deployment(1), now=NOW)
    weights = []
    for index in range(3):
        evidence = Evidence(counters(f"v2-step{index}"))
        step = again(start, step, evidence=evidence, now=LATER + timedelta(hours=index))
        weights.append(step.pods.weight if step.pods else None)
    assert weights == [10, 50, None]
    assert step.target == 2, "promotion: the candidate alone"
    assert step.status.rollout is not None
    assert step.status.rollout.verdict == "Promote"
    done = again(start, step, deployment=deployment(2), now=LATER + timedelta(hours=4))
    assert done.status.serving_version == 2
    assert [h.outcome for h in done.status.history] == ["Promoted", "Promoted"]
    assert "Promoted" in [e.reason for e in done.events]
    assert not done.deciding


def test_a_disagreeing_candidate_is_rolled_back_from_shadow_and_not_retried() -> None:
    start = md()
    step = plan(start, QUALIFIED, deployment(1), now=NOW)
    step = again(start, step, evidence=Evidence(counters("v2-step0", agreed=500)))
    assert (step.target, step.pods) == (1, None)
    last = step.status.history[-1]
    assert (last.version, last.outcome, last.failed_signal) == (2, "RolledBack", "agreement")
    assert last.message is not None
    assert "agreement 0.5 is below its threshold 0.95" in last.message
    assert reasons(step)["Degraded"] == "AnalysisFailed"
    assert ("Warning", "AnalysisFailed") in [(e.type, e.reason) for e in step.events]
    assert step.outcomes == ["RolledBack"]
    later = again(start, step, now=LATER + timedelta(hours=1))
    assert (later.target, later.pods) == (1, None), "never retried automatically"
    assert later.status.rollout is not None
    assert later.status.rollout.verdict == "RollBack", "the last rollout's story stays"


def test_unreadable_servers_wait_and_say_why() -> None:
    start = md()
    step = plan(start, QUALIFIED, deployment(1), now=NOW)
    step = again(start, step, evidence=Evidence(None, "pod iris-x: 503"))
    assert step.pods is not None
    assert reasons(step)["Progressing"] == "EvidenceUnreadable"


def test_abort_by_annotation_rolls_back_at_once() -> None:
    start = md()
    step = plan(start, QUALIFIED, deployment(1), now=NOW)
    step = again(start, step, annotations={"continuum.dev/rollout-action": "abort-2"})
    assert (step.target, step.pods) == (1, None)
    assert reasons(step)["Degraded"] == "RolloutAborted"


def test_step_pods_that_never_get_ready_roll_back() -> None:
    start = md()
    step = plan(start, QUALIFIED, deployment(1), now=NOW)
    stuck = deployment(1, "Failed")
    stuck["spec"]["template"]["metadata"]["labels"]["continuum.dev/rollout-step"] = "v2-step0"
    step = again(start, step, deployment=stuck)
    assert (step.target, step.pods) == (1, None)
    assert "did not become ready within 60s" in (step.status.history[-1].message or "")
    assert reasons(step)["Degraded"] == "RolloutFailed"


def test_the_step_reaches_the_pods_through_the_template() -> None:
    pods = Pods(champion=1, candidate=2, weight=10, step_id="v2-step1")
    built = desired_deployment(md(), 1, "continuum:test", pods)
    template = built["spec"]["template"]
    assert template["metadata"]["labels"]["continuum.dev/rollout-step"] == "v2-step1"
    assert template["metadata"]["labels"]["continuum.dev/model-version"] == "1"
    env = {v["name"]: v.get("value") for v in template["spec"]["containers"][0]["env"]}
    assert env["CONTINUUM_MODEL_VERSION"] == "1"
    assert env["CONTINUUM_CANDIDATE_VERSION"] == "2"
    assert env["CONTINUUM_CANDIDATE_WEIGHT"] == "10"
    assert env["CONTINUUM_ROLLOUT_STEP"] == "v2-step1"
    assert env["CONTINUUM_AGREEMENT_TOLERANCE"] == "0.05"
    plain = desired_deployment(md(), 1, "continuum:test")
    assert "CONTINUUM_CANDIDATE_VERSION" not in str(plain)
