"""ModelDeployment end to end on the real cluster: TrainingJobs, model server, promotion, rollback.

The operator runs as a subprocess under deploy/rbac/clusterrole.yaml (see test_trainingjob.py).
Requests go through the Service from pods in the test namespace (restricted Pod Security),
while a prober pod keeps calling the Service for the whole rollout history: a promotion and a
rolled-back rollout must not make a single request fail.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest
from kubernetes import client

from continuum.modelio import coerce_features, load_verified_model
from continuum.storage import ObjectStore, read_manifest
from continuum.storage import S3Settings as StoreSettings
from tests.cluster.conftest import pod_logs, restricted_container, run_job, wait_until
from tests.cluster.test_trainingjob import (  # noqa: F401 (fixtures)
    Operator,
    crds,
    dataset_csv,
    finished,
    operator,
    operator_role,
    training_job,
    upload,
)
from tests.conftest import S3Settings, s3_client

GROUP, VERSION, PLURAL = "continuum.dev", "v1alpha1", "modeldeployments"
MD = "churn"
DEADLINE = 30
IMAGE = "continuum:0.1.0"
ROWS = [
    {"sepal": 0.1, "petal": -0.3, "width": 0.2, "colour": "red"},
    {"sepal": 3.2, "petal": 2.9, "width": 3.1, "colour": "blue"},
    {"sepal": 1.4, "petal": 1.6, "width": 1.5, "colour": "green"},
]
PROBER = """
import json, sys, time, urllib.request
url = "http://churn/v1/models/churn:predict"
body = json.dumps({"instances": %s}).encode()
ok = fail = 0
while True:
    try:
        req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as reply:
            reply.read()
        ok += 1
    except Exception as exc:
        if ok:  # count from the first answer on (the Service's DNS name may lag at first)
            fail += 1
            print("FAIL", repr(exc), flush=True)
    if (ok + fail) %% 25 == 0:
        print(f"STAT ok={ok} fail={fail}", flush=True)
    time.sleep(0.1)
"""


@pytest.fixture(scope="session")
def project_image(kubectl: list[str]) -> str:
    """The project image, already in the cluster's containerd (built by hack/image.sh)."""
    sock = "/run/continuum/containerd/containerd.sock"

    def present() -> bool:
        listed = subprocess.run(
            ["ctr", "--address", sock, "-n", "k8s.io", "images", "ls", "-q"],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        return f"library/{IMAGE}" in listed.stdout

    wait_until(f"image {IMAGE} in the cluster", present, 900, every=10)
    return IMAGE


def model_deployment(s3: S3Settings, bucket: str, secret: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": MD},
        "spec": {
            "model": "churn",
            "version": {"policy": "latestQualified"},
            "replicas": 1,
            "batching": {"maxBatchSize": 16, "maxLatencyMs": 2},
            "inferenceLog": {"enabled": True, "flushRows": 10, "flushSeconds": 5},
            "storage": {
                "endpoint": s3.in_cluster_endpoint_url,
                "bucket": bucket,
                "secretRef": {"name": secret},
            },
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
            "rolloutDeadlineSeconds": DEADLINE,
            **spec,
        },
    }


def objs(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def get_md(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    return dict(objs(api).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, MD))


def patch_spec(api: client.ApiClient, namespace: str, spec: dict[str, Any]) -> None:
    objs(api).patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, MD, {"spec": spec})


def conditions(md: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in md.get("status", {}).get("conditions", [])}


def train(
    api: client.ApiClient, namespace: str, op: Operator, name: str, setup: tuple[Any, ...]
) -> int:
    """Run one TrainingJob to completion; its (qualified) version."""
    s3, bucket, secret, data = setup
    body = training_job(name, data, s3, bucket, secret)
    objs(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", body)
    status = finished(api, namespace, name, op)["status"]
    assert status["phase"] == "Succeeded", status
    assert status["qualified"] is True, status
    return int(status["model"]["version"])


def serving(
    api: client.ApiClient,
    namespace: str,
    op: Operator,
    version: int,
    timeout: float = 240,
    true: tuple[str, ...] = ("Available", "Ready"),
) -> dict[str, Any]:
    """Wait until the ModelDeployment serves ``version`` with the ``true`` conditions True."""

    def check() -> dict[str, Any] | None:
        assert op.process is not None
        assert op.process.poll() is None, op.output()
        md = get_md(api, namespace)
        cond = conditions(md)
        ok = (
            md.get("status", {}).get("servingVersion") == version
            and all(cond.get(t, {}).get("status") == "True" for t in true)
            and cond.get("Progressing", {}).get("status") == "False"
        )
        return md if ok else None

    try:
        return wait_until(f"{MD} serving version {version}", check, timeout, every=2)  # type: ignore[no-any-return]
    except BaseException:
        print(op.output())
        print(json.dumps(get_md(api, namespace).get("status"), indent=1))
        print(pod_logs(api, namespace, "app.kubernetes.io/name=continuum-server"))
        raise


def predict_in_cluster(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """POST the rows to the Service's v1 predict endpoint from a pod; the JSON answer."""
    script = (
        "import json, urllib.request\n"
        f"body = json.dumps({{'instances': {ROWS!r}}}).encode()\n"
        "req = urllib.request.Request('http://churn/v1/models/churn:predict', body,"
        " {'Content-Type': 'application/json'})\n"
        "print('ANSWER', urllib.request.urlopen(req, timeout=20).read().decode())\n"
    )
    run_job(api, namespace, name, restricted_container("client", IMAGE, ["python", "-c", script]))
    logs = pod_logs(api, namespace, f"job-name={name}")
    line = next(x for x in logs.splitlines() if x.startswith("ANSWER "))
    return dict(json.loads(line.removeprefix("ANSWER ")))


def local_predictions(s3: S3Settings, bucket: str, version: int) -> list[Any]:
    store = ObjectStore(
        StoreSettings(
            bucket=bucket,
            endpoint_url=s3.endpoint_url,
            region=s3.region,
            access_key=s3.access_key,
            secret_key=s3.secret_key,
        )
    )
    model = load_verified_model(store, "churn", version).pipeline
    features = coerce_features(
        pd.DataFrame(ROWS), read_manifest(store, "churn", version)["features"]
    )
    return list(model.predict(features).tolist())


def start_prober(api: client.ApiClient, namespace: str) -> None:
    container = restricted_container("prober", IMAGE, ["python", "-c", PROBER % json.dumps(ROWS)])
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "prober"},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
        },
    }
    client.BatchV1Api(api).create_namespaced_job(namespace, job)


