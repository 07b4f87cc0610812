"""The real local cluster and the real MinIO behind it: fixtures and the helpers around them.

A pytest plugin (tests/conftest.py registers it), so the cluster tier (tests/cluster, tests/e2e)
gets these fixtures without importing them. The fixtures start the cluster with
`hack/cluster-up.sh` when it is not already up and leave it running for the next run
(`make cluster-down` stops it). Nothing here fakes the Kubernetes API or S3; our three kinds on
this cluster are in tests/kit/kinds.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from kubernetes import client, config

from continuum import storage
from tests.kit import REPO, versions

STATE_DIR = Path(os.environ.get("CONTINUUM_STATE", "/var/lib/continuum-cluster"))
KUBECONFIG = Path(os.environ.get("CONTINUUM_KUBECONFIG", STATE_DIR / "kubeconfig"))
CLUSTER_ROLE = REPO / "deploy/rbac/clusterrole.yaml"
CONTAINERD_SOCK = "/run/continuum/containerd/containerd.sock"
IMAGE = "continuum:0.1.0"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}

# ---------------------------------------------------------------------------- the cluster

SETUP_LOCK = Path(os.environ.get("CONTINUUM_SETUP_LOCK", "/tmp/continuum-test-setup.lock"))


@contextlib.contextmanager
def one_at_a_time() -> Iterator[None]:
    """Hold the setup lock: under pytest-xdist every worker runs the session fixtures, and
    two of them must not start the cluster or build the image at once (the second finds
    the work done: hack/image.sh skips the load of an unchanged image)."""
    with SETUP_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cluster_is_up() -> bool:
    if not KUBECONFIG.exists():
        return False
    probe = subprocess.run(
        [str(versions.kubectl()), "--kubeconfig", str(KUBECONFIG), "get", "--raw", "/readyz"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0 and (STATE_DIR / "s3.env").exists()


@pytest.fixture(scope="session")
def kubeconfig() -> Path:
    """The admin kubeconfig of the running local cluster (started here if needed)."""
    with one_at_a_time():
        if not _cluster_is_up():
            if os.geteuid() != 0:
                pytest.fail(
                    "the local cluster is down and starting it needs root: "
                    "run `sudo make cluster-up`"
                )
            subprocess.run([str(REPO / "hack/cluster-up.sh")], check=True)
    return KUBECONFIG


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> list[str]:
    """argv prefix for kubectl against the local cluster."""
    return [str(versions.kubectl()), "--kubeconfig", str(kubeconfig)]


@pytest.fixture(scope="session")
def api(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace that enforces the restricted Pod Security Standard."""
    core = client.CoreV1Api(api)
    name = f"t-{uuid.uuid4().hex[:10]}"
    body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=RESTRICTED))
    core.create_namespace(body)
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="session")
def project_image(kubeconfig: Path) -> str:
    """The project image, built offline and loaded into the cluster's containerd."""
    with one_at_a_time():
        subprocess.run([str(REPO / "hack/image.sh")], check=True)
    return "continuum:" + _project_version()


def _project_version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


