"""The demo's story, on the real cluster, with the operator running in it (see hack/demo.sh).

    generate data -> TrainingJob churn-v1 -> ModelDeployment churn (latestQualified) ->
    in-distribution traffic -> DriftMonitor: NoDrift -> new labelled data and shifted traffic ->
    DriftDetected (consecutiveChecks in a row) -> retraining TrainingJob -> v2 qualified ->
    promoted; then outcomes: DriftMonitor churn-outcomes -> traffic like v2's training data,
    labels back with premium customers' outcomes flipped (concept drift, inputs unmoved) ->
    NoDrift, realised accuracy degraded -> a performance retraining on the labelled traffic (a
    Parquet snapshot) -> v3 promoted -> new labelled traffic: v3 holds -> `continuum lineage
    churn`, the drift report, where to look.

Everything the user applies comes from examples/; the traffic runs in pods of the demo namespace
(restricted Pod Security) and goes through the model's Service. Every wait has a timeout and,
when it runs out, dumps the object's status, Events and pod logs and the operator's log.

Run by hack/demo.sh with the project virtualenv's Python; configuration from the environment:
KUBECTL, KUBECONFIG, CONTINUUM_STATE, DEMO_NS, SYSTEM_NS, RELEASE, IMAGE, DEMO_OUT, T0; and, on
the current kube context (DEMO_CLUSTER=current), DEMO_CONTEXT (every kubectl call is pinned to
it) and DEMO_S3_ENV (the s3.env demo.sh wrote for MinIO behind a port-forward).
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import boto3
import yaml

from continuum.storage.inference_logs import decode_rows

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
KUBECTL = os.environ.get("KUBECTL", "kubectl")
KUBECONFIG = os.environ.get("KUBECONFIG", str(Path.home() / ".kube/config"))
STATE_DIR = Path(os.environ.get("CONTINUUM_STATE", "/var/lib/continuum-cluster"))
NS = os.environ.get("DEMO_NS", "continuum-demo")
SYSTEM_NS = os.environ.get("SYSTEM_NS", "continuum-system")
RELEASE = os.environ.get("RELEASE", "continuum")
IMAGE = os.environ.get("IMAGE", "continuum:0.1.0")
OUT = Path(os.environ.get("DEMO_OUT", "/tmp/continuum-demo"))
T0 = float(os.environ.get("T0", time.time()))
CURRENT = os.environ.get("DEMO_CLUSTER") == "current"
CONTEXT = os.environ.get("DEMO_CONTEXT", "")
# The local cluster: its admin kubeconfig. The current context: the user's kubeconfig (KUBECONFIG,
# possibly a list, or kubectl's default), pinned to the context the preflight checked.
KUBE_ARGS = ["--context", CONTEXT] if CONTEXT else ["--kubeconfig", KUBECONFIG]
S3_ENV = Path(os.environ.get("DEMO_S3_ENV", STATE_DIR / "s3.env"))
T = TypeVar("T")

MODEL, MD, DM, TJ = "churn", "churn", "churn-drift", "churn-v1"
OUTCOMES = "churn-outcomes"  # the DriftMonitor of examples/driftmonitor-outcomes.yaml
NEW_CONCEPT = "premium"  # the plan whose customers' outcomes flip in the second act
TRAFFIC_ROWS = 300  # = the DriftMonitor's window.maxRows
TRAIN_ROWS = 400
SHIFT = 2.0  # in standard deviations of every numeric feature

# The dataset: a churn-like table. Churners pay more, use more data and call support longer
# (3 standard deviations apart from the others on each numeric feature); the plan carries no
# signal. The drift: a price rise moves every numeric feature up by SHIFT standard deviations,
# so the old model takes many loyal customers for churners.
NUMERIC = {  # feature: (mean of non-churners, standard deviation)
    "monthly_charges": (50.0, 10.0),
    "data_usage_gb": (20.0, 5.0),
    "support_minutes": (15.0, 5.0),
}
PLANS = ["basic", "standard", "premium"]
TARGET = "churned"


def elapsed() -> str:
    return f"[{time.time() - T0:5.0f}s]"


def log(message: str) -> None:
    print(f"{elapsed()} {message}", flush=True)


def step(message: str) -> None:
    print(f"\n{elapsed()} ==> {message}", flush=True)


class DemoError(Exception):
    """A step that did not happen; the message names it."""


# ---------------------------------------------------------------------------- the data


def customers(count: int, seed: int, shift: float) -> list[dict[str, Any]]:
    """``count`` customers, half of them churners, numeric features moved by ``shift`` sd."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        churned = i % 2 == 1
        row: dict[str, Any] = {}
        for name, (mean, sd) in NUMERIC.items():
            z = rng.gauss((3.0 if churned else 0.0) + shift, 1.0)
            row[name] = round(mean + sd * z, 2)
        row["plan"] = rng.choice(PLANS)
        row[TARGET] = "yes" if churned else "no"
        rows.append(row)
    return rows