def prober_stats(api: client.ApiClient, namespace: str) -> tuple[int, int, str]:
    logs = pod_logs(api, namespace, "job-name=prober")
    stats = [x for x in logs.splitlines() if x.startswith("STAT ")]
    if not stats:
        return 0, 0, logs
    fields = dict(kv.split("=") for kv in stats[-1].split()[1:])
    return int(fields["ok"]), int(fields["fail"]), logs


def event_reasons(api: client.ApiClient, namespace: str) -> list[str]:
    events = client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={MD},involvedObject.kind=ModelDeployment"
    )
    return [e.reason for e in events.items]


def template_version(api: client.ApiClient, namespace: str) -> str:
    dep = client.AppsV1Api(api).read_namespaced_deployment(MD, namespace)
    return str(dep.spec.template.metadata.labels["continuum.dev/model-version"])


def tamper(s3: S3Settings, bucket: str, version: int) -> None:
    key = f"models/churn/{version}/model.skops"
    s3c = s3_client(s3)
    data = bytearray(s3c.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0xFF
    s3c.put_object(Bucket=bucket, Key=key, Body=bytes(data))


@dataclass(frozen=True)
class Ctx:
    """Everything one end-to-end run works with."""

    api: client.ApiClient
    namespace: str
    op: Operator
    s3: S3Settings
    bucket: str
    secret: str
    data: str

    def train(self, name: str) -> int:
        return train(self.api, self.namespace, self.op, name, self.setup)

    @property
    def setup(self) -> tuple[Any, ...]:
        return (self.s3, self.bucket, self.secret, self.data)

    def serving(
        self, version: int, timeout: float = 240, true: tuple[str, ...] = ("Available", "Ready")
    ) -> dict[str, Any]:
        return serving(self.api, self.namespace, self.op, version, timeout, true)


def test_serve_promote_and_roll_back(
    api: client.ApiClient,
    namespace: str,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
    operator: Operator,  # noqa: F811 (the fixture)
) -> None:
    data = upload(s3, s3_bucket, "datasets/churn.csv", dataset_csv())
    ctx = Ctx(api, namespace, operator, s3, s3_bucket, s3_secret, data)
    try:
        serve_promote_and_roll_back(ctx)
    finally:
        stop_serving(ctx)


def serve_promote_and_roll_back(ctx: Ctx) -> None:
    api, namespace = ctx.api, ctx.namespace
    serve_first_version(ctx)
    start_prober(api, namespace)
    wait_until("the prober's first answers", lambda: prober_stats(api, namespace)[0] > 0, 120)
    promote_second_version(ctx)
    roll_back_tampered_third_version(ctx)

    # The failed version is remembered: no retry, and the Service answered throughout.
    time.sleep(DEADLINE / 2)
    assert template_version(api, namespace) == "2"
    assert len(get_md(api, namespace)["status"]["history"]) == 3
    ok, failed, logs = prober_stats(api, namespace)
    assert ok > 100, logs[-3000:]
    assert failed == 0, logs[-3000:]
    answer = predict_in_cluster(api, namespace, "predict-2")
    assert answer["predictions"] == local_predictions(ctx.s3, ctx.bucket, 2)


def stop_serving(ctx: Ctx) -> None:
    """Delete the ModelDeployment and wait for its pods (which log to the bucket) to go."""
    core = client.CoreV1Api(ctx.api)
    selector = "app.kubernetes.io/name=continuum-server"
    try:
        objs(ctx.api).delete_namespaced_custom_object(GROUP, VERSION, ctx.namespace, PLURAL, MD)
    except client.ApiException as err:
        if err.status != 404:
            raise
    wait_until(
        "the server pods to be gone",
        lambda: not core.list_namespaced_pod(ctx.namespace, label_selector=selector).items,
        120,
    )


def serve_first_version(ctx: Ctx) -> None:
    """v1: latestQualified serves the only qualified version, through its Service."""
    api, namespace = ctx.api, ctx.namespace
    assert ctx.train("churn-1") == 1
    body = model_deployment(ctx.s3, ctx.bucket, ctx.secret)
    objs(api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    md = ctx.serving(1)
    status = md["status"]
    assert status["url"] == f"http://{MD}.{namespace}.svc.cluster.local/v2/models/churn"
    assert status["readyReplicas"] == 1
    assert status["observedGeneration"] == md["metadata"]["generation"]
    assert [(h["version"], h["trainingJob"], h["outcome"]) for h in status["history"]] == [
        (1, "churn-1", "Promoted")
    ]
    cond = conditions(md)
    for type_ in ("Progressing", "Degraded", "Stalled", "Reconciling"):
        assert cond[type_]["status"] == "False", cond[type_]
    answer = predict_in_cluster(api, namespace, "predict-1")
    assert answer["predictions"] == local_predictions(ctx.s3, ctx.bucket, 1)


def promote_second_version(ctx: Ctx) -> None:
    """v2: a new qualified TrainingJob is promoted automatically."""
    assert ctx.train("churn-2") == 2
    md = ctx.serving(2)
    assert md["status"]["previousVersion"] == 1
    assert [h["version"] for h in md["status"]["history"]] == [1, 2]
    wait_until(
        "RolloutStarted and Promoted Events",
        lambda: {"RolloutStarted", "Promoted"} <= set(event_reasons(ctx.api, ctx.namespace)),
        30,
    )


def roll_back_tampered_third_version(ctx: Ctx) -> None:
    """v3, tampered: pin v2 while v3 is trained and its model file corrupted, then let
    latestQualified roll it out. The server refuses it, the rollout misses its deadline and
    is rolled back to v2, which keeps serving."""
    api, namespace = ctx.api, ctx.namespace
    patch_spec(api, namespace, {"version": {"pinned": 2, "policy": None}})
    assert ctx.train("churn-3") == 3
    assert template_version(api, namespace) == "2"
    tamper(ctx.s3, ctx.bucket, 3)
    patch_spec(api, namespace, {"version": {"pinned": None, "policy": "latestQualified"}})
    wait_until("the rollout of version 3", lambda: template_version(api, namespace) == "3", 60)
    md = wait_for_rollback(ctx)
    last = md["status"]["history"][-1]
    assert (last["version"], last["trainingJob"]) == (3, "churn-3")
    md = ctx.serving(2, timeout=120, true=("Available", "Degraded", "Stalled"))
    cond = conditions(md)
    assert cond["Ready"]["status"] == "False"
    assert cond["Degraded"]["status"] == "True"
    assert cond["Degraded"]["reason"] == "RolloutFailed"
    assert "version 3" in cond["Degraded"]["message"]
    assert cond["Stalled"]["status"] == "True"
    assert md["status"]["servingVersion"] == 2
    assert "RolledBack" in event_reasons(api, namespace)


def wait_for_rollback(ctx: Ctx) -> dict[str, Any]:
    api, namespace = ctx.api, ctx.namespace

    def rolled_back() -> dict[str, Any] | None:
        md = get_md(api, namespace)
        history = md.get("status", {}).get("history", [])
        done = history and history[-1]["outcome"] == "RolledBack"
        return md if done and template_version(api, namespace) == "2" else None

    try:
        return wait_until("the rollback", rolled_back, DEADLINE + 150, every=2)  # type: ignore[no-any-return]
    except BaseException:
        print(ctx.op.output())
        print(json.dumps(get_md(api, namespace).get("status"), indent=1))
        print(pod_logs(api, namespace, "continuum.dev/model-version=3")[-3000:])
        raise
