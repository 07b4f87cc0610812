"""Our three kinds on the real cluster: the bodies the cluster tests create, reads and waits.

A pytest plugin too (tests/conftest.py registers it) for its one fixture, ``ctx``.

The bodies are the smallest that exercise a kind end to end on the local cluster and its MinIO
(tests/kit/cluster.py); a test changes what it tests with ``**spec`` or by editing the dict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from continuum.storage.inference_logs import batch_key, encode_rows
from tests.kit.cluster import (
    IMAGE,
    Operator,
    S3Settings,
    pod_logs,
    restricted_container,
    run_job,
    s3_client,
    upload,
    wait_until,
)
from tests.kit.datasets import FEATURES, dataset_csv, two_class_rows

GROUP, VERSION = "continuum.dev", "v1alpha1"
TRAININGJOBS, MODELDEPLOYMENTS, DRIFTMONITORS = "trainingjobs", "modeldeployments", "driftmonitors"
TERMINAL = {"Succeeded", "Failed"}
RUN_TIMEOUT = 300
MD = "churn"  # the ModelDeployment, its Deployment and its Service
DEADLINE = 30  # the ModelDeployment's rolloutDeadlineSeconds
DM = "drift"
INTERVAL = 60  # the DriftMonitor's schedule, the schema's minimum
ROWS = [  # feature rows for the served churn model (tests/kit/datasets.py two_class_rows)
    {"sepal": 0.1, "petal": -0.3, "width": 0.2, "colour": "red"},
    {"sepal": 3.2, "petal": 2.9, "width": 3.1, "colour": "blue"},
    {"sepal": 1.4, "petal": 1.6, "width": 1.5, "colour": "green"},
]


def objs(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """An object's status conditions by type (none before its first status)."""
    return {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}


# ---------------------------------------------------------------------------- TrainingJob


def training_job(
    name: str,
    dataset: str,
    s3: S3Settings,
    bucket: str,
    secret: str,
    *,
    endpoint: str | None = None,
) -> dict[str, Any]:
    """A TrainingJob on MinIO's node address by default: both the trainer pod and an operator
    running on the host (which reads the finished run's manifest) reach it. Tests whose operator
    runs in the cluster pass ``endpoint=s3.in_cluster_endpoint_url`` (the Service name)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": "churn",
            "dataset": {"uri": dataset, "target": "label"},
            "estimator": {"class": "LogisticRegression", "params": {"max_iter": 200}},
            "preprocessing": {"categorical": {"columns": ["colour"]}},
            "evaluation": {"metric": "accuracy", "threshold": 0.6, "mustBeat": "none"},
            "storage": {
                "endpoint": endpoint or s3.endpoint_url,
                "bucket": bucket,
                "secretRef": {"name": secret},
            },
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
            "backoffLimit": 0,
            "activeDeadlineSeconds": 600,
        },
    }


def create_tj(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> None:
    objs(api).create_namespaced_custom_object(GROUP, VERSION, namespace, TRAININGJOBS, body)


def get_tj(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return dict(
        objs(api).get_namespaced_custom_object(GROUP, VERSION, namespace, TRAININGJOBS, name)
    )


def finished(
    api: client.ApiClient, namespace: str, name: str, operator: Operator
) -> dict[str, Any]:
    """Wait for the TrainingJob to reach Succeeded or Failed; return it."""

    def check() -> dict[str, Any] | None:
        assert operator.process is None or operator.process.poll() is None, operator.output()
        tj = get_tj(api, namespace, name)
        return tj if tj.get("status", {}).get("phase") in TERMINAL else None

    try:
        return wait_until(f"TrainingJob {name} to finish", check, RUN_TIMEOUT, every=2)  # type: ignore[no-any-return]
    except BaseException:
        print(operator.output())
        print(pod_logs(api, namespace, f"continuum.dev/training-job={name}"))
        raise


# ---------------------------------------------------------------------------- ModelDeployment


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


def get_md(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    return dict(
        objs(api).get_namespaced_custom_object(GROUP, VERSION, namespace, MODELDEPLOYMENTS, MD)
    )


def patch_spec(api: client.ApiClient, namespace: str, spec: dict[str, Any]) -> None:
    objs(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, MODELDEPLOYMENTS, MD, {"spec": spec}
    )


def only_version_pods(api: client.ApiClient, namespace: str, version: int) -> bool:
    """Whether every model-server pod left serves ``version``: the status says a version
    serves before the old version's pods are gone, and the Service still sends them requests
    (which they log under the old version) until they are."""
    pods = (
        client.CoreV1Api(api)
        .list_namespaced_pod(namespace, label_selector="app.kubernetes.io/name=continuum-server")
        .items
    )
    return bool(pods) and all(
        (p.metadata.labels or {}).get(f"{GROUP}/model-version") == str(version) for p in pods
    )


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

    def training_job(self, name: str) -> dict[str, Any]:
        """The TrainingJob ``name`` on ``data``, in ``bucket`` with ``secret``."""
        return training_job(name, self.data, self.s3, self.bucket, self.secret)

    def start_training(self, name: str) -> None:
        create_tj(self.api, self.namespace, self.training_job(name))

    def finished(self, name: str) -> dict[str, Any]:
        return finished(self.api, self.namespace, name, self.op)

    def train(self, name: str) -> int:
        """Run one TrainingJob on ``data`` to completion; its (qualified) version."""
        self.start_training(name)
        status = self.finished(name)["status"]
        assert status["phase"] == "Succeeded", status
        assert status["qualified"] is True, status
        return int(status["model"]["version"])

    def serving(
        self, version: int, timeout: float = 240, true: tuple[str, ...] = ("Available", "Ready")
    ) -> dict[str, Any]:
        return serving(self.api, self.namespace, self.op, version, timeout, true)


def stop_serving(ctx: Ctx) -> None:
    """Delete the ModelDeployment and wait for its pods (which log to the bucket) to go."""
    core = client.CoreV1Api(ctx.api)
    selector = "app.kubernetes.io/name=continuum-server"
    try:
        objs(ctx.api).delete_namespaced_custom_object(
            GROUP, VERSION, ctx.namespace, MODELDEPLOYMENTS, MD
        )
    except client.ApiException as err:
        if err.status != 404:
            raise
    wait_until(
        "the server pods to be gone",
        lambda: not core.list_namespaced_pod(ctx.namespace, label_selector=selector).items,
        120,
    )


# ---------------------------------------------------------------------------- DriftMonitor


def drift_monitor(template: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DriftMonitor",
        "metadata": {"name": DM},
        "spec": {
            "deployment": "churn",
            "schedule": {"intervalSeconds": INTERVAL},
            "window": {"maxRows": 400, "minSamples": 50},
            "consecutiveChecks": 1,
            "retrain": {
                "enabled": True,
                "template": template,
                "cooldownSeconds": 3600,
                "maxConcurrent": 1,
            },
            **spec,
        },
    }


def monitor_served(ctx: Ctx, monitor: dict[str, Any]) -> None:
    """Create the DriftMonitor ``monitor`` and the ModelDeployment it watches; wait for v1."""
    create = objs(ctx.api).create_namespaced_custom_object
    create(GROUP, VERSION, ctx.namespace, DRIFTMONITORS, monitor)
    md = model_deployment(ctx.s3, ctx.bucket, ctx.secret)
    create(GROUP, VERSION, ctx.namespace, MODELDEPLOYMENTS, md)
    ctx.serving(1)


def get_dm(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    return dict(
        objs(api).get_namespaced_custom_object(GROUP, VERSION, namespace, DRIFTMONITORS, DM)
    )


def write_inference_log(
    s3: S3Settings, bucket: str, version: int, rows: int, shift: float, model: str = "churn"
) -> None:
    """``rows`` rows of ``model`` ``version`` in its inference log as the server writes them,
    the features moved by ``shift`` from the training data (``dataset_csv``: two unit
    Gaussians 3 apart): 3.0 drifts and stays within the training range enough for the
    DriftMonitor's data-quality check (1.3% out of range at 300 rows; its limit is 5%)."""
    features = two_class_rows(rows, 11, shift=shift, gap=0.0, decimals=None)
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    logged = [
        {
            "ts": stamp,
            "request_id": f"r{i}",
            "model": model,
            "version": version,
            "features": {name: row[name] for name in FEATURES},
            "prediction": "yes",
        }
        for i, row in enumerate(features)
    ]
    key = batch_key(model, version, datetime.now(UTC))
    s3_client(s3).put_object(Bucket=bucket, Key=key, Body=encode_rows(logged))


