"""The TrainingJob controller: create-or-get, status writes with conflicts, events, retries.

The gateway is the test kit's in-memory stand-in (tests/kit/fake_kube.py); the real API server
is exercised by tests/cluster/test_trainingjob.py.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from typing import Any, cast

import kopf
import pytest

from continuum.api import StorageSpec
from continuum.controllers.shared import metrics
from continuum.controllers.shared.objects import Ref
from continuum.controllers.shared.queue import Backoff, WorkQueue
from continuum.controllers.trainingjob import controller as trainingjob
from continuum.controllers.trainingjob import handlers
from continuum.controllers.trainingjob.controller import (
    controller_owner,
    job_finished,
    reconcile,
)
from continuum.controllers.trainingjob.manifest import ManifestRead
from continuum.kube import Kube, KubeError
from tests.kit import samples
from tests.kit.fake_kube import FakeKube
from tests.unit.controllers.trainingjob.builders import (
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

IMAGE = "continuum:0.1.0"


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
        return manifest_read(manifest_of(json.loads(kube.terminations[JOB])))


IMAGE = "continuum:0.1.0"
REF = Ref("TrainingJob", "trainingjobs", "ml", "iris-1", UID)
JOB = "iris-1-train"
Events = list[tuple[str, str, str]]


@pytest.fixture(autouse=True)
def no_synced_jobs_yet() -> None:
    """Each test starts with an empty memory of synced Job observations and finished Jobs."""
    trainingjob._synced.clear()
    trainingjob._finished.clear()


@pytest.fixture(autouse=True)
def manifests(monkeypatch: pytest.MonkeyPatch) -> ManifestReads:
    """No test reads S3: the manifest reads are answered by a ``ManifestReads``."""
    fake = ManifestReads()
    monkeypatch.setattr(trainingjob, "read_manifest", fake)
    return fake


@pytest.fixture(autouse=True)
def queue(monkeypatch: pytest.MonkeyPatch) -> WorkQueue[tuple[str, str]]:
    """Each test has its own queue, whose calls come too late to fire unless a test waits."""
    fresh: WorkQueue[tuple[str, str]] = WorkQueue("TrainingJob", backoff=Backoff(3600, 3600))
    monkeypatch.setattr(trainingjob, "queue", fresh)
    monkeypatch.setattr(handlers, "queue", fresh)
    monkeypatch.setattr(trainingjob, "MANIFEST_BACKOFF", Backoff(3600, 3600))
    return fresh


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Events:
    posted: Events = []

    def post(kind: str) -> Any:
        def record(_body: Any, *, reason: str, message: str) -> None:
            posted.append((kind, reason, message))

        return record

    monkeypatch.setattr(kopf, "info", post("Normal"))
    monkeypatch.setattr(kopf, "warn", post("Warning"))
    return posted


@pytest.fixture
def memo(monkeypatch: pytest.MonkeyPatch) -> kopf.Memo:
    """What the handlers get from kopf: the memo holding the gateway (a ``FakeKube``)."""
    monkeypatch.setattr(handlers, "kube_of", lambda memo: memo["kube"])
    monkeypatch.setattr(handlers, "image_of", lambda _memo: IMAGE)
    return kopf.Memo(kube=FakeKube(body()))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def fake(tj: dict[str, Any] | None = None, termination: str | None = None) -> FakeKube:
    """A cluster holding ``tj`` (if any), whose trainer pod left ``termination``."""
    kube = FakeKube(*([tj] if tj is not None else []))
    kube.terminations[JOB] = termination
    return kube


def gateway(kube: FakeKube) -> Kube:
    return cast(Kube, kube)


def sync(kube: FakeKube, observed: dict[str, Any], ref: Ref = REF) -> None:
    run(trainingjob.sync(gateway(kube), IMAGE, ref, observed))


def phases(kube: FakeKube) -> list[str]:
    return [status["phase"] for status in kube.statuses("trainingjobs")]


def last(kube: FakeKube) -> dict[str, Any]:
    return kube.statuses("trainingjobs")[-1]


def stored(kube: FakeKube) -> dict[str, Any]:
    found = kube.get("trainingjobs", "ml", "iris-1")
    assert found is not None
    return found


def test_reconcile_creates_the_job_once(events: Events) -> None:
    kube = fake(body())
    run(reconcile(gateway(kube), IMAGE, body()))
    run(reconcile(gateway(kube), IMAGE, copy.deepcopy(stored(kube))))
    assert [job["metadata"]["name"] for job in kube.of("jobs")] == [JOB]
    assert [e[1] for e in events] == ["JobCreated"]
    assert phases(kube) == ["Pending"], "the second pass changes nothing"
    assert last(kube)["jobName"] == JOB


def test_finished_training_jobs_are_never_rerun(events: Events) -> None:
    finished = body(status={"phase": "Succeeded"})
    kube = fake(finished)
    run(reconcile(gateway(kube), IMAGE, finished))
    assert kube.of("jobs") == []
    assert events == []


def test_a_job_of_another_owner_is_not_adopted(events: Events) -> None:
    foreign = job(name=JOB)
    foreign["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    kube = fake(body())
    kube.put(foreign)
    with pytest.raises(kopf.TemporaryError):
        run(reconcile(gateway(kube), IMAGE, body()))


def test_success_writes_results_and_posts_events(events: Events) -> None:
    kube = fake(body(), termination=message(SUCCESS))
    sync(kube, job("Complete"))
    assert last(kube)["phase"] == "Succeeded"
    assert last(kube)["model"]["version"] == 3
    assert [(e[0], e[1]) for e in events] == [("Normal", "Succeeded"), ("Normal", "Qualified")]


def test_not_qualified_is_a_warning(events: Events) -> None:
    summary = {**SUCCESS, "qualified": False, "reasons": ["worse than champion 2"]}
    kube = fake(body(), termination=message(summary))
    sync(kube, job("Complete"))
    assert events[-1][:2] == ("Warning", "NotQualified")
    assert "champion 2" in events[-1][2]


def test_failure_posts_a_warning_with_the_reason(events: Events) -> None:
    kube = fake(body(), termination=message(FAILURE))
    sync(kube, job("Failed"))
    assert last(kube)["phase"] == "Failed"
    assert events == [("Warning", "Failed", f"DatasetInvalid: {FAILURE['message']}")]


def test_events_are_posted_once(events: Events) -> None:
    kube = fake(body(), termination=message(SUCCESS))
    for _ in range(3):
        sync(kube, job("Complete"))
    assert len(kube.written) == 1
    assert len(events) == 2


def test_conflicts_are_retried(events: Events) -> None:
    kube = fake(body())
    kube.conflicts = 2
    sync(kube, job(ready=1))
    assert phases(kube) == ["Running"]


def test_endless_conflicts_are_a_temporary_error(events: Events) -> None:
    kube = fake(body())
    kube.conflicts = 100
    with pytest.raises(kopf.TemporaryError):
        sync(kube, job(ready=1))


def test_deleted_or_replaced_owner_is_left_alone(events: Events) -> None:
    gone = fake()
    sync(gone, job("Complete"))
    replaced = fake(body())
    sync(replaced, job("Complete"), Ref("TrainingJob", "trainingjobs", "ml", "iris-1", "old"))
    assert gone.written == replaced.written == []


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


def test_pods_are_read_once_and_only_for_unfinished_records(events: Events) -> None:
    kube = fake(body(), termination=message(SUCCESS))
    kube.conflicts = 1
    sync(kube, job("Complete"))
    assert kube.count("read_pod_termination") == 1
    sync(kube, job("Complete"))
    assert kube.count("read_pod_termination") == 1, "a finished run needs no pod read"


def test_a_created_training_job_creates_its_job_without_reading_first(events: Events) -> None:
    kube = fake(body())
    run(reconcile(gateway(kube), IMAGE, body(), look_first=False))
    assert (kube.count("read_job"), kube.count("create_job")) == (0, 1)
    assert [e[1] for e in events] == ["JobCreated"]


def test_a_retry_reads_the_job_and_creates_nothing_when_it_exists(events: Events) -> None:
    """A retry used to POST the Job (409), then read it: two calls where one does."""
    kube = fake(body(), termination=message(SUCCESS))
    kube.put(job(ready=1))
    run(reconcile(gateway(kube), IMAGE, body()))
    assert (kube.count("read_job"), kube.count("create_job")) == (1, 0)
    assert phases(kube) == ["Running"]
    assert events == [], "no JobCreated for a Job that was there"


def test_a_retry_creates_the_job_the_read_did_not_find(events: Events) -> None:
    kube = fake(body())
    run(reconcile(gateway(kube), IMAGE, body()))
    assert (kube.count("read_job"), kube.count("create_job")) == (1, 1)
    assert [job["metadata"]["name"] for job in kube.of("jobs")] == [JOB]


def test_a_finished_job_is_read_once_across_retries_then_forgotten(
    events: Events, manifests: ManifestReads
) -> None:
    """The termination message and the manifest of a finished Job cannot change: a retry
    after a failed status write reads neither again (2 API calls less per retry)."""
    kube = completed_run(manifests=manifests)
    kube.fail("patch_status", KubeError("HTTP 503: etcd leader changed", status=503))
    with pytest.raises(KubeError):
        sync(kube, job("Complete"))
    assert phases(kube) == []
    assert trainingjob._finished, "kept for the retry"
    run(reconcile(gateway(kube), IMAGE, copy.deepcopy(stored(kube))))
    assert phases(kube) == ["Succeeded"]
    assert kube.count("read_pod_termination") == 1
    assert len(manifests.calls) == 1
    assert trainingjob._finished == {}, "dropped once the final status is written"


def test_a_new_job_of_the_same_name_is_read_afresh(
    events: Events, manifests: ManifestReads
) -> None:
    kube = completed_run(manifests=manifests)
    kube.fail("patch_status", KubeError("HTTP 503", status=503))
    with pytest.raises(KubeError):
        sync(kube, job("Complete"))
    other = job("Complete")
    other["metadata"]["uid"] = "another-job-uid"
    sync(kube, other)
    assert kube.count("read_pod_termination") == 2, "another Job: its own pods"


def test_a_deleted_job_forgets_what_it_told(events: Events, manifests: ManifestReads) -> None:
    kube = completed_run(manifests=manifests)
    kube.fail("patch_status", KubeError("HTTP 503", status=503))
    with pytest.raises(KubeError):
        sync(kube, job("Complete"))
    trainingjob.forget_job(job("Complete"))
    assert trainingjob._finished == {}


class RacyKube(FakeKube):
    """Reads and writes yield to the event loop, and a stale write is a real 409."""

    def __init__(self, tj: dict[str, Any]) -> None:
        super().__init__(tj)
        self.rejected = 0

    async def read_custom_object(self, *args: str) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        return await super().read_custom_object(*args)

    async def patch_status(self, *args: str, **kwargs: Any) -> dict[str, Any]:
        await asyncio.sleep(0)
        try:
            return await super().patch_status(*args, **kwargs)
        except KubeError:
            self.rejected += 1
            raise


def test_concurrent_syncs_of_one_training_job_write_once(events: Events) -> None:
    kube = RacyKube(body())

    async def both() -> None:
        await asyncio.gather(
            handlers.sync_owner(gateway(kube), IMAGE, "ml", ("iris-1", UID), job(ready=1)),  # type: ignore[arg-type]
            handlers.sync_owner(gateway(kube), IMAGE, "ml", ("iris-1", UID), job(ready=1)),  # type: ignore[arg-type]
        )

    run(both())
    assert phases(kube) == ["Running"]
    assert kube.rejected == 0


def test_reconcile_writes_from_the_event_body_without_reading_it_again(events: Events) -> None:
    kube = fake(body())
    run(reconcile(gateway(kube), IMAGE, body()))
    assert kube.count("read_custom_object") == 0
    assert phases(kube) == ["Pending"]


def test_reconcile_with_a_stale_event_body_reads_the_object_and_writes_once(
    events: Events,
) -> None:
    kube = RacyKube(body())
    sync(kube, job(ready=1))  # now Running
    stale = body()  # the create event, older than that status write
    run(reconcile(gateway(kube), IMAGE, stale))
    assert kube.rejected == 1, "the write guarded by the stale resourceVersion is refused"
    assert phases(kube) == ["Running"], "then nothing is left to write"


@pytest.mark.parametrize("kind", [None, "ADDED", "DELETED"])
def test_job_appearance_and_deletion_leave_the_status_to_the_owner_handlers(
    kind: str | None, memo: kopf.Memo
) -> None:
    kube: FakeKube = memo["kube"]
    run(handlers.job_event_handler(kind, kopf.Body(job(ready=1)), memo))  # type: ignore[arg-type]
    assert kube.calls == []
    run(handlers.job_event_handler("MODIFIED", kopf.Body(job(ready=1)), memo))  # type: ignore[arg-type]
    assert phases(kube) == ["Running"]


def test_a_job_change_that_tells_nothing_new_reads_nothing(events: Events, memo: kopf.Memo) -> None:
    kube: FakeKube = memo["kube"]
    run(reconcile(gateway(kube), IMAGE, body()))  # Pending, from the Job just created
    created = kube.of("jobs")[0]
    bookkeeping = copy.deepcopy(created)
    bookkeeping["status"] = {"startTime": "2026-01-01T10:00:00Z", "ready": 0}
    run(handlers.job_event_handler("MODIFIED", kopf.Body(bookkeeping), memo))  # type: ignore[arg-type]
    assert kube.count("read_custom_object") == 0, "still Pending: the owner is not read again"
    running = copy.deepcopy(created)
    running["status"] = {"startTime": "2026-01-01T10:00:00Z", "ready": 1, "active": 1}
    run(handlers.job_event_handler("MODIFIED", kopf.Body(running), memo))  # type: ignore[arg-type]
    assert kube.count("read_custom_object") == 1
    assert phases(kube) == ["Pending", "Running"]


def test_a_relisted_job_that_finished_unwatched_is_synced(events: Events, memo: kopf.Memo) -> None:
    kube: FakeKube = memo["kube"]
    kube.terminations[JOB] = message(SUCCESS)
    run(reconcile(gateway(kube), IMAGE, body()))  # Pending, from the Job just created
    created = kube.of("jobs")[0]
    run(handlers.job_event_handler(None, kopf.Body(copy.deepcopy(created)), memo))  # type: ignore[arg-type]
    assert kube.count("read_custom_object") == 0, "relisted as it was synced: nothing to do"
    finished = copy.deepcopy(created)
    finished["status"] = job("Complete")["status"]
    run(handlers.job_event_handler(None, kopf.Body(finished), memo))  # type: ignore[arg-type]
    assert phases(kube)[-1] == "Succeeded", "the missed finish is synced"


def test_a_failed_job_event_sync_is_retried_until_it_succeeds(
    events: Events, memo: kopf.Memo, queue: WorkQueue[tuple[str, str]]
) -> None:
    """kopf drops an event handler that raises: the queue retries it with a full reconcile."""
    queue.backoff = Backoff(first=0.01, cap=0.05)
    kube: FakeKube = memo["kube"]
    kube.terminations[JOB] = message(SUCCESS)
    kube.put(job("Complete"))
    kube.fail("patch_status", KubeError("HTTP 503: etcd leader changed", status=503))

    async def scenario() -> None:
        await handlers.job_event_handler("MODIFIED", kopf.Body(job("Complete")), memo)  # type: ignore[arg-type]
        assert phases(kube) == [], "the write failed"
        assert queue.pending() == 1
        await until(lambda: phases(kube) == ["Succeeded"])

    run(scenario())
    assert [e[1] for e in events] == ["Succeeded", "Qualified"]
    assert queue.failures(("ml", "iris-1")) == 0
    assert errors_counted("job-event") >= 1


def errors_counted(trigger: str) -> float:
    return samples.total("continuum_reconcile_errors_total", kind="TrainingJob", handler=trigger)


def manifest_reads_counted(outcome: str) -> float:
    labels = {"outcome": outcome}
    return metrics.REGISTRY.get_sample_value("continuum_manifest_reads_total", labels) or 0.0


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let scheduled calls run until ``condition`` holds (failing after ``timeout`` s)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def condition_of(status: dict[str, Any], kind: str) -> str:
    return str(next(c["status"] for c in status["conditions"] if c["type"] == kind))


def quick_requeues(monkeypatch: pytest.MonkeyPatch) -> None:
    """Manifest reads again after 10 ms, then 20 ms, 40 ms, ... up to 1 s."""
    monkeypatch.setattr(trainingjob, "MANIFEST_BACKOFF", Backoff(first=0.01, cap=1.0))


def completed_run(*answers: ManifestRead, manifests: ManifestReads) -> FakeKube:
    """A cluster whose Job completed with ``SUCCESS``, its manifest read as ``answers`` say."""
    manifests.answers = list(answers)
    kube = fake(body(), termination=message(SUCCESS))
    kube.put(job("Complete"))
    return kube


def test_success_reads_the_manifest_the_summary_names(
    events: Events, manifests: ManifestReads
) -> None:
    kube = completed_run(manifests=manifests)
    before = manifest_reads_counted("read")
    sync(kube, job("Complete"))
    wanted = {"namespace": "ml", "model": "iris", "version": 3, "uri": MANIFEST_URI}
    assert manifests.calls == [wanted]
    assert manifest_reads_counted("read") == before + 1


def test_the_written_result_is_the_manifests(events: Events, manifests: ManifestReads) -> None:
    manifest = manifest_of({**SUCCESS, "metrics": {"accuracy": 0.91}})
    kube = completed_run(manifest_read(manifest), manifests=manifests)
    sync(kube, job("Complete"))
    assert last(kube)["metrics"] == {"accuracy": 0.91}


def test_the_manifest_is_read_once_per_sync(events: Events, manifests: ManifestReads) -> None:
    kube = completed_run(manifests=manifests)
    kube.conflicts = 1  # two attempts in the first sync
    sync(kube, job("Complete"))
    assert len(manifests.calls) == 1
    sync(kube, job("Complete"))
    assert len(manifests.calls) == 1, "a finished TrainingJob needs no manifest"


@pytest.mark.parametrize(
    ("observed", "summary"),
    [(job(), SUCCESS), (job(ready=1), SUCCESS), (job("Failed"), FAILURE)],
    ids=["pending", "running", "failed"],
)
def test_no_manifest_is_read_unless_the_job_completed(
    events: Events, manifests: ManifestReads, observed: dict[str, Any], summary: dict[str, Any]
) -> None:
    kube = fake(body(), termination=message(summary))
    sync(kube, observed)
    assert kube.written, "the status was synced"
    assert manifests.calls == []


def test_an_unreadable_manifest_is_read_again_until_it_reads(
    events: Events,
    manifests: ManifestReads,
    monkeypatch: pytest.MonkeyPatch,
    queue: WorkQueue[tuple[str, str]],
) -> None:
    quick_requeues(monkeypatch)
    kube = completed_run(unreadable(), unreadable(), manifest_read(), manifests=manifests)
    later = kube.get("jobs", "ml", JOB)
    assert later is not None
    later["status"]["completionTime"] = "2026-01-01T10:05:00Z"

    async def scenario() -> None:
        await trainingjob.sync(gateway(kube), IMAGE, REF, job("Complete"))
        assert phases(kube) == ["Running"]
        assert queue.pending() == 1
        await until(lambda: phases(kube)[-1] == "Succeeded")

    run(scenario())
    assert phases(kube) == ["Running", "Succeeded"]
    assert last(kube)["completionTime"] == "2026-01-01T10:05:00Z", "from the Job read again"
    assert len(manifests.calls) == 3
    assert kube.count("read_job") == 2, "each call again reconciles: reads the Job"
    assert kube.count("create_job") == 0, "the Job the read found is not created again"
    assert queue.pending() == 0
    assert len(queue) == 0, "nothing is kept for a finished run"
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
    kube = completed_run(*answers, manifests=manifests)
    for _ in answers:
        sync(kube, job("Complete"))
    stalled = [condition_of(status, "Stalled") for status in kube.statuses("trainingjobs")]
    assert stalled == ["False", "True", "False"]
    assert [(e[0], e[1]) for e in events] == [("Warning", "ManifestUnreadable")] * 2
    assert first in events[0][2]
    assert second in events[1][2]


def test_a_deleted_training_job_forgets_its_requeue(
    events: Events, manifests: ManifestReads, queue: WorkQueue[tuple[str, str]]
) -> None:
    kube = completed_run(unreadable(), manifests=manifests)

    async def scenario() -> None:
        await trainingjob.sync(gateway(kube), IMAGE, REF, job("Complete"))
        assert queue.pending() == 1
        kube.delete("trainingjobs", "ml", "iris-1")
        await trainingjob.sync(gateway(kube), IMAGE, REF, job("Complete"))
        assert queue.pending() == 0
        assert len(queue) == 0

    run(scenario())


def test_a_requeue_stops_when_the_training_job_is_gone(
    events: Events,
    manifests: ManifestReads,
    monkeypatch: pytest.MonkeyPatch,
    queue: WorkQueue[tuple[str, str]],
) -> None:
    quick_requeues(monkeypatch)
    kube = completed_run(unreadable(), manifests=manifests)

    async def scenario() -> None:
        await trainingjob.sync(gateway(kube), IMAGE, REF, job("Complete"))
        kube.delete("trainingjobs", "ml", "iris-1")
        await until(lambda: kube.count("read_custom_object") == 2)  # the sync's, the requeue's
        await asyncio.sleep(0.1)  # ten first requeue periods

    run(scenario())
    assert kube.count("read_custom_object") == 2, "no call after the first found it gone"
    assert queue.pending() == 0
    assert len(queue) == 0
    assert len(manifests.calls) == 1


def test_the_trainer_pods_image_digest_reaches_the_status(
    events: Events, manifests: ManifestReads
) -> None:
    kube = completed_run(manifests=manifests)
    digest = "sha256:" + "f" * 64
    kube.images[JOB] = ("registry.local/continuum:1.0", f"registry.local/continuum@{digest}")
    sync(kube, job("Complete"))
    assert last(kube)["phase"] == "Succeeded"
    assert last(kube)["image"] == {"name": "registry.local/continuum:1.0", "digest": digest}
