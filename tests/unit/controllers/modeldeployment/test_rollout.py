"""Version resolution, rollout observation and the plan: promotion, rollback, waiting, memory."""

from __future__ import annotations

from typing import Any

from continuum.api import ModelDeploymentSpec, RolloutRecord, dump, load
from continuum.controllers.modeldeployment.rollout import (
    Plan,
    failed_versions,
    observe_deployment,
    plan,
    resolve_version,
)
from tests.unit.controllers.modeldeployment.builders import (
    NOW,
    deployment,
    model_deployment,
)


def versions(*numbers: int) -> dict[int, str]:
    """The model's qualified versions, as kopf's index gives them: {version: TrainingJob}."""
    return {n: f"iris-{n}" for n in numbers}


def spec(**fields: Any) -> ModelDeploymentSpec:
    return model_deployment(**fields).spec


def conditions(step: Plan) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in step.status.conditions}


def record(version: int, outcome: str = "Promoted") -> dict[str, Any]:
    return {"version": version, "time": "2026-02-01T00:00:00Z", "outcome": outcome}


# ---------------------------------------------------------------- resolve_version


def test_latest_qualified_is_the_newest_qualified_version() -> None:
    assert resolve_version(spec(), versions(1, 5, 2)) == 5


def test_no_qualified_version() -> None:
    assert resolve_version(spec(), []) is None
    assert resolve_version(spec(), versions()) is None


def test_pinned_wins_over_policy() -> None:
    pinned = spec(version={"pinned": 1})
    assert resolve_version(pinned, versions(1, 2, 3)) == 1
    assert resolve_version(pinned, []) == 1, "a pin needs no TrainingJob"


def test_failed_versions_are_skipped() -> None:
    assert resolve_version(spec(), versions(1, 2, 3), failed={3}) == 2
    assert resolve_version(spec(version={"pinned": 3}), [], failed={3}) is None


def test_failed_versions_come_from_history() -> None:
    history = [load(RolloutRecord, record(1)), load(RolloutRecord, record(2, "RolledBack"))]
    assert failed_versions(history) == {2}


# ---------------------------------------------------------------- observe_deployment


def test_observe_states() -> None:
    assert observe_deployment(None).state == "Absent"
    complete = observe_deployment(deployment(2))
    assert (complete.state, complete.version, complete.ready_replicas) == ("Complete", 2, 2)
    assert complete.available
    assert observe_deployment(deployment(3, "Progressing")).state == "Progressing"
    assert observe_deployment(deployment(3, "Failed")).state == "Failed"


def test_stale_observation_is_progressing() -> None:
    assert observe_deployment(deployment(3, "Failed", observed=2)).state == "Progressing"
    assert observe_deployment(deployment(3, "Complete", observed=2)).state == "Progressing"


# ---------------------------------------------------------------- plan


def test_waiting_for_a_qualified_version() -> None:
    md = model_deployment()
    step = plan(md, versions(), None, now=NOW)
    assert step.target is None
    cond = conditions(step)
    assert cond["Available"] == ("False", "NoVersion")
    assert cond["Ready"] == ("False", "NoVersion")
    assert cond["Reconciling"] == ("True", "WaitingForVersion")
    assert cond["Stalled"][0] == "False"
    waiting = next(c for c in step.status.conditions if c.type == "Reconciling")
    assert "waiting for a qualified version of model iris" in waiting.message
    assert step.status.serving_version is None
    assert step.status.url == "http://iris.ml.svc.cluster.local/v2/models/iris"
    assert step.events == []


def test_first_rollout_starts() -> None:
    step = plan(model_deployment(), versions(1), None, now=NOW)
    assert step.target == 1
    assert [(e.type, e.reason) for e in step.events] == [("Normal", "RolloutStarted")]
    cond = conditions(step)
    assert cond["Progressing"] == ("True", "RollingOut")
    assert cond["Reconciling"][0] == "True"
    assert cond["Available"][0] == "False"


def test_complete_rollout_is_promoted() -> None:
    step = plan(model_deployment(), versions(1), deployment(1), now=NOW)
    assert step.target == 1
    status = step.status
    assert (status.serving_version, status.previous_version) == (1, None)
    assert status.ready_replicas == 2
    assert [(h.version, h.training_job, h.outcome) for h in status.history] == [
        (1, "iris-1", "Promoted")
    ]
    assert step.outcomes == ["Promoted"]
    assert [e.reason for e in step.events] == ["Promoted"]
    cond = conditions(step)
    assert cond["Available"] == ("True", "Serving")
    assert cond["Progressing"] == ("False", "RolloutComplete")
    assert cond["Degraded"] == ("False", "AsExpected")
    assert cond["Ready"] == ("True", "Serving")
    assert cond["Reconciling"][0] == "False"
    assert cond["Stalled"][0] == "False"


def test_promotion_is_idempotent() -> None:
    first = plan(model_deployment(), versions(1), deployment(1), now=NOW)
    md = model_deployment(status=dump(first.status))
    again = plan(md, versions(1), deployment(1), now=NOW)
    assert again.events == []
    assert again.outcomes == []
    assert dump(again.status) == dump(first.status)


def serving(version: int, previous: int | None = None, *history: dict[str, Any]) -> Any:
    status: dict[str, Any] = {"servingVersion": version, "history": [*history]}
    if previous is not None:
        status["previousVersion"] = previous
    return model_deployment(status=status)