@pytest.fixture(scope="session")
def loaded_image(kubectl: list[str]) -> str:
    """The project image, already in the cluster's containerd (built by hack/image.sh).

    Modules that must not rebuild the image take it as their ``project_image``:
    ``from tests.kit.cluster import loaded_image as project_image``.
    """

    def present() -> bool:
        listed = subprocess.run(
            ["ctr", "--address", CONTAINERD_SOCK, "-n", "k8s.io", "images", "ls", "-q"],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        return f"library/{IMAGE}" in listed.stdout

    wait_until(f"image {IMAGE} in the cluster", present, 900, every=10)
    return IMAGE


@pytest.fixture(scope="session")
def crds(kubectl: list[str]) -> None:
    """The continuum.dev CRDs, applied from crds/ and established."""
    with one_at_a_time():
        _apply_crds(kubectl)


def _apply_crds(kubectl: list[str]) -> None:
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


# ---------------------------------------------------------------------------- MinIO


@dataclass(frozen=True)
class S3Settings:
    """Where the test MinIO listens and how to sign requests to it."""

    endpoint_url: str
    in_cluster_endpoint_url: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"


@pytest.fixture(scope="session")
def s3(kubeconfig: Path) -> S3Settings:
    """The real MinIO that cluster-up started (credentials from its s3.env)."""
    env = dict(
        line.split("=", 1)
        for line in (STATE_DIR / "s3.env").read_text().splitlines()
        if "=" in line
    )
    return S3Settings(
        endpoint_url=env["S3_ENDPOINT"],
        in_cluster_endpoint_url=env["S3_ENDPOINT_IN_CLUSTER"],
        access_key=env["AWS_ACCESS_KEY_ID"],
        secret_key=env["AWS_SECRET_ACCESS_KEY"],
        region=env.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


def s3_client(s3: S3Settings) -> Any:
    """A boto3 S3 client for the test MinIO."""
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name=s3.region,
    )


@pytest.fixture
def s3_bucket(s3: S3Settings) -> Iterator[str]:
    """A fresh, empty bucket, emptied and removed after the test."""
    client = s3_client(s3)
    name = f"test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield name
    remove_bucket(client, name)


def remove_bucket(client: Any, name: str, timeout: float = 120) -> None:
    """Empty the bucket and remove it. The test's pods may still be writing to it (a model
    server flushing its inference log while its namespace goes away: a CI teardown failed
    with BucketNotEmpty on 2026-12-06), so an object that arrives in between is removed too,
    until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=obj["Key"])
        try:
            client.delete_bucket(Bucket=name)
            return
        except client.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code != "BucketNotEmpty" or time.monotonic() > deadline:
                raise
        time.sleep(1)


@pytest.fixture
def s3_secret(api: client.ApiClient, namespace: str) -> str:
    """The MinIO credentials copied into the test namespace as a Secret."""
    core = client.CoreV1Api(api)
    src = core.read_namespaced_secret("minio-credentials", "continuum-system")
    copy = client.V1Secret(metadata=client.V1ObjectMeta(name="s3-credentials"), data=src.data)
    core.create_namespaced_secret(namespace, copy)
    return "s3-credentials"


def monitor_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, s3: S3Settings, bucket: str,
    *, monitor: str, model: str, version: int, spec: dict[str, Any],
) -> Path:  # fmt: skip
    """The environment a drift-check Job's pod gets, set for an in-process ``run_monitor``
    against the real MinIO; returns the termination-log path the check writes its outcome to."""
    log = tmp_path / "termination-log"
    for name, value in {
        "CONTINUUM_MONITOR": monitor,
        "CONTINUUM_MODEL": model,
        "CONTINUUM_MODEL_VERSION": str(version),
        "CONTINUUM_MONITOR_SPEC": json.dumps(spec),
        "CONTINUUM_S3_ENDPOINT": s3.endpoint_url,
        "CONTINUUM_S3_BUCKET": bucket,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_REGION": s3.region,
        "CONTINUUM_TERMINATION_LOG": str(log),
    }.items():
        monkeypatch.setenv(name, value)
    return log


def upload(s3: S3Settings, bucket: str, key: str, data: bytes) -> str:
    """Put ``data`` at ``key``; its s3:// URI."""
    s3_client(s3).put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def store_settings(s3: S3Settings, bucket: str, **overrides: Any) -> storage.S3Settings:
    """continuum.storage's settings for ``bucket`` on the test MinIO (``overrides`` win)."""
    values = {
        "bucket": bucket,
        "endpoint_url": s3.endpoint_url,
        "region": s3.region,
        "access_key": s3.access_key,
        "secret_key": s3.secret_key,
    }
    return storage.S3Settings(**(values | overrides))


def object_store(s3: S3Settings, bucket: str) -> storage.ObjectStore:
    """continuum.storage's client of ``bucket`` on the test MinIO."""
    return storage.ObjectStore(store_settings(s3, bucket))


# ---------------------------------------------------------------------------- pods and Jobs


def wait_until(what: str, check: Callable[[], Any], timeout: float = 180, every: float = 1) -> Any:
    """Poll `check` until it returns a truthy value; fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def restricted_container(name: str, image: str, command: list[str], **extra: Any) -> dict[str, Any]:
    """A container spec that passes the restricted Pod Security Standard."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        **extra,
    }


