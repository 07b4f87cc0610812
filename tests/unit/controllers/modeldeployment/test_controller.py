"""The ModelDeployment handlers' glue: status before children, conflicts, ownership, events.

The gateway is replaced by a small in-memory stand-in here; the real API server is exercised
by tests/cluster/test_modeldeployment.py.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any, cast

import kopf
import pytest
from tests.unit.controllers.mdfixtures import MD_UID, deployment, md_body, tj_body

from continuum.controllers import metrics, modeldeployment
from continuum.controllers.modeldeployment import (
    configure,
    controller_owner,
    qualified,
    reconcile,
)
from continuum.kube import Conflict, Kube

IMAGE = "continuum:0.1.0"


class StubKube:
    """Just enough of ``continuum.kube.Kube`` for the handlers, in memory."""

    def __init__(self, md: dict[str, Any] | None, jobs: list[dict[str, Any]]) -> None:
        self.md = md
        self.jobs = jobs
        self.deployment: dict[str, Any] | None = None
        self.applied: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.conflicts = 0

    async def read_custom_object(self, *_: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.md)

    async def list_custom_objects(self, *_: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.jobs)

    async def read_deployment(self, *_: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.deployment)

    async def patch_status(self, *_: str, status: dict[str, Any], resource_version: str) -> None:
        assert self.md is not None
        if self.conflicts:
            self.conflicts -= 1
            self.md["metadata"]["resourceVersion"] = str(int(resource_version) + 1)
            raise Conflict("changed", status=409)
        assert resource_version == self.md["metadata"]["resourceVersion"]
        self.calls.append("status")
        self.md["status"] = copy.deepcopy(status)
        self.md["metadata"]["resourceVersion"] = str(int(resource_version) + 1)

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(f"apply {manifest['kind']}")
        self.applied.append(copy.deepcopy(manifest))
        return manifest


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    events: list[tuple[str, str, str]] = []

    def post(kind: str) -> Any:
        return lambda _body, *, reason, message: events.append((kind, reason, message))

    monkeypatch.setattr(kopf, "info", post("Normal"))
    monkeypatch.setattr(kopf, "warn", post("Warning"))
    return events


def run(kube: StubKube) -> None:
    asyncio.run(reconcile(cast("Kube", kube), IMAGE, "ml", "iris"))


def test_creates_children_and_writes_status_first(posted: list[Any]) -> None:
    kube = StubKube(md_body(), [tj_body(1)])
    run(kube)
    assert kube.calls == ["status", "apply Service", "apply Deployment"]
    dep = kube.applied[-1]
    assert dep["spec"]["template"]["metadata"]["labels"]["continuum.dev/model-version"] == "1"
    assert kube.md is not None
    assert kube.md["status"]["url"] == "http://iris.ml.svc.cluster.local/v2/models/iris"
    assert [p[1] for p in posted] == ["RolloutStarted"]


def test_waiting_creates_only_the_service(posted: list[Any]) -> None:
    kube = StubKube(md_body(), [tj_body(1, qualified=False)])
    run(kube)
    assert kube.calls == ["status", "apply Service"]
    assert posted == []


def test_promotion_then_nothing_to_do(posted: list[Any]) -> None:
    kube = StubKube(md_body(), [tj_body(1)])
    kube.deployment = deployment(1)
    before = metrics.REGISTRY.get_sample_value("continuum_rollouts_total", {"outcome": "Promoted"})
    run(kube)
    assert kube.md is not None
    assert kube.md["status"]["servingVersion"] == 1
    assert [p[1] for p in posted] == ["Promoted"]
    after = metrics.REGISTRY.get_sample_value("continuum_rollouts_total", {"outcome": "Promoted"})
    assert (after or 0) - (before or 0) == 1
    gauge = metrics.REGISTRY.get_sample_value(
        "continuum_modeldeployment_serving_version", {"namespace": "ml", "name": "iris"}
    )
    assert gauge == 1
    kube.calls.clear()
    run(kube)
    assert kube.calls == ["apply Service", "apply Deployment"], "no status write"
    assert len(posted) == 1


def test_rollback_is_recorded_before_it_is_applied(posted: list[Any]) -> None:
    status = {"servingVersion": 1, "history": [{"version": 1, "time": "2026-01-01T00:00:00Z",
                                                "outcome": "Promoted"}]}  # fmt: skip
    kube = StubKube(md_body(status=status), [tj_body(1), tj_body(2)])
    kube.deployment = deployment(2, "Failed")
    run(kube)
    assert kube.calls[0] == "status"
    assert kube.md is not None
    assert kube.md["status"]["history"][-1]["outcome"] == "RolledBack"
    dep = kube.applied[-1]
    assert dep["spec"]["template"]["metadata"]["labels"]["continuum.dev/model-version"] == "1"
    assert posted[0][:2] == ("Warning", "RolledBack")


def test_conflicting_status_write_is_retried(posted: list[Any]) -> None:
    kube = StubKube(md_body(), [tj_body(1)])
    kube.conflicts = 2
    run(kube)
    assert kube.calls == ["status", "apply Service", "apply Deployment"]
    assert len(posted) == 1


def test_endless_conflicts_are_a_temporary_error(posted: list[Any]) -> None:
    kube = StubKube(md_body(), [tj_body(1)])
    kube.conflicts = 99
    with pytest.raises(kopf.TemporaryError):
        run(kube)
    assert kube.applied == []


def test_deleted_or_deleting_model_deployment_is_left_alone(posted: list[Any]) -> None:
    kube = StubKube(None, [])
    run(kube)
    assert kube.calls == []
    body = md_body()
    body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    kube = StubKube(body, [tj_body(1)])
    run(kube)
    assert kube.calls == []


def test_a_foreign_deployment_is_not_taken_over(posted: list[Any]) -> None:
    kube = StubKube(md_body(), [tj_body(1)])
    kube.deployment = deployment(1)
    kube.deployment["metadata"]["ownerReferences"] = []
    with pytest.raises(kopf.PermanentError):
        run(kube)
    assert kube.applied == []


def test_invalid_training_jobs_are_ignored(posted: list[Any]) -> None:
    broken = tj_body(3)
    broken["spec"] = {"model": "iris"}
    kube = StubKube(md_body(), [tj_body(1), broken])
    run(kube)
    dep = kube.applied[-1]
    assert dep["spec"]["template"]["metadata"]["labels"]["continuum.dev/model-version"] == "1"


def test_helpers() -> None:
    assert controller_owner(deployment(1)) == ("iris", MD_UID)
    assert controller_owner({"metadata": {}}) is None
    assert qualified(tj_body(1))
    assert not qualified(tj_body(1, qualified=False))
    assert not qualified(tj_body(1, phase="Running"))
    settings = kopf.OperatorSettings()
    configure(settings)
    assert settings.watching.label_selectors["apps", "deployments"] == (
        "app.kubernetes.io/managed-by=continuum"
    )


def test_serving_gauge_follows_the_watch() -> None:
    modeldeployment.observe_serving("ml", "gone", 4)
    labels = {"namespace": "ml", "name": "gone"}
    name = "continuum_modeldeployment_serving_version"
    assert metrics.REGISTRY.get_sample_value(name, labels) == 4
    modeldeployment.observe_serving("ml", "gone", None)
    assert metrics.REGISTRY.get_sample_value(name, labels) is None
    modeldeployment.observe_serving("ml", "gone", None)
