"""Operator high availability on the real cluster: the chart with two replicas, one leader.

Both operator pods run ``continuum operator --leader-elect`` in-cluster, under the chart's
ServiceAccount and its leader-election Role. The test proves, in order:

- exactly one pod holds the Lease, says so in ``continuum_operator_is_leader``, and does the
  work (a TrainingJob gets exactly one Job);
- the leader's process SIGKILLed (a crash, an OOM kill: no chance to release the Lease), the
  standby takes the Lease once it expires — within lease duration plus two retry periods — and
  reconciles a TrainingJob created meanwhile; nothing is done twice;
- the new leader's pod deleted (a drain, a rolling update: SIGTERM), it releases the Lease and
  the other pod takes over within a few retry periods.

The takeover times are printed. Like test_helm.py, the release adopts the CRDs that other tests
applied (``--take-ownership``, ``crds.keep=true``) and runs in namespaced mode only.

``test_repeated_leader_kills_during_a_workload`` (chaos) then kills the leader
``CONTINUUM_HA_KILLS`` times (3 in ``make test``, 10 in ``make test-chaos``) while TrainingJobs
of model ``ha-w`` are being created, ``HA_ACTIVE`` in flight at a time, and a ModelDeployment
promotes ``churn-1`` and a DriftMonitor on it, fed drifted inference logs, retrains (once: its
cooldown; its gate cannot be met). Each kill at a seeded moment (``CONTINUUM_HA_SEED`` replays
the schedule) 8-20 s after the last takeover, each takeover measured from the SIGKILL to a new
identity holding the Lease. When the kills are done the workload stops and everything must
converge: exactly one Job per TrainingJob, ``ha-w``'s versions 1..N once each, churn-1
promoted once, exactly one retraining TrainingJob, no other TrainingJob, and no status flapping
(every TrainingJob's phase, sampled every second, only moves forward; its version, once set,
never changes).
"""

from __future__ import annotations

import os
import random
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client

from tests.kit.cluster import (
    CONTAINERD_SOCK,
    S3Settings,
    plain,
    pod_metrics,
    upload,
    wait_until,
)
from tests.kit.datasets import dataset_csv
from tests.kit.helm import Release
from tests.kit.kinds import (
    DM,
    DRIFTMONITORS,
    GROUP,
    MD,
    MODELDEPLOYMENTS,
    TERMINAL,
    TRAININGJOBS,
    VERSION,
    conditions,
    create_tj,
    drift_monitor,
    get_tj,
    model_deployment,
    retrain_jobs,
    training_job,
    write_inference_log,
)

pytestmark = pytest.mark.serial  # Lease takeover times, and kills

LEASE_DURATION, RETRY_PERIOD = 15, 2  # the chart's leaderElection defaults
# A standby polls every retry period and may take a Lease once leaseDuration has passed since
# the last renewal it saw: lease duration + 2 retry periods, plus the kubelet's restart noise.
CRASH_TAKEOVER_LIMIT = LEASE_DURATION + 2 * RETRY_PERIOD + 6
# On SIGTERM the leader releases the Lease; a standby sees it free at its next poll.
HANDOVER_LIMIT = 4 * RETRY_PERIOD + 4
TRAIN_TIMEOUT = 300
HA_KILLS = int(os.environ.get("CONTINUUM_HA_KILLS", "3"))
HA_ACTIVE = 3  # TrainingJobs in flight during the kills (what 2 cores train at once)
STANDBY_TIMEOUT = 180.0  # for the killed replica's restart (crash-loop backoff included)
KILL_GAP = (8.0, 20.0)  # seconds from one takeover to the next kill, drawn from the seed
SETTLE_TIMEOUT = 420.0  # after the last kill, for the TrainingJobs in flight to finish
TRAINER_REQUESTS = {"cpu": "50m", "memory": "128Mi"}
SERVER_REQUESTS = {"cpu": "50m", "memory": "128Mi"}
SHIFTED_ROWS, SHIFT = 300, 3.0  # drifted, within the data-quality check (write_inference_log)
CHURN = "churn-1"  # the version the ModelDeployment promotes and the DriftMonitor watches
RANK = {None: 0, "Pending": 1, "Running": 2, "Succeeded": 3, "Failed": 3}


def lease_holder(release: Release) -> str:
    """The Lease's holderIdentity ('' when free or absent)."""
    coordination = client.CoordinationV1Api(release.api)
    try:
        lease = coordination.read_namespaced_lease(f"{release.fullname}-operator", release.system)
    except client.ApiException as exc:
        if exc.status == 404:
            return ""
        raise
    return str(plain(release.api, lease)["spec"].get("holderIdentity", ""))