def like_v2(count: int, seed: int) -> list[dict[str, Any]]:
    """Customers as version 2 was trained on them: half before the price rise, half after
    (so its DriftMonitor sees no input drift)."""
    return customers(count // 2, seed, 0) + customers(count - count // 2, seed + 1000, SHIFT)


def new_truth(row: dict[str, Any]) -> str:
    """The outcome after the concept moved: flipped for the NEW_CONCEPT plan."""
    if row["plan"] != NEW_CONCEPT:
        return str(row[TARGET])
    return "no" if row[TARGET] == "yes" else "yes"


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*NUMERIC, "plan", TARGET])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


# ---------------------------------------------------------------------------- kubectl


def kubectl(*args: str, stdin: str | None = None, check: bool = True, timeout: float = 120) -> str:
    done = subprocess.run(
        [KUBECTL, *KUBE_ARGS, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise DemoError(f"kubectl {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def get(kind: str, name: str) -> dict[str, Any]:
    out = kubectl("-n", NS, "get", kind, name, "-o", "json", check=False)
    return json.loads(out) if out.strip() else {}


def show(kinds: str = "tj,md,dm") -> None:
    """`kubectl get <kinds>`: the printer columns, as the user would see them."""
    text = kubectl("-n", NS, "get", kinds, "-o", "wide", check=False).rstrip()
    print("\n".join(f"      {line}" for line in text.splitlines()), flush=True)


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}


def dump(kind: str, name: str | None, selector: str | None) -> None:
    """What a user would look at when a step does not happen."""
    print("\n---------- diagnostics ----------", file=sys.stderr)
    if name:
        obj = get(kind, name)
        print(f"--- {kind}/{name} status:", file=sys.stderr)
        print(json.dumps(obj.get("status", {}), indent=1), file=sys.stderr)
        print(kubectl("-n", NS, "describe", kind, name, check=False)[-4000:], file=sys.stderr)
    print("--- Events in the demo namespace:", file=sys.stderr)
    events = kubectl("-n", NS, "get", "events", "--sort-by=.lastTimestamp", check=False)
    print("\n".join(events.splitlines()[-25:]), file=sys.stderr)
    print("--- pods:", kubectl("-n", NS, "get", "pods", "-o", "wide", check=False), file=sys.stderr)
    if selector:
        print(f"--- logs of pods {selector}:", file=sys.stderr)
        logs = kubectl("-n", NS, "logs", "-l", selector, "--tail=60", "--all-containers",
                       "--prefix", check=False)  # fmt: skip
        print(logs, file=sys.stderr)
    print("--- operator log (last 60 lines):", file=sys.stderr)
    print(kubectl("-n", SYSTEM_NS, "logs", f"deployment/{RELEASE}", "--tail=60", check=False),
          file=sys.stderr)  # fmt: skip


def wait(
    what: str,
    check: Callable[[], T | None],
    timeout: float,
    *,
    kind: str = "",
    name: str | None = None,
    selector: str | None = None,
    every: float = 2,
) -> T:
    """Poll ``check`` until truthy; on timeout dump diagnostics and fail naming ``what``."""
    start = time.time()
    deadline, heartbeat = start + timeout, start + 30
    while True:
        value = check()
        if value:
            return value
        if time.time() > heartbeat:
            log(f"... still waiting for {what} ({time.time() - start:.0f}s of {timeout:.0f}s)")
            heartbeat += 30
        if time.time() > deadline:
            if kind:
                dump(kind, name, selector)
            raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def apply_example(filename: str) -> None:
    path = EXAMPLES / filename
    log(f"kubectl -n {NS} apply -f examples/{filename}")
    kubectl("-n", NS, "apply", "-f", str(path))


# ---------------------------------------------------------------------------- S3


def s3_env() -> dict[str, str]:
    lines = S3_ENV.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def s3_client() -> Any:
    env = s3_env()
    return boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


def bucket() -> str:
    spec = yaml.safe_load((EXAMPLES / "trainingjob.yaml").read_text())["spec"]
    return str(spec["storage"]["bucket"])


def empty_bucket(s3: Any, name: str) -> None:
    """Create the demo bucket, or delete everything in it (models, logs, reports)."""
    try:
        s3.head_bucket(Bucket=name)
    except s3.exceptions.ClientError:
        s3.create_bucket(Bucket=name)
        return
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})


