"""Progressive delivery on the real cluster (issue 18): shadow, canary steps, analysis,
rollback, with steady client traffic through the Service.

A client pod calls the Service's OIP v2 endpoint the whole time and counts which version
answered each request (``model_version``) and every failed request. Version 1 serves; version
2, trained on the same data, goes shadow -> 10% -> 50% -> 100% and is promoted; version 3,
trained on inverted labels, disagrees with the champion and is stopped in shadow, never
answering a request. The client sees 0 failed requests throughout.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.kit.cluster import (
    IMAGE,
    event_reasons,
    plain,
    pod_logs,
    restricted_container,
    start_job,
    upload,
    wait_until,
)
from tests.kit.cluster import loaded_image as project_image  # noqa: F401 (no rebuild here)
from tests.kit.datasets import as_csv, two_class_rows
from tests.kit.kinds import (
    GROUP,
    MD,
    MODELDEPLOYMENTS,
    ROWS,
    VERSION,
    Ctx,
    get_md,
    model_deployment,
    objs,
    stop_serving,
    training_job,
)
from tests.kit.traffic import Client, Counts

ROLLOUT = {
    "strategy": "ShadowThenCanary",
    "shadow": {"minRequests": 60, "minSeconds": 10},
    "canary": {"steps": [{"weight": 10, "minRequests": 10, "minSeconds": 10},
                         {"weight": 50, "minRequests": 30, "minSeconds": 10}]},
    # Scoring takes ~0.1-1 ms here, on 2 cores shared with other work: the p99 ratio of such
    # small numbers is noise, so this test does not judge latency (the unit tests do).
    "analysis": {"maxLatencyRatio": 50},
}  # fmt: skip

# argv: host, rows (JSON), workers, pause, seconds, gap, feedback. OIP v2; counts answers per
# model_version. With gap N > 0 every Nth request has its first row's "width" missing (the
# served models impute it). With feedback 1 each request carries an x-request-id and the
# labels it was answered are posted back to the feedback endpoint.
CLIENT = """
import http.client, json, os, sys, threading, time
host, rows = sys.argv[1], json.loads(sys.argv[2])
workers, pause, seconds = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
gap, feedback = int(sys.argv[6]), sys.argv[7] == "1"
names = [k for k in rows[0]]
inputs = []
for name in names:
    values = [r[name] for r in rows]
    kind = "BYTES" if isinstance(values[0], str) else "FP64"
    inputs.append({"name": name, "shape": [len(rows)], "datatype": kind, "data": values})
body = json.dumps({"inputs": inputs}).encode()
holed = [dict(i, data=[None, *i["data"][1:]]) if i["name"] == "width" else i for i in inputs]
body_gap = json.dumps({"inputs": holed}).encode()
sent = [0]
counts = {"sent": 0, "ok": 0, "failed": 0, "refused": 0}
versions = {}
lock = threading.Lock()

def once():
    conn = http.client.HTTPConnection(host, 80, timeout=10)
    try:
        conn.connect()
    except ConnectionRefusedError:
        return "refused", None
    try:
        with lock:
            sent[0] += 1
            this = body_gap if gap and sent[0] % gap == 0 else body
            rid = f"{os.getpid()}-{sent[0]}-{time.monotonic_ns()}"
        headers = {"Content-Type": "application/json", "x-request-id": rid}
        conn.request("POST", "/v2/models/churn/infer", this, headers)
        reply = conn.getresponse()
        answer = reply.read()
        if reply.status != 200:
            return f"status {reply.status}: {answer[:200]!r}", None
        decoded = json.loads(answer)
        if len(decoded["outputs"][0]["data"]) != len(rows):
            return f"short answer: {answer[:200]!r}", None
        if feedback:
            labels = next(o["data"] for o in decoded["outputs"] if o["name"] == "predict")
            posted = json.dumps({"labels": [{"id": rid, "row": i, "label": label}
                                            for i, label in enumerate(labels)]}).encode()
            conn.request("POST", "/v2/models/churn/feedback", posted,
                         {"Content-Type": "application/json"})
            got = conn.getresponse()
            text = got.read()
            if got.status != 200:
                return f"feedback status {got.status}: {text[:200]!r}", None
        return "ok", decoded["model_version"]
    except Exception as exc:
        return repr(exc), None
    finally:
        conn.close()

