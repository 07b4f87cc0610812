"""Labels posted to the model server while MinIO is down for 25 s: none accepted is lost.

docs/feedback.md promises that a label the feedback endpoint answered ``200`` for is written to
``labels/<model>/feedback/…`` even when S3 fails meanwhile (the buffer keeps room for a write in
flight, so a failed write always fits back), and that a full buffer refuses whole requests with
``503`` (nothing of them kept) for the client to retry. This test holds the real server in a real
pod to that, end to end:

- a client pod in the test namespace (restricted Pod Security) sends v1 predict requests of
  ``ROWS_PER_REQUEST`` rows through the model's Service at a steady rate, and posts one label
  for every answered row (the answer's ``x-request-id`` and row index; the label is the
  prediction) to the feedback endpoint, ``LABELS_PER_POST`` at most per request, for the whole
  test. A ``503`` (buffer full) is retried after ``RETRY_PAUSE`` until accepted; a label is
  recorded as accepted only when its request was answered ``200`` with every label accepted;
- midway MinIO is stopped (``hack/cluster-fault.sh``) for at least ``OUTAGE_SECONDS`` and until
  the server refused a post (its buffer of 10,000 labels full: the load is some 800 labels a
  second), at most ``MAX_OUTAGE_SECONDS``; then started again;
- when the client has delivered every label and the server has written what it accepted, the
  feedback objects are read back from MinIO.

Proven: every (id, row, label) the client recorded as accepted is in MinIO exactly once, nothing
else is there (a refused request kept nothing), refused labels were retried and written, the
client saw no other failure, and the server's metrics agree (accepted = written = the client's
count, refused = the client's refused labels, no dropped label). It fails if the server dropped
buffered labels (a failed write that did not fit back), kept part of a refused request, wrote a
batch twice, or refused without the client being able to retry. Figures are printed.
"""

from __future__ import annotations

import base64
import json
import re
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field

import pytest
from kubernetes import client

from continuum.storage.inference_logs import decode_rows
from tests.cluster.test_faults_storage import (
    create_custom,
    metric_sum,
    minio,
    minio_answers,
    minio_restored,  # noqa: F401 (the fixture the test uses)
    quiesce,
    server_metrics,
    server_pods,
    serving_ready,
    stop_client,
)
from tests.kit.cluster import (
    S3Settings,
    pod_logs,
    restricted_container,
    s3_client,
    start_job,
    wait_until,
)
from tests.kit.kinds import ROWS, Ctx, model_deployment

pytestmark = [pytest.mark.cluster, pytest.mark.reliability, pytest.mark.chaos]

OUTAGE_SECONDS = 25  # MinIO down at least this long ...
MAX_OUTAGE_SECONDS = 40  # ... and until the server refused a post (buffer full), at most this
BEFORE_OUTAGE = 10  # seconds of load with MinIO up first
AFTER_OUTAGE = 10  # seconds of load once MinIO is back
ROWS_PER_REQUEST = 80  # rows per predict request: one label each
INFER_PAUSE = 0.1  # seconds between predict requests: ~800 labels a second
LABELS_PER_POST = 200  # labels per feedback request at most
RETRY_PAUSE = 0.5  # seconds before a refused (503) post is retried
BUFFER_LABELS = 10000  # the server's log-buffer-rows (docs/server-limits.md), fixed here
FEEDBACK_PREFIX = "labels/churn/feedback/"
CLIENT_JOB = "labeller"