def leader_pod(release: Release, other_than: str = "") -> dict[str, Any] | None:
    """The running operator pod whose name the Lease holder carries (identity: pod_suffix),
    when the holder is not the identity ``other_than``."""
    holder = lease_holder(release)
    for pod in release.pods():
        name = pod["metadata"]["name"]
        if holder != other_than and holder.startswith(f"{name}_") and _running(pod):
            return pod
    return None


def _running(pod: dict[str, Any]) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return bool(statuses) and "running" in statuses[0].get("state", {})


def is_leader(release: Release, pod: dict[str, Any]) -> float | None:
    """The pod's continuum_operator_is_leader sample (None when its metrics are not up)."""
    for line in pod_metrics(release.api, pod).splitlines():
        if line.startswith("continuum_operator_is_leader "):
            return float(line.split()[1])
    return None


def sigkill(pod: dict[str, Any]) -> None:
    """SIGKILL the pod's container through containerd: a crash, no SIGTERM handler runs."""
    container_id = pod["status"]["containerStatuses"][0]["containerID"].split("//", 1)[1]
    subprocess.run(
        ["ctr", "--address", CONTAINERD_SOCK, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL",
         container_id],
        check=True, timeout=30, capture_output=True,
    )  # fmt: skip


def jobs_of(api: client.ApiClient, namespace: str, training_job_name: str) -> list[str]:
    """The names of the batch Jobs owned by TrainingJob ``training_job_name``."""
    jobs = plain(api, client.BatchV1Api(api).list_namespaced_job(namespace))["items"]
    return [
        job["metadata"]["name"]
        for job in jobs
        if any(
            o["kind"] == "TrainingJob" and o["name"] == training_job_name
            for o in job["metadata"].get("ownerReferences", [])
        )
    ]


@pytest.fixture
def train(
    api: client.ApiClient, namespace: str, s3: S3Settings, s3_bucket: str, s3_secret: str
) -> Callable[[str], dict[str, Any]]:
    """Create TrainingJob ``name`` in the watched namespace and wait for it to finish."""
    data = upload(s3, s3_bucket, "datasets/ha.csv", dataset_csv())

    def run(name: str) -> dict[str, Any]:
        spec = training_job(
            name, data, s3, s3_bucket, s3_secret, endpoint=s3.in_cluster_endpoint_url
        )
        create_tj(api, namespace, spec)
        wait_until(
            f"TrainingJob {name} to finish",
            lambda: get_tj(api, namespace, name).get("status", {}).get("phase") in TERMINAL,
            TRAIN_TIMEOUT,
            every=1,
        )
        status: dict[str, Any] = get_tj(api, namespace, name)["status"]
        assert status["phase"] == "Succeeded", status
        return status

    return run


def takeover(release: Release, old: str, limit: float, what: str) -> tuple[dict[str, Any], float]:
    """Wait for a holder other than the identity ``old`` to lead; return its pod and the
    seconds it took. After a crash that may be the standby or the crashed pod's restarted
    container (a new identity): whichever finds the Lease expired first takes it."""
    started = time.monotonic()
    pod = wait_until(what, lambda: leader_pod(release, other_than=old), limit + 30, every=0.5)
    return pod, time.monotonic() - started


@pytest.mark.timeout(900)
def test_one_leader_crash_takeover_and_handover(
    api: client.ApiClient,
    helm: Callable[..., Any],
    make_namespace: Callable[[str], str],
    namespace: str,
    train: Callable[[str], dict[str, Any]],
    project_image: str,
) -> None:
    release = Release(api, helm, f"ha-{uuid.uuid4().hex[:6]}", make_namespace("ha-sys"), namespace)
    try:
        release.install_watching_team("replicaCount=2")
        check_two_replicas(release)
        first = wait_until("a leader", lambda: leader_pod(release), 60, every=0.5)
        check_one_leader(release, first)
        assert train("ha-1")["model"]["version"] == 1
        assert len(jobs_of(api, namespace, "ha-1")) == 1

        crashed = lease_holder(release)
        sigkill(first)
        second, crash = takeover(release, crashed, CRASH_TAKEOVER_LIMIT,
                                 "the standby to take the Lease after a crash")  # fmt: skip
        print(f"takeover after SIGKILL: {crash:.1f} s (limit {CRASH_TAKEOVER_LIMIT} s)")
        assert crash <= CRASH_TAKEOVER_LIMIT
        assert train("ha-2")["model"]["version"] == 2
        assert len(jobs_of(api, namespace, "ha-1")) == 1, "the new leader redid ha-1's work"
        assert len(jobs_of(api, namespace, "ha-2")) == 1

        released = lease_holder(release)
        client.CoreV1Api(api).delete_namespaced_pod(second["metadata"]["name"], release.system)
        third, handover = takeover(release, released, HANDOVER_LIMIT,
                                   "another pod to take the released Lease")  # fmt: skip
        print(f"handover after the leader's pod was deleted: {handover:.1f} s "
              f"(limit {HANDOVER_LIMIT} s)")  # fmt: skip
        assert handover <= HANDOVER_LIMIT
        assert train("ha-3")["model"]["version"] == 3
        assert [len(jobs_of(api, namespace, f"ha-{i}")) for i in (1, 2, 3)] == [1, 1, 1]
        check_one_leader(release, third)
    except BaseException:
        print(release.log())
        raise
    finally:
        release.uninstall("--ignore-not-found", check=False)


