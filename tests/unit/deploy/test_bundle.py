"""deploy/continuum.yaml and deploy/argocd/argocd-cm-health.yaml are what hack/render-bundle.sh
renders now (re-run it after changing the chart or a health check), and the bundle is the
cluster-wide operator for continuum-system without CRDs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kit.versions import helm_binary
from tests.unit.deploy.health import REPO

SCRIPT = REPO / "hack/render-bundle.sh"
OUTPUTS = ("deploy/continuum.yaml", "deploy/argocd/argocd-cm-health.yaml")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    helm = helm_binary()
    if helm is None:
        pytest.fail("no helm binary: run `make tools`, put helm on PATH or set CONTINUUM_HELM")
    out = tmp_path_factory.mktemp("render")
    env = {**os.environ, "CONTINUUM_HELM": helm}
    result = subprocess.run(
        [str(SCRIPT), str(out)], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("path", OUTPUTS)
def test_committed_output_is_fresh(rendered: Path, path: str) -> None:
    fresh = (rendered / path).read_text()
    assert (REPO / path).read_text() == fresh, f"{path} is stale: run hack/render-bundle.sh"


def docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((REPO / "deploy/continuum.yaml").read_text()) if d]


def test_bundle_is_the_cluster_wide_operator_without_crds() -> None:
    objects = docs()
    assert [d["kind"] for d in objects] == [
        "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
        "Role", "RoleBinding",  # leader election, in continuum-system
        "Service", "Deployment",
    ]  # fmt: skip
    namespace = objects[0]
    assert namespace["metadata"]["name"] == "continuum-system"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in objects[1:]:
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == "continuum-system", obj["kind"]
    (deployment,) = [d for d in objects if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 1
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert not [a for a in container["args"] if a.startswith("--namespace")]  # all namespaces
    (binding,) = [d for d in objects if d["kind"] == "ClusterRoleBinding"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "continuum", "namespace": "continuum-system"}
    ]


def test_bundle_grants_the_rules_of_deploy_rbac() -> None:
    (role,) = [d for d in docs() if d["kind"] == "ClusterRole"]
    source = yaml.safe_load((REPO / "deploy/rbac/clusterrole.yaml").read_text())
    assert role["rules"] == source["rules"]
