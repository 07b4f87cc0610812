"""The ModelDeployment controller: status before children, conflicts, ownership, events, and
a reconcile that fails being retried whatever triggered it.

The gateway is the test kit's in-memory stand-in (tests/kit/fake_kube.py); the real API server
is exercised by tests/cluster/test_modeldeployment.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import kopf
import pytest

from continuum.controllers import lifecycle
from continuum.controllers.modeldeployment import controller, handlers
from continuum.controllers.modeldeployment import metrics as md_metrics
from continuum.controllers.modeldeployment.controller import controller_owner, qualified
from continuum.controllers.modeldeployment.versions import Versions, index_entry, versions_from
from continuum.controllers.shared import metrics
from continuum.controllers.shared.objects import Ref
from continuum.controllers.shared.queue import Backoff, WorkQueue
from continuum.kube import Kube, KubeError
from tests.kit import samples
from tests.kit.fake_kube import FakeKube
from tests.unit.controllers.modeldeployment.builders import MD_UID, deployment, md_body, tj_body

IMAGE = "continuum:0.1.0"
REF = Ref("ModelDeployment", "modeldeployments", "ml", "iris")
VERSION_LABEL = "continuum.dev/model-version"


@pytest.fixture(autouse=True)
def queue(monkeypatch: pytest.MonkeyPatch) -> WorkQueue[tuple[str, str]]:
    """Each test has its own queue, retrying after 10 ms (then 20 ms, ... at most 50 ms)."""
    fresh: WorkQueue[tuple[str, str]] = WorkQueue("ModelDeployment", backoff=Backoff(0.01, 0.05))
    monkeypatch.setattr(controller, "queue", fresh)
    return fresh


@pytest.fixture(autouse=True)
def nothing_applied_yet() -> None:
    """Each test starts with no memory of children applied."""
    controller._applied.clear()


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    events: list[tuple[str, str, str]] = []

    def post(kind: str) -> Any:
        return lambda _body, *, reason, message: events.append((kind, reason, message))

    monkeypatch.setattr(kopf, "info", post("Normal"))
    monkeypatch.setattr(kopf, "warn", post("Warning"))
    return events


def cluster(md: dict[str, Any] | None, *objects: dict[str, Any]) -> FakeKube:
    """A namespace holding the ModelDeployment ``md`` (if any) and ``objects``."""
    return FakeKube(*([md] if md is not None else []), *objects)


def versions_in(kube: FakeKube) -> Versions:
    """The qualified versions as kopf's index of the stored TrainingJobs holds them."""

    def versions(namespace: str, model: str) -> dict[int, str]:
        wanted = (namespace, model)
        entries = [e for tj in kube.of("trainingjobs") for k, e in index_entry(tj).items()
                   if k == wanted]  # fmt: skip
        return versions_from(entries)

    return versions


def run(kube: FakeKube) -> None:
    asyncio.run(controller.reconcile(cast("Kube", kube), IMAGE, versions_in(kube), REF))


def writes(kube: FakeKube) -> list[str]:
    """The writes in order: ``status`` and ``apply <Kind>``."""
    return ["status" if c == "patch_status" else c for c in kube.calls
            if c == "patch_status" or c.startswith("apply")]  # fmt: skip


def applied(kube: FakeKube, plural: str = "deployments") -> dict[str, Any]:
    found = kube.get(plural, "ml", "iris")
    assert found is not None
    return found


def stored(kube: FakeKube) -> dict[str, Any]:
    return applied(kube, "modeldeployments")


def served_version(kube: FakeKube) -> str:
    return str(applied(kube)["spec"]["template"]["metadata"]["labels"][VERSION_LABEL])


def test_creates_children_and_writes_status_first(posted: list[Any]) -> None:
    kube = cluster(md_body(), tj_body(1))
    run(kube)
    assert writes(kube) == ["status", "apply Service", "apply Deployment"]
    assert served_version(kube) == "1"
    assert stored(kube)["status"]["url"] == "http://iris.ml.svc.cluster.local/v2/models/iris"
    assert [p[1] for p in posted] == ["RolloutStarted"]


