"""GitOps through a real Argo CD: the health it reports for our three kinds (issue 20).

Argo CD v3.6 (the pinned build; tests/kit/argocd.py: Redis, repo-server and application
controller as host processes, our health checks from deploy/argocd/argocd-cm-health.yaml in its
argocd-cm) syncs a team's TrainingJob, ModelDeployment and DriftMonitor from a local git
repository (a ``file://`` URL) into the test namespace, where the operator reconciles them. The
test reads what Argo CD itself reports in the Application's ``status.resources[].health``:

- the TrainingJob Progressing while it trains, then Healthy;
- the ModelDeployment Healthy once version 1 serves;
- the DriftMonitor with a health of its own (Progressing or Healthy; never missing);
- a rollback, driven from Git: commit 2 pins version 1 and adds a second TrainingJob, whose
  model file is then corrupted; commit 3 returns to ``latestQualified``: the rollout of version
  2 misses its deadline, is rolled back to 1, and Argo CD shows the ModelDeployment Degraded.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.cluster.test_modeldeployment import tamper
from tests.kit import argocd
from tests.kit.cluster import wait_until
from tests.kit.kinds import (
    MD,
    Ctx,
    conditions,
    drift_monitor,
    get_md,
    get_tj,
    model_deployment,
    stop_serving,
)

APP = "team-models"
PATH = "models"


@pytest.fixture(scope="session")
def argocd_crds(kubeconfig: Path) -> None:
    argocd.install_crds(kubeconfig)


@pytest.fixture
def argo(
    api: client.ApiClient,
    kubeconfig: Path,
    make_namespace: Any,
    argocd_crds: None,
    tmp_path: Path,
) -> Iterator[argocd.ArgoCD]:
    namespace = make_namespace("argocd-test")
    argocd.settings(api, namespace)
    folder = tmp_path / "argocd"
    folder.mkdir()
    running = argocd.start(namespace, kubeconfig, folder)
    try:
        yield running
    finally:
        running.stop()
        print(running.logs())


class Repo:
    """A local git repository the Application reads through ``file://``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "team@example.com")
        self.git("config", "user.name", "team")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.path, check=True, capture_output=True, text=True, timeout=30
        )
        return done.stdout

    def commit(self, message: str, objects: dict[str, dict[str, Any]]) -> str:
        """Write each object to models/<file>.yaml, commit; the new revision."""
        (self.path / PATH).mkdir(exist_ok=True)
        for name, obj in objects.items():
            (self.path / PATH / f"{name}.yaml").write_text(yaml.safe_dump(obj, sort_keys=False))
        self.git("add", PATH)
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").strip()


class Timeline:
    """Every distinct health Argo CD reported for each resource, in order, with the time."""

    def __init__(self, api: client.ApiClient, argo: argocd.ArgoCD) -> None:
        self.api, self.argo = api, argo
        self.seen: dict[tuple[str, str], list[tuple[float, str, str]]] = {}
        self.t0 = time.monotonic()
        self.app: dict[str, Any] = {}

    def poll(self) -> dict[str, Any]:
        self.argo.check_running()
        self.app = argocd.get_app(self.api, self.argo.namespace, APP)
        for res in self.app.get("status", {}).get("resources", []):
            health = res.get("health") or {}
            key = (res["kind"], res["name"])
            entry = (
                round(time.monotonic() - self.t0, 1),
                health.get("status", ""),
                health.get("message", ""),
            )
            history = self.seen.setdefault(key, [])
            if not history or history[-1][1:] != entry[1:]:
                history.append(entry)
        return self.app

    def statuses(self, kind: str, name: str) -> list[str]:
        return [s for _, s, _ in self.seen.get((kind, name), [])]

    def wait(self, kind: str, name: str, status: str, timeout: float) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            health = argocd.resource_health(self.poll(), kind, name)
            return health if health and health.get("status") == status else None

        try:
            found = wait_until(f"Argo CD to report {kind} {name} {status}", check, timeout, 0.5)
        except BaseException:
            self.dump()
            raise
        return found  # type: ignore[no-any-return]

    def dump(self) -> None:
        print(json.dumps(self.app.get("status", {}), indent=1, default=str)[-6000:])
        for key, history in self.seen.items():
            print(key, history)


