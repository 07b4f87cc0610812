"""The TrainingJob handlers' glue: create-or-get, status writes with conflicts, events.

The gateway is replaced by a small in-memory stand-in here; the real API server is exercised
by tests/cluster/test_trainingjob.py.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from typing import Any, cast

import kopf
import pytest
from tests.unit.controllers.conftest import (
    FAILURE,
    MANIFEST_URI,
    SUCCESS,
    UID,
    body,
    job,
    manifest_of,
    manifest_read,
    message,
    unreadable,
)

from continuum.api import StorageSpec
from continuum.controllers import metrics, trainingjob
from continuum.controllers.manifest import ManifestRead
from continuum.controllers.retries import Retries
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
        self.job_reads = 0

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

    async def read_job(self, _namespace: str, name: str) -> dict[str, Any] | None:
        self.job_reads += 1
        return copy.deepcopy(self.jobs.get(name))

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


class ManifestReads:
    """Stands in for ``read_manifest``: records each call and answers from ``answers`` (the
    last one repeats); with none, with the manifest the trainer wrote along with the summary
    in the stub's termination message."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.answers: list[ManifestRead] = []

    async def __call__(
        self, kube: Any, namespace: str, storage: StorageSpec, *, model: str, version: int, uri: str
    ) -> ManifestRead:
        self.calls.append({"namespace": namespace, "model": model, "version": version, "uri": uri})
        if len(self.answers) > 1:
            return self.answers.pop(0)
        if self.answers:
            return self.answers[0]
        return manifest_read(manifest_of(json.loads(kube.termination)))


@pytest.fixture(autouse=True)
def no_synced_jobs_yet() -> None:
    """Each test starts with an empty memory of synced Job observations."""
    trainingjob._synced.clear()


@pytest.fixture(autouse=True)
def manifests(monkeypatch: pytest.MonkeyPatch) -> ManifestReads:
    """No test reads S3: the manifest reads are answered by a ``ManifestReads``."""
    fake = ManifestReads()
    monkeypatch.setattr(trainingjob, "read_manifest", fake)
    return fake


@pytest.fixture(autouse=True)
def retries(monkeypatch: pytest.MonkeyPatch) -> Retries[tuple[str, str]]:
    """Each test has its own retries, slow enough never to fire unless a test waits."""
    fresh: Retries[tuple[str, str]] = Retries(first=3600.0, cap=3600.0)
    monkeypatch.setattr(trainingjob, "_retries", fresh)
    return fresh


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


OWNER = ("iris-1", UID)
Events = list[tuple[str, str, str]]


def manifest_reads_counted(outcome: str) -> float:
    labels = {"outcome": outcome}
    return metrics.REGISTRY.get_sample_value("continuum_manifest_reads_total", labels) or 0.0


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let scheduled retries run until ``condition`` holds (failing after ``timeout`` s)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def condition_of(status: dict[str, Any], kind: str) -> str:
    return str(next(c["status"] for c in status["conditions"] if c["type"] == kind))


def quick_retries(monkeypatch: pytest.MonkeyPatch) -> Retries[tuple[str, str]]:
    """Retries after 10 ms, then 20 ms, 40 ms, ... up to 1 s."""
    quick: Retries[tuple[str, str]] = Retries(first=0.01, cap=1.0)
    monkeypatch.setattr(trainingjob, "_retries", quick)
    return quick


async def backoff_starts_over(retries: Retries[tuple[str, str]]) -> bool:
    """Whether nothing is kept for the TrainingJob: its next retry would wait the first delay."""

    async def nothing() -> None:
        return None

    delay = retries.schedule(("ml", UID), nothing)
    retries.forget(("ml", UID))
    return delay == retries.first


def completed_run(*answers: ManifestRead, manifests: ManifestReads) -> StubKube:
    """A stub whose Job completed with ``SUCCESS``, its manifest read as ``answers`` say."""
    manifests.answers = list(answers)
    stub = StubKube(body(), termination=message(SUCCESS))
    stub.jobs["iris-1-train"] = job("Complete")
    return stub


def test_success_reads_the_manifest_the_summary_names(
    events: Events, manifests: ManifestReads
) -> None:
    stub = completed_run(manifests=manifests)
    before = manifest_reads_counted("read")
    run(sync_status(gateway(stub), "ml", OWNER, job("Complete")))
    wanted = {"namespace": "ml", "model": "iris", "version": 3, "uri": MANIFEST_URI}
    assert manifests.calls == [wanted]
    assert manifest_reads_counted("read") == before + 1


def test_the_written_result_is_the_manifests(events: Events, manifests: ManifestReads) -> None:
    stored = manifest_of({**SUCCESS, "metrics": {"accuracy": 0.91}})
    stub = completed_run(manifest_read(stored), manifests=manifests)
    run(sync_status(gateway(stub), "ml", OWNER, job("Complete")))
    assert stub.patches[-1]["metrics"] == {"accuracy": 0.91}