def test_waiting_creates_only_the_service(posted: list[Any]) -> None:
    kube = cluster(md_body(), tj_body(1, qualified=False))
    run(kube)
    assert writes(kube) == ["status", "apply Service"]
    assert posted == []


def test_promotion_then_nothing_to_do(posted: list[Any]) -> None:
    kube = cluster(md_body(), tj_body(1), deployment(1))
    before = metrics.REGISTRY.get_sample_value("continuum_rollouts_total", {"outcome": "Promoted"})
    run(kube)
    assert stored(kube)["status"]["servingVersion"] == 1
    assert [p[1] for p in posted] == ["Promoted"]
    after = metrics.REGISTRY.get_sample_value("continuum_rollouts_total", {"outcome": "Promoted"})
    assert (after or 0) - (before or 0) == 1
    gauge = metrics.REGISTRY.get_sample_value(
        "continuum_modeldeployment_serving_version", {"namespace": "ml", "name": "iris"}
    )
    assert gauge == 1
    kube.calls.clear()
    run(kube)
    assert writes(kube) == ["apply Service", "apply Deployment"], "no status write"
    assert len(posted) == 1


def run_on(kube: FakeKube, trigger: str) -> None:
    """One reconcile through the queue, as the handler of ``trigger`` runs it."""
    coro = controller.run(cast("Kube", kube), IMAGE, versions_in(kube), "ml", "iris",
                          trigger=trigger)  # fmt: skip
    assert asyncio.run(coro)


def test_children_unchanged_since_the_last_apply_are_not_applied_again(
    posted: list[Any],
) -> None:
    """A Deployment's status changes during a rollout each cost 2 reads, not 2 reads and 2
    applies (each a fault at the API fault test's rates)."""
    kube = cluster(md_body(), tj_body(1), deployment(1))
    run_on(kube, "trainingjob-event")
    assert writes(kube) == ["status", "apply Service", "apply Deployment"], "promoted"
    kube.calls.clear()
    run_on(kube, "deployment-event")
    assert kube.calls == ["read_custom_object", "read_deployment"]


@pytest.mark.parametrize("trigger", ["reconcile", "resync"])
def test_a_create_resume_spec_change_or_resync_applies_anyway(
    posted: list[Any], trigger: str
) -> None:
    """Also what restores a Service or HPA somebody deleted (at the latest one resync on)."""
    kube = cluster(md_body(), tj_body(1), deployment(1))
    run_on(kube, "trainingjob-event")
    kube.calls.clear()
    run_on(kube, trigger)
    assert writes(kube) == ["apply Service", "apply Deployment"]


def test_a_deployment_changed_by_somebody_else_is_applied_again(posted: list[Any]) -> None:
    kube = cluster(md_body(), tj_body(1), deployment(1))
    run_on(kube, "trainingjob-event")
    applied(kube)["metadata"]["generation"] = 7  # its spec edited: a new generation
    kube.calls.clear()
    run_on(kube, "deployment-event")
    assert writes(kube)[-2:] == ["apply Service", "apply Deployment"]
    del kube.objects[("deployments", "ml", "iris")]
    kube.calls.clear()
    run_on(kube, "deployment-event")
    assert writes(kube)[-2:] == ["apply Service", "apply Deployment"], "deleted: re-created"


def test_a_new_version_is_applied(posted: list[Any]) -> None:
    kube = cluster(md_body(), tj_body(1))
    run_on(kube, "trainingjob-event")
    kube.put(tj_body(2))
    kube.calls.clear()
    run_on(kube, "trainingjob-event")
    assert "apply Deployment" in writes(kube)


def test_rollback_is_recorded_before_it_is_applied(posted: list[Any]) -> None:
    status = {"servingVersion": 1, "history": [{"version": 1, "time": "2026-01-01T00:00:00Z",
                                                "outcome": "Promoted"}]}  # fmt: skip
    kube = cluster(md_body(status=status), tj_body(1), tj_body(2), deployment(2, "Failed"))
    run(kube)
    assert writes(kube)[0] == "status"
    assert stored(kube)["status"]["history"][-1]["outcome"] == "RolledBack"
    assert served_version(kube) == "1"
    assert posted[0][:2] == ("Warning", "RolledBack")