def check_two_replicas(release: Release) -> None:
    """Two Ready operator pods, updated by RollingUpdate, with a PodDisruptionBudget."""
    apps = client.AppsV1Api(release.api)
    deploy = plain(release.api, apps.read_namespaced_deployment(release.fullname, release.system))
    assert deploy["status"]["readyReplicas"] == 2
    assert deploy["spec"]["strategy"]["type"] == "RollingUpdate"
    policy = client.PolicyV1Api(release.api)
    assert policy.read_namespaced_pod_disruption_budget(release.fullname, release.system)
    for pod in release.pods():
        assert "--leader-elect" in pod["spec"]["containers"][0]["args"]


def check_one_leader(release: Release, leader: dict[str, Any]) -> None:
    """The Lease holder reports 1 in continuum_operator_is_leader; every other pod 0."""
    name = leader["metadata"]["name"]

    def samples() -> dict[str, float | None]:
        return {p["metadata"]["name"]: is_leader(release, p) for p in release.pods() if _running(p)}

    def agreed() -> dict[str, float | None] | None:
        seen = samples()
        others = [v for n, v in seen.items() if n != name]
        return seen if seen.get(name) == 1 and others and all(v == 0 for v in others) else None

    wait_until(f"{name} alone to report continuum_operator_is_leader 1", agreed, 60)


@dataclass
class Workload:
    """TrainingJobs of model ``ha-w`` created ``HA_ACTIVE`` at a time, churn-1's drifted
    inference log written once it has a version, and what was seen of every TrainingJob
    (each phase and version sampled, in order)."""

    api: client.ApiClient
    namespace: str
    body: Callable[[str], dict[str, Any]]
    drift: Callable[[int], None]
    creating: bool = True
    names: list[str] = field(default_factory=list)
    phases: dict[str, list[str | None]] = field(default_factory=dict)
    versions: dict[str, list[int]] = field(default_factory=dict)
    logged: bool = False

    def items(self) -> dict[str, dict[str, Any]]:
        found = client.CustomObjectsApi(self.api).list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, TRAININGJOBS
        )
        return {tj["metadata"]["name"]: tj for tj in found["items"]}

    def tick(self) -> dict[str, dict[str, Any]]:
        """Sample every TrainingJob, then top the workload up while ``creating``."""
        items = self.items()
        for name, tj in items.items():
            status = tj.get("status") or {}
            seen = self.phases.setdefault(name, [])
            if not seen or seen[-1] != status.get("phase"):
                seen.append(status.get("phase"))
            version = (status.get("model") or {}).get("version")
            if isinstance(version, int) and version not in self.versions.get(name, []):
                self.versions.setdefault(name, []).append(version)
        if not self.logged and self.versions.get(CHURN):
            self.drift(self.versions[CHURN][0])
            self.logged = True
        if self.creating:
            unfinished = sum(_phase(items.get(n)) not in TERMINAL for n in self.names)
            for _ in range(HA_ACTIVE - unfinished):
                self.names.append(f"ha-w-{len(self.names) + 1:02d}")
                create_tj(self.api, self.namespace, self.body(self.names[-1]))
        return items

    def waiting(self, items: dict[str, dict[str, Any]]) -> str | None:
        """What the workload still waits for, None once it has converged."""
        unfinished = [n for n in [*self.names, CHURN] if _phase(items.get(n)) not in TERMINAL]
        if unfinished:
            return f"TrainingJobs unfinished: {unfinished}"
        md = self.get(MODELDEPLOYMENTS, MD)
        if not rollout_done(md, (self.versions.get(CHURN) or [None])[0]):
            return f"the rollout of {CHURN}: {md.get('status')}"
        retrains = self.get(DRIFTMONITORS, DM).get("status", {}).get("retrainings") or []
        if not retrains:
            return "the DriftMonitor's retraining"
        if _phase(items.get(retrains[0]["trainingJob"])) not in TERMINAL:
            return f"the retraining TrainingJob {retrains[0]['trainingJob']}"
        return None

    def get(self, plural: str, name: str) -> dict[str, Any]:
        return dict(
            client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name
            )
        )


