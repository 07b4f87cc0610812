"""A real Argo CD (the pinned build of hack/build-tools.sh) as host processes of a test.

Redis, argocd-repo-server and argocd-application-controller run on this machine, Redis and the
repo-server on loopback ports; the controller talks to the API server through the admin
kubeconfig (``ARGOCD_FAKE_IN_CLUSTER``: the in-cluster destination
``https://kubernetes.default.svc`` is that kubeconfig's cluster). Its only listener, the metrics
port, binds 0.0.0.0 (hard-coded in controller/appcontroller.go), on a free port. There is no
argocd-server: nothing here needs the UI or the API; Applications are plain objects.

The controller's namespace holds what it reads at start: argocd-cm (with the health checks of
deploy/argocd/argocd-cm-health.yaml, the same data users patch in), argocd-rbac-cm,
argocd-secret and the ``default`` AppProject (argocd-server creates it in a real install).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.kit import REPO
from tests.kit.cluster import free_port
from tests.kit.versions import argocd_folder, kubectl

GROUP, VERSION = "argoproj.io", "v1alpha1"
HEALTH = REPO / "deploy/argocd/argocd-cm-health.yaml"
PART_OF = {"app.kubernetes.io/part-of": "argocd"}  # the label Argo CD's settings informer selects
IN_CLUSTER = "https://kubernetes.default.svc"
# Git is re-read every 10 s (default 180 s); the tests also ask for a refresh after a commit.
RECONCILIATION = "10s"


def binary() -> Path:
    found = argocd_folder() / "bin/argocd"
    if not found.exists():
        pytest.fail(f"no Argo CD at {found}: run `make tools` (hack/build-tools.sh argocd)")
    return found


def install_crds(kubeconfig: Path) -> None:
    """Argo CD's Application and AppProject CRDs of the pinned release (server-side: the
    Application CRD is 416 kB, over the client-side apply annotation's 256 kB)."""
    folder = argocd_folder()
    files = [folder / "application-crd.yaml", folder / "appproject-crd.yaml"]
    base = [str(kubectl()), "--kubeconfig", str(kubeconfig)]
    apply = [*base, "apply", "--server-side", "--force-conflicts"]
    apply += ["--field-manager", "continuum-tests", *(f"--filename={f}" for f in files)]
    crds = ["crd/applications.argoproj.io", "crd/appprojects.argoproj.io"]
    wait = [*base, "wait", "--for=condition=Established", *crds, "--timeout=20s"]
    _kubectl_or_fail(apply, "apply")
    # kubectl wait fails at once ("status.conditions accessor error") while a new CRD has no
    # status yet, instead of waiting: asked again until Established, for 120 s at most.
    deadline = time.monotonic() + 120
    while (done := _kubectl(wait)).returncode != 0 and time.monotonic() < deadline:
        time.sleep(1)
    if done.returncode != 0:
        pytest.fail(f"Argo CD's CRDs not Established in 120 s:\n{done.stderr}")


def _kubectl(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=150, check=False)


def _kubectl_or_fail(args: list[str], what: str) -> None:
    done = _kubectl(args)
    if done.returncode != 0:
        pytest.fail(f"kubectl {what} of Argo CD's CRDs failed:\n{done.stderr}")


def settings(api: client.ApiClient, namespace: str) -> None:
    """argocd-cm with our health checks, argocd-rbac-cm, argocd-secret, the default project."""
    core = client.CoreV1Api(api)
    health = yaml.safe_load(HEALTH.read_text())["data"]
    cm = {**health, "timeout.reconciliation": RECONCILIATION}
    for name, data in (("argocd-cm", cm), ("argocd-rbac-cm", {})):
        meta = client.V1ObjectMeta(name=name, labels=PART_OF)
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=meta, data=data))
    meta = client.V1ObjectMeta(name="argocd-secret", labels=PART_OF)
    key = {"server.secretkey": secrets.token_urlsafe(32)}
    core.create_namespaced_secret(namespace, client.V1Secret(metadata=meta, string_data=key))
    project = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AppProject",
        "metadata": {"name": "default"},
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
        },
    }
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "appprojects", project)


