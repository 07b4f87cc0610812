"""TrainingJob end to end on the real cluster: operator, trainer Job, MinIO, status, Events.

The operator runs as a subprocess (`continuum operator --namespace <test namespace>`) under a
ServiceAccount bound to deploy/rbac/clusterrole.yaml, so these tests also prove that RBAC is
enough. Trainer Jobs run the project image in a namespace that enforces the restricted Pod
Security Standard.
"""

from __future__ import annotations

import csv
import io
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.cluster.conftest import pod_logs, wait_until
from tests.conftest import REPO, S3Settings, s3_client

GROUP, VERSION, PLURAL = "continuum.dev", "v1alpha1", "trainingjobs"
CLUSTER_ROLE = REPO / "deploy/rbac/clusterrole.yaml"
FEATURES = ("sepal", "petal", "width", "colour")
TERMINAL = {"Succeeded", "Failed"}
RUN_TIMEOUT = 300


@pytest.fixture(scope="session")
def crds(kubectl: list[str]) -> None:
    """The continuum.dev CRDs, applied from crds/ and established."""
    subprocess.run([*kubectl, "apply", "-f", str(REPO / "crds")], check=True, timeout=60)
    subprocess.run(
        [
            *kubectl,
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "-f",
            str(REPO / "crds"),
        ],
        check=True,
        timeout=90,
    )


@pytest.fixture(scope="session")
def operator_role(kubectl: list[str]) -> str:
    """The operator's ClusterRole, applied from deploy/rbac."""
    subprocess.run([*kubectl, "apply", "-f", str(CLUSTER_ROLE)], check=True, timeout=60)
    return str(yaml.safe_load(CLUSTER_ROLE.read_text())["metadata"]["name"])