# argv: host, rows (JSON), rows per request, pause, labels per post, retry pause, seconds.
# Thread 1 predicts and queues a label per answered row; thread 2 posts the queue. Both run
# until /tmp/stop exists (or `seconds` passed); thread 2 then drains the queue (60 s at most).
# Prints FINAL counts, FAIL lines, and the accepted labels as ACCEPTED <i> <n> <chunk> lines
# (zlib-compressed JSON [[id, row, label], ...], base64, in chunks).
CLIENT = """
import base64, collections, http.client, json, os, sys, threading, time, zlib
host, rows = sys.argv[1], json.loads(sys.argv[2])
per_request, pause, per_post = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
retry_pause, seconds = float(sys.argv[6]), float(sys.argv[7])
predict = json.dumps({"instances": [rows[i % len(rows)] for i in range(per_request)]}).encode()
pending, accepted, lock = collections.deque(), [], threading.Lock()
counts = collections.Counter()
producing = threading.Event()
producing.set()
start = time.monotonic()
end = start + seconds

def count(key, n=1):
    with lock:
        counts[key] += n

def stopping():
    return os.path.exists("/tmp/stop") or time.monotonic() > end

def call(path, body):
    conn = http.client.HTTPConnection(host, timeout=15)
    try:
        try:
            conn.connect()
        except ConnectionRefusedError:
            return None  # nothing was sent
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        reply = conn.getresponse()
        return reply.status, reply.getheader("x-request-id"), reply.read()
    finally:
        conn.close()

def fail(what, why):
    count(what + "_failed")
    print("FAIL", time.strftime("%H:%M:%S"), what, why, flush=True)
    return "failed"

def infer_once():
    try:
        answer = call("/v1/models/churn:predict", predict)
    except Exception as exc:
        return fail("predict", repr(exc))
    if answer is None:
        return count("refused_connects")
    status, rid, data = answer
    if status != 200 or not rid:
        return fail("predict", f"status {status} id {rid!r}: {data[:200]!r}")
    labels = [[rid, row, label] for row, label in enumerate(json.loads(data)["predictions"])]
    with lock:
        pending.extend(labels)
        counts["predicted"] += 1
        counts["labels_made"] += len(labels)
        counts["max_pending"] = max(counts["max_pending"], len(pending))

def infer():
    while not stopping():
        infer_once()
        time.sleep(pause)
    producing.clear()

def post(batch):
    body = json.dumps({"labels": [{"id": i, "row": r, "label": l} for i, r, l in batch]})
    try:
        answer = call("/v2/models/churn/feedback", body.encode())
    except Exception as exc:
        return fail("feedback", repr(exc))
    if answer is None:
        count("refused_connects")
        return "refused"
    status, _, data = answer
    whole = {"accepted": len(batch), "rejected": 0, "problems": []}
    if status == 200 and json.loads(data) == whole:
        return "ok"
    if status == 503 and b"buffer full" in data:
        return "full"
    return fail("feedback", f"status {status}: {data[:300]!r}")

def deliver(batch, deadline, refused=False):
    while time.monotonic() < deadline:
        outcome = post(batch)
        count("posts")
        if outcome == "ok":
            with lock:
                accepted.extend(batch)
                counts["accepted"] += len(batch)
                counts["retried_labels"] += len(batch) if refused else 0
            return
        if outcome == "full":
            refused = True
            count("refused_posts")
            count("refused_labels", len(batch))
        time.sleep(0.05 if outcome == "refused" else retry_pause)
    with lock:
        pending.extendleft(reversed(batch))

def feed():
    deadline = float("inf")
    while time.monotonic() < deadline:
        if not producing.is_set() and deadline == float("inf"):
            deadline = time.monotonic() + 60
        with lock:
            batch = [pending.popleft() for _ in range(min(per_post, len(pending)))]
        if batch:
            deliver(batch, deadline)
        elif not producing.is_set():
            break
        time.sleep(0.1)

def answers():
    try:
        answer = call("/v1/models/churn:predict", predict)
    except Exception:
        return False
    return bool(answer) and answer[0] == 200

while not answers():
    if time.monotonic() - start > 120:
        sys.exit("no answer from the Service in 120 s")
    time.sleep(0.5)
print("READY", flush=True)
threads = [threading.Thread(target=infer), threading.Thread(target=feed)]
for t in threads: t.start()
for t in threads: t.join()
counts["unsent"] = len(pending)
print("FINAL " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())), flush=True)
blob = base64.b64encode(zlib.compress(json.dumps(accepted).encode())).decode()
chunks = [blob[i:i + 8000] for i in range(0, len(blob), 8000)] or [""]
for i, chunk in enumerate(chunks):
    print(f"ACCEPTED {i} {len(chunks)} {chunk}", flush=True)
"""

Label = tuple[str, int, str]  # (id, row, label)


@dataclass
class Figures:
    """What the test measured, printed at the end whatever happened."""

    outage_seconds: float = 0.0
    client: dict[str, int] = field(default_factory=dict)
    max_buffered: float = 0.0
    server: dict[str, float] = field(default_factory=dict)
    objects: int = 0
    written: int = 0

    def report(self) -> str:
        # client: labels_made (one per answered row) / accepted / posts; refused_labels counts
        # each refusal of a label (as the server's metric does), retried_labels the distinct
        # labels refused before being accepted; max_pending its backlog of unaccepted labels.
        return "feedback under a MinIO outage:\n" + "\n".join(
            f"  {key}: {value}" for key, value in vars(self).items()
        )


