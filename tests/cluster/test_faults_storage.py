"""Faults on the real cluster: MinIO stopped for 60 s, and a model server pod killed mid-rollout.

**MinIO outage** (one stop of the real MinIO process with ``hack/cluster-fault.sh``, always
started again in a ``finally``; 60 s, longer only if the drift check's pod is slow to start on a
loaded machine), while three things need it:

- *training*: a TrainingJob created right after MinIO stops (``backoffLimit: 0``, so no Job
  retry can help) must end Succeeded: its trainer rides the outage out with its own bounded
  S3 retries (``continuum.storage.retry``), logging one ``s3_unavailable`` line per wait;
- *serving*: a client pod sends steady traffic through the Service for the whole outage and
  must see zero failed requests; the server's inference log must drop at most the bound of
  docs/server-limits.md (read from its ``dropped_rows`` metric), and every row the server
  answered is afterwards either in MinIO or counted as dropped;
- *a drift check*: a DriftMonitor created during the outage runs its first check then; it must
  end as a failed check (``DriftDetected=Unknown``, ``Stalled`` with reason ``CheckFailed``),
  not drift, and create no TrainingJob. The logged traffic is far from the training data, so
  the first check after MinIO is back must find drift (the failure hid nothing).

**Pod killed mid-rollout**: a ModelDeployment with 2 replicas moves from version 1 to 2; when
the first new pod is ready, the server process of a still-serving old pod is SIGKILLed. A
client pod with several workers sends requests through the Service the whole time. A request
the client gives up on counts as failed; at most one request per worker can be in flight on the
killed pod, so failures must not exceed the workers. A connection the dead pod refuses carried
no request yet; the client retries those (as any HTTP client may, nothing was sent) and counts
them apart.

Each test prints the figures it measured.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from tests.kit import REPO
from tests.kit.cluster import (
    S3Settings,
    pod_logs,
    restricted_container,
    s3_client,
    start_job,
    wait_until,
)
from tests.kit.kinds import (
    ROWS,
    Ctx,
    conditions,
    drift_monitor,
    finished,
    get_dm,
    get_md,
    model_deployment,
    patch_spec,
    retrain_jobs,
    training_job,
)

pytestmark = [pytest.mark.reliability, pytest.mark.chaos]

OUTAGE_SECONDS = 60
# MinIO stays down at least OUTAGE_SECONDS and until the drift check started in the outage has
# failed (a loaded machine may take longer to start its pod), at most this long: within the
# trainer's 180-second retry window.
MAX_OUTAGE_SECONDS = 150
TRAFFIC_AFTER_OUTAGE = 20  # seconds of traffic after MinIO is back (log writes resume)
TRAFFIC_AFTER_KILL = 20  # seconds of traffic at least after the server pod is killed
SERVER_PORT = 8080
LOG_BUFFER_ROWS = 10000  # the server's default log-buffer-rows (docs/server-limits.md)
FAULT = REPO / "hack/cluster-fault.sh"
CONTAINERD = "/run/continuum/containerd/containerd.sock"
SERVER_SELECTOR = "app.kubernetes.io/name=continuum-server"

# A client of the model server through its Service: ``workers`` threads each send one request,
# then sleep ``pause`` seconds, from its first answer (the Service's DNS name may lag at first)
# until the test creates /tmp/stop in the pod, or ``seconds`` have passed. A refused connection
# carried nothing: it is retried and counted apart.
CLIENT = """
import http.client, json, os, sys, threading, time
host, rows = sys.argv[1], json.loads(sys.argv[2])
workers, pause, seconds = map(float, sys.argv[3:6])
body = json.dumps({"instances": rows}).encode()
path = "/v1/models/churn:predict"
counts = {"sent": 0, "ok": 0, "failed": 0, "refused": 0}
lock = threading.Lock()

def once():
    conn = http.client.HTTPConnection(host, 80, timeout=10)
    try:
        conn.connect()
    except ConnectionRefusedError:
        return "refused"
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        reply = conn.getresponse()
        reply.read()
        return "ok" if reply.status == 200 else f"status {reply.status}"
    except Exception as exc:
        return repr(exc)
    finally:
        conn.close()

def request():
    while True:
        outcome = once()
        if outcome != "refused":
            return outcome
        with lock:
            counts["refused"] += 1
        time.sleep(0.05)

start = time.monotonic()
while request() != "ok":
    if time.monotonic() - start > 120:
        sys.exit("no answer from the Service in 120 s")
    time.sleep(0.5)
print("READY", flush=True)
end = time.monotonic() + seconds