def pod_logs(api: client.ApiClient, namespace: str, selector: str) -> str:
    core = client.CoreV1Api(api)
    out = []
    for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
        try:
            # An empty log comes back as None from this client.
            out.append(core.read_namespaced_pod_log(pod.metadata.name, namespace) or "")
        except client.ApiException as err:
            out.append(f"<no log for {pod.metadata.name}: {err.reason}>")
    return "\n".join(out)


def job_body(name: str, container: dict[str, Any], **pod_extra: Any) -> dict[str, Any]:
    """A Job of one container that runs once (no retry, no restart)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [container], **pod_extra}
            },
        },
    }


def start_job(
    api: client.ApiClient, namespace: str, name: str, container: dict[str, Any], **pod_extra: Any
) -> None:
    """Create ``job_body(...)`` and return at once."""
    body = job_body(name, container, **pod_extra)
    client.BatchV1Api(api).create_namespaced_job(namespace, body)


def run_job(
    api: client.ApiClient,
    namespace: str,
    name: str,
    container: dict[str, Any],
    timeout: float = 240,
    **pod_extra: Any,
) -> client.V1Job:
    """Create a Job with one container and wait until it succeeds or fails."""
    start_job(api, namespace, name, container, **pod_extra)
    batch = client.BatchV1Api(api)

    def finished() -> client.V1Job | None:
        status = batch.read_namespaced_job(name, namespace)
        return status if (status.status.succeeded or status.status.failed) else None

    done = wait_until(f"Job {namespace}/{name} to finish", finished, timeout)
    assert done.status.succeeded == 1, pod_logs(api, namespace, f"job-name={name}")
    return done


def event_reasons(
    api: client.ApiClient, namespace: str, name: str, kind: str | None = None
) -> list[str]:
    """The reasons of the Events about object ``name`` (of ``kind``, when given), oldest first."""
    selector = f"involvedObject.name={name}" + (f",involvedObject.kind={kind}" if kind else "")
    events = client.CoreV1Api(api).list_namespaced_event(namespace, field_selector=selector)
    return [e.reason for e in events.items]


def plain(api: client.ApiClient, obj: Any) -> dict[str, Any]:
    """A client model object as its JSON dict (camelCase keys, None fields left out)."""
    return dict(api.sanitize_for_serialization(obj))  # type: ignore[no-untyped-call]


# ---------------------------------------------------------------------------- the operator


@pytest.fixture(scope="session")
def operator_role(kubectl: list[str]) -> str:
    """The operator's ClusterRole, applied from deploy/rbac."""
    with one_at_a_time():
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


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on at ``host`` now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
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


def operator_pods(api: client.ApiClient, namespace: str, release: str) -> list[dict[str, Any]]:
    """The operator pods of a Helm release that are not terminating, as dicts."""
    selector = f"app.kubernetes.io/name=continuum,app.kubernetes.io/instance={release}"
    found = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector)
    pods = plain(api, found)["items"]
    return [p for p in pods if "deletionTimestamp" not in p["metadata"]]


def operator_log(api: client.ApiClient, namespace: str, release: str) -> str:
    """The last 20000 characters of each operator pod's log of a Helm release."""
    out = []
    for pod in operator_pods(api, namespace, release):
        name = pod["metadata"]["name"]
        try:
            log = str(client.CoreV1Api(api).read_namespaced_pod_log(name, namespace))
        except client.ApiException as err:
            log = f"<no log: {err.reason}>"
        out.append(f"--- {name}\n{log[-20000:]}")
    return "\n".join(out)


def pod_metrics(api: client.ApiClient, pod: dict[str, Any]) -> str:
    """GET /metrics of one operator pod through the API server's pod proxy ('' if not up)."""
    [container] = pod["spec"]["containers"]
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
    meta = pod["metadata"]
    try:
        return str(client.CoreV1Api(api).connect_get_namespaced_pod_proxy_with_path(
            f"{meta['name']}:{port}", meta["namespace"], "metrics"))  # fmt: skip
    except client.ApiException:
        return ""


def metrics_text(api: client.ApiClient, namespace: str, service: str) -> str:
    """GET /metrics through the API server's service proxy (port name `metrics`)."""
    core = client.CoreV1Api(api)
    return str(
        core.connect_get_namespaced_service_proxy_with_path(
            f"{service}:metrics", namespace, "metrics"
        )
    )