def test_conflicting_status_write_is_retried(posted: list[Any]) -> None:
    kube = cluster(md_body(), tj_body(1))
    kube.conflicts = 2
    run(kube)
    assert writes(kube) == ["status"] * 3 + ["apply Service", "apply Deployment"]
    assert len(kube.statuses("modeldeployments")) == 1, "two writes refused, the third taken"
    assert len(posted) == 1


def test_endless_conflicts_are_a_temporary_error(posted: list[Any]) -> None:
    kube = cluster(md_body(), tj_body(1))
    kube.conflicts = 99
    with pytest.raises(kopf.TemporaryError):
        run(kube)
    assert [c for c in writes(kube) if c.startswith("apply")] == []


def test_deleted_or_deleting_model_deployment_is_left_alone(posted: list[Any]) -> None:
    kube = cluster(None)
    run(kube)
    assert writes(kube) == []
    body = md_body()
    body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    kube = cluster(body, tj_body(1))
    run(kube)
    assert writes(kube) == []


def test_a_foreign_deployment_is_not_taken_over(posted: list[Any]) -> None:
    foreign = deployment(1)
    foreign["metadata"]["ownerReferences"] = []
    kube = cluster(md_body(), tj_body(1), foreign)
    with pytest.raises(kopf.PermanentError):
        run(kube)
    assert [c for c in writes(kube) if c.startswith("apply")] == []


def test_a_reconcile_lists_no_training_jobs(posted: list[Any]) -> None:
    """The versions come from kopf's index: with 1,000 TrainingJobs in the namespace a
    promotion reads the ModelDeployment and its Deployment, nothing more."""
    others = [tj_body(n, model="other") for n in range(1, 50)]
    kube = cluster(md_body(), tj_body(1), tj_body(2), *others)
    run(kube)
    assert served_version(kube) == "2"
    assert kube.count("list_custom_objects") == 0
    reads = {c for c in kube.calls if c != "patch_status" and not c.startswith("apply")}
    assert reads == {"read_custom_object", "read_deployment"}


def test_invalid_training_jobs_are_ignored(posted: list[Any]) -> None:
    broken = tj_body(3)
    broken["spec"] = {"model": "iris"}
    kube = cluster(md_body(), tj_body(1), broken)
    run(kube)
    assert served_version(kube) == "1"


def test_helpers() -> None:
    assert controller_owner(deployment(1)) == ("iris", MD_UID)
    assert controller_owner({"metadata": {}}) is None
    assert qualified(tj_body(1))
    assert not qualified(tj_body(1, qualified=False))
    assert not qualified(tj_body(1, phase="Running"))
    settings = kopf.OperatorSettings()
    lifecycle.configure(settings)
    assert settings.watching.label_selectors["apps", "deployments"] == (
        "app.kubernetes.io/managed-by=continuum"
    )


def test_serving_gauge_follows_the_watch() -> None:
    md_metrics.observe_serving("ml", "gone", 4)
    labels = {"namespace": "ml", "name": "gone"}
    name = "continuum_modeldeployment_serving_version"
    assert metrics.REGISTRY.get_sample_value(name, labels) == 4
    md_metrics.observe_serving("ml", "gone", None)
    assert metrics.REGISTRY.get_sample_value(name, labels) is None
    md_metrics.observe_serving("ml", "gone", None)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let scheduled retries run until ``condition`` holds (failing after ``timeout`` s)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def index_of(kube: FakeKube) -> dict[tuple[str, str], list[str]]:
    """The ``md_by_model`` index kopf would hand the TrainingJob handler."""
    return {
        ("ml", md["spec"]["model"]): [md["metadata"]["name"]] for md in kube.of("modeldeployments")
    }


@pytest.fixture
def memo(monkeypatch: pytest.MonkeyPatch) -> kopf.Memo:
    monkeypatch.setattr(handlers, "kube_of", lambda memo: memo["kube"])
    monkeypatch.setattr(handlers, "image_of", lambda _memo: IMAGE)
    memo = kopf.Memo()

    def versions(namespace: str, model: str) -> dict[int, str]:  # the test puts the kube later
        return dict(versions_in(memo["kube"])(namespace, model))

    memo[handlers.QUALIFIED] = versions
    return memo


