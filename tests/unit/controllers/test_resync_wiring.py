"""Which objects each kind's resync covers (from its event handlers), that it starts and stops
with the operator, that a resync reconciles through the kind's queue with trigger resync, and
that an event of the object runs a long-waiting retry now."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest

from continuum.controllers.driftmonitor import handlers as dm_handlers
from continuum.controllers.modeldeployment import handlers as md_handlers
from continuum.controllers.shared.queue import Backoff
from continuum.controllers.trainingjob import handlers as tj_handlers
from continuum.kube import KubeUnavailable
from tests.kit import samples
from tests.kit.fake_kube import FakeKube


def body(kind: str, name: str, phase: str | None = None) -> kopf.Body:
    raw: dict[str, Any] = {
        "apiVersion": "continuum.dev/v1alpha1",
        "kind": kind,
        "metadata": {"namespace": "team-a", "name": name, "uid": f"uid-{name}"},
        "spec": {},
    }
    if phase is not None:
        raw["status"] = {"phase": phase}
    return kopf.Body(raw)


@pytest.fixture(autouse=True)
def fresh() -> None:
    for resync in (tj_handlers.resync, md_handlers.resync, dm_handlers.resync):
        for key in list(resync._keys):
            resync.forget(key)


@pytest.mark.parametrize(
    ("phase", "tracked"),
    [(None, True), ("Pending", True), ("Running", True), ("Succeeded", False), ("Failed", False)],
)
def test_unfinished_training_jobs_are_resynced_and_finished_ones_not(
    phase: str | None, tracked: bool
) -> None:
    asyncio.run(tj_handlers.phase_event_handler(type=None, body=body("TrainingJob", "a", phase)))
    assert (("team-a", "a") in tj_handlers.resync._keys) is tracked


def test_a_training_job_leaves_the_resync_when_it_finishes_or_goes() -> None:
    run = asyncio.run
    run(tj_handlers.phase_event_handler(type="ADDED", body=body("TrainingJob", "a")))
    run(tj_handlers.phase_event_handler(type="ADDED", body=body("TrainingJob", "b")))
    assert len(tj_handlers.resync) == 2
    run(tj_handlers.phase_event_handler(type="MODIFIED", body=body("TrainingJob", "a", "Failed")))
    run(tj_handlers.phase_event_handler(type="DELETED", body=body("TrainingJob", "b", "Running")))
    assert len(tj_handlers.resync) == 0


def test_model_deployments_are_resynced_until_deleted() -> None:
    asyncio.run(md_handlers.serving_event_handler(type=None, body=body("ModelDeployment", "m")))
    assert md_handlers.resync._keys == {("team-a", "m")}
    gone = body("ModelDeployment", "m")
    asyncio.run(md_handlers.serving_event_handler(type="DELETED", body=gone))
    assert len(md_handlers.resync) == 0


def test_drift_monitors_are_resynced_until_deleted() -> None:
    dm_handlers._known[("team-a", "d")] = {}
    dm_handlers.resync.track(("team-a", "d"))
    dm_handlers.forget("team-a", "d")
    assert len(dm_handlers.resync) == 0


def test_each_kind_starts_and_stops_its_resync_with_the_operator() -> None:
    registry = kopf.get_default_registry()
    startups = {h.id for h in registry._activities.get_all_handlers()}
    for kind in ("trainingjob", "modeldeployment", "driftmonitor"):
        assert f"{kind}-resync-startup" in startups
        assert f"{kind}-resync-cleanup" in startups


def test_a_training_job_resync_is_its_full_reconcile_through_the_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tj_handlers, "kube_of", lambda memo: memo["kube"])
    kube = FakeKube()  # the TrainingJob is gone: the reconcile ends quietly after one read
    memo = kopf.Memo(kube=kube, image="continuum:test")
    before = samples.total("continuum_reconciles_total", kind="TrainingJob", handler="resync")
    asyncio.run(tj_handlers.resync_one(memo, ("team-a", "gone")))
    after = samples.total("continuum_reconciles_total", kind="TrainingJob", handler="resync")
    assert after - before == 1
    assert kube.count("read_custom_object") == 1
    assert len(tj_handlers.queue) == 0


@pytest.mark.parametrize("kind", ["TrainingJob", "ModelDeployment"])
def test_an_event_of_the_object_runs_its_long_retry_now(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    handlers: Any = tj_handlers if kind == "TrainingJob" else md_handlers
    event = (
        tj_handlers.phase_event_handler
        if kind == "TrainingJob"
        else md_handlers.serving_event_handler
    )
    queue = handlers.queue
    monkeypatch.setattr(queue, "backoff", Backoff(3600.0, 3600.0, jitter=0.0))
    runs: list[str] = []

    async def fails() -> None:
        raise KubeUnavailable("GET …: no answer from the API server (connection reset)")

    async def again() -> None:
        runs.append("again")

    async def scenario() -> None:
        await queue.run(("team-a", "x"), fails, again=again, trigger="test")
        assert queue.scheduled(("team-a", "x")), "a retry in an hour"
        await event(type="MODIFIED", body=body(kind, "x", "Running"))
        async with asyncio.timeout(2):
            while not runs:
                await asyncio.sleep(0.005)

    asyncio.run(scenario())
    assert runs == ["again"]
    assert len(queue) == 0