def test_new_qualified_version_rolls_out_then_is_promoted() -> None:
    md = serving(1, None, record(1))
    step = plan(md, versions(1, 2), deployment(1), now=NOW)
    assert step.target == 2
    assert [e.reason for e in step.events] == ["RolloutStarted"]
    assert "version 2" in step.events[0].message
    cond = conditions(step)
    assert cond["Available"] == ("True", "Serving"), "the old version keeps serving"
    assert cond["Progressing"] == ("True", "RollingOut")

    done = plan(md, versions(1, 2), deployment(2), now=NOW)
    assert (done.status.serving_version, done.status.previous_version) == (2, 1)
    assert [h.version for h in done.status.history] == [1, 2]


def test_deadline_exceeded_rolls_back_and_remembers() -> None:
    md = serving(2, 1, record(1), record(2))
    step = plan(md, versions(1, 2, 3), deployment(3, "Failed"), now=NOW)
    assert step.target == 2, "back to the version that served"
    status = step.status
    assert (status.serving_version, status.previous_version) == (2, 1)
    last = status.history[-1]
    assert (last.version, last.outcome, last.training_job) == (3, "RolledBack", "iris-3")
    assert step.outcomes == ["RolledBack"]
    [event] = step.events
    assert (event.type, event.reason) == ("Warning", "RolledBack")
    assert "version 3" in event.message
    assert "rolled back to version 2" in event.message
    cond = conditions(step)
    assert cond["Degraded"] == ("True", "RolloutFailed")
    assert cond["Stalled"] == ("True", "RolloutFailed")
    assert cond["Ready"][0] == "False"
    degraded = next(c for c in status.conditions if c.type == "Degraded")
    assert "version 3" in degraded.message
    assert "serving version 2" in degraded.message
    assert cond["Available"] == ("True", "Serving")


def test_failed_version_is_not_retried() -> None:
    md = serving(2, 1, record(1), record(2), record(3, "RolledBack"))
    for dep in (deployment(3, "Failed"), deployment(2, "Progressing"), deployment(2)):
        step = plan(md, versions(1, 2, 3), dep, now=NOW)
        assert step.target == 2
        assert step.outcomes == []
        assert [e.reason for e in step.events] == []
        assert len(step.status.history) == 3
        assert conditions(step)["Degraded"] == ("True", "RolloutFailed")


def test_a_newer_qualified_version_clears_degraded() -> None:
    md = serving(2, 1, record(1), record(2), record(3, "RolledBack"))
    step = plan(md, versions(1, 2, 3, 4), deployment(2), now=NOW)
    assert step.target == 4
    assert conditions(step)["Degraded"] == ("False", "AsExpected")
    done = plan(md, versions(1, 2, 3, 4), deployment(4), now=NOW)
    assert (done.status.serving_version, done.status.previous_version) == (4, 2)
    assert conditions(done)["Ready"] == ("True", "Serving")


def test_first_rollout_failing_falls_back_to_an_older_qualified_version() -> None:
    md = model_deployment()
    step = plan(md, versions(1, 2), deployment(2, "Failed"), now=NOW)
    assert step.target == 1
    assert step.status.serving_version is None
    assert "nothing to roll back to" in step.events[0].message
    assert [e.reason for e in step.events] == ["RolledBack", "RolloutStarted"]


def test_failing_pin_without_fallback_stays_stalled() -> None:
    md = model_deployment(version={"pinned": 5})
    step = plan(md, {}, deployment(5, "Failed"), now=NOW)
    assert step.target == 5
    cond = conditions(step)
    assert cond["Stalled"] == ("True", "RolloutFailed")
    assert cond["Available"][0] == "False" or step.status.serving_version is None


def test_pin_change_rolls_back_to_an_older_version() -> None:
    md = serving(2, 1, record(1), record(2))
    step = plan(
        model_deployment(version={"pinned": 1}, status=dump(md.status)), {}, deployment(2), now=NOW
    )
    assert step.target == 1
    done = plan(
        model_deployment(version={"pinned": 1}, status=dump(md.status)), {}, deployment(1), now=NOW
    )
    assert (done.status.serving_version, done.status.previous_version) == (1, 2)


def test_history_is_bounded() -> None:
    history = [record(v) for v in range(1, 21)]
    md = model_deployment(status={"servingVersion": 20, "history": history})
    step = plan(md, versions(21), deployment(21), now=NOW)
    assert len(step.status.history) == 20
    assert step.status.history[-1].version == 21
    assert step.status.history[0].version == 2


def test_condition_times_hold_while_status_holds() -> None:
    first = plan(model_deployment(), versions(1), deployment(1), now=NOW)
    later = NOW.replace(hour=13)
    md = model_deployment(status=dump(first.status))
    again = plan(md, versions(1), deployment(1), now=later)
    assert [c.last_transition_time for c in again.status.conditions] == [
        c.last_transition_time for c in first.status.conditions
    ]


def test_deleted_trainingjob_does_not_downgrade_latest_qualified() -> None:
    md = serving(2, 1, record(1), record(2))
    step = plan(md, versions(1), deployment(2), now=NOW)  # the TrainingJob of v2 was deleted
    assert step.target == 2
    assert step.events == []
    assert step.status.serving_version == 2


def test_a_pin_may_still_move_back() -> None:
    md = model_deployment(version={"pinned": 1}, status={"servingVersion": 2, "history": []})
    assert plan(md, versions(1, 2), deployment(2), now=NOW).target == 1
