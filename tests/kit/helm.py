"""The chart as the cluster tests install it: a helm runner and one release of the chart."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.kit import REPO
from tests.kit.cluster import metrics_text, operator_log, operator_pods
from tests.kit.versions import helm_binary

CHART = REPO / "charts/continuum"
Helm = Callable[..., Any]


def helm_runner(kubeconfig: Path) -> Helm:
    """Run helm against the local cluster; with ``check`` (the default) fail with its output."""
    binary = helm_binary()
    if binary is None:
        pytest.fail("no helm binary: run `make tools` (or set CONTINUUM_HELM)")

    def run(*args: str, check: bool = True, timeout: float = 300) -> Any:
        result = subprocess.run(
            [binary, "--kubeconfig", str(kubeconfig), *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            pytest.fail(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    return run


@dataclass
class Release:
    """One installation of the chart, with the namespaces it involves."""

    api: client.ApiClient
    helm: Helm
    name: str
    system: str  # the release's namespace: the operator pod runs here
    team: str  # the watched namespace

    @property
    def fullname(self) -> str:
        return f"{self.name}-continuum"

    @property
    def who(self) -> str:
        return f"system:serviceaccount:{self.system}:{self.fullname}"

    def install(self, *args: str) -> str:
        return str(
            self.helm(
                "install", self.name, str(CHART), "--namespace", self.system,
                "--wait", "--timeout", "180s", *args,
            ).stdout
        )  # fmt: skip

    def install_watching_team(self, *sets: str) -> str:
        """Install in namespaced mode watching ``team``, adopting the CRDs other tests applied
        (``--take-ownership``, ``crds.keep=true``: never deletes them); ``sets``: more values."""
        values = ",".join(("crds.enabled=true", "crds.keep=true", *sets))
        return self.install(
            "--take-ownership",
            "--set", f"watchNamespaces={{{self.team}}}",
            "--set", values,
        )  # fmt: skip

    def upgrade(self, *args: str) -> str:
        return str(
            self.helm(
                "upgrade", self.name, str(CHART), "--namespace", self.system,
                "--reuse-values", "--wait", "--timeout", "180s", *args,
            ).stdout
        )  # fmt: skip

    def uninstall(self, *args: str, check: bool = True) -> str:
        result = self.helm("uninstall", self.name, "--namespace", self.system, *args, check=check)
        return str(result.stdout) + str(result.stderr)

    def pods(self) -> list[dict[str, Any]]:
        return operator_pods(self.api, self.system, self.name)

    def log(self) -> str:
        return operator_log(self.api, self.system, self.name)

    def metrics(self) -> str:
        return metrics_text(self.api, self.system, f"{self.fullname}-metrics")