def logged(s3: Any, name: str, version: int) -> list[dict[str, Any]]:
    """The inference log's rows of ``version`` (features, prediction, request id, row)."""
    listed = s3.list_objects_v2(Bucket=name, Prefix=f"inference-logs/{MODEL}/{version}/")
    rows: list[dict[str, Any]] = []
    for obj in listed.get("Contents", []):
        rows += decode_rows(s3.get_object(Bucket=name, Key=obj["Key"])["Body"].read())
    return rows


def logged_rows(s3: Any, name: str, version: int) -> int:
    return len(logged(s3, name, version))


def label_file(
    s3: Any, name: str, version: int, sent: list[dict[str, Any]], key: str
) -> tuple[int, int]:
    """What the users' systems do days later: a JSON-lines file of (request id, row, label)
    under labels/<model>/ for every logged answer to ``sent``, labelled by the new concept.
    Returns (labels written, labels that differ from the old concept)."""
    fields = [*NUMERIC, "plan"]
    by_features = {tuple(row[f] for f in fields): row for row in sent}
    lines, flipped = [], 0
    for entry in logged(s3, name, version):
        row = by_features.get(tuple(entry["features"].get(f) for f in fields))
        if row is None:
            continue
        label = new_truth(row)
        flipped += label != row[TARGET]
        lines.append(json.dumps({"id": entry["request_id"], "row": entry.get("row", 0),
                                 "label": label}))  # fmt: skip
    s3.put_object(Bucket=name, Key=f"labels/{MODEL}/{key}.jsonl", Body="\n".join(lines).encode())
    return len(lines), flipped


def download_report(s3: Any, uri: str, target: Path) -> Path:
    """The report.html of a report folder s3://bucket/reports/…/ into ``target``."""
    name, prefix = uri.removeprefix("s3://").split("/", 1)
    key = prefix.rstrip("/") + "/report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(s3.get_object(Bucket=name, Key=key)["Body"].read())
    return target


# ---------------------------------------------------------------------------- traffic

