"""Steady client traffic to a model server's Service from a pod in the cluster, failures counted.

The client runs in the test namespace (restricted Pod Security) as a Job of one pod, so its
requests take the path real clients take: the Service's DNS name, kube-proxy, the endpoints of
the ready pods. Each request opens a new connection (as a client without a pool does), so a
pod that leaves the endpoints stops getting requests at once; a connection refused before any
byte was sent is retried and counted apart (nothing reached a server). Everything else that is
not a 200 with predictions counts as a failed request, printed with its time and cause.

It stops when the test creates /tmp/stop in the pod (``kubectl exec``) or after ``seconds``,
then prints ``FINAL sent=… ok=… failed=… refused=…``; the pod's log keeps that line.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from continuum.storage.inference_logs import decode_rows
from tests.kit.cluster import (
    IMAGE,
    S3Settings,
    pod_logs,
    restricted_container,
    run_job,
    s3_client,
    start_job,
    wait_until,
)

# argv: host, path, rows (JSON), workers, pause between a worker's requests, seconds at most.
CLIENT = """
import http.client, json, os, sys, threading, time
host, path, rows = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
workers, pause, seconds = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
body = json.dumps({"instances": rows}).encode()
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
        answer = reply.read()
        if reply.status != 200:
            return f"status {reply.status}: {answer[:200]!r}"
        predictions = json.loads(answer).get("predictions")
        return "ok" if isinstance(predictions, list) and len(predictions) == len(rows) else (
            f"no predictions: {answer[:200]!r}")
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

threads = [threading.Thread(target=worker) for _ in range(workers)]
for t in threads: t.start()
for t in threads: t.join()
print("FINAL " + " ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
"""


@dataclass(frozen=True)
class Counts:
    """What the client saw, and the tail of its log (every failure is a ``FAIL`` line)."""

    sent: int
    ok: int
    failed: int
    refused: int
    log: str


@dataclass(frozen=True)
class Client:
    """One client pod (the Job ``name`` in ``namespace``) calling ``http://<service><path>``."""

    api: client.ApiClient
    namespace: str
    name: str

    def start(
        self, image: str, service: str, path: str, rows: list[dict[str, Any]], *,
        workers: int = 2, pause: float = 0.1, seconds: float = 1200,
    ) -> None:  # fmt: skip
        """Start it and wait for its first answer (the Service's DNS name may lag at first)."""
        args = [service, path, json.dumps(rows), str(workers), str(pause), str(seconds)]
        container = restricted_container("client", image, ["python", "-c", CLIENT, *args])
        start_job(self.api, self.namespace, self.name, container)
        wait_until(f"client {self.name} answered once", lambda: "READY" in self.log(), 180)

    def log(self) -> str:
        return pod_logs(self.api, self.namespace, f"job-name={self.name}")

    def stop(self, kubectl: list[str]) -> Counts:
        """Tell it to stop; its final counts once it has printed them."""
        pods = client.CoreV1Api(self.api).list_namespaced_pod(
            self.namespace, label_selector=f"job-name={self.name}"
        )
        [pod] = pods.items
        touch = ["python", "-c", "open('/tmp/stop', 'w').close()"]
        subprocess.run(
            [*kubectl, "exec", "-n", self.namespace, pod.metadata.name, "--", *touch],
            check=True, timeout=60, capture_output=True,
        )  # fmt: skip
        return self.counts(timeout=60)

    def counts(self, timeout: float) -> Counts:
        def final() -> re.Match[str] | None:
            return re.search(r"^FINAL (.*)$", self.log(), re.MULTILINE)

        found = wait_until(f"client {self.name} to finish", final, timeout, every=2)
        fields = {k: int(v) for k, v in (kv.split("=") for kv in found.group(1).split())}
        return Counts(log=self.log()[-3000:], **fields)


# One pass of OIP v2 infer requests (50 rows each) to the churn Service, from a pod.
TRAFFIC = """
import json, sys, urllib.request
rows = json.loads(sys.argv[1])
url = "http://churn/v2/models/churn/infer"
for start in range(0, len(rows), 50):
    part = rows[start:start + 50]
    inputs = [{"name": f, "shape": [len(part)], "datatype": "FP64", "data": [r[f] for r in part]}
              for f in ("sepal", "petal", "width")]
    inputs.append({"name": "colour", "shape": [len(part)], "datatype": "BYTES",
                   "data": [r["colour"] for r in part]})
    req = urllib.request.Request(url, json.dumps({"inputs": inputs}).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as reply:
        reply.read()
print("SENT", len(rows), flush=True)
"""


def send(k8s: client.ApiClient, ns: str, name: str, data: list[dict[str, Any]]) -> None:
    """POST the rows' features to the Service as OIP v2 infer requests, from a pod."""
    features = [{k: v for k, v in row.items() if k != "label"} for row in data]
    command = ["python", "-c", TRAFFIC, json.dumps(features)]
    run_job(k8s, ns, name, restricted_container("traffic", IMAGE, command), timeout=180)


def logged_rows(s3: S3Settings, bucket: str, version: int) -> int:
    s3c = s3_client(s3)
    listed = s3c.list_objects_v2(Bucket=bucket, Prefix=f"inference-logs/churn/{version}/")
    total = 0
    for obj in listed.get("Contents", []):
        total += len(decode_rows(s3c.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()))
    return total