@dataclass
class ArgoCD:
    """Redis, the repo-server and the application controller, running; their logs in folder."""

    namespace: str
    folder: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        """Start one component; Argo CD's components are one binary chosen by argv[0]."""
        process = subprocess.Popen(
            args,
            executable=args[0] if name == "redis" else str(binary()),
            stdout=self.log(name).open("wb"),
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            cwd=self.folder,
        )
        self.processes[name] = process

    def check_running(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited {process.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, chars: int = 3000) -> str:
        path = self.log(name)
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.tail(name)}" for name in self.processes)

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def start(namespace: str, kubeconfig: Path, folder: Path) -> ArgoCD:
    """Redis, the repo-server and the controller for ``namespace``; fails the test with their
    logs if one exits or the repo-server does not listen within 60 s."""
    redis_port, repo_port = free_port(), free_port()
    work = folder / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    wrapper = argocd_folder() / "bin/git-verify-wrapper.sh"
    if not wrapper.exists():
        pytest.fail(f"no {wrapper}: the repo-server needs it on PATH; run `make tools`")
    env = {
        "PATH": f"{wrapper.parent}:{os.environ.get('PATH', '')}",
        "TMPDIR": str(work),  # the repo-server's checkouts
        "HOME": str(folder),
        "KUBECONFIG": str(kubeconfig),
        "ARGOCD_FAKE_IN_CLUSTER": "true",
        "ARGOCD_GPG_ENABLED": "false",
    }
    argo = ArgoCD(namespace, folder)
    redis = ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", ""]
    argo.start("redis", [*redis, "--appendonly", "no", "--dir", str(folder)], env)
    argo.start(
        "repo-server",
        ["argocd-repo-server", "--address", "127.0.0.1", "--port", str(repo_port),
         "--metrics-address", "127.0.0.1", "--metrics-port", str(free_port()), "--disable-tls",
         "--client-ca-path=",
         "--redis", f"127.0.0.1:{redis_port}", "--loglevel", "info"],
        env,
    )  # fmt: skip
    wait_listening(argo, "repo-server", repo_port)
    argo.start(
        "application-controller",
        ["argocd-application-controller", "--kubeconfig", str(kubeconfig),
         "--namespace", namespace, "--repo-server", f"127.0.0.1:{repo_port}",
         "--repo-server-plaintext", "--redis", f"127.0.0.1:{redis_port}",
         "--metrics-port", str(free_port()), "--app-resync", "10", "--app-resync-jitter", "0",
         "--status-processors", "2", "--operation-processors", "2", "--loglevel", "info",
         # each resource's health in the Application's status.resources (v3 keeps it only in
         # the resource tree in Redis by default, which the API server, not run here, serves)
         "--persist-resource-health"],
        env,
    )  # fmt: skip
    return argo


def wait_listening(argo: ArgoCD, name: str, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        argo.check_running()
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    argo.stop()
    pytest.fail(f"{name} not listening on 127.0.0.1:{port} in {timeout:.0f} s:\n{argo.logs()}")


def application(name: str, repo: Path, path: str, destination: str) -> dict[str, Any]:
    """An Application syncing ``path`` of the git repository at ``repo`` (a ``file://`` URL),
    automated with prune and self-heal, as deploy/argocd/team-models.yaml does."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Application",
        "metadata": {"name": name},
        "spec": {
            "project": "default",
            "source": {"repoURL": f"file://{repo}", "targetRevision": "HEAD", "path": path},
            "destination": {"server": IN_CLUSTER, "namespace": destination},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    }


def get_app(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api)
    return dict(
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "applications", name)
    )


def refresh(api: client.ApiClient, namespace: str, name: str) -> None:
    """Ask the controller to re-read Git now (what `argocd app get --refresh` does)."""
    patch = {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}}
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "applications", name, patch
    )


def resource_health(app: dict[str, Any], kind: str, name: str) -> dict[str, Any] | None:
    """The health Argo CD reports for one resource of the Application (status.resources[])."""
    for res in app.get("status", {}).get("resources", []):
        if res.get("kind") == kind and res.get("name") == name:
            return dict(res.get("health") or {})
    return None