def retrain_jobs(api: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    """The TrainingJobs the DriftMonitor started."""
    found = objs(api).list_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        TRAININGJOBS,
        label_selector=f"continuum.dev/drift-monitor={DM}",
    )
    return list(found["items"])


def wait_dm(ctx: Ctx, what: str, check: Any, timeout: float = 240) -> dict[str, Any]:
    """Wait until ``check(DriftMonitor)`` holds; dump the operator's and checks' logs if not."""

    def probe() -> dict[str, Any] | None:
        assert ctx.op.process is not None
        assert ctx.op.process.poll() is None, ctx.op.output()
        dm = get_dm(ctx.api, ctx.namespace)
        return dm if check(dm) else None

    try:
        return wait_until(what, probe, timeout, every=2)  # type: ignore[no-any-return]
    except BaseException:
        print(ctx.op.output())
        print(json.dumps(get_dm(ctx.api, ctx.namespace).get("status"), indent=1))
        print(pod_logs(ctx.api, ctx.namespace, "app.kubernetes.io/component=drift-check"))
        raise


def lineage(kubeconfig: Path, namespace: str) -> str:
    """What `continuum lineage churn` prints for the namespace."""
    command = [str(Path(sys.executable).with_name("continuum")), "lineage", "churn"]
    done = subprocess.run(
        [*command, "-n", namespace],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout


@pytest.fixture
def ctx(
    api: client.ApiClient,
    namespace: str,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
    operator: Operator,
) -> Ctx:
    """One run's world: the operator on a fresh namespace and bucket, the training CSV
    (tests/kit/datasets.py ``dataset_csv``) at datasets/churn.csv in the bucket."""
    data = upload(s3, s3_bucket, "datasets/churn.csv", dataset_csv())
    return Ctx(api, namespace, operator, s3, s3_bucket, s3_secret, data)
