"""A streak of failed reconciles shown on the object: the Reconciling condition with the last
error, one Warning Event, and both undone by the first success; and the merge patches every
status write sends (a field the new status lacks is removed, not left behind)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import kopf
import pytest

from continuum.api.vocabulary import MODEL_DEPLOYMENT, MODEL_DEPLOYMENTS
from continuum.controllers.shared.objects import Ref, merge_patch
from continuum.controllers.shared.queue import Backoff, WorkQueue
from continuum.controllers.shared.streaks import StatusReporter, with_failing
from continuum.kube import Kube, KubeUnavailable
from tests.kit.fake_kube import FakeKube, apply_merge_patch

REF = Ref(MODEL_DEPLOYMENT, MODEL_DEPLOYMENTS, "ml", "iris")
EARLIER = "2026-12-01T10:00:00Z"
Events = list[tuple[str, str, str]]


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Events:
    posted: Events = []

    def post(kind: str) -> Any:
        return lambda _body, *, reason, message: posted.append((kind, reason, message))

    monkeypatch.setattr(kopf, "info", post("Normal"))
    monkeypatch.setattr(kopf, "warn", post("Warning"))
    return posted


def deployment(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "continuum.dev/v1alpha1",
        "kind": MODEL_DEPLOYMENT,
        "metadata": {"namespace": "ml", "name": "iris", "uid": "u1", "resourceVersion": "1"},
        "spec": {"model": "iris"},
        "status": {"servingVersion": 3, "conditions": list(conditions)},
    }


def available() -> dict[str, Any]:
    return {"type": "Available", "status": "True", "reason": "Serving",
            "lastTransitionTime": EARLIER}  # fmt: skip


def conditions_of(kube: FakeKube) -> dict[str, dict[str, Any]]:
    body = kube.get(MODEL_DEPLOYMENTS, "ml", "iris")
    assert body is not None
    return {c["type"]: c for c in body["status"]["conditions"]}


def reporter(kube: FakeKube) -> StatusReporter:
    return StatusReporter(cast("Kube", kube), REF)


def test_a_streak_shows_the_last_error_with_one_warning(events: Events) -> None:
    kube = FakeKube(deployment(available()))
    streak = reporter(kube)
    asyncio.run(streak.failing(KubeUnavailable("PATCH …: HTTP 503: etcd leader changed")))
    asyncio.run(streak.failing(KubeUnavailable("PATCH …: HTTP 503: etcd leader changed")))
    asyncio.run(streak.failing(KubeUnavailable("GET …: no answer (timed out)")))
    found = conditions_of(kube)
    assert found["Reconciling"]["status"] == "True"
    assert found["Reconciling"]["reason"] == "ReconcileFailing"
    assert found["Reconciling"]["message"].endswith("last error: GET …: no answer (timed out)")
    assert found["Available"] == available(), "the kind's own conditions are kept"
    assert kube.get(MODEL_DEPLOYMENTS, "ml", "iris")["status"]["servingVersion"] == 3  # type: ignore[index]
    assert kube.count("patch_status") == 2, "an unchanged message is not written again"
    assert [e[:2] for e in events] == [("Warning", "ReconcileFailing")]


def test_recovery_removes_the_condition_and_says_so(events: Events) -> None:
    kube = FakeKube(deployment(available()))
    streak = reporter(kube)
    asyncio.run(streak.failing(RuntimeError("boom")))
    asyncio.run(streak.recovered())
    assert set(conditions_of(kube)) == {"Available", "Reconciling"}
    settled = conditions_of(kube)["Reconciling"]
    assert (settled["status"], settled["reason"]) == ("False", "ReconcileRecovered")
    assert [e[:2] for e in events][-1] == ("Normal", "ReconcileRecovered")


def test_recovery_leaves_a_condition_the_kind_rewrote(events: Events) -> None:
    own = {"type": "Reconciling", "status": "False", "reason": "Succeeded",
           "lastTransitionTime": EARLIER}  # fmt: skip
    kube = FakeKube(deployment(own))
    asyncio.run(reporter(kube).recovered())
    assert conditions_of(kube)["Reconciling"] == own
    assert kube.count("patch_status") == 0


def test_a_status_write_the_api_refuses_does_not_raise(events: Events) -> None:
    kube = FakeKube(deployment())
    kube.fail("patch_status", KubeUnavailable("HTTP 503"))
    asyncio.run(reporter(kube).failing(RuntimeError("boom")))
    kube.fail("read_custom_object", KubeUnavailable("HTTP 503"))
    asyncio.run(reporter(kube).recovered())
    assert conditions_of(kube) == {}


def test_a_gone_object_gets_nothing(events: Events) -> None:
    kube = FakeKube()
    asyncio.run(reporter(kube).failing(RuntimeError("boom")))
    assert events == []
    assert kube.count("patch_status") == 0


def test_the_transition_time_holds_while_reconciling_stays_true() -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    running = {"type": "Reconciling", "status": "True", "reason": "JobCreated",
               "lastTransitionTime": EARLIER, "observedGeneration": 2}  # fmt: skip
    [kept] = with_failing([running], "m", now=now)
    assert kept["lastTransitionTime"] == EARLIER
    assert kept["observedGeneration"] == 2
    done = {**running, "status": "False"}
    [moved] = with_failing([done], "m", now=now)
    assert moved["lastTransitionTime"] == "2026-12-03T12:00:00Z"


def test_the_queue_drives_the_reporter_through_a_real_streak(events: Events) -> None:
    kube = FakeKube(deployment(available()))
    queue: WorkQueue[tuple[str, str]] = WorkQueue("Test", backoff=Backoff(0.01, 0.02, 0.0))
    runs = []

    async def work() -> None:
        runs.append(1)
        if len(runs) <= 3:
            raise KubeUnavailable("HTTP 503: etcd leader changed")

    async def scenario() -> None:
        await queue.run(REF.key, work, again=work, trigger="event", reporter=reporter(kube))
        async with asyncio.timeout(5):
            while len(runs) < 4 or queue.failures(REF.key):
                await asyncio.sleep(0.005)

    asyncio.run(scenario())
    assert [e[:2] for e in events] == [
        ("Warning", "ReconcileFailing"),
        ("Normal", "ReconcileRecovered"),
    ]
    assert {t: c["status"] for t, c in conditions_of(kube).items()} == {
        "Available": "True",
        "Reconciling": "False",
    }


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            {"drift": {"datasetDrift": True, "share": 0.75, "checked": 9}},
            {"drift": {"checked": 10}},
        ),
        ({"a": 1, "b": [1, 2]}, {"a": 1, "b": [2]}),
        ({"a": {"b": {"c": 1, "d": 2}}}, {"a": {"b": {"c": 1}}, "e": "x"}),
        ({"phase": "Running"}, {}),
        ({}, {"phase": "Running", "conditions": []}),
    ],
)
def test_the_merge_patch_turns_the_old_status_into_the_new(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    assert apply_merge_patch(old, merge_patch(old, new)) == new


def test_the_merge_patch_sends_only_what_changed() -> None:
    old = {"phase": "Running", "drift": {"datasetDrift": True, "share": 0.75}, "runs": 3}
    patch = merge_patch(old, {"phase": "Running", "drift": {"share": 0.1}, "runs": 3})
    assert patch == {"drift": {"datasetDrift": None, "share": 0.1}}


def test_recovery_says_whether_the_object_is_clear(events: Events) -> None:
    kube = FakeKube(deployment())
    streak = reporter(kube)
    asyncio.run(streak.failing(RuntimeError("boom")))
    kube.fail("patch_status", KubeUnavailable("HTTP 503"))
    assert asyncio.run(streak.recovered()) is False, "the write was refused: try again"
    assert ("Normal", "ReconcileRecovered") not in [e[:2] for e in events]
    kube.fail("read_custom_object", KubeUnavailable("HTTP 503"))
    assert asyncio.run(streak.recovered()) is False, "the read was refused"
    assert asyncio.run(streak.recovered()) is True
    assert conditions_of(kube)["Reconciling"]["status"] == "False"
    assert asyncio.run(reporter(FakeKube()).recovered()) is True, "gone: nothing to clear"
