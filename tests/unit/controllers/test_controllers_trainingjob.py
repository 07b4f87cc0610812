"""The TrainingJob handlers' glue: create-or-get, status writes with conflicts, events.

The gateway is replaced by a small in-memory stand-in here; the real API server is exercised
by tests/cluster/test_trainingjob.py.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any, cast

import kopf
import pytest
from tests.unit.controllers.conftest import FAILURE, SUCCESS, UID, body, job, message

from continuum.controllers import trainingjob
from continuum.controllers.trainingjob import (
    controller_owner,
    job_finished,
    reconcile,
    sync_status,
)
from continuum.kube import Conflict, Kube

IMAGE = "continuum:0.1.0"


class StubKube:
    """Just enough of ``continuum.kube.Kube`` for the handlers, in memory."""

    def __init__(self, tj: dict[str, Any] | None, termination: str | None = None) -> None:
        self.tj = tj
        self.jobs: dict[str, dict[str, Any]] = {}
        self.termination = termination
        self.patches: list[dict[str, Any]] = []
        self.conflicts = 0
        self.pod_reads = 0
        self.reads = 0

    async def create_job(self, manifest: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        name = manifest["metadata"]["name"]
        if name in self.jobs:
            return self.jobs[name], False
        self.jobs[name] = copy.deepcopy(manifest)
        self.jobs[name]["metadata"]["uid"] = f"{name}-uid"  # as the API server assigns one
        return self.jobs[name], True

    async def read_custom_object(self, *_: str) -> dict[str, Any] | None:
        self.reads += 1
        return copy.deepcopy(self.tj)

    async def read_pod_termination_message(self, *_: Any) -> str | None:
        self.pod_reads += 1
        return self.termination

    async def patch_status(self, *_: str, status: dict[str, Any], resource_version: str) -> None:
        assert self.tj is not None
        if self.conflicts:
            self.conflicts -= 1
            self.tj["metadata"]["resourceVersion"] = str(int(resource_version) + 1)
            raise Conflict("changed", status=409)
        assert resource_version == self.tj["metadata"]["resourceVersion"]
        self.patches.append(status)
        self.tj["status"] = status
        self.tj["metadata"]["resourceVersion"] = str(int(resource_version) + 1)


@pytest.fixture(autouse=True)
def no_synced_jobs_yet() -> None:
    """Each test starts with an empty memory of synced Job observations."""
    trainingjob._synced.clear()


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    posted: list[tuple[str, str, str]] = []

    def post(kind: str) -> Any:
        def record(_body: Any, *, reason: str, message: str) -> None:
            posted.append((kind, reason, message))

        return record

    monkeypatch.setattr(kopf, "info", post("Normal"))
    monkeypatch.setattr(kopf, "warn", post("Warning"))
    return posted


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def gateway(stub: StubKube) -> Kube:
    return cast(Kube, stub)


def test_reconcile_creates_the_job_once(events: list[tuple[str, str, str]]) -> None:
    stub = StubKube(body())
    run(reconcile(gateway(stub), IMAGE, body()))
    run(reconcile(gateway(stub), IMAGE, stub.tj or {}))
    assert list(stub.jobs) == ["iris-1-train"]
    assert [e[1] for e in events] == ["JobCreated"]
    assert len(stub.patches) == 1, "the second pass changes nothing"
    assert stub.patches[0]["phase"] == "Pending"
    assert stub.patches[0]["jobName"] == "iris-1-train"


def test_finished_training_jobs_are_never_rerun(events: list[tuple[str, str, str]]) -> None:
    finished = body(status={"phase": "Succeeded"})
    stub = StubKube(finished)
    run(reconcile(gateway(stub), IMAGE, finished))
    assert stub.jobs == {}
    assert events == []


def test_a_job_of_another_owner_is_not_adopted(events: list[tuple[str, str, str]]) -> None:
    stub = StubKube(body())
    foreign = job(name="iris-1-train")
    foreign["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    stub.jobs["iris-1-train"] = foreign
    with pytest.raises(kopf.TemporaryError):
        run(reconcile(gateway(stub), IMAGE, body()))


def test_success_writes_results_and_posts_events(events: list[tuple[str, str, str]]) -> None:
    stub = StubKube(body(), termination=message(SUCCESS))
    run(sync_status(gateway(stub), "ml", ("iris-1", UID), job("Complete")))
    assert stub.patches[-1]["phase"] == "Succeeded"
    assert stub.patches[-1]["model"]["version"] == 3
    assert [(e[0], e[1]) for e in events] == [("Normal", "Succeeded"), ("Normal", "Qualified")]


def test_not_qualified_is_a_warning(events: list[tuple[str, str, str]]) -> None:
    summary = {**SUCCESS, "qualified": False, "reasons": ["worse than champion 2"]}
    stub = StubKube(body(), termination=message(summary))
    run(sync_status(gateway(stub), "ml", ("iris-1", UID), job("Complete")))
    assert events[-1][:2] == ("Warning", "NotQualified")
    assert "champion 2" in events[-1][2]


def test_failure_posts_a_warning_with_the_reason(events: list[tuple[str, str, str]]) -> None:
    stub = StubKube(body(), termination=message(FAILURE))
    run(sync_status(gateway(stub), "ml", ("iris-1", UID), job("Failed")))
    assert stub.patches[-1]["phase"] == "Failed"
    assert events == [("Warning", "Failed", f"DatasetInvalid: {FAILURE['message']}")]


def test_events_are_posted_once(events: list[tuple[str, str, str]]) -> None:
    stub = StubKube(body(), termination=message(SUCCESS))
    for _ in range(3):
        run(sync_status(gateway(stub), "ml", ("iris-1", UID), job("Complete")))
    assert len(stub.patches) == 1
    assert len(events) == 2


def test_conflicts_are_retried(events: list[tuple[str, str, str]]) -> None:
    stub = StubKube(body())
    stub.conflicts = 2
    run(sync_status(gateway(stub), "ml", ("iris-1", UID), job(ready=1)))
    assert stub.patches[-1]["phase"] == "Running"


def test_endless_conflicts_are_a_temporary_error(events: list[tuple[str, str, str]]) -> None:
    stub = StubKube(body())
    stub.conflicts = 100
    with pytest.raises(kopf.TemporaryError):
        run(sync_status(gateway(stub), "ml", ("iris-1", UID), job(ready=1)))


def test_deleted_or_replaced_owner_is_left_alone(events: list[tuple[str, str, str]]) -> None:
    gone = StubKube(None)
    run(sync_status(gateway(gone), "ml", ("iris-1", UID), job("Complete")))
    replaced = StubKube(body())
    run(sync_status(gateway(replaced), "ml", ("iris-1", "old-uid"), job("Complete")))
    assert gone.patches == replaced.patches == []


def test_controller_owner() -> None:
    assert controller_owner(job()) == ("iris-1", UID)
    plain = job()
    plain["metadata"]["ownerReferences"][0]["controller"] = False
    assert controller_owner(plain) is None
    other = job()
    other["metadata"]["ownerReferences"][0]["apiVersion"] = "example.com/v1"
    assert controller_owner(other) is None


def test_job_finished() -> None:
    assert not job_finished(job(ready=1))
    assert job_finished(job("Complete"))
    assert job_finished(job("Failed"))


def test_handlers_are_registered_with_pinned_versions() -> None:
    registry = kopf.get_default_registry()
    ids = {h.id for h in registry._changing.get_all_handlers()}
    ids |= {h.id for h in registry._watching.get_all_handlers()}
    assert {"trainingjob", "trainingjob-job", "trainingjob-phase"} <= ids
    assert trainingjob.PLURAL == "trainingjobs"


def test_pods_are_read_once_and_only_for_unfinished_records(
    events: list[tuple[str, str, str]],
) -> None:
    stub = StubKube(body(), termination=message(SUCCESS))
    stub.conflicts = 1
    run(sync_status(gateway(stub), "ml", ("iris-1", UID), job("Complete")))
    assert stub.pod_reads == 1
    run(sync_status(gateway(stub), "ml", ("iris-1", UID), job("Complete")))
    assert stub.pod_reads == 1, "a finished TrainingJob needs no pod read"


class RacyKube(StubKube):
    """Reads and writes yield to the event loop, and a stale write is a real 409."""

    def __init__(self, tj: dict[str, Any] | None) -> None:
        super().__init__(tj)
        self.rejected = 0

    async def read_custom_object(self, *args: str) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        return await super().read_custom_object(*args)

    async def patch_status(self, *args: str, status: dict[str, Any], resource_version: str) -> None:
        await asyncio.sleep(0)
        assert self.tj is not None
        if resource_version != self.tj["metadata"]["resourceVersion"]:
            self.rejected += 1
            raise Conflict("changed", status=409)
        await super().patch_status(*args, status=status, resource_version=resource_version)


def test_concurrent_status_syncs_of_one_training_job_write_once(
    events: list[tuple[str, str, str]],
) -> None:
    stub = RacyKube(body())

    async def both() -> None:
        await asyncio.gather(
            sync_status(gateway(stub), "ml", ("iris-1", UID), job(ready=1)),
            sync_status(gateway(stub), "ml", ("iris-1", UID), job(ready=1)),
        )

    run(both())
    assert [p["phase"] for p in stub.patches] == ["Running"]
    assert stub.rejected == 0


def test_reconcile_writes_from_the_event_body_without_reading_it_again(
    events: list[tuple[str, str, str]],
) -> None:
    stub = StubKube(body())
    run(reconcile(gateway(stub), IMAGE, body()))
    assert stub.reads == 0
    assert [p["phase"] for p in stub.patches] == ["Pending"]


def test_reconcile_with_a_stale_event_body_reads_the_object_and_writes_once(
    events: list[tuple[str, str, str]],
) -> None:
    stub = RacyKube(body())
    run(sync_status(gateway(stub), "ml", ("iris-1", UID), job(ready=1)))  # now Running
    stale = body()  # the create event, older than that status write
    run(reconcile(gateway(stub), IMAGE, stale))
    assert stub.rejected == 1, "the write guarded by the stale resourceVersion is refused"
    assert [p["phase"] for p in stub.patches] == ["Running"], "then nothing is left to write"


@pytest.mark.parametrize("kind", [None, "ADDED", "DELETED"])
def test_job_appearance_and_deletion_leave_the_status_to_the_owner_handlers(
    kind: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Any] = []

    async def sync(*args: Any, **_: Any) -> None:
        synced.append(args)

    monkeypatch.setattr(trainingjob, "sync_status", sync)
    monkeypatch.setattr(trainingjob, "kube_of", lambda memo: memo["kube"])
    memo = kopf.Memo(kube=StubKube(body()))
    run(trainingjob.job_event_handler(kind, kopf.Body(job(ready=1)), memo))  # type: ignore[arg-type]
    assert synced == []
    run(trainingjob.job_event_handler("MODIFIED", kopf.Body(job(ready=1)), memo))  # type: ignore[arg-type]
    assert len(synced) == 1


def test_a_job_change_that_tells_nothing_new_reads_nothing(
    events: list[tuple[str, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = StubKube(body())
    monkeypatch.setattr(trainingjob, "kube_of", lambda memo: memo["kube"])
    memo = kopf.Memo(kube=stub)
    run(reconcile(gateway(stub), IMAGE, body()))  # Pending, from the Job just created
    created = stub.jobs["iris-1-train"]
    bookkeeping = copy.deepcopy(created)
    bookkeeping["status"] = {"startTime": "2026-01-01T10:00:00Z", "ready": 0}
    run(trainingjob.job_event_handler("MODIFIED", kopf.Body(bookkeeping), memo))  # type: ignore[arg-type]
    assert stub.reads == 0, "still Pending: the owner is not read again"
    running = copy.deepcopy(created)
    running["status"] = {"startTime": "2026-01-01T10:00:00Z", "ready": 1, "active": 1}
    run(trainingjob.job_event_handler("MODIFIED", kopf.Body(running), memo))  # type: ignore[arg-type]
    assert stub.reads == 1
    assert [p["phase"] for p in stub.patches] == ["Pending", "Running"]


def test_a_relisted_job_that_finished_unwatched_is_synced(
    events: list[tuple[str, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = StubKube(body(), termination=message(SUCCESS))
    monkeypatch.setattr(trainingjob, "kube_of", lambda memo: memo["kube"])
    memo = kopf.Memo(kube=stub)
    run(reconcile(gateway(stub), IMAGE, body()))  # Pending, from the Job just created
    created = stub.jobs["iris-1-train"]
    run(trainingjob.job_event_handler(None, kopf.Body(copy.deepcopy(created)), memo))  # type: ignore[arg-type]
    assert stub.reads == 0, "relisted as it was synced: nothing to do"
    finished = copy.deepcopy(created)
    finished["status"] = job("Complete")["status"]
    run(trainingjob.job_event_handler(None, kopf.Body(finished), memo))  # type: ignore[arg-type]
    assert [p["phase"] for p in stub.patches][-1] == "Succeeded", "the missed finish is synced"
