"""Cluster-tier fixtures: a client for the real API server and a fresh namespace per test."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)


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


@pytest.fixture
def s3_secret(api: client.ApiClient, namespace: str) -> str:
    """The MinIO credentials copied into the test namespace as a Secret."""
    core = client.CoreV1Api(api)
    src = core.read_namespaced_secret("minio-credentials", "continuum-system")
    copy = client.V1Secret(metadata=client.V1ObjectMeta(name="s3-credentials"), data=src.data)
    core.create_namespaced_secret(namespace, copy)
    return "s3-credentials"


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


def run_job(
    api: client.ApiClient,
    namespace: str,
    name: str,
    container: dict[str, Any],
    timeout: float = 240,
    **pod_extra: Any,
) -> client.V1Job:
    """Create a Job with one container and wait until it succeeds or fails."""
    batch = client.BatchV1Api(api)
    job = {
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
    batch.create_namespaced_job(namespace, job)

    def finished() -> client.V1Job | None:
        status = batch.read_namespaced_job(name, namespace)
        return status if (status.status.succeeded or status.status.failed) else None

    done = wait_until(f"Job {namespace}/{name} to finish", finished, timeout)
    assert done.status.succeeded == 1, pod_logs(api, namespace, f"job-name={name}")
    return done