def test_the_manifest_is_read_once_per_sync(events: Events, manifests: ManifestReads) -> None:
    stub = completed_run(manifests=manifests)
    stub.conflicts = 1  # two attempts in the first sync
    run(sync_status(gateway(stub), "ml", OWNER, job("Complete")))
    assert len(manifests.calls) == 1
    run(sync_status(gateway(stub), "ml", OWNER, job("Complete")))
    assert len(manifests.calls) == 1, "a finished TrainingJob needs no manifest"


@pytest.mark.parametrize(
    ("observed", "summary"),
    [(job(), SUCCESS), (job(ready=1), SUCCESS), (job("Failed"), FAILURE)],
    ids=["pending", "running", "failed"],
)
def test_no_manifest_is_read_unless_the_job_completed(
    events: Events, manifests: ManifestReads, observed: dict[str, Any], summary: dict[str, Any]
) -> None:
    stub = StubKube(body(), termination=message(summary))
    run(sync_status(gateway(stub), "ml", OWNER, observed))
    assert stub.patches, "the status was synced"
    assert manifests.calls == []


def test_an_unreadable_manifest_is_read_again_until_it_reads(
    events: Events, manifests: ManifestReads, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = quick_retries(monkeypatch)
    stub = completed_run(unreadable(), unreadable(), manifest_read(), manifests=manifests)
    stub.jobs["iris-1-train"]["status"]["completionTime"] = "2026-01-01T10:05:00Z"

    async def scenario() -> None:
        await sync_status(gateway(stub), "ml", OWNER, job("Complete"))
        assert stub.patches[-1]["phase"] == "Running"
        assert quick.pending() == 1
        await until(lambda: stub.patches[-1]["phase"] == "Succeeded")
        assert await backoff_starts_over(quick), "nothing is kept for a finished run"

    run(scenario())
    assert [p["phase"] for p in stub.patches] == ["Running", "Succeeded"]
    assert stub.patches[-1]["completionTime"] == "2026-01-01T10:05:00Z", "from the Job re-read"
    assert (len(manifests.calls), stub.job_reads) == (3, 2), "each retry re-reads the Job"
    assert quick.pending() == 0
    assert [e[1] for e in events] == ["ManifestUnreadable", "Succeeded", "Qualified"]


def test_the_unreadable_warning_is_posted_once_per_problem(
    events: Events, manifests: ManifestReads
) -> None:
    first, second = "S3 is unavailable", "AccessDenied: the key was revoked"
    answers = [
        unreadable(first),
        unreadable(first),  # the same status: nothing written
        unreadable(first, needs_change=True),  # Stalled changes, the message does not
        unreadable(second),
    ]
    stub = completed_run(*answers, manifests=manifests)

    async def syncs() -> None:
        for _ in answers:
            await sync_status(gateway(stub), "ml", OWNER, job("Complete"))

    run(syncs())
    stalled = [condition_of(p, "Stalled") for p in stub.patches]
    assert stalled == ["False", "True", "False"]
    assert [(e[0], e[1]) for e in events] == [("Warning", "ManifestUnreadable")] * 2
    assert first in events[0][2]
    assert second in events[1][2]


def test_a_deleted_training_job_forgets_its_retry(
    events: Events, manifests: ManifestReads, retries: Retries[tuple[str, str]]
) -> None:
    stub = completed_run(unreadable(), manifests=manifests)

    async def scenario() -> None:
        await sync_status(gateway(stub), "ml", OWNER, job("Complete"))
        assert retries.pending() == 1
        stub.tj = None
        await sync_status(gateway(stub), "ml", OWNER, job("Complete"))
        assert retries.pending() == 0

    run(scenario())


@pytest.mark.parametrize("gone", ["training-job", "job"])
def test_a_retry_stops_when_its_objects_are_gone(
    events: Events, manifests: ManifestReads, monkeypatch: pytest.MonkeyPatch, gone: str
) -> None:
    quick = quick_retries(monkeypatch)
    stub = completed_run(unreadable(), manifests=manifests)

    async def scenario() -> None:
        await sync_status(gateway(stub), "ml", OWNER, job("Complete"))
        if gone == "job":
            stub.jobs.clear()
        else:
            stub.tj = None
        await until(lambda: stub.job_reads == 1)
        await asyncio.sleep(0.1)  # ten first retry periods
        assert await backoff_starts_over(quick)

    run(scenario())
    assert stub.job_reads == 1, "no retry after the first found something gone"
    assert quick.pending() == 0
    assert len(manifests.calls) == 1