def worker():
    while time.monotonic() < end and not os.path.exists("/tmp/stop"):
        with lock:
            counts["sent"] += 1
        outcome = request()
        with lock:
            if outcome == "ok":
                counts["ok"] += 1
            else:
                counts["failed"] += 1
                print("FAIL", time.strftime("%H:%M:%S"), outcome, flush=True)
        time.sleep(pause)

threads = [threading.Thread(target=worker) for _ in range(int(workers))]
for t in threads: t.start()
for t in threads: t.join()
print("FINAL " + " ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
"""


# --- MinIO, through the fault script ----------------------------------------------------------


def minio(action: str) -> None:
    subprocess.run([str(FAULT), action, "minio"], check=True, timeout=120, capture_output=True)


def minio_answers(s3: S3Settings) -> bool:
    try:
        with urllib.request.urlopen(f"{s3.endpoint_url}/minio/health/live", timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def minio_restored(s3: S3Settings) -> Iterator[None]:
    """MinIO is up before the test and started again after it, whatever happened."""
    assert minio_answers(s3), "MinIO is not running before the test"
    try:
        yield
    finally:
        minio("start")


# --- the client pod and the server's metrics --------------------------------------------------


@dataclass(frozen=True)
class ClientCounts:
    sent: int
    ok: int
    failed: int
    refused: int
    log: str


def start_client(
    api: client.ApiClient, ns: str, name: str, image: str, *, workers: int, pause: float,
    seconds: float,
) -> None:  # fmt: skip
    args = ["churn", json.dumps(ROWS), str(workers), str(pause), str(seconds)]
    container = restricted_container("client", image, ["python", "-c", CLIENT, *args])
    start_job(api, ns, name, container)
    wait_until(f"client {name} answered once", lambda: "READY" in client_log(api, ns, name), 180)


def stop_client(api: client.ApiClient, kubectl: list[str], ns: str, name: str) -> None:
    [pod] = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector=f"job-name={name}").items
    touch = ["python", "-c", "open('/tmp/stop', 'w').close()"]
    subprocess.run([*kubectl, "exec", "-n", ns, pod.metadata.name, "--", *touch],
                   check=True, timeout=60, capture_output=True)  # fmt: skip


def quiesce(api: client.ApiClient, ns: str) -> None:
    """Delete every workload of the test and wait for its pods: nothing writes to the bucket
    while the fixture empties and removes it."""
    objs = client.CustomObjectsApi(api)
    for plural in ("driftmonitors", "modeldeployments", "trainingjobs"):
        objs.delete_collection_namespaced_custom_object("continuum.dev", "v1alpha1", ns, plural)
    client.BatchV1Api(api).delete_collection_namespaced_job(ns, propagation_policy="Background")
    core = client.CoreV1Api(api)
    wait_until("the test's pods to be gone", lambda: not core.list_namespaced_pod(ns).items, 120)


def client_log(api: client.ApiClient, ns: str, name: str) -> str:
    return pod_logs(api, ns, f"job-name={name}")


def client_counts(api: client.ApiClient, ns: str, name: str, timeout: float) -> ClientCounts:
    """Wait for the client to finish; its final counts."""

    def final() -> re.Match[str] | None:
        return re.search(r"^FINAL (.*)$", client_log(api, ns, name), re.MULTILINE)

    found = wait_until(f"client {name} to finish", final, timeout, every=2)
    fields = {k: int(v) for k, v in (kv.split("=") for kv in found.group(1).split())}
    return ClientCounts(log=client_log(api, ns, name)[-3000:], **fields)


def server_pods(api: client.ApiClient, ns: str) -> list[client.V1Pod]:
    pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector=SERVER_SELECTOR)
    return list(pods.items)


def server_metrics(pod: client.V1Pod) -> dict[str, float]:
    """The pod's Prometheus samples (read from the host over the pod bridge), keyed by line."""
    url = f"http://{pod.status.pod_ip}:{SERVER_PORT}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    return samples


def metric_sum(samples: dict[str, float], name: str, **labels: str) -> float:
    """Sum of ``name`` over the samples whose labels include ``labels``."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(
        value
        for key, value in samples.items()
        if key.split("{")[0] == name and all(w in key for w in wanted)
    )


def logged_rows_in_s3(s3: S3Settings, bucket: str, version: int) -> int:
    s3c, rows = s3_client(s3), 0
    pages = s3c.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"inference-logs/churn/{version}/"
    )
    for page in pages:
        for item in page.get("Contents", []):
            body = s3c.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            rows += sum(1 for line in body.splitlines() if line.strip())
    return rows


def create_custom(api: client.ApiClient, ns: str, plural: str, body: dict[str, Any]) -> None:
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "continuum.dev", "v1alpha1", ns, plural, body
    )


def serving_ready(ctx: Ctx, version: int, replicas: int, timeout: float = 240) -> dict[str, Any]:
    """The ModelDeployment serves ``version`` with ``replicas`` ready pods."""

    def check() -> dict[str, Any] | None:
        assert ctx.op.process is not None
        assert ctx.op.process.poll() is None, ctx.op.output()
        md = get_md(ctx.api, ctx.namespace)
        status = md.get("status", {})
        ok = status.get("servingVersion") == version and status.get("readyReplicas") == replicas
        available = any(
            c["type"] == "Available" and c["status"] == "True" for c in status.get("conditions", [])
        )
        return md if ok and available else None

    try:
        return wait_until(f"version {version} on {replicas} ready pods", check, timeout, every=2)  # type: ignore[no-any-return]
    except BaseException:
        print(ctx.op.output())
        print(json.dumps(get_md(ctx.api, ctx.namespace).get("status"), indent=1))
        print(pod_logs(ctx.api, ctx.namespace, SERVER_SELECTOR))
        raise


# --- 1. MinIO stopped for 60 s during training, serving and a drift check ---------------------


@dataclass
class OutageFigures:
    """What the outage test measured, printed at the end whatever happened."""

    outage_seconds: float = 0.0
    trainer_retries: int = 0
    trainer_waited: float = 0.0
    trainer_pods: int = 0
    training_seconds_after_outage: float = 0.0
    requests: ClientCounts | None = None
    rows_answered: int = 0
    rows_written: float = 0.0
    rows_dropped: dict[str, float] | None = None
    drop_bound: int = 0
    rows_in_s3: int = 0
    check_during_outage: str = ""
    retrains_during_outage: int = -1
    check_after_outage: str = ""

    def report(self) -> str:
        return "MinIO outage figures:\n" + "\n".join(
            f"  {key}: {value}" for key, value in vars(self).items() if key != "requests"
        ) + (f"\n  requests: sent={self.requests.sent} ok={self.requests.ok} "
             f"failed={self.requests.failed} refused_connects={self.requests.refused}"
             if self.requests else "")  # fmt: skip


def test_minio_outage_during_training_serving_and_a_drift_check(
    ctx: Ctx,
    project_image: str,
    kubectl: list[str],
    minio_restored: None,
) -> None:
    api, namespace = ctx.api, ctx.namespace
    figures = OutageFigures()
    try:
        outage(ctx, project_image, kubectl, figures)
    finally:
        print(figures.report())
        minio("start")
        quiesce(api, namespace)


def outage(ctx: Ctx, image: str, kubectl: list[str], figures: OutageFigures) -> None:
    api, ns = ctx.api, ctx.namespace
    assert ctx.train("churn-1") == 1
    # A generous rollout deadline: a loaded 2-core machine can take more than the default 30 s.
    md = model_deployment(ctx.s3, ctx.bucket, ctx.secret, version={"pinned": 1},
                          rolloutDeadlineSeconds=240)  # fmt: skip
    create_custom(api, ns, "modeldeployments", md)
    serving_ready(ctx, 1, 1)
    start_client(api, ns, "client", image, workers=1, pause=0.1, seconds=MAX_OUTAGE_SECONDS + 300)
    time.sleep(5)  # some rows logged before the outage

    minio("stop")
    stopped = time.monotonic()
    assert not minio_answers(ctx.s3)
    try:
        during_outage(ctx, figures, stopped)
    finally:
        minio("start")
    figures.outage_seconds = round(time.monotonic() - stopped, 1)
    restarted = time.monotonic()
    after_outage(ctx, kubectl, figures, restarted)


def during_outage(ctx: Ctx, figures: OutageFigures, stopped: float) -> None:
    """Start a training and a drift check now; the check must fail before MinIO is back."""
    template = training_job("template", ctx.data, ctx.s3, ctx.bucket, ctx.secret)["spec"]
    tj = training_job("churn-outage", ctx.data, ctx.s3, ctx.bucket, ctx.secret)
    create_custom(ctx.api, ctx.namespace, "trainingjobs", tj)
    create_custom(ctx.api, ctx.namespace, "driftmonitors", drift_monitor(template))

    def check_failed() -> dict[str, Any] | None:
        dm = get_dm(ctx.api, ctx.namespace)
        return dm if dm.get("status", {}).get("lastCheckTime") else None

    left = MAX_OUTAGE_SECONDS - (time.monotonic() - stopped)
    dm = wait_until("the drift check to finish during the outage", check_failed, left - 5)
    cond = conditions(dm)
    figures.check_during_outage = (
        f"DriftDetected={cond['DriftDetected']['status']} ({cond['DriftDetected']['reason']}), "
        f"Stalled={cond['Stalled']['status']}: {cond['Stalled'].get('message', '')[:200]}"
    )
    assert cond["DriftDetected"]["status"] == "Unknown", dm["status"]
    assert cond["DriftDetected"]["reason"] == "CheckFailed"
    assert cond["Stalled"]["status"] == "True"
    assert cond["Ready"]["status"] == "False"
    assert "StorageUnavailable" in cond["Stalled"]["message"]
    assert not dm["status"].get("retrainings")
    assert not dm["status"].get("drift")
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
    figures.retrains_during_outage = len(retrain_jobs(ctx.api, ctx.namespace))
    assert figures.retrains_during_outage == 0
    current = client.CustomObjectsApi(ctx.api).get_namespaced_custom_object(
        "continuum.dev", "v1alpha1", ctx.namespace, "trainingjobs", "churn-outage"
    )
    assert current.get("status", {}).get("phase") not in {"Succeeded", "Failed"}, current


def after_outage(ctx: Ctx, kubectl: list[str], figures: OutageFigures, restarted: float) -> None:
    api, ns = ctx.api, ctx.namespace
    done = finished(api, ns, "churn-outage", ctx.op)
    figures.training_seconds_after_outage = round(time.monotonic() - restarted, 1)
    trainer_figures(ctx, figures)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["model"]["version"] == 2
    assert figures.trainer_pods == 1  # the trainer's own retries, not a Job retry
    assert figures.trainer_retries >= 3

    time.sleep(max(0.0, TRAFFIC_AFTER_OUTAGE - (time.monotonic() - restarted)))
    stop_client(api, kubectl, ns, "client")
    figures.requests = counts = client_counts(api, ns, "client", 60)
    assert counts.failed == 0, counts.log
    assert counts.ok > 300, counts.log
    inference_log_figures(ctx, figures, counts)

    # With MinIO back, the next scheduled check sees the traffic's drift: the failed check
    # did not hide anything, it just had no data to decide on.
    def drift_seen() -> dict[str, Any] | None:
        dm = get_dm(api, ns)
        cond = conditions(dm).get("DriftDetected", {})
        return dm if cond.get("status") == "True" else None

    dm = wait_until("a check after the outage to find drift", drift_seen, 150, every=2)
    figures.check_after_outage = conditions(dm)["DriftDetected"]["message"][:200]
    assert len(dm["status"]["retrainings"]) == 1


def trainer_figures(ctx: Ctx, figures: OutageFigures) -> None:
    selector = "continuum.dev/training-job=churn-outage"
    pods = client.CoreV1Api(ctx.api).list_namespaced_pod(ctx.namespace, label_selector=selector)
    figures.trainer_pods = len(pods.items)
    waits = [
        json.loads(line)
        for line in pod_logs(ctx.api, ctx.namespace, selector).splitlines()
        if '"event":"s3_unavailable"' in line
    ]
    figures.trainer_retries = len(waits)
    figures.trainer_waited = waits[-1]["waited"] + waits[-1]["retry_in"] if waits else 0.0


def inference_log_figures(ctx: Ctx, figures: OutageFigures, counts: ClientCounts) -> None:
    """Every answered row is in MinIO or counted as dropped, and drops stay within the bound."""
    [pod] = server_pods(ctx.api, ctx.namespace)
    rows_per_request = len(ROWS)
    # Requests answered before the client's counting started (its first answer) are logged too.
    answered = metric_sum(server_metrics(pod), "continuum_server_requests_total", status="200")
    figures.rows_answered = int(answered) * rows_per_request

    def settled() -> dict[str, float] | None:
        samples = server_metrics(pod)
        written = metric_sum(samples, "continuum_server_inference_log_rows_total")
        dropped = metric_sum(samples, "continuum_server_inference_log_dropped_rows_total")
        return samples if written + dropped >= figures.rows_answered else None

    samples = wait_until("the inference log to catch up", settled, 60, every=2)
    figures.rows_written = metric_sum(samples, "continuum_server_inference_log_rows_total")
    figures.rows_dropped = {
        reason: metric_sum(
            samples, "continuum_server_inference_log_dropped_rows_total", reason=reason
        )
        for reason in ("buffer_full", "write_failed")
    }
    # docs/server-limits.md: dropped <= rows sampled in the outage + rows buffered at its start
    # - log-buffer-rows, plus one request's rows. Every row answered bounds the first two.
    figures.drop_bound = max(0, figures.rows_answered - LOG_BUFFER_ROWS) + rows_per_request
    figures.rows_in_s3 = logged_rows_in_s3(ctx.s3, ctx.bucket, 1)
    assert sum(figures.rows_dropped.values()) <= figures.drop_bound
    assert figures.rows_in_s3 == figures.rows_written
    assert figures.rows_written + sum(figures.rows_dropped.values()) == figures.rows_answered


# --- 2. A model server pod killed during a rollout --------------------------------------------


def test_server_pod_killed_during_rollout_loses_at_most_its_in_flight_requests(
    ctx: Ctx,
    project_image: str,
    kubectl: list[str],
) -> None:
    api, namespace = ctx.api, ctx.namespace
    try:
        kill_during_rollout(ctx, project_image, kubectl)
    finally:
        quiesce(api, namespace)


def kill_during_rollout(ctx: Ctx, image: str, kubectl: list[str]) -> None:
    api, namespace, s3 = ctx.api, ctx.namespace, ctx.s3
    assert ctx.train("churn-1") == 1
    assert ctx.train("churn-2") == 2
    md = model_deployment(s3, ctx.bucket, ctx.secret, version={"pinned": 1}, replicas=2,
                          rolloutDeadlineSeconds=240)  # fmt: skip
    create_custom(api, namespace, "modeldeployments", md)
    serving_ready(ctx, 1, 2)
    workers = 4
    start_client(api, namespace, "client", image, workers=workers, pause=0.05, seconds=400)
    time.sleep(3)

    patch_spec(api, namespace, {"version": {"pinned": 2}})
    victim, in_flight = kill_an_old_pod_once_a_new_one_is_ready(api, namespace)
    killed_at = time.monotonic()
    md_status = serving_ready(ctx, 2, 2)["status"]
    time.sleep(max(5.0, TRAFFIC_AFTER_KILL - (time.monotonic() - killed_at)))
    stop_client(api, kubectl, namespace, "client")
    counts = client_counts(api, namespace, "client", 60)
    restarts = sum(
        s.restart_count for p in server_pods(api, namespace)
        for s in (p.status.container_statuses or []) if p.metadata.name == victim
    )  # fmt: skip
    print(
        f"pod kill during rollout: killed {victim} (in flight just before: {in_flight}); "
        f"requests sent={counts.sent} succeeded={counts.ok} failed={counts.failed}; "
        f"refused connects retried={counts.refused}; workers={workers}; "
        f"history={[(h['version'], h['outcome']) for h in md_status['history']]}; "
        f"victim restarts seen={restarts}"
    )
    print("\n".join(line for line in counts.log.splitlines() if line.startswith("FAIL")))
    assert counts.ok > 100, counts.log
    assert counts.failed <= workers, counts.log
    assert [h["version"] for h in md_status["history"]] == [1, 2]
    assert md_status["history"][-1]["outcome"] == "Promoted"


def kill_an_old_pod_once_a_new_one_is_ready(api: client.ApiClient, ns: str) -> tuple[str, float]:
    """SIGKILL the server process of a ready version-1 pod once a version-2 pod is ready."""

    def ready(pod: client.V1Pod) -> bool:
        conds = pod.status.conditions or []
        alive = pod.metadata.deletion_timestamp is None
        return alive and any(c.type == "Ready" and c.status == "True" for c in conds)

    def version(pod: client.V1Pod) -> str:
        return str(pod.metadata.labels.get("continuum.dev/model-version"))

    def moment() -> client.V1Pod | None:
        pods = server_pods(api, ns)
        new_ready = any(ready(p) and version(p) == "2" for p in pods)
        old = [p for p in pods if ready(p) and version(p) == "1"]
        return old[0] if new_ready and old else None

    victim = wait_until("a new pod ready while an old one serves", moment, 180, every=0.5)
    in_flight = metric_sum(server_metrics(victim), "continuum_server_in_flight_requests")
    container_id = victim.status.container_statuses[0].container_id.split("//", 1)[1]
    subprocess.run(
        ["ctr", "--address", CONTAINERD, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL",
         container_id],
        check=True, timeout=30, capture_output=True,
    )  # fmt: skip
    name = str(victim.metadata.name)
    wait_until(f"{name}'s server to be dead", lambda: killed(api, ns, name, container_id), 30)
    return name, in_flight


def killed(api: client.ApiClient, ns: str, name: str, container_id: str) -> bool:
    """The pod is gone, or its container is no longer the one we killed running."""
    pods = [p for p in server_pods(api, ns) if p.metadata.name == name]
    if not pods:
        return True
    [status] = pods[0].status.container_statuses or [None]
    return status is None or not status.ready or not status.container_id.endswith(container_id)