TRAFFIC = """
import json, sys, urllib.request
rows = json.loads(sys.argv[1])
url = "http://churn/v2/models/churn/infer"
answers, versions = {}, set()
for start in range(0, len(rows), 50):
    part = rows[start:start + 50]
    inputs = []
    for name, value in part[0].items():
        kind = "BYTES" if isinstance(value, str) else "FP64"
        inputs.append({"name": name, "shape": [len(part)], "datatype": kind,
                       "data": [row[name] for row in part]})
    req = urllib.request.Request(url, json.dumps({"inputs": inputs}).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as reply:
        body = json.loads(reply.read())
    versions.add(body["model_version"])
    for value in body["outputs"][0]["data"]:
        answers[str(value)] = answers.get(str(value), 0) + 1
served = ",".join(sorted(versions))
print(f"{len(rows)} customers scored in batches of 50 by version {served};",
      "predicted churned:", json.dumps(answers, sort_keys=True), flush=True)
"""


def traffic_job(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    features = [{k: v for k, v in row.items() if k != TARGET} for row in rows]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "continuum-demo"}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/part-of": "continuum-demo"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "traffic",
                            "image": IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["python", "-c", TRAFFIC, json.dumps(features)],
                            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                                "runAsNonRoot": True,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                        }
                    ],
                },
            },
        },
    }


def send(name: str, rows: list[dict[str, Any]]) -> None:
    """Run a pod that POSTs the rows to the model's Service (OIP v2), and wait for it."""
    kubectl("-n", NS, "apply", "-f", "-", stdin=json.dumps(traffic_job(name, rows)))

    def finished() -> str | None:
        status = get("job", name).get("status", {})
        if status.get("failed"):
            dump("job", name, f"job-name={name}")
            raise DemoError(f"the traffic Job {name} failed (logs above)")
        return "done" if status.get("succeeded") else None

    wait(f"the traffic Job {name} to finish", finished, 180, kind="job", name=name,
         selector=f"job-name={name}")  # fmt: skip
    log("traffic pod: " + kubectl("-n", NS, "logs", f"job/{name}", check=False).strip())


# ---------------------------------------------------------------------------- the story


def clean_slate(s3: Any, name: str) -> None:
    step(f"A clean slate: deleting last run's objects in namespace {NS} and s3://{name}/")
    for kinds in ("driftmonitors,modeldeployments,trainingjobs", "jobs,deployments,services"):
        kubectl("-n", NS, "delete", kinds, "--all", "--wait=true", "--timeout=120s",
                "--ignore-not-found", timeout=150)  # fmt: skip
    kubectl("-n", NS, "delete", "pods", "--all", "--grace-period=5", "--wait=true",
            "--timeout=90s", timeout=120)  # fmt: skip
    kubectl("-n", NS, "delete", "events", "--all", check=False)
    empty_bucket(s3, name)
    source = kubectl("-n", SYSTEM_NS, "get", "secret", "minio-credentials", "-o", "json")
    secret = json.loads(source)
    copy = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3-credentials"},
            "type": "Opaque", "data": secret["data"]}  # fmt: skip
    kubectl("-n", NS, "apply", "-f", "-", stdin=json.dumps(copy))
    log(f"namespace {NS} is empty; Secret s3-credentials holds the MinIO credentials")


def upload(s3: Any, name: str, key: str, rows: list[dict[str, Any]], what: str) -> None:
    s3.put_object(Bucket=name, Key=key, Body=as_csv(rows))
    churners = sum(row[TARGET] == "yes" for row in rows)
    log(f"uploaded s3://{name}/{key}: {len(rows)} {what} customers, {churners} churned")


def train_v1() -> dict[str, Any]:
    step("1. Train version 1: TrainingJob churn-v1 (LogisticRegression, gate accuracy >= 0.7)")
    apply_example("trainingjob.yaml")
    tj = wait_training(TJ)
    show("tj")
    return tj


