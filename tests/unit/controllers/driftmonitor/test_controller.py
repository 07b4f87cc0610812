"""The DriftMonitor handlers' glue: waiting, starting a check, folding it in, retraining once.

The gateway is replaced by a small in-memory stand-in here; the real API server is exercised
by tests/cluster/test_driftmonitor.py and tests/e2e/test_loop.py.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from typing import Any, cast

import kopf
import pytest
from tests.unit.controllers.dmfixtures import DM_UID, check_job, dm_body, message, summary
from tests.unit.controllers.mdfixtures import md_body

from continuum.controllers import driftmonitor
from continuum.controllers.driftmonitor import controller_owner, due, reconcile
from continuum.kube import Conflict, Kube

IMAGE = "continuum:0.1.0"
CLOCK = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)


class StubKube:
    """Just enough of ``continuum.kube.Kube`` for the DriftMonitor handlers, in memory."""

    def __init__(self, dm: dict[str, Any], md: dict[str, Any] | None) -> None:
        self.dm, self.md = dm, md
        self.jobs: list[dict[str, Any]] = []
        self.tjs: list[dict[str, Any]] = []
        self.termination: str | None = None
        self.conflicts = 0
        self.writes = 0

    async def read_custom_object(self, _g: str, _v: str, plural: str, *_: str) -> Any:
        return copy.deepcopy(self.dm if plural == "driftmonitors" else self.md)

    async def list_jobs(self, *_: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.jobs)

    async def create_job(self, job: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        for existing in self.jobs:
            if existing["metadata"]["name"] == job["metadata"]["name"]:
                return copy.deepcopy(existing), False
        self.jobs.append(copy.deepcopy(job))
        return job, True

    async def read_pod_termination_message(self, *_: Any) -> str | None:
        return self.termination

    async def list_custom_objects(self, *_: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.tjs)

    async def create_custom_object(self, *_: Any) -> tuple[dict[str, Any], bool]:
        body = _[-1]
        for existing in self.tjs:
            if existing["metadata"]["name"] == body["metadata"]["name"]:
                return copy.deepcopy(existing), False
        self.tjs.append(copy.deepcopy(body))
        return body, True

    async def patch_status(self, *_: str, status: dict[str, Any], resource_version: str) -> None:
        if self.conflicts:
            self.conflicts -= 1
            self.dm["metadata"]["resourceVersion"] = str(int(resource_version) + 1)
            raise Conflict("changed", status=409)
        assert resource_version == self.dm["metadata"]["resourceVersion"]
        self.writes += 1
        self.dm["status"] = copy.deepcopy(status)
        self.dm["metadata"]["resourceVersion"] = str(int(resource_version) + 1)

    def finish(self, verdict: str = "Drift") -> None:
        job = self.jobs[-1]
        job["status"] = {"conditions": [{"type": "Complete", "status": "True"}],
                         "completionTime": "2026-03-01T12:00:50Z"}  # fmt: skip
        self.termination = message(summary(verdict, time=_time(job)))


def _time(job: dict[str, Any]) -> str:
    return str(job["metadata"]["annotations"]["continuum.dev/check-time"])


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []

    def post(kind: str) -> Any:
        return lambda _body, *, reason, message: events.append((kind, reason))

    monkeypatch.setattr(kopf, "info", post("Normal"))
    monkeypatch.setattr(kopf, "warn", post("Warning"))
    monkeypatch.setattr(driftmonitor, "_now", lambda: CLOCK)
    return events


def run(kube: StubKube) -> None:
    asyncio.run(reconcile(cast("Kube", kube), IMAGE, "ml", "drift"))


def conds(kube: StubKube) -> dict[str, str]:
    return {c["type"]: c["reason"] for c in kube.dm["status"]["conditions"]}


def test_waits_for_the_deployment(posted: list[tuple[str, str]]) -> None:
    kube = StubKube(dm_body(), None)
    run(kube)
    assert conds(kube)["Ready"] == "WaitingForDeployment"
    assert kube.jobs == []
    kube.md = md_body()  # exists, serves nothing yet
    run(kube)
    assert "serve a version" in kube.dm["status"]["conditions"][0]["message"]
    assert kube.jobs == []


def test_check_drift_retrain_once(posted: list[tuple[str, str]]) -> None:
    kube = StubKube(dm_body({"consecutiveDrifts": 1}), md_body(status={"servingVersion": 4}))
    run(kube)
    [job] = kube.jobs
    assert job["metadata"]["name"] == "drift-check-1772366400"  # the 12:00:00 slot
    assert kube.dm["status"]["checkJobName"] == job["metadata"]["name"]
    assert conds(kube)["Reconciling"] == "CheckRunning"
    run(kube)  # still running: no second Job
    assert len(kube.jobs) == 1

    kube.finish("Drift")
    kube.conflicts = 1  # the first status write after creating the TrainingJob conflicts
    run(kube)
    status = kube.dm["status"]
    assert status["lastCheckTime"] == "2026-03-01T12:00:50Z"
    assert status["consecutiveDrifts"] == 0
    [tj] = kube.tjs
    assert [r["trainingJob"] for r in status["retrainings"]] == [tj["metadata"]["name"]]
    assert tj["metadata"]["annotations"]["continuum.dev/report"] == status["reportURI"]
    assert posted == [("Warning", "DriftDetected"), ("Normal", "RetrainingTriggered")]
    writes = kube.writes
    run(kube)  # nothing new: no write, no TrainingJob, no Event
    assert (kube.writes, len(kube.tjs), len(posted)) == (writes, 1, 2)


def test_no_drift_and_failed_checks(posted: list[tuple[str, str]]) -> None:
    kube = StubKube(dm_body(), md_body(status={"servingVersion": 1}))
    run(kube)
    kube.finish("NoDrift")
    run(kube)
    assert conds(kube)["DriftDetected"] == "NoDrift"
    assert posted == [("Normal", "NoDrift")]
    kube.dm["status"]["lastCheckTime"] = "2026-03-01T11:58:00Z"  # make the next check due
    kube.dm["status"].pop("reportURI")
    kube.jobs.clear()
    run(kube)
    kube.jobs[-1]["status"] = {"conditions": [{"type": "Failed", "status": "True",
                                               "message": "DeadlineExceeded"}]}  # fmt: skip
    kube.termination = None
    run(kube)
    assert conds(kube)["Stalled"] == "CheckFailed"
    assert posted[-1] == ("Warning", "CheckFailed")
    assert kube.tjs == []


def test_helpers() -> None:
    body = dm_body()
    assert due(body, CLOCK)
    assert not due({"spec": {}}, CLOCK)
    assert controller_owner(check_job()) == ("drift", DM_UID)
    assert controller_owner({"metadata": {}}) is None
