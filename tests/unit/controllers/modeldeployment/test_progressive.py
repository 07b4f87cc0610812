"""The step machine of a progressive rollout: start, advance, promote, roll back, manual
controls, resuming from status (issue 18)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from continuum.api import RolloutProgress, RolloutSpec, dump, load
from continuum.controllers.modeldeployment.analysis import Counters, VersionCounts
from continuum.controllers.modeldeployment.progressive import (
    Pods,
    action_for,
    deciding,
    stages_of,
    start,
    step,
)
from tests.unit.controllers.modeldeployment.builders import NOW

BOUNDS = (0.001, 0.002)
LATER = NOW + timedelta(hours=1)


def spec(strategy: str = "ShadowThenCanary", **fields: Any) -> RolloutSpec:
    return RolloutSpec.model_validate({"strategy": strategy, **fields})


def good(requests: int = 1000, step: str = "v3-step0") -> Counters:
    side = VersionCounts(requests, requests, 0, (0, requests, 0), {"no": 3 * requests})
    return Counters(step, BOUNDS, side, side, requests, requests)


def disagreeing(requests: int = 1000) -> Counters:
    return Counters("v3-step0", BOUNDS, good(requests).champion, good(requests).candidate,
                    requests, requests // 2)  # fmt: skip


def walk(rollout: RolloutSpec, counters: Counters | None, now: Any = LATER, **kwargs: Any) -> Any:
    first = start(rollout, 2, 3, "iris-3", NOW)
    return step(rollout, first.progress, counters, action=kwargs.get("action"),
                unready=kwargs.get("unready"), now=now)  # fmt: skip


def test_stages_follow_the_strategy() -> None:
    assert stages_of(spec("Immediate")) == []
    assert [s.name for s in stages_of(spec("Shadow"))] == ["Shadow"]
    assert [s.weight for s in stages_of(spec("Canary"))] == [10, 50]
    assert [s.weight for s in stages_of(spec())] == [0, 10, 50]


def test_start_is_the_shadow_beside_the_champion() -> None:
    first = start(spec(), 2, 3, "iris-3", NOW)
    assert first.pods == Pods(champion=2, candidate=3, weight=0, step_id="v3-step0")
    assert (first.progress.step, first.progress.steps, first.progress.step_name) == (0, 3, "Shadow")
    assert first.progress.step_started_at == NOW
    [event] = first.events
    assert event.reason == "RolloutStep"
    assert "in shadow" in event.message


def test_a_good_candidate_goes_shadow_10_50_then_promote() -> None:
    rollout = spec()
    progress = start(rollout, 2, 3, "iris-3", NOW).progress
    seen = []
    for index in range(3):
        now = LATER + timedelta(hours=index)
        nxt = step(rollout, progress, good(step=f"v3-step{index}"), action=None, unready=None,
                   now=now)  # fmt: skip
        seen.append((nxt.progress.verdict, nxt.pods.weight if nxt.pods else None))
        progress = nxt.progress
    assert seen == [("Wait", 10), ("Wait", 50), ("Promote", None)]
    assert progress.candidate == 3
    assert "promoting version 3" in progress.message


def test_advancing_restarts_the_clock_and_the_evidence() -> None:
    nxt = walk(spec(), good())
    assert nxt.progress.step == 1
    assert nxt.progress.step_started_at == LATER
    assert nxt.progress.evidence == []
    assert nxt.progress.weight == 10
    assert nxt.pods == Pods(2, 3, 10, "v3-step1")
    assert "answers 10% of requests" in nxt.events[0].message


def test_waiting_keeps_the_step_and_records_the_evidence() -> None:
    nxt = walk(spec(), good(requests=50))
    assert (nxt.progress.step, nxt.progress.verdict, nxt.progress.requests) == (0, "Wait", 50)
    assert len(nxt.progress.evidence) == 5  # realisedDrop shown, not judged
    assert nxt.pods == Pods(2, 3, 0, "v3-step0")
    assert nxt.events == []


def test_a_disagreeing_candidate_is_stopped_in_shadow() -> None:
    nxt = walk(spec(), disagreeing())
    assert nxt.progress.verdict == "RollBack"
    assert nxt.failed == "agreement"
    assert nxt.pods is None
    assert nxt.progress.step == 0, "it never reached a canary step"
    [event] = nxt.events
    assert (event.type, event.reason) == ("Warning", "AnalysisFailed")
    assert "version 2 takes all traffic again" in event.message


def test_pods_that_never_get_ready_roll_back() -> None:
    nxt = walk(spec(), None, unready="pods not ready within 60s")
    assert nxt.progress.verdict == "RollBack"
    assert nxt.pods is None
    assert "pods not ready within 60s" in nxt.progress.message


def test_manual_promote_and_abort_name_the_candidate() -> None:
    assert action_for("promote-3", 3) == "promote"
    assert action_for("abort-3", 3) == "abort"
    assert action_for("abort-2", 3) is None, "a stale annotation never acts on a later one"
    assert action_for("rollback-3", 3) is None
    assert action_for(None, 3) is None
    promoted = walk(spec(), good(requests=1), action="promote")
    assert promoted.progress.verdict == "Promote"
    assert promoted.pods is None
    aborted = walk(spec(), good(), action="abort")
    assert aborted.progress.verdict == "RollBack"
    assert aborted.events[0].reason == "RolloutAborted"


def test_paused_holds_a_passing_step() -> None:
    nxt = walk(spec(paused=True), good())
    assert (nxt.progress.verdict, nxt.progress.step) == ("Paused", 0)
    assert deciding(nxt.progress)


def test_a_restart_resumes_from_status_at_the_same_step_and_clock() -> None:
    """What the operator wrote is all it needs: same step, same start time, same verdict."""
    rollout = spec()
    progress = step(rollout, start(rollout, 2, 3, None, NOW).progress, good(), action=None,
                    unready=None, now=LATER).progress  # fmt: skip
    reread = load(RolloutProgress, dump(progress))
    soon = LATER + timedelta(seconds=10)
    nxt = step(rollout, reread, good(step="v3-step1"), action=None, unready=None, now=soon)
    assert (nxt.progress.step, nxt.progress.verdict) == (1, "Wait")
    assert nxt.progress.step_started_at == LATER
    assert "10/30s" in nxt.progress.message


def test_deciding_is_false_once_decided() -> None:
    assert not deciding(None)
    assert not deciding(walk(spec(), disagreeing()).progress)
    assert not deciding(walk(spec(), good(), action="promote").progress)
