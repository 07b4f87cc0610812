"""The DriftMonitor controller: waiting, starting a check, folding it in, retraining once.

The gateway is the test kit's in-memory stand-in (tests/kit/fake_kube.py); the real API server
is exercised by tests/cluster/test_driftmonitor.py and tests/e2e/test_loop.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import kopf
import pytest

from continuum.controllers.driftmonitor import controller as driftmonitor
from continuum.controllers.driftmonitor.controller import controller_owner
from continuum.controllers.driftmonitor.handlers import due
from continuum.controllers.shared.objects import Ref
from continuum.kube import Kube
from tests.kit.fake_kube import FakeKube
from tests.unit.controllers.driftmonitor.builders import (
    DM_UID,
    check_job,
    dm_body,
    message,
    summary,
)
from tests.unit.controllers.modeldeployment.builders import md_body

IMAGE = "continuum:0.1.0"
CLOCK = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
REF = Ref("DriftMonitor", "driftmonitors", "ml", "drift")


def cluster(dm: dict[str, Any], md: dict[str, Any] | None) -> FakeKube:
    return FakeKube(dm, *([md] if md is not None else []))


def finish(kube: FakeKube, verdict: str = "Drift") -> None:
    """The last check Job completes, its pod having written a summary with ``verdict``."""
    job = kube.of("jobs")[-1]
    job["status"] = {"conditions": [{"type": "Complete", "status": "True"}],
                     "completionTime": "2026-03-01T12:00:50Z"}  # fmt: skip
    kube.terminations[job["metadata"]["name"]] = message(summary(verdict, time=_time(job)))


def _time(job: dict[str, Any]) -> str:
    return str(job["metadata"]["annotations"]["continuum.dev/check-time"])


def monitor(kube: FakeKube) -> dict[str, Any]:
    found = kube.get("driftmonitors", "ml", "drift")
    assert found is not None
    return found


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []

    def post(kind: str) -> Any:
        return lambda _body, *, reason, message: events.append((kind, reason))

    monkeypatch.setattr(kopf, "info", post("Normal"))
    monkeypatch.setattr(kopf, "warn", post("Warning"))
    monkeypatch.setattr(driftmonitor, "_now", lambda: CLOCK)
    return events


def run(kube: FakeKube) -> None:
    asyncio.run(driftmonitor.reconcile(cast("Kube", kube), IMAGE, REF))


def conds(kube: FakeKube) -> dict[str, str]:
    return {c["type"]: c["reason"] for c in monitor(kube)["status"]["conditions"]}


def test_waits_for_the_deployment(posted: list[tuple[str, str]]) -> None:
    kube = cluster(dm_body(), None)
    run(kube)
    assert conds(kube)["Ready"] == "WaitingForDeployment"
    assert kube.of("jobs") == []
    kube.put(md_body())  # exists, serves nothing yet
    run(kube)
    assert "serve a version" in monitor(kube)["status"]["conditions"][0]["message"]
    assert kube.of("jobs") == []


def test_check_drift_retrain_once(posted: list[tuple[str, str]]) -> None:
    kube = cluster(dm_body({"consecutiveDrifts": 1}), md_body(status={"servingVersion": 4}))
    run(kube)
    [job] = kube.of("jobs")
    assert job["metadata"]["name"] == "drift-check-1772366400"  # the 12:00:00 slot
    assert monitor(kube)["status"]["checkJobName"] == job["metadata"]["name"]
    assert conds(kube)["Reconciling"] == "CheckRunning"
    run(kube)  # still running: no second Job
    assert len(kube.of("jobs")) == 1

    finish(kube, "Drift")
    kube.conflicts = 1  # the first status write after creating the TrainingJob conflicts
    run(kube)
    status = monitor(kube)["status"]
    assert status["lastCheckTime"] == "2026-03-01T12:00:50Z"
    assert status["consecutiveDrifts"] == 0
    [tj] = kube.of("trainingjobs")
    assert [r["trainingJob"] for r in status["retrainings"]] == [tj["metadata"]["name"]]
    assert tj["metadata"]["annotations"]["continuum.dev/report"] == status["reportURI"]
    assert posted == [("Warning", "DriftDetected"), ("Normal", "RetrainingTriggered")]
    writes = len(kube.written)
    run(kube)  # nothing new: no write, no TrainingJob, no Event
    assert (len(kube.written), len(kube.of("trainingjobs")), len(posted)) == (writes, 1, 2)


def test_no_drift_and_failed_checks(posted: list[tuple[str, str]]) -> None:
    kube = cluster(dm_body(), md_body(status={"servingVersion": 1}))
    run(kube)
    finish(kube, "NoDrift")
    run(kube)
    assert conds(kube)["DriftDetected"] == "NoDrift"
    assert posted == [("Normal", "NoDrift")]
    monitor(kube)["status"]["lastCheckTime"] = "2026-03-01T11:58:00Z"  # make the next check due
    monitor(kube)["status"].pop("reportURI")
    for old in kube.of("jobs"):
        kube.delete("jobs", "ml", old["metadata"]["name"])
    run(kube)
    kube.of("jobs")[-1]["status"] = {"conditions": [{"type": "Failed", "status": "True",
                                               "message": "DeadlineExceeded"}]}  # fmt: skip
    kube.terminations.clear()
    run(kube)
    assert conds(kube)["Stalled"] == "CheckFailed"
    assert posted[-1] == ("Warning", "CheckFailed")
    assert kube.of("trainingjobs") == []


def test_helpers() -> None:
    body = dm_body()
    assert due(body, CLOCK)
    assert not due({"spec": {}}, CLOCK)
    assert controller_owner(check_job()) == ("drift", DM_UID)
    assert controller_owner({"metadata": {}}) is None