def operator_kubeconfig(
    api: client.ApiClient, admin: Path, namespace: str, role: str, out: Path
) -> Path:
    """A kubeconfig for a ServiceAccount bound to ``role`` in ``namespace`` only."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "continuum-operator"}})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "continuum-operator"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": "continuum-operator", "namespace": namespace}
            ],
        },
    )
    request = {"spec": {"expirationSeconds": 3600}}
    token = core.create_namespaced_service_account_token(
        "continuum-operator", namespace, request
    ).status.token
    admin_config = yaml.safe_load(admin.read_text())
    cluster = admin_config["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [
            {"name": "operator", "context": {"cluster": cluster["name"], "user": "operator"}}
        ],
        "current-context": "operator",
    }
    out.write_text(yaml.safe_dump(config))
    out.chmod(0o600)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Operator:
    """`continuum operator` as a subprocess, with its log kept for failure reports."""

    def __init__(self, namespace: str, image: str, kubeconfig: Path, log: Path) -> None:
        self.args = [
            str(Path(sys.executable).with_name("continuum")), "operator",
            "--namespace", namespace, "--image", image,
            "--metrics-port", str(free_port()),
            "--liveness", f"http://127.0.0.1:{free_port()}/healthz",
        ]  # fmt: skip
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-20000:]


@pytest.fixture
def operator(
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    crds: None,
    operator_role: str,
    project_image: str,
    tmp_path: Path,
) -> Iterator[Operator]:
    """The operator watching the test namespace, with least-privilege credentials."""
    config = operator_kubeconfig(api, kubeconfig, namespace, operator_role, tmp_path / "kc")
    running = Operator(namespace, project_image, config, tmp_path / "operator.log")
    running.start()
    yield running
    running.stop()
    print(running.output())


def dataset_csv(rows: int = 240, seed: int = 7, drop: str | None = None) -> bytes:
    """A separable two-class dataset; ``drop`` leaves out one column."""
    rng = random.Random(seed)
    columns = [*FEATURES, "label"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[c for c in columns if c != drop])
    writer.writeheader()
    for i in range(rows):
        label = "yes" if i % 2 else "no"
        shift = 3.0 if label == "yes" else 0.0
        row: dict[str, Any] = {f: round(rng.gauss(shift, 1.0), 4) for f in FEATURES[:3]}
        row["colour"] = rng.choice(["red", "green", "blue"])
        row["label"] = label
        writer.writerow({k: v for k, v in row.items() if k != drop})
    return out.getvalue().encode()


def upload(s3: S3Settings, bucket: str, key: str, data: bytes) -> str:
    s3_client(s3).put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


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


def create(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> None:
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )


def get(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    objs = client.CustomObjectsApi(api)
    return dict(objs.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))


def finished(
    api: client.ApiClient, namespace: str, name: str, operator: Operator
) -> dict[str, Any]:
    """Wait for the TrainingJob to reach Succeeded or Failed; return it."""

    def check() -> dict[str, Any] | None:
        assert operator.process is None or operator.process.poll() is None, operator.output()
        tj = get(api, namespace, name)
        return tj if tj.get("status", {}).get("phase") in TERMINAL else None

    try:
        return wait_until(f"TrainingJob {name} to finish", check, RUN_TIMEOUT, every=2)  # type: ignore[no-any-return]
    except BaseException:
        print(operator.output())
        print(pod_logs(api, namespace, f"continuum.dev/training-job={name}"))
        raise


def conditions(tj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in tj["status"].get("conditions", [])}


def reasons(api: client.ApiClient, namespace: str, name: str) -> set[str]:
    events = client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    return {e.reason for e in events.items}


def test_training_jobs_succeed_with_increasing_versions(
    api: client.ApiClient,
    namespace: str,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
    operator: Operator,
) -> None:
    data = upload(s3, s3_bucket, "datasets/churn.csv", dataset_csv())
    create(api, namespace, training_job("churn-1", data, s3, s3_bucket, s3_secret))
    first = finished(api, namespace, "churn-1", operator)
    status = first["status"]
    assert status["phase"] == "Succeeded", status
    assert status["model"]["version"] == 1
    assert len(status["model"]["sha256"]) == 64
    assert status["model"]["uri"].startswith(f"s3://{s3_bucket}/models/churn/1")
    assert status["metrics"]["accuracy"] >= 0.6
    assert status["qualified"] is True
    assert status["dataset"]["rows"] == 240
    assert status["jobName"] == "churn-1-train"
    assert status["observedGeneration"] == first["metadata"]["generation"]
    cond = conditions(first)
    assert cond["Ready"]["status"] == "True"
    assert cond["Succeeded"]["status"] == "True"
    assert cond["Stalled"]["status"] == "False"
    assert cond["Reconciling"]["status"] == "False"
    assert cond["Qualified"]["status"] == "True"
    keys = s3_client(s3).list_objects_v2(Bucket=s3_bucket, Prefix="models/churn/1/")
    assert keys.get("KeyCount", 0) > 0

    job = client.BatchV1Api(api).read_namespaced_job("churn-1-train", namespace)
    owner = job.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("TrainingJob", "churn-1", True)
    assert job.metadata.labels["app.kubernetes.io/managed-by"] == "continuum"
    wait_until(
        "Events of churn-1",
        lambda: {"JobCreated", "Succeeded", "Qualified"} <= reasons(api, namespace, "churn-1"),
        30,
    )

    create(api, namespace, training_job("churn-2", data, s3, s3_bucket, s3_secret))
    second = finished(api, namespace, "churn-2", operator)
    assert second["status"]["phase"] == "Succeeded", second["status"]
    assert second["status"]["model"]["version"] == 2
    jobs = client.BatchV1Api(api).list_namespaced_job(namespace).items
    assert sorted(j.metadata.name for j in jobs) == ["churn-1-train", "churn-2-train"]


def test_missing_target_column_fails_naming_it(
    api: client.ApiClient,
    namespace: str,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
    operator: Operator,
) -> None:
    data = upload(s3, s3_bucket, "datasets/broken.csv", dataset_csv(drop="label"))
    create(api, namespace, training_job("broken", data, s3, s3_bucket, s3_secret))
    tj = finished(api, namespace, "broken", operator)
    status = tj["status"]
    assert status["phase"] == "Failed", status
    assert "label" in status["message"]
    stalled = conditions(tj)["Stalled"]
    assert stalled["status"] == "True"
    assert stalled["reason"] == "DatasetInvalid"
    assert "label" in stalled["message"]
    assert conditions(tj)["Ready"]["status"] == "False"
    assert "model" not in status
    secret = client.CoreV1Api(api).read_namespaced_secret(s3_secret, namespace)
    assert secret.data  # the credentials exist, and are nowhere in the status
    plain = str(tj)
    for value in secret.data.values():
        assert value not in plain
    assert s3.secret_key not in plain


def test_spec_is_immutable(
    api: client.ApiClient,
    namespace: str,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
    crds: None,
) -> None:
    body = training_job("frozen", f"s3://{s3_bucket}/none.csv", s3, s3_bucket, s3_secret)
    create(api, namespace, body)
    objs = client.CustomObjectsApi(api)
    with pytest.raises(client.ApiException) as rejected:
        objs.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "frozen", {"spec": {"backoffLimit": 3}}
        )
    assert rejected.value.status == 422
    assert "immutable" in str(rejected.value.body)


def test_deleting_the_training_job_collects_its_job(
    api: client.ApiClient,
    namespace: str,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
    operator: Operator,
) -> None:
    data = upload(s3, s3_bucket, "datasets/churn.csv", dataset_csv())
    create(api, namespace, training_job("gone", data, s3, s3_bucket, s3_secret))
    batch = client.BatchV1Api(api)
    names: Callable[[], list[str]] = lambda: [  # noqa: E731
        j.metadata.name for j in batch.list_namespaced_job(namespace).items
    ]
    wait_until("the training Job", lambda: names() == ["gone-train"], 60)
    client.CustomObjectsApi(api).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "gone"
    )
    wait_until("the Job to be garbage-collected", lambda: names() == [], 120)


def test_restarted_operator_keeps_exactly_one_job(
    api: client.ApiClient,
    namespace: str,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
    operator: Operator,
) -> None:
    data = upload(s3, s3_bucket, "datasets/churn.csv", dataset_csv())
    create(api, namespace, training_job("restart", data, s3, s3_bucket, s3_secret))
    batch = client.BatchV1Api(api)
    wait_until(
        "the training Job",
        lambda: batch.list_namespaced_job(namespace).items,
        60,
    )
    operator.stop(signal.SIGKILL)
    operator.start()
    tj = finished(api, namespace, "restart", operator)
    assert tj["status"]["phase"] == "Succeeded", tj["status"]
    assert conditions(tj)["Ready"]["status"] == "True"
    assert [j.metadata.name for j in batch.list_namespaced_job(namespace).items] == [
        "restart-train"
    ]