def rollout_done(md: dict[str, Any], version: int | None) -> bool:
    """The ModelDeployment serves ``version`` with its rollout complete."""
    cond = conditions(md)
    return (
        version is not None
        and md.get("status", {}).get("servingVersion") == version
        and cond.get("Progressing", {}).get("reason") == "RolloutComplete"
        and cond.get("Available", {}).get("status") == "True"
    )


def start_monitoring(workload: Workload, s3: S3Settings, bucket: str, secret: str) -> None:
    """The ModelDeployment of model churn (latestQualified), a DriftMonitor on it that
    retrains with a gate that cannot be met, and TrainingJob churn-1."""
    objects = client.CustomObjectsApi(workload.api)
    md = model_deployment(
        s3, bucket, secret, resources={"requests": SERVER_REQUESTS}, rolloutDeadlineSeconds=300
    )
    objects.create_namespaced_custom_object(
        GROUP, VERSION, workload.namespace, MODELDEPLOYMENTS, md
    )
    template = workload.body("template")["spec"]
    template["model"] = "churn"
    template["evaluation"]["threshold"] = 1.5  # unreachable: the retrained model is not qualified
    objects.create_namespaced_custom_object(
        GROUP, VERSION, workload.namespace, DRIFTMONITORS, drift_monitor(template)
    )
    tj = workload.body(CHURN)
    tj["spec"]["model"] = "churn"
    create_tj(workload.api, workload.namespace, tj)


def _phase(tj: dict[str, Any] | None) -> str | None:
    return ((tj or {}).get("status") or {}).get("phase")