def wait_training(name: str) -> dict[str, Any]:
    last = None

    def phase() -> dict[str, Any] | None:
        nonlocal last
        tj = get("tj", name)
        now = tj.get("status", {}).get("phase")
        if now != last:
            log(f"TrainingJob {name}: phase {now or '(none yet)'}")
            last = now
        return tj if now in {"Succeeded", "Failed"} else None

    tj = wait(f"TrainingJob {name} to finish (phase Succeeded or Failed)", phase, 300,
              kind="tj", name=name, selector=f"continuum.dev/training-job={name}")  # fmt: skip
    status = tj["status"]
    if status["phase"] != "Succeeded" or not status.get("qualified"):
        dump("tj", name, f"continuum.dev/training-job={name}")
        raise DemoError(f"TrainingJob {name} ended {status['phase']}, qualified="
                        f"{status.get('qualified')} (status above)")  # fmt: skip
    log(f"TrainingJob {name}: version {status['model']['version']}, metrics "
        f"{json.dumps(status.get('metrics', {}))}, qualified")  # fmt: skip
    return tj


def wait_serving(version: int, timeout: float = 240) -> dict[str, Any]:
    last = None

    def serving() -> dict[str, Any] | None:
        nonlocal last
        md = get("md", MD)
        cond = conditions(md)
        state = (md.get("status", {}).get("servingVersion"),
                 cond.get("Progressing", {}).get("reason"))  # fmt: skip
        if state != last:
            log(f"ModelDeployment {MD}: serving {state[0]}, Progressing: {state[1]}")
            last = state
        ok = (
            md.get("status", {}).get("servingVersion") == version
            and cond.get("Available", {}).get("status") == "True"
            and cond.get("Progressing", {}).get("status") == "False"
        )
        return md if ok and only_version_pods(version) else None

    return wait(f"ModelDeployment {MD} to serve version {version} (Available, not Progressing)",
                serving, timeout, kind="md", name=MD,
                selector="app.kubernetes.io/name=continuum-server")  # fmt: skip


def only_version_pods(version: int) -> bool:
    """Whether the old version's server pods are gone: until they are, the Service still
    sends them some of the traffic (logged under the old version)."""
    out = kubectl("-n", NS, "get", "pods", "-l", "app.kubernetes.io/name=continuum-server",
                  "-o", "json", check=False)  # fmt: skip
    pods = json.loads(out).get("items", []) if out.strip() else []
    label = "continuum.dev/model-version"
    return bool(pods) and all(p["metadata"]["labels"].get(label) == str(version) for p in pods)


def serve_v1() -> None:
    step("2. Serve it: ModelDeployment churn, version policy latestQualified")
    apply_example("modeldeployment.yaml")
    wait_serving(1)
    show("md")


def normal_traffic(s3: Any, name: str) -> None:
    step(f"3. Normal traffic: {TRAFFIC_ROWS} customers, sent from a pod to Service churn")
    send("traffic-normal", customers(TRAFFIC_ROWS, seed=21, shift=0))
    wait(f"{TRAFFIC_ROWS} rows in the inference log s3://{name}/inference-logs/{MODEL}/1/",
         lambda: logged_rows(s3, name, 1) >= TRAFFIC_ROWS, 60, kind="md", name=MD,
         selector="app.kubernetes.io/name=continuum-server")  # fmt: skip
    log(f"the server logged them: s3://{name}/inference-logs/{MODEL}/1/")


def features_line(dm: dict[str, Any]) -> str:
    drift = dm.get("status", {}).get("drift") or {}
    parts = []
    for feature in drift.get("features", []):
        mark = "DRIFT" if feature.get("drifted") else "ok"
        parts.append(f"{feature['name']} {feature['test']} p={feature.get('pValue', 0):.2g} {mark}")
    return "; ".join(parts)


def first_check() -> dict[str, Any]:
    step("4. Watch for drift: DriftMonitor churn-drift (every 60 s, 2 drifted checks to retrain)")
    apply_example("driftmonitor.yaml")
    dm = wait("the DriftMonitor's first check", lambda: checked(None), 180, kind="dm", name=DM,
              selector="app.kubernetes.io/component=drift-check")  # fmt: skip
    verdict = conditions(dm).get("DriftDetected", {})
    if verdict.get("status") != "False":
        dump("dm", DM, "app.kubernetes.io/component=drift-check")
        raise DemoError(f"the first check of in-distribution traffic found drift: {verdict}")
    log(f"check 1: {verdict.get('reason')} - {features_line(dm)}")
    show("dm")
    return dm


