"""The cluster tier: every test here is marked ``cluster``.

Its fixtures (a client for the real API server, a fresh namespace per test, MinIO, the
operator) come from tests/kit/cluster.py, which tests/conftest.py registers as a plugin.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.kit.cluster import RESTRICTED
from tests.kit.helm import Helm, helm_runner

ALONE = ("chaos", "load", "faults")  # they stop, slow or time what every test shares


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)
        if any(item.get_closest_marker(name) for name in ALONE):
            item.add_marker(pytest.mark.serial)


@pytest.fixture(scope="session")
def helm(kubeconfig: Path) -> Helm:
    """Run helm against the local cluster; fail with helm's stderr."""
    return helm_runner(kubeconfig)


@pytest.fixture
def make_namespace(api: client.ApiClient) -> Iterator[Callable[[str], str]]:
    """Create extra namespaces (restricted Pod Security); all deleted after the test."""
    core = client.CoreV1Api(api)
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        meta = client.V1ObjectMeta(name=name, labels=RESTRICTED)
        core.create_namespace(client.V1Namespace(metadata=meta))
        made.append(name)
        return name

    yield make
    for name in made:
        core.delete_namespace(name, propagation_policy="Background")