def run_for(workload: Workload, seconds: float) -> None:
    """Keep the workload going (a tick a second) for ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        workload.tick()
        time.sleep(1)


def standby_up(release: Release) -> dict[str, Any] | None:
    """The leader's pod, once another operator pod's container runs too (a standby)."""
    leader = leader_pod(release)
    if leader is None:
        return None
    others = [p for p in release.pods() if p["metadata"]["name"] != leader["metadata"]["name"]]
    return leader if any(_running(p) for p in others) else None


def kill_leader(release: Release, workload: Workload) -> float:
    """SIGKILL the leader's container once a standby runs; seconds until another identity
    holds the Lease (the workload keeps going meanwhile).

    Waiting for the standby matters: the kubelet restarts a killed container after a
    crash-loop backoff (10 s, doubling per crash within 10 minutes), and a leader killed while
    the other replica still waits for its restart has nobody to take over. With 10 kills in 5
    minutes and no wait, the 8th and 9th takeovers took 31.2 and 28.0 s (the Lease's bound is
    19 s): the restart, not the Lease, decided."""
    waited = time.monotonic()
    while (pod := standby_up(release)) is None:
        assert time.monotonic() - waited < STANDBY_TIMEOUT, "no leader with a running standby"
        workload.tick()
        time.sleep(0.5)
    killed = lease_holder(release)
    sigkill(pod)
    started = time.monotonic()
    while True:
        holder = lease_holder(release)
        if holder and holder != killed:
            return time.monotonic() - started
        assert time.monotonic() - started < CRASH_TAKEOVER_LIMIT + 30, f"{killed} never replaced"
        workload.tick()
        time.sleep(0.5)


def check_exactly_once(workload: Workload, items: dict[str, dict[str, Any]]) -> None:
    """One Job per TrainingJob; ha-w's versions 1..N once each; churn-1 promoted once and one
    retraining (version 2, not qualified); nothing the test did not create; no phase going
    back, no version changing."""
    retrains = [tj["metadata"]["name"] for tj in retrain_jobs(workload.api, workload.namespace)]
    recorded = workload.get(DRIFTMONITORS, DM)["status"]["retrainings"]
    assert [r["trainingJob"] for r in recorded] == retrains, (recorded, retrains)
    assert len(retrains) == 1, retrains
    expected = sorted([*workload.names, CHURN, *retrains])
    assert sorted(items) == expected, "a TrainingJob the test did not create"
    jobs = {name: len(jobs_of(workload.api, workload.namespace, name)) for name in items}
    assert jobs == dict.fromkeys(items, 1), jobs
    for name, tj in items.items():
        assert _phase(tj) == "Succeeded", (name, tj.get("status"))
    ours = [tj for tj in items.values() if tj["spec"]["model"] == "ha-w"]
    versions = sorted(tj["status"]["model"]["version"] for tj in ours)
    assert versions == list(range(1, len(ours) + 1)), versions
    churn = {n: (items[n]["status"]["model"]["version"], items[n]["status"]["qualified"])
             for n in (CHURN, *retrains)}  # fmt: skip
    assert churn == {CHURN: (1, True), retrains[0]: (2, False)}, churn
    history = [
        (h["version"], h["outcome"])
        for h in workload.get(MODELDEPLOYMENTS, MD)["status"]["history"]
    ]
    assert history == [(1, "Promoted")], history
    for name, seen in workload.phases.items():
        ranks = [RANK[p] for p in seen]
        assert ranks == sorted(ranks), f"{name}'s phase flapped: {seen}"
        assert len(seen) == len(set(seen)), f"{name}'s phase flapped: {seen}"
    moved = {n: v for n, v in workload.versions.items() if len(v) > 1}
    assert not moved, f"versions changed after being set: {moved}"


@pytest.mark.chaos
@pytest.mark.timeout(600 + HA_KILLS * 60)
def test_repeated_leader_kills_during_a_workload(
    api: client.ApiClient,
    helm: Callable[..., Any],
    make_namespace: Callable[[str], str],
    namespace: str,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
    project_image: str,
) -> None:
    seed = int(os.environ.get("CONTINUUM_HA_SEED") or secrets.randbits(32))
    rng = random.Random(seed)
    print(f"\n[ha] seed {seed} (CONTINUUM_HA_SEED replays the kill schedule); "
          f"{HA_KILLS} kills (CONTINUUM_HA_KILLS)")  # fmt: skip
    data = upload(s3, s3_bucket, "datasets/ha-w.csv", dataset_csv())

    def body(name: str) -> dict[str, Any]:
        spec = training_job(name, data, s3, s3_bucket, s3_secret,
                            endpoint=s3.in_cluster_endpoint_url)  # fmt: skip
        spec["spec"]["model"] = "ha-w"
        spec["spec"]["resources"] = {"requests": TRAINER_REQUESTS}
        return spec

    def drift(version: int) -> None:
        write_inference_log(s3, s3_bucket, version, SHIFTED_ROWS, SHIFT)

    workload = Workload(api, namespace, body, drift)
    release = Release(api, helm, f"ha-{uuid.uuid4().hex[:6]}", make_namespace("ha-sys"), namespace)
    started = time.monotonic()
    try:
        release.install_watching_team("replicaCount=2")
        wait_until("a leader", lambda: leader_pod(release), 60, every=0.5)
        start_monitoring(workload, s3, s3_bucket, s3_secret)
        takeovers = []
        for kill in range(1, HA_KILLS + 1):
            run_for(workload, rng.uniform(*KILL_GAP))
            takeovers.append(kill_leader(release, workload))
            print(f"[ha] kill {kill}: takeover {takeovers[-1]:.1f} s; "
                  f"{len(workload.names)} TrainingJobs so far")  # fmt: skip
        workload.creating = False
        settle = time.monotonic()
        items = workload.tick()
        while (waiting := workload.waiting(items)) is not None:
            assert time.monotonic() - settle < SETTLE_TIMEOUT, waiting
            time.sleep(1)
            items = workload.tick()
        print(f"[ha] {len(items)} TrainingJobs converged {time.monotonic() - settle:.0f} s after "
              f"the last kill; takeovers {[round(t, 1) for t in takeovers]} s (max "
              f"{max(takeovers):.1f}, limit {CRASH_TAKEOVER_LIMIT}); whole test "
              f"{time.monotonic() - started:.0f} s")  # fmt: skip
        check_exactly_once(workload, items)
        assert max(takeovers) <= CRASH_TAKEOVER_LIMIT, takeovers
        # the last killed replica may still be in its crash-loop backoff: wait for it
        check_one_leader(release, wait_until("a standby", lambda: standby_up(release), 180))
    except BaseException:
        print(f"[ha] seed {seed}; phases seen: {workload.phases}")
        print(release.log())
        raise
    finally:
        release.uninstall("--ignore-not-found", check=False)