def checked(after: str | None) -> dict[str, Any] | None:
    dm = get("dm", DM)
    last = dm.get("status", {}).get("lastCheckTime")
    return dm if last and last != after else None


def drift_and_retrain(s3: Any, name: str, first: dict[str, Any]) -> dict[str, Any]:
    step("5. The world changes: a price rise moves every numeric feature up by 2 sd")
    upload(s3, name, "datasets/churn/part-1.csv", customers(TRAIN_ROWS, seed=8, shift=SHIFT),
           "newly labelled (shifted)")  # fmt: skip
    send("traffic-shifted", customers(TRAFFIC_ROWS, seed=22, shift=SHIFT))
    step("6. The next checks see the drift; the second in a row starts a retraining")
    last = first["status"]["lastCheckTime"]
    number, needed = 1, int(first["spec"]["consecutiveChecks"])
    deadline = time.time() + 90 * needed + 60
    while True:
        remaining = deadline - time.time()
        dm = wait("the next drift check (a check Job every 60 s)", partial(checked, last),
                  max(remaining, 1), kind="dm", name=DM,
                  selector="app.kubernetes.io/component=drift-check")  # fmt: skip
        number += 1
        last = dm["status"]["lastCheckTime"]
        verdict = conditions(dm).get("DriftDetected", {})
        retrained = bool(dm["status"].get("retrainings"))
        row = needed if retrained else dm["status"].get("consecutiveDrifts", 0)
        log(f"check {number}: {verdict.get('reason')} ({row}/{needed} in a row) - "
            f"{features_line(dm)}")  # fmt: skip
        if retrained:
            break
    record = dm["status"]["retrainings"][-1]
    log(f"DriftMonitor created TrainingJob {record['trainingJob']}: {record['reason']}")
    show("tj,dm")
    return dm


def promote(dm: dict[str, Any]) -> dict[str, Any]:
    name = dm["status"]["retrainings"][-1]["trainingJob"]
    step(f"7. Retrain and promote: {name} trains version 2 on old + new data")
    tj = wait_training(name)
    if tj["status"]["model"]["version"] != 2:
        raise DemoError(f"expected version 2, got {tj['status']['model']}")
    md = wait_serving(2)
    history = [(h["version"], h.get("outcome"), h["trainingJob"]) for h in md["status"]["history"]]
    log(f"ModelDeployment history: {history}")
    show("tj,md,dm")
    return tj


def performance_line(dm: dict[str, Any]) -> str:
    """The last check's live performance, as kubectl describe would tell it."""
    perf = dm.get("status", {}).get("performance") or {}
    seen = perf.get("realised") or {}
    if seen.get("value") is None:
        return f"performance: {perf.get('verdict') or 'not judged yet'}"
    return (f"performance: {perf.get('verdict')}, realised {perf.get('metric')} "
            f"{seen['value']:.2f} (95% interval {seen.get('lower', 0):.2f}-"
            f"{seen.get('upper', 0):.2f}, {seen.get('rows')} labels) against the holdout's "
            f"{perf.get('holdout', 0):.2f}")  # fmt: skip


def served_and_labelled(s3: Any, name: str, version: int, job: str, seed: int) -> str:
    """Traffic like version 2's training data to the Service; once the server has logged it,
    the label file. Returns the lastCheckTime of churn-outcomes before the labels arrived."""
    rows = like_v2(TRAFFIC_ROWS, seed)
    send(job, rows)
    wait(f"{TRAFFIC_ROWS} rows of version {version} in the inference log",
         lambda: logged_rows(s3, name, version) >= TRAFFIC_ROWS, 90, kind="md", name=MD,
         selector="app.kubernetes.io/name=continuum-server")  # fmt: skip
    before = get("dm", OUTCOMES).get("status", {}).get("lastCheckTime", "")
    count, flipped = label_file(s3, name, version, rows, job)
    log(f"labels came back: s3://{name}/labels/{MODEL}/{job}.jsonl, {count} answers, "
        f"{flipped} of them ({NEW_CONCEPT} customers) the other way than before")  # fmt: skip
    return str(before)