def request():
    while True:
        outcome, version = once()
        if outcome != "refused":
            return outcome, version
        with lock:
            counts["refused"] += 1
        time.sleep(0.05)

start = time.monotonic()
while request()[0] != "ok":
    if time.monotonic() - start > 120:
        sys.exit("no answer from the Service in 120 s")
    time.sleep(0.5)
print("READY", flush=True)
end = time.monotonic() + seconds

def worker():
    while time.monotonic() < end and not os.path.exists("/tmp/stop"):
        with lock:
            counts["sent"] += 1
        outcome, version = request()
        with lock:
            if outcome == "ok":
                counts["ok"] += 1
                versions[version] = versions.get(version, 0) + 1
            else:
                counts["failed"] += 1
                print("FAIL", time.strftime("%H:%M:%S"), outcome, flush=True)
        time.sleep(pause)

def report():
    while time.monotonic() < end and not os.path.exists("/tmp/stop"):
        with lock:
            print("VERSIONS " + json.dumps(versions), flush=True)
        time.sleep(1)

threads = [threading.Thread(target=worker) for _ in range(workers)]
threads.append(threading.Thread(target=report, daemon=True))
for t in threads: t.start()
for t in threads[:-1]: t.join()
with lock:
    print("VERSIONS " + json.dumps(versions), flush=True)