@dataclass(frozen=True)
class ClientResult:
    counts: dict[str, int]
    accepted: list[Label]
    failures: list[str]


@pytest.mark.usefixtures("minio_restored")
def test_feedback_under_load_loses_no_label_while_minio_is_down(
    ctx: Ctx, project_image: str, kubectl: list[str]
) -> None:
    """Every label answered 200 is in MinIO exactly once; refused labels too, once retried."""
    figures = Figures()
    try:
        result = labels_through_an_outage(ctx, project_image, kubectl, figures)
        written = written_labels(ctx.s3, ctx.bucket, figures)
        check_labels(result, written)
        check_metrics(figures, result)
    except BaseException:
        print(labeller_tail(ctx))
        raise
    finally:
        print(figures.report())
        minio("start")
        quiesce(ctx.api, ctx.namespace)


def labels_through_an_outage(
    ctx: Ctx, image: str, kubectl: list[str], figures: Figures
) -> ClientResult:
    """Serve v1, start the client, stop MinIO midway; the client's result once all is written."""
    serve(ctx)
    start_labeller(ctx, image)
    time.sleep(BEFORE_OUTAGE)
    [pod] = server_pods(ctx.api, ctx.namespace)
    outage(ctx, pod, figures)
    watch(pod, figures, AFTER_OUTAGE)
    stop_client(ctx.api, kubectl, ctx.namespace, CLIENT_JOB)
    result = client_result(ctx)
    figures.client = result.counts
    figures.server = settled(pod, result.counts.get("accepted", 0))
    return result


def serve(ctx: Ctx) -> None:
    assert ctx.train("churn-1") == 1
    # A generous rollout deadline: a loaded 2-core machine can take more than the default 30 s.
    md = model_deployment(ctx.s3, ctx.bucket, ctx.secret, version={"pinned": 1},
                          rolloutDeadlineSeconds=240)  # fmt: skip
    create_custom(ctx.api, ctx.namespace, "modeldeployments", md)
    serving_ready(ctx, 1, 1)


def start_labeller(ctx: Ctx, image: str) -> None:
    """The client pod (module doc), once it had its first answer through the Service."""
    args = ["churn", json.dumps(ROWS), str(ROWS_PER_REQUEST), str(INFER_PAUSE),
            str(LABELS_PER_POST), str(RETRY_PAUSE), "600"]  # fmt: skip
    container = restricted_container("labeller", image, ["python", "-c", CLIENT, *args])
    start_job(ctx.api, ctx.namespace, CLIENT_JOB, container)
    wait_until("the labeller answered once", lambda: "READY" in labeller_log(ctx), 180)


def labeller_log(ctx: Ctx) -> str:
    return pod_logs(ctx.api, ctx.namespace, f"job-name={CLIENT_JOB}")


def labeller_tail(ctx: Ctx) -> str:
    """The client's log without its accepted labels: its counts and failures."""
    lines = [x for x in labeller_log(ctx).splitlines() if not x.startswith("ACCEPTED ")]
    return "labeller log:\n" + "\n".join(lines[-40:])


def outage(ctx: Ctx, pod: client.V1Pod, figures: Figures) -> None:
    """MinIO down for OUTAGE_SECONDS and until the server refused a post (or the maximum)."""
    minio("stop")
    stopped = time.monotonic()
    try:
        assert not minio_answers(ctx.s3), "MinIO still answers after the stop"
        watch(pod, figures, OUTAGE_SECONDS)
        left = MAX_OUTAGE_SECONDS - (time.monotonic() - stopped)
        while left > 0 and not refused(pod):
            watch(pod, figures, min(1.0, left))
            left = MAX_OUTAGE_SECONDS - (time.monotonic() - stopped)
    finally:
        minio("start")
        figures.outage_seconds = round(time.monotonic() - stopped, 1)


def refused(pod: client.V1Pod) -> bool:
    samples = server_metrics(pod)
    return metric_sum(samples, "continuum_server_feedback_labels_total", outcome="refused") > 0