def concept_drift(s3: Any, name: str) -> dict[str, Any]:
    step(f"8. Watch outcomes: DriftMonitor {OUTCOMES} joins the answers with the labels that "
         "come back and retrains when the served model is wrong")  # fmt: skip
    apply_example("driftmonitor-outcomes.yaml")
    step(f"9. The behaviour changes, not the inputs: {NEW_CONCEPT} customers now churn when "
         "they look loyal and stay when they look like churners")  # fmt: skip
    served_and_labelled(s3, name, 2, "traffic-concept", seed=23)

    def retrained() -> dict[str, Any] | None:
        dm = get("dm", OUTCOMES)
        return dm if dm.get("status", {}).get("retrainings") else None

    dm = wait(f"{OUTCOMES} to judge the labels and retrain", retrained, 240, kind="dm",
              name=OUTCOMES, selector="app.kubernetes.io/component=drift-check")  # fmt: skip
    inputs = conditions(dm).get("DriftDetected", {})
    log(f"check: inputs {inputs.get('reason')} - {features_line(dm)}")
    log(performance_line(dm))
    record = dm["status"]["retrainings"][-1]
    evidence = record.get("evidence") or {}
    log(f"{OUTCOMES} created TrainingJob {record['trainingJob']}: trigger {record['trigger']}, "
        f"realised {evidence.get('metric')} {evidence.get('value', 0):.2f} on version "
        f"{record.get('version')} (holdout {evidence.get('holdout', 0):.2f})")  # fmt: skip
    show("dm")
    return dm


def retrain_on_outcomes(dm: dict[str, Any]) -> dict[str, Any]:
    name = dm["status"]["retrainings"][-1]["trainingJob"]
    step(f"10. {name} trains version 3 on the labelled traffic (RandomForest), then it is "
         "promoted")  # fmt: skip
    tj = wait_training(name)
    dataset = tj["status"].get("dataset") or {}
    mark = str(dataset.get("fingerprint"))[:23]
    log(f"its training set: {dataset.get('feedbackRows')} labelled served rows, written once as "
        f"{dataset.get('snapshot')} (fingerprint {mark}...)")  # fmt: skip
    if tj["status"]["model"]["version"] != 3:
        raise DemoError(f"expected version 3, got {tj['status']['model']}")
    wait_serving(3)
    show("tj,md")
    return tj


def recovery(s3: Any, name: str) -> dict[str, Any]:
    step("11. New traffic, labelled by the new behaviour: version 3 holds")
    before = served_and_labelled(s3, name, 3, "traffic-recovered", seed=24)

    def held() -> dict[str, Any] | None:
        dm = get("dm", OUTCOMES)
        status = dm.get("status", {})
        newer = status.get("lastCheckTime", "") > before
        verdict = (status.get("performance") or {}).get("verdict")
        return dm if newer and verdict == "Held" else None

    dm = wait(f"a check of version 3 that holds ({OUTCOMES})", held, 240, kind="dm",
              name=OUTCOMES, selector="app.kubernetes.io/component=drift-check")  # fmt: skip
    log(performance_line(dm))
    show("dm")
    return dm


