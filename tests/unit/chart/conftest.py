"""Helpers for the chart tests: render charts/continuum with the Helm binary (no cluster)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kit import REPO
from tests.kit.versions import helm_binary, pin

CHART = REPO / "charts/continuum"
KUBE_VERSION = pin("KUBE_VERSION")  # the cluster's, which the chart is tested against
Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]


@pytest.fixture(scope="session")
def helm() -> str:
    found = helm_binary()
    if found is None:
        pytest.fail("no helm binary: run `make tools`, put helm on PATH or set CONTINUUM_HELM")
    return found


def run_helm(helm: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    # No kubeconfig: `helm template` and `helm lint` never contact a cluster.
    env = {**os.environ, "KUBECONFIG": os.devnull}
    result = subprocess.run(
        [helm, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result


@pytest.fixture
def render(helm: str, tmp_path: Path) -> Render:
    """``render(values={...}, *extra_args)``: the manifests `helm template` prints."""

    def _render(*extra: str, values: dict[str, Any] | None = None) -> list[Manifest]:
        args = ["template", "rel", str(CHART), "--namespace", "ops"]
        args += ["--kube-version", KUBE_VERSION, *extra]
        if values is not None:
            file = tmp_path / "values.yaml"
            file.write_text(yaml.safe_dump(values))
            args += ["--values", str(file)]
        out = run_helm(helm, *args).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]

    return _render


@pytest.fixture
def render_error(helm: str, tmp_path: Path) -> Callable[..., str]:
    """``render_error(values={...})``: stderr of a `helm template` that must fail."""

    def _render_error(*extra: str, values: dict[str, Any] | None = None) -> str:
        args = ["template", "rel", str(CHART), "--namespace", "ops"]
        args += ["--kube-version", KUBE_VERSION, *extra]
        if values is not None:
            file = tmp_path / "values.yaml"
            file.write_text(yaml.safe_dump(values))
            args += ["--values", str(file)]
        result = run_helm(helm, *args, check=False)
        assert result.returncode != 0, f"helm template accepted {values} {extra}"
        return result.stderr

    return _render_error


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[Manifest], kind: str) -> Manifest:
    found = by_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, got {[m['metadata']['name'] for m in found]}"
    return found[0]