def watch(pod: client.V1Pod, figures: Figures, seconds: float) -> None:
    """Sample the labels the server holds (accepted, not yet written) every second."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples = server_metrics(pod)
        figures.max_buffered = max(figures.max_buffered, buffered(samples))
        time.sleep(max(0.0, min(1.0, end - time.monotonic())))


def buffered(samples: dict[str, float]) -> float:
    written = metric_sum(samples, "continuum_server_feedback_written_labels_total")
    dropped = metric_sum(samples, "continuum_server_feedback_dropped_labels_total")
    return server_accepted(samples) - written - dropped


def client_result(ctx: Ctx) -> ClientResult:
    """The client's counts, failures and accepted labels, once it has printed them all."""

    def complete() -> str | None:
        log = labeller_log(ctx)
        found = re.findall(r"^ACCEPTED (\d+) (\d+) ", log, re.MULTILINE)
        return log if found and len(found) == int(found[0][1]) else None

    log = wait_until("the labeller to deliver its labels and finish", complete, 120, every=2)
    final = re.search(r"^FINAL (.*)$", log, re.MULTILINE)
    assert final, log[-3000:]
    counts = {k: int(v) for k, v in (kv.split("=") for kv in final.group(1).split())}
    failures = [line for line in log.splitlines() if line.startswith("FAIL")]
    return ClientResult(counts, accepted_labels(log), failures)


def accepted_labels(log: str) -> list[Label]:
    chunks = re.findall(r"^ACCEPTED (\d+) \d+ (\S*)$", log, re.MULTILINE)
    blob = "".join(chunk for _, chunk in sorted(chunks, key=lambda c: int(c[0])))
    return [(str(i), int(r), str(label)) for i, r, label in json.loads(zlib.decompress(
        base64.b64decode(blob)))]  # fmt: skip


def settled(pod: client.V1Pod, accepted: int) -> dict[str, float]:
    """The server's feedback counters once it has written (or dropped) what it accepted."""

    def done() -> dict[str, float] | None:
        samples = server_metrics(pod)
        return samples if buffered(samples) <= 0 and server_accepted(samples) >= accepted else None

    samples = wait_until("the server to write the accepted labels", done, 60, every=1)
    name = "continuum_server_feedback_labels_total"
    return {
        "accepted": server_accepted(samples),
        "refused": metric_sum(samples, name, outcome="refused"),
        "rejected": metric_sum(samples, name, outcome="rejected"),
        "written": metric_sum(samples, "continuum_server_feedback_written_labels_total"),
        "dropped": metric_sum(samples, "continuum_server_feedback_dropped_labels_total"),
    }


def server_accepted(samples: dict[str, float]) -> float:
    return metric_sum(samples, "continuum_server_feedback_labels_total", outcome="accepted")


def written_labels(s3: S3Settings, bucket: str, figures: Figures) -> Counter[Label]:
    """Every (id, row, label) in the feedback objects in MinIO, with how often it is there."""
    s3c, found = s3_client(s3), Counter[Label]()
    pages = s3c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=FEEDBACK_PREFIX)
    for item in (item for page in pages for item in page.get("Contents", [])):
        figures.objects += 1
        body = s3c.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        found.update((str(x["id"]), int(x["row"]), str(x["label"])) for x in decode_rows(body))
    figures.written = sum(found.values())
    return found


def check_labels(result: ClientResult, written: Counter[Label]) -> None:
    accepted = Counter(result.accepted)
    counts, failures = result.counts, "\n".join(result.failures[:20])
    assert not result.failures, f"the client saw {len(result.failures)} failures:\n{failures}"
    assert counts.get("unsent", 0) == 0, f"{counts['unsent']} labels never accepted in 60 s"
    assert counts.get("refused_labels", 0) > 0, (
        "the server never refused a post: its buffer did not fill, so the retry path was not "
        f"exercised (client counts {counts})"
    )
    assert max(accepted.values(), default=1) == 1, "the client posted some label twice (test bug)"
    lost = sorted(set(accepted) - set(written))
    assert not lost, f"{len(lost)} of {len(accepted)} accepted labels are not in MinIO: {lost[:5]}"
    twice = sorted(label for label, n in written.items() if n > 1)
    assert not twice, f"{len(twice)} labels written more than once: {twice[:5]}"
    extra = sorted(set(written) - set(accepted))
    assert not extra, f"{len(extra)} labels in MinIO were never answered 200: {extra[:5]}"


def check_metrics(figures: Figures, result: ClientResult) -> None:
    server, counts = figures.server, result.counts
    assert server["dropped"] == 0, f"the server dropped {server['dropped']} accepted labels"
    assert server["accepted"] == counts["accepted"] == server["written"], (
        f"accepted by the server {server['accepted']}, by the client {counts['accepted']}, "
        f"written {server['written']}"
    )
    assert server["refused"] == counts["refused_labels"], (server, counts)
    assert figures.max_buffered > 0, "no label waited in the buffer: was S3 really down?"
    assert figures.max_buffered <= BUFFER_LABELS, figures.max_buffered