@pytest.mark.parametrize("failing", ["read_deployment", "patch_status", "apply"])
def test_a_qualified_version_is_promoted_after_a_transient_failure(
    posted: list[Any], memo: kopf.Memo, queue: WorkQueue[tuple[str, str]], failing: str
) -> None:
    """The bug kopf's event handlers hid: a TrainingJob event whose reconcile failed once was
    dropped, and the new version waited for some unrelated event or a restart."""
    serving = {"servingVersion": 1, "history": [{"version": 1, "time": "2026-01-01T00:00:00Z",
                                                 "outcome": "Promoted"}]}  # fmt: skip
    kube = cluster(md_body(status=serving), tj_body(1), tj_body(2), deployment(1))
    memo["kube"] = kube
    kube.fail(failing, KubeError("HTTP 503 ServiceUnavailable: etcd leader changed", status=503))
    qualified_v2 = kopf.Body(tj_body(2))  # type: ignore[arg-type]

    async def scenario() -> None:
        await handlers.trainingjob_event_handler(qualified_v2, memo, md_by_model=index_of(kube))
        assert queue.failures(("ml", "iris")) == 1, "the first attempt failed"
        assert queue.pending() == 1, "and a retry is scheduled"
        await until(lambda: served_version(kube) == "2")

    before = errors_counted("trainingjob-event")
    asyncio.run(scenario())
    assert ("Normal", "RolloutStarted") in [p[:2] for p in posted]
    assert queue.failures(("ml", "iris")) == 0
    assert len(queue) == 0, "nothing is kept once it succeeded"
    assert errors_counted("trainingjob-event") == before + 1


def test_a_reconcile_that_keeps_failing_is_retried_with_growing_delays(
    posted: list[Any], queue: WorkQueue[tuple[str, str]]
) -> None:
    kube = cluster(md_body(), tj_body(1))
    down = KubeError("HTTP 503 ServiceUnavailable", status=503)
    # four reconciles fail, and the streak reporter's read after the third one
    kube.fail("read_custom_object", *[down] * 5)
    started = asyncio.run(timed_until(kube, lambda: any(map(planned, kube.statuses(MDS)))))
    assert kube.count("read_custom_object") >= 6, "five failures, then the reads that worked"
    assert started >= 0.01 + 0.02 + 0.04 + 0.05 * 0.8 * 0.8, "the delays grew to the cap"
    asyncio.run(until(lambda: queue.failures(("ml", "iris")) == 0))
    assert ("Warning", "ReconcileFailing") in [p[:2] for p in posted]
    final = kube.get(MDS, "ml", "iris")["status"]  # type: ignore[index]
    assert "ReconcileFailing" not in [c["reason"] for c in final["conditions"]], "cleared"


MDS = "modeldeployments"


def planned(status: dict[str, Any]) -> bool:
    """Whether a status written is the controller's own (not only the streak's condition)."""
    return "observedGeneration" in status


async def timed_until(kube: FakeKube, condition: Callable[[], bool]) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    versions = versions_in(kube)
    await controller.run(cast("Kube", kube), IMAGE, versions, "ml", "iris", trigger="reconcile")
    await until(condition)
    return loop.time() - start


def test_an_invalid_model_deployment_is_not_retried(
    posted: list[Any], queue: WorkQueue[tuple[str, str]]
) -> None:
    broken = md_body()
    broken["spec"]["replicas"] = "many"
    kube = cluster(broken, tj_body(1))
    reconciled = controller.run(
        cast("Kube", kube), IMAGE, versions_in(kube), "ml", "iris", trigger="reconcile"
    )
    ok = asyncio.run(reconciled)
    assert not ok
    assert queue.pending() == 0, "only a change of the object can fix it"
    assert writes(kube) == []


def errors_counted(trigger: str) -> float:
    return samples.total(
        "continuum_reconcile_errors_total", kind="ModelDeployment", handler=trigger
    )