def lineage() -> str:
    command = [str(Path(sys.executable).with_name("continuum")), "lineage", MODEL, "-n", NS]
    env = dict(os.environ) if CURRENT else {**os.environ, "KUBECONFIG": KUBECONFIG}
    done = subprocess.run(command, env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    if done.returncode != 0:
        raise DemoError(f"continuum lineage failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def summary(s3: Any, name: str, first: dict[str, Any], drifted: dict[str, Any]) -> None:
    step("12. Lineage: trigger and evidence -> TrainingJob -> dataset or snapshot -> version")
    text = lineage()
    print("\n".join(f"      {line}" for line in text.rstrip().splitlines()), flush=True)
    record = drifted["status"]["retrainings"][-1]
    report = download_report(s3, record["report"], OUT / "report.html")
    calm = download_report(s3, first["status"]["reportURI"], OUT / "report-nodrift.html")
    took = time.time() - T0
    step(f"Demo done in {took:.0f}s: v1 trained and served; input drift -> v2 trained on the "
         "new data and promoted; outcomes wrong -> v3 trained on the labelled traffic, "
         "promoted, and right again.")  # fmt: skip
    print(where_to_look(record["report"], report, calm, name), flush=True)


def where_to_look(report_uri: str, report: Path, calm: Path, name: str) -> str:
    kubeconfig = "" if CURRENT else f"export KUBECONFIG={KUBECONFIG}\n    "
    context = f" --context {CONTEXT}" if CONTEXT else ""
    return f"""
  Drift report (HTML):   {report}
    (the NoDrift check:  {calm})
    in S3:               {report_uri}
  Look around:
    {kubeconfig}kubectl{context} -n {NS} get tj,md,dm                  # the printer columns above
    kubectl{context} -n {NS} describe dm {DM}        # the story as Events
    kubectl{context} -n {NS} describe dm {OUTCOMES}     # live performance and its Events
    kubectl{context} -n {NS} get pods                      # trainer, server, check and traffic pods
    {Path(sys.executable).with_name('continuum')} lineage {MODEL} -n {NS}
  The model server (OIP v2 and KServe v1):
    kubectl{context} -n {NS} port-forward svc/{MD} 8080:80
    curl -s localhost:8080/v2/models/{MODEL}
  Operator metrics (continuum_* series):
    kubectl{context} -n {SYSTEM_NS} port-forward svc/{RELEASE}-metrics 8081:8080
    curl -s localhost:8081/metrics | grep ^continuum_
  {storage_and_cleanup(name, context)}
"""  # fmt: skip


def storage_and_cleanup(name: str, context: str) -> str:
    """Where the bucket is and how to start over or clean up, for either kind of cluster."""
    if not CURRENT:
        return (
            f"MinIO: {s3_env()['S3_ENDPOINT']}, bucket {name}; credentials in {S3_ENV}\n"
            "  Run `make demo` again for a fresh run; `make cluster-down` stops everything."
        )
    helm_context = f" --kube-context {CONTEXT}" if CONTEXT else ""
    return (
        f"MinIO: Deployment {SYSTEM_NS}/minio (demo only, data in an emptyDir), bucket {name}; "
        f"credentials in {S3_ENV}\n"
        "  Run `make demo DEMO_CLUSTER=current ...` again for a fresh run. To remove the demo:\n"
        f"    helm{helm_context} -n {SYSTEM_NS} uninstall {RELEASE}\n"
        f"    kubectl{context} delete namespace {NS}\n"
        f"    kubectl{context} -n {SYSTEM_NS} delete deploy,svc,secret "
        "-l app.kubernetes.io/part-of=continuum-demo"
    )  # fmt: skip


def main() -> int:
    s3 = s3_client()
    name = bucket()
    try:
        clean_slate(s3, name)
        step("Generating the embedded default dataset (seeded, churn-like)")
        upload(s3, name, "datasets/churn/part-0.csv", customers(TRAIN_ROWS, seed=7, shift=0),
               "historical")  # fmt: skip
        train_v1()
        serve_v1()
        normal_traffic(s3, name)
        first = first_check()
        drifted = drift_and_retrain(s3, name, first)
        promote(drifted)
        retrain_on_outcomes(concept_drift(s3, name))
        recovery(s3, name)
        summary(s3, name, first, drifted)
    except DemoError as err:
        print(f"\nerror: {err}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