def team_objects(ctx: Ctx, trainings: list[str], **md_spec: Any) -> dict[str, dict[str, Any]]:
    """What the team keeps in Git: TrainingJobs, the ModelDeployment, the DriftMonitor."""
    objects = {f"trainingjob-{n}": ctx.training_job(n) for n in trainings}
    objects["modeldeployment"] = model_deployment(ctx.s3, ctx.bucket, ctx.secret, **md_spec)
    objects["driftmonitor"] = drift_monitor(ctx.training_job("retrain")["spec"])
    return objects


@pytest.mark.timeout(420)
def test_argocd_reports_training_rollout_and_rollback_health(
    ctx: Ctx, argo: argocd.ArgoCD, tmp_path: Path
) -> None:
    try:
        sync_and_read_health(ctx, argo, tmp_path)
    finally:
        argo.stop()  # first: its self-heal would recreate the ModelDeployment
        stop_serving(ctx)


def sync_and_read_health(ctx: Ctx, argo: argocd.ArgoCD, tmp_path: Path) -> None:
    api, namespace = ctx.api, ctx.namespace
    repo = Repo(tmp_path / "repo")
    first = repo.commit("churn: train and serve", team_objects(ctx, ["churn-1"]))
    app = argocd.application(APP, repo.path, PATH, namespace)
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        argocd.GROUP, argocd.VERSION, argo.namespace, "applications", app
    )
    timeline = Timeline(api, argo)

    # Training: Progressing (the run) -> Healthy (Succeeded), as Argo CD's Lua reports it.
    healthy = timeline.wait("TrainingJob", "churn-1", "Healthy", 240)
    assert "Progressing" in timeline.statuses("TrainingJob", "churn-1"), timeline.seen
    assert timeline.statuses("TrainingJob", "churn-1")[-1] == "Healthy"
    assert get_tj(api, namespace, "churn-1")["status"]["phase"] == "Succeeded", healthy
    status = timeline.app["status"]
    assert status["sync"]["revision"] == first, status["sync"]

    # Rollout: Healthy once version 1 serves.
    timeline.wait("ModelDeployment", MD, "Healthy", 180)
    md = get_md(api, namespace)
    assert md["status"]["servingVersion"] == 1, md["status"]
    assert conditions(md)["Ready"]["status"] == "True"

    # The DriftMonitor has a health from its own Lua check (not "missing" or empty).
    drift = argocd.resource_health(timeline.poll(), "DriftMonitor", "drift")
    assert drift is not None, timeline.app.get("status")
    assert drift.get("status") in {"Progressing", "Healthy"}, drift

    # Rollback, from Git: pin v1 and train v2; corrupt v2; return to latestQualified.
    second = repo.commit(
        "churn: train v2, pinned to v1",
        team_objects(ctx, ["churn-1", "churn-2"], version={"pinned": 1}),
    )
    argocd.refresh(api, argo.namespace, APP)
    timeline.wait("TrainingJob", "churn-2", "Healthy", 240)
    assert get_tj(api, namespace, "churn-2")["status"]["model"]["version"] == 2
    assert timeline.app["status"]["sync"]["revision"] == second
    tamper(ctx.s3, ctx.bucket, 2)
    repo.commit("churn: serve the latest qualified", team_objects(ctx, ["churn-1", "churn-2"]))
    argocd.refresh(api, argo.namespace, APP)
    degraded = timeline.wait("ModelDeployment", MD, "Degraded", 200)
    md = get_md(api, namespace)
    assert md["status"]["history"][-1]["outcome"] == "RolledBack", md["status"]
    assert md["status"]["servingVersion"] == 1
    assert "version 2" in degraded.get("message", ""), degraded
    statuses = timeline.statuses("ModelDeployment", MD)
    assert statuses[0] != "Degraded", timeline.seen
    assert statuses[-1] == "Degraded", timeline.seen
    drift = argocd.resource_health(timeline.app, "DriftMonitor", "drift")
    print("Argo CD health timeline:", json.dumps({str(k): v for k, v in timeline.seen.items()}))
    print("DriftMonitor at the end:", drift)
