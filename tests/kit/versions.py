"""The pins of hack/versions.env and the binaries hack/build-tools.sh built from them.

The shell scripts source the file; tests and benchmarks read it here, once per process.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

from tests.kit import REPO

VERSIONS_FILE = REPO / "hack/versions.env"


@functools.cache
def pins() -> dict[str, str]:
    """Every ``KEY=value`` line of hack/versions.env (comments and blank lines skipped)."""
    lines = VERSIONS_FILE.read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def pin(key: str) -> str:
    """One pinned version, e.g. ``pin("KUBE_VERSION")``."""
    return pins()[key]


def cached_tool(folder: str, binary: str) -> Path:
    """A binary in hack/build-tools.sh's version-keyed cache: ``$CONTINUUM_CACHE/<folder>/bin``."""
    cache = Path(os.environ.get("CONTINUUM_CACHE", "/var/cache/continuum"))
    return cache / folder / "bin" / binary


def kubectl() -> Path:
    """The kubectl built for the pinned Kubernetes (the cluster's own version)."""
    return cached_tool(f"kube-{pin('KUBE_VERSION')}", "kubectl")


def minio() -> Path:
    """The MinIO server built from the pinned commit."""
    return cached_tool(f"minio-{pin('MINIO_VERSION')}", "minio")


def helm_binary() -> str | None:
    """$CONTINUUM_HELM, the Helm that `make tools` builds, or `helm` on PATH."""
    if env := os.environ.get("CONTINUUM_HELM"):
        return env
    built = cached_tool(f"helm-v{pin('HELM_VERSION')}-k1.{pin('HELM_K8S_MINOR')}", "helm")
    return str(built) if built.exists() else shutil.which("helm")


def promtool_binary() -> str | None:
    """$CONTINUUM_PROMTOOL, the promtool that `make tools` builds, or `promtool` on PATH."""
    if env := os.environ.get("CONTINUUM_PROMTOOL"):
        return env
    built = cached_tool(f"prometheus-v{pin('PROMETHEUS_VERSION')}", "promtool")
    return str(built) if built.exists() else shutil.which("promtool")


def prometheus() -> Path:
    """The Prometheus server built from the pinned release (API only, no web UI)."""
    return cached_tool(f"prometheus-v{pin('PROMETHEUS_VERSION')}", "prometheus")


def argocd_folder() -> Path:
    """hack/build-tools.sh's Argo CD folder: ``bin/argocd`` and the Application/AppProject CRDs."""
    return cached_tool(f"argocd-v{pin('ARGOCD_VERSION')}", "argocd").parent.parent