print("FINAL " + " ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
"""


class VersionClient(Client):
    """The traffic kit's client, on OIP v2, counting answers per version."""

    def start_v2(
        self,
        *,
        workers: int = 2,
        pause: float = 0.05,
        seconds: float = 1500,
        gap: int = 0,
        feedback: bool = False,
    ) -> None:
        args = [MD, json.dumps(ROWS), str(workers), str(pause), str(seconds), str(gap),
                "1" if feedback else "0"]  # fmt: skip
        container = restricted_container("client", IMAGE, ["python", "-c", CLIENT, *args])
        start_job(self.api, self.namespace, self.name, container)
        wait_until(f"client {self.name} answered once", lambda: "READY" in self.log(), 180)

    def versions(self) -> dict[str, int]:
        """Answers per model_version so far (the client prints them every second)."""
        lines = re.findall(r"^VERSIONS (.*)$", self.log(), re.MULTILINE)
        return {str(k): int(v) for k, v in json.loads(lines[-1]).items()} if lines else {}


def rollout_of(ctx: Ctx) -> dict[str, Any]:
    return dict(get_md(ctx.api, ctx.namespace).get("status", {}).get("rollout") or {})


def wait_rollout(ctx: Ctx, what: str, check: Any, timeout: float = 240) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        assert ctx.op.process is not None
        assert ctx.op.process.poll() is None, ctx.op.output()
        md = get_md(ctx.api, ctx.namespace)
        return md if check(md.get("status", {})) else None

    try:
        found: dict[str, Any] = wait_until(what, probe, timeout, every=1)
        rollout = found.get("status", {}).get("rollout") or {}
        print(f"{time.strftime('%H:%M:%S')} {what}: {rollout.get('message')}", flush=True)
        return found
    except BaseException:
        print(ctx.op.output()[-6000:])
        print(json.dumps(get_md(ctx.api, ctx.namespace).get("status"), indent=1))
        print(pod_logs(ctx.api, ctx.namespace, "app.kubernetes.io/name=continuum-server")[-4000:])
        raise


def at_step(candidate: int, step: int) -> Any:
    def check(status: dict[str, Any]) -> bool:
        rollout = status.get("rollout") or {}
        return bool(rollout.get("candidate") == candidate and rollout.get("step") == step)

    return check


def with_traffic(
    ctx: Ctx, kubectl: list[str], scenario: Callable[[Ctx, VersionClient], None]
) -> Counts:
    """Run ``scenario`` with a client pod calling the Service throughout; it never fails a
    request (the client's counts, printed, are returned)."""
    traffic = VersionClient(ctx.api, ctx.namespace, "traffic")
    try:
        scenario(ctx, traffic)
    finally:
        counts = traffic.stop(kubectl) if "READY" in traffic.log() else None
        stop_serving(ctx)
    assert counts is not None
    print(f"client: sent={counts.sent} ok={counts.ok} failed={counts.failed} "
          f"refused={counts.refused} answered by version: {traffic.versions()}")  # fmt: skip
    assert counts.failed == 0, counts.log
    return counts


def test_a_good_candidate_is_promoted_and_a_disagreeing_one_stopped_in_shadow(
    ctx: Ctx, kubectl: list[str]
) -> None:
    counts = with_traffic(ctx, kubectl, promote_then_stop)
    assert counts.ok > 300, counts.log


def promote_then_stop(ctx: Ctx, traffic: VersionClient) -> None:
    assert ctx.train("churn-1") == 1
    body = model_deployment(ctx.s3, ctx.bucket, ctx.secret, rollout=ROLLOUT)
    objs(ctx.api).create_namespaced_custom_object(GROUP, VERSION, ctx.namespace,
                                                   MODELDEPLOYMENTS, body)  # fmt: skip
    ctx.serving(1)
    traffic.start_v2()
    good_candidate_goes_shadow_10_50_100(ctx, traffic)
    disagreeing_candidate_is_stopped_in_shadow(ctx, traffic)


def good_candidate_goes_shadow_10_50_100(ctx: Ctx, traffic: VersionClient) -> None:
    assert ctx.train("churn-2") == 2
    wait_rollout(ctx, "version 2 in shadow", at_step(2, 0))
    md = wait_rollout(ctx, "version 2 at 10%", at_step(2, 1))
    assert traffic.versions().get("2", 0) == 0, "the candidate answered in shadow"
    shadow_done = next(e for e in md["status"]["rollout"]["evidence"] if e["signal"] == "agreement")
    assert shadow_done["threshold"] == 0.95
    wait_rollout(ctx, "version 2 at 50%", at_step(2, 2))
    assert traffic.versions().get("2", 0) > 0, "the candidate never answered at 10%"
    md = ctx.serving(2, timeout=240)
    history = md["status"]["history"]
    assert [(h["version"], h["outcome"]) for h in history] == [(1, "Promoted"), (2, "Promoted")]
    assert md["status"]["rollout"]["verdict"] == "Promote"
    time.sleep(8)  # the old pods leave the endpoints, then drain
    before = traffic.versions()
    time.sleep(5)
    after = traffic.versions()
    assert after.get("1", 0) == before.get("1", 0), "version 1 still answers after promotion"
    assert after.get("2", 0) > before.get("2", 0)
    reasons = wait_until("the rollout's Events", lambda: _reasons_once(ctx, "Promoted"), 30)
    assert reasons.count("RolloutStep") >= 4, reasons  # shadow, 10%, 50%, promoting


def disagreeing_candidate_is_stopped_in_shadow(ctx: Ctx, traffic: VersionClient) -> None:
    inverted = as_csv(two_class_rows(240, 7, labels=("yes", "no")))
    data = upload(ctx.s3, ctx.bucket, "datasets/inverted.csv", inverted)
    body = training_job("churn-3", data, ctx.s3, ctx.bucket, ctx.secret)
    objs(ctx.api).create_namespaced_custom_object(GROUP, VERSION, ctx.namespace,
                                                   "trainingjobs", body)  # fmt: skip
    status = ctx.finished("churn-3")["status"]
    assert status["qualified"] is True, status
    assert status["model"]["version"] == 3
    md = wait_rollout(ctx, "version 3 rolled back", lambda s: (s.get("history") or [{}])[-1]
                      .get("outcome") == "RolledBack")  # fmt: skip
    last = md["status"]["history"][-1]
    assert (last["version"], last["failedSignal"]) == (3, "agreement"), last
    assert md["status"]["rollout"]["step"] == 0, "stopped in shadow"
    assert traffic.versions().get("3", 0) == 0, "version 3 answered a request"
    md = ctx.serving(2, timeout=120, true=("Available", "Degraded"))
    degraded = {c["type"]: c for c in md["status"]["conditions"]}["Degraded"]
    assert degraded["reason"] == "AnalysisFailed", degraded
    assert "agreement" in degraded["message"]
    wait_until("an AnalysisFailed Event", lambda: _reasons_once(ctx, "AnalysisFailed"), 30)
    time.sleep(15)  # never retried: the Deployment stays on version 2 alone
    live = plain(ctx.api, client.AppsV1Api(ctx.api).read_namespaced_deployment(MD, ctx.namespace))
    labels = live["spec"]["template"]["metadata"]["labels"]
    assert labels["continuum.dev/model-version"] == "2"
    assert "continuum.dev/rollout-step" not in labels
    assert traffic.versions().get("3", 0) == 0


def _reasons_once(ctx: Ctx, reason: str) -> list[str] | None:
    """The ModelDeployment's Event reasons once ``reason`` is among them (kopf posts Events
    from a queue, shortly after the status that records the decision)."""
    reasons = event_reasons(ctx.api, ctx.namespace, MD, "ModelDeployment")
    return reasons if reason in reasons else None


CANARY = {
    "strategy": "Canary",
    # The first step outlasts an operator restart; the second holds until promoted by hand.
    "canary": {"steps": [{"weight": 10, "minRequests": 20, "minSeconds": 40},
                         {"weight": 50, "minRequests": 100_000_000, "minSeconds": 0}]},
    "analysis": {"maxLatencyRatio": 50},
}  # fmt: skip


def counted(candidate: int, step: int) -> Any:
    def check(status: dict[str, Any]) -> bool:
        return bool(at_step(candidate, step)(status) and status["rollout"].get("requests", 0) > 0)

    return check


def rolled_back(status: dict[str, Any]) -> bool:
    return bool((status.get("history") or [{}])[-1].get("outcome") == "RolledBack")


def rollout_command(kubeconfig: Path, namespace: str, action: str) -> str:
    command = [str(Path(sys.executable).with_name("continuum")), "rollout", MD, action,
               "-n", namespace]  # fmt: skip
    done = subprocess.run(command, env={**os.environ, "KUBECONFIG": str(kubeconfig)},
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_restart_resumes_the_step_and_promote_and_abort_act_by_hand(
    ctx: Ctx, kubectl: list[str], kubeconfig: Path
) -> None:
    with_traffic(ctx, kubectl, functools.partial(restart_promote_abort, kubeconfig=kubeconfig))


def restart_promote_abort(ctx: Ctx, traffic: VersionClient, *, kubeconfig: Path) -> None:
    assert ctx.train("churn-1") == 1
    body = model_deployment(ctx.s3, ctx.bucket, ctx.secret, rollout=CANARY)
    objs(ctx.api).create_namespaced_custom_object(GROUP, VERSION, ctx.namespace,
                                                   MODELDEPLOYMENTS, body)  # fmt: skip
    ctx.serving(1)
    traffic.start_v2()
    assert ctx.train("churn-2") == 2
    md = wait_rollout(ctx, "version 2 at 10% with evidence", counted(2, 0))
    before = md["status"]["rollout"]
    ctx.op.stop()
    time.sleep(5)
    ctx.op.start()
    md = wait_rollout(ctx, "a look after the restart",
                      lambda s: s["rollout"].get("requests", 0) > before["requests"])  # fmt: skip
    after = md["status"]["rollout"]
    assert after["step"] >= before["step"], "the restart went back a step"
    if after["step"] == before["step"]:
        assert after["stepStartedAt"] == before["stepStartedAt"], "the step's clock restarted"
    wait_rollout(ctx, "version 2 at 50%", at_step(2, 1))
    print(rollout_command(kubeconfig, ctx.namespace, "status"))
    assert "requested" in rollout_command(kubeconfig, ctx.namespace, "promote")
    md = ctx.serving(2, timeout=180)
    assert md["status"]["rollout"]["verdict"] == "Promote"
    assert (
        "promoted now by the continuum.dev/rollout-action annotation"
        in (md["status"]["rollout"]["message"])
    )
    assert ctx.train("churn-3") == 3
    wait_rollout(ctx, "version 3 at 10%", at_step(3, 0))
    assert "requested" in rollout_command(kubeconfig, ctx.namespace, "abort")
    md = wait_rollout(ctx, "version 3 aborted", rolled_back)
    assert md["status"]["history"][-1]["version"] == 3
    md = ctx.serving(2, timeout=120, true=("Available", "Degraded"))
    degraded = {c["type"]: c for c in md["status"]["conditions"]}["Degraded"]
    assert degraded["reason"] == "RolloutAborted", degraded
    before_abort = traffic.versions().get("3", 0)
    time.sleep(15)  # the pods with version 3 are replaced: it answers nothing more
    settled = traffic.versions().get("3", 0)
    time.sleep(5)
    assert traffic.versions().get("3", 0) == settled, (before_abort, settled)


def test_a_candidate_erroring_on_part_of_the_traffic_is_rolled_back_at_the_first_step(
    ctx: Ctx, kubectl: list[str]
) -> None:
    """Version 2 does not impute ``width``, which a quarter of the live requests miss (version
    1 imputes it): it fails those requests, the champion answers them, and the error rate rolls
    it back at its first canary step."""
    with_traffic(ctx, kubectl, erroring_candidate)


def serving_churn_1(ctx: Ctx, rollout: dict[str, Any]) -> None:
    """churn-1 trained and served by a ModelDeployment that rolls out as ``rollout`` says."""
    assert ctx.train("churn-1") == 1
    body = model_deployment(ctx.s3, ctx.bucket, ctx.secret, rollout=rollout)
    objs(ctx.api).create_namespaced_custom_object(GROUP, VERSION, ctx.namespace,
                                                   MODELDEPLOYMENTS, body)  # fmt: skip
    ctx.serving(1)


def rolled_back_by(ctx: Ctx, churn_2: dict[str, Any], signal: str) -> dict[str, Any]:
    """The TrainingJob ``churn_2`` created, qualified, and its version 2 rolled back by
    ``signal``: the ModelDeployment then."""
    objs(ctx.api).create_namespaced_custom_object(GROUP, VERSION, ctx.namespace,
                                                   "trainingjobs", churn_2)  # fmt: skip
    assert ctx.finished("churn-2")["status"]["qualified"] is True
    md = wait_rollout(ctx, "version 2 rolled back", rolled_back)
    last = md["status"]["history"][-1]
    assert (last["version"], last["failedSignal"]) == (2, signal), last
    return md


def erroring_candidate(ctx: Ctx, traffic: VersionClient) -> None:
    serving_churn_1(ctx, {"strategy": "Canary", "canary": {"steps": [
        {"weight": 10, "minRequests": 10, "minSeconds": 5}, {"weight": 50}]},
        "analysis": {"maxLatencyRatio": 50}})  # fmt: skip
    traffic.start_v2(gap=4)
    strict = ctx.training_job("churn-2")
    strict["spec"]["preprocessing"]["numeric"] = {"impute": "none"}
    md = rolled_back_by(ctx, strict, "errorRate")
    assert md["status"]["rollout"]["step"] == 0, "rolled back at the first canary step"
    assert md["status"]["rollout"]["stepName"] == "Canary 10%"
    error_rate = next(e for e in md["status"]["rollout"]["evidence"] if e["signal"] == "errorRate")
    print(f"errorRate at the rollback: {error_rate}")
    assert error_rate["value"] > 0.1
    md = ctx.serving(1, timeout=120, true=("Available", "Degraded"))
    degraded = {c["type"]: c for c in md["status"]["conditions"]}["Degraded"]
    assert degraded["reason"] == "AnalysisFailed", degraded


def test_a_candidate_worse_on_the_labels_posted_in_shadow_is_rolled_back(
    ctx: Ctx, kubectl: list[str]
) -> None:
    """Labels come back during the shadow step and confirm the champion's answers (in shadow
    the champion answers every request, and the client posts what it was answered). Version 2,
    trained on inverted labels, is wrong on them; agreement and distribution distance are not
    judged here (thresholds 0 and 1), so realisedDrop is the signal that rolls it back."""
    with_traffic(ctx, kubectl, worse_on_labels)


def worse_on_labels(ctx: Ctx, traffic: VersionClient) -> None:
    serving_churn_1(ctx, {"strategy": "Shadow", "shadow": {"minRequests": 60, "minSeconds": 5},
                          "analysis": {"maxLatencyRatio": 50, "minAgreement": 0,
                                       "maxDistributionDistance": 1}})  # fmt: skip
    traffic.start_v2(feedback=True)
    inverted = as_csv(two_class_rows(240, 7, labels=("yes", "no")))
    data = upload(ctx.s3, ctx.bucket, "datasets/inverted.csv", inverted)
    job = training_job("churn-2", data, ctx.s3, ctx.bucket, ctx.secret)
    md = rolled_back_by(ctx, job, "realisedDrop")
    found = {e["signal"]: e for e in md["status"]["rollout"]["evidence"]}
    print(f"evidence at the rollback: {found}")
    assert found["realisedDrop"]["value"] > 0.5, found
    assert found["agreement"]["passed"] is True, "only the labels could tell"
    assert traffic.versions().get("2", 0) == 0, "version 2 answered in shadow"
    md = ctx.serving(1, timeout=120, true=("Available", "Degraded"))
    degraded = {c["type"]: c for c in md["status"]["conditions"]}["Degraded"]
    assert "realisedDrop" in degraded["message"], degraded
