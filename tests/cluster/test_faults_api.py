"""API faults on the real cluster: the operator talks to the kube-apiserver only through the
fault proxy of tests/kit/faultproxy.py, which answers 5xx and 429 (``Retry-After``), resets
connections (before and after the API server acted), slows answers and breaks watch streams
(cut, reset, an ERROR event of code 410, HTTP 410) at seeded random.

Under it, for ``CONTINUUM_FAULT_SECONDS`` (default 90, the CI length; ``make test-faults`` runs
600) the test keeps a workload of the three kinds going, then waits for it to converge with the
faults still on:

* ``BULK_ACTIVE`` TrainingJobs of model ``bulk`` in flight at a time, a new one as one ends;
* a promotion chain: TrainingJob ``churn-k`` of model ``churn`` is created once the
  ModelDeployment (``latestQualified``) has finished rolling out ``churn-(k-1)``'s version;
* a DriftMonitor on that ModelDeployment whose inference logs are shifted (written to MinIO
  for each churn version as it succeeds): it retrains with a template whose gate cannot be met,
  so the retrained version is not qualified, and its cooldown allows one retraining only.

Converged means: every TrainingJob finished, the ModelDeployment serves the last churn version
with its rollout complete, the DriftMonitor recorded its retraining and that TrainingJob
finished. Then: every TrainingJob has exactly one Job and a correct status, the versions of
each model are 1..N, every qualified churn version was promoted in order and nothing else, the
retraining happened once, and every kind's kstatus conditions are settled. The test prints the
faults injected by kind, the operator's reconcile errors, and the time to converge.

The seed is printed; ``CONTINUUM_FAULT_SEED=<seed>`` replays the proxy's decisions (which
request meets which fault still depends on the cluster's timing). ``CONTINUUM_FAULT_RATES``
changes the rates (by default ``total=0.1``: 10% of all requests faulted, split evenly between
5xx, 429, resets and slow answers, and ``watch=0.3``: 30% of watch streams broken; see
``Rates``); each injected fault is logged to ``faults.log`` in the test's tmp_path.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from continuum.controllers.modeldeployment.rollout import MAX_HISTORY
from tests.kit.cluster import (
    Operator,
    S3Settings,
    operator_kubeconfig,
    pod_logs,
    upload,
)
from tests.kit.datasets import dataset_csv
from tests.kit.faultproxy import FaultProxy, Rates, proxy_for
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
    drift_monitor,
    model_deployment,
    training_job,
    write_inference_log,
)

pytestmark = [pytest.mark.reliability, pytest.mark.faults]

FAULT_SECONDS = float(os.environ.get("CONTINUUM_FAULT_SECONDS", "90"))
RATES = Rates.parse(os.environ.get("CONTINUUM_FAULT_RATES", ""))
BULK_ACTIVE = 3  # bulk TrainingJobs in flight: with the chain's, what 2 cores train at once
# After the workload: a training and a rollout under faults, or the DriftMonitor's next check
# (60 s apart) and its retraining; generous for a machine loaded by other tests.
CONVERGE_TIMEOUT = 480.0
TICK = 1.0
PROGRESS_EVERY = 30.0
TRAINER_REQUESTS = {"cpu": "50m", "memory": "128Mi"}
SERVER_REQUESTS = {"cpu": "50m", "memory": "128Mi"}
SHIFTED_ROWS = 300
# Far enough to drift, near enough for the DriftMonitor's data-quality check (see
# write_inference_log); at 6.0, 68-74% of the values were out of the training range and the
# retraining was suppressed as "not retraining on data that fails its checks".
SHIFT = 3.0
RETRAIN_LABEL = f"continuum.dev/drift-monitor={DM}"

Report = Callable[[str], None]


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> Report:
    """Print past pytest's capture, so the figures show in every run (`make test` included)."""

    def show(line: str) -> None:
        with capsys.disabled():
            print(f"[faults] {line}", flush=True)

    return show


@pytest.fixture
def seed() -> int:
    return int(os.environ.get("CONTINUUM_FAULT_SEED") or secrets.randbits(32))


@pytest.fixture
def proxy(
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    operator_role: str,
    seed: int,
    tmp_path: Path,
) -> Iterator[FaultProxy]:
    """The fault proxy in front of the API server for the operator's least-privilege
    credentials (its ServiceAccount token is forwarded); ``tmp_path/proxied`` points at it."""
    direct = operator_kubeconfig(api, kubeconfig, namespace, operator_role, tmp_path / "direct")
    log = tmp_path / "faults.log"
    with proxy_for(direct, tmp_path / "proxied", seed, RATES, log) as running:
        yield running


@pytest.fixture
def faulty_operator(
    proxy: FaultProxy, namespace: str, crds: None, project_image: str, tmp_path: Path
) -> Iterator[Operator]:
    """The operator on the test namespace, through the fault proxy."""
    running = Operator(namespace, project_image, tmp_path / "proxied", tmp_path / "operator.log")
    running.start()
    yield running
    running.stop()


@dataclass
class World:
    """The cluster as the test sees it (directly, without faults), and what it created."""

    api: client.ApiClient
    namespace: str
    s3: S3Settings
    bucket: str
    secret: str
    data: str
    op: Operator
    bulk: list[str] = field(default_factory=list)
    chain: list[str] = field(default_factory=list)
    logged: set[int] = field(default_factory=set)  # churn versions with shifted logs

    @property
    def objects(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def create(self, plural: str, body: dict[str, Any]) -> None:
        self.objects.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, body)

    def get(self, plural: str, name: str) -> dict[str, Any]:
        return dict(
            self.objects.get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)
        )

    def training_jobs(self) -> dict[str, dict[str, Any]]:
        found = self.objects.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, TRAININGJOBS
        )
        return {tj["metadata"]["name"]: tj for tj in found["items"]}

    def start_training(self, name: str, model: str) -> None:
        body = training_job(name, self.data, self.s3, self.bucket, self.secret)
        body["spec"]["model"] = model
        body["spec"]["resources"] = {"requests": TRAINER_REQUESTS}
        self.create(TRAININGJOBS, body)

    def jobs(self) -> list[client.V1Job]:
        return list(client.BatchV1Api(self.api).list_namespaced_job(self.namespace).items)


@pytest.fixture
def world(
    api: client.ApiClient,
    namespace: str,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
    faulty_operator: Operator,
) -> World:
    data = upload(s3, s3_bucket, "datasets/churn.csv", dataset_csv())
    return World(api, namespace, s3, s3_bucket, s3_secret, data, faulty_operator)


def phase_of(tj: dict[str, Any]) -> str:
    return str((tj.get("status") or {}).get("phase") or "NoStatus")


def version_of(tj: dict[str, Any]) -> int | None:
    version = ((tj.get("status") or {}).get("model") or {}).get("version")
    return version if isinstance(version, int) else None


def phase_counts(items: dict[str, dict[str, Any]]) -> str:
    counts = Counter(phase_of(tj) for tj in items.values())
    return ", ".join(f"{phase} {n}" for phase, n in sorted(counts.items())) or "none yet"


def require_alive(op: Operator) -> None:
    assert op.process is not None
    assert op.process.poll() is None, f"the operator exited by itself:\n{op.output()}"


# -- the workload ---------------------------------------------------------------------------


def start_monitoring(world: World) -> None:
    """The ModelDeployment (latestQualified) and the DriftMonitor, before any version exists."""
    md = model_deployment(
        world.s3, world.bucket, world.secret,
        resources={"requests": SERVER_REQUESTS}, rolloutDeadlineSeconds=300,
    )  # fmt: skip
    world.create(MODELDEPLOYMENTS, md)
    template = training_job("template", world.data, world.s3, world.bucket, world.secret)["spec"]
    template["evaluation"]["threshold"] = 1.5  # unreachable: the retrained model is not qualified
    template["resources"] = {"requests": TRAINER_REQUESTS}
    world.create(DRIFTMONITORS, drift_monitor(template))


def write_shifted_log(world: World, version: int) -> None:
    """Inference-log rows of churn ``version`` away from its training data: a check drifts."""
    write_inference_log(world.s3, world.bucket, version, SHIFTED_ROWS, SHIFT)


def rollout_done(md: dict[str, Any], version: int | None) -> bool:
    """The ModelDeployment serves ``version`` with its rollout complete."""
    cond = conditions(md)
    return (
        version is not None
        and md.get("status", {}).get("servingVersion") == version
        and cond.get("Progressing", {}).get("reason") == "RolloutComplete"
        and cond.get("Available", {}).get("status") == "True"
    )


def step(world: World, items: dict[str, dict[str, Any]], creating: bool) -> None:
    """One tick: shifted logs for newly succeeded churn versions; new objects while
    ``creating``: bulk TrainingJobs topped up, the next chain link once the last is served."""
    for name in world.chain:
        version = version_of(items.get(name, {}))
        if version is not None and version not in world.logged:
            write_shifted_log(world, version)
            world.logged.add(version)
    if not creating:
        return
    unfinished = sum(phase_of(items.get(n, {})) not in TERMINAL for n in world.bulk)
    for _ in range(BULK_ACTIVE - unfinished):
        world.bulk.append(f"bulk-{len(world.bulk) + 1:02d}")
        world.start_training(world.bulk[-1], "bulk")
    last = items.get(world.chain[-1], {}) if world.chain else None
    if last is None or rollout_done(world.get(MODELDEPLOYMENTS, MD), version_of(last)):
        world.chain.append(f"churn-{len(world.chain) + 1}")
        world.start_training(world.chain[-1], "churn")


def converged(world: World, items: dict[str, dict[str, Any]]) -> str | None:
    """What the workload still waits for, None once it has converged."""
    waiting = [n for n in [*world.bulk, *world.chain] if phase_of(items.get(n, {})) not in TERMINAL]
    if waiting:
        return f"TrainingJobs unfinished: {waiting}"
    if not rollout_done(world.get(MODELDEPLOYMENTS, MD), version_of(items[world.chain[-1]])):
        return f"the rollout of {world.chain[-1]}"
    retrains = world.get(DRIFTMONITORS, DM).get("status", {}).get("retrainings") or []
    if not retrains:
        return "the DriftMonitor's retraining"
    if phase_of(items.get(retrains[0]["trainingJob"], {})) not in TERMINAL:
        return f"the retraining TrainingJob {retrains[0]['trainingJob']}"
    return None


@dataclass
class Clock:
    started: float = field(default_factory=time.monotonic)
    shown: float = 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def drive(world: World, proxy: FaultProxy, report: Report) -> tuple[float, float]:
    """Run the workload for FAULT_SECONDS, then until it converges; (workload, converge) s."""
    clock = Clock()
    start_monitoring(world)
    workload_end: float | None = None
    while True:
        require_alive(world.op)
        elapsed = clock.elapsed()
        items = world.training_jobs()
        creating = elapsed < FAULT_SECONDS
        step(world, items, creating)
        if not creating and workload_end is None:
            workload_end = elapsed
        if elapsed >= clock.shown + PROGRESS_EVERY:
            clock.shown += PROGRESS_EVERY
            report(f"at {elapsed:4.0f}s: {phase_counts(items)}; chain {len(world.chain)}; "
                   f"{proxy.summary()}")  # fmt: skip
        if workload_end is not None:
            waiting = converged(world, items)
            if waiting is None:
                return workload_end, elapsed - workload_end
            if elapsed - workload_end > CONVERGE_TIMEOUT:
                dump(world)
                pytest.fail(f"not converged {CONVERGE_TIMEOUT:.0f}s after the workload (seed "
                            f"{proxy.seed}): waiting for {waiting}; {proxy.summary()}")  # fmt: skip
        time.sleep(TICK)


def dump(world: World) -> None:
    print(world.op.output())
    for plural, name in ((MODELDEPLOYMENTS, MD), (DRIFTMONITORS, DM)):
        print(plural, json.dumps(world.get(plural, name).get("status"), indent=1))
    for name, tj in world.training_jobs().items():
        if phase_of(tj) not in TERMINAL:
            print(name, json.dumps(tj.get("status"), indent=1))
    print(pod_logs(world.api, world.namespace, "app.kubernetes.io/component=drift-check"))


# -- the checks -----------------------------------------------------------------------------


def jobs_per_training_job(world: World, items: dict[str, dict[str, Any]]) -> dict[str, int]:
    """How many Jobs each TrainingJob controls (by owner uid); Jobs of no TrainingJob too."""
    owners = {tj["metadata"]["uid"]: name for name, tj in items.items()}
    count = dict.fromkeys(items, 0)
    for job in world.jobs():
        refs = [r for r in job.metadata.owner_references or [] if r.controller]
        if refs and refs[0].kind == "DriftMonitor":
            continue  # a drift check's Job
        name = owners.get(refs[0].uid) if refs else None
        key = name if name is not None else f"<orphan {job.metadata.name}>"
        count[key] = count.get(key, 0) + 1
    return count


SETTLED = {"Reconciling": "False", "Stalled": "False"}


def check_training_job(tj: dict[str, Any], qualified: bool) -> None:
    """Succeeded, with status fields and kstatus conditions that agree."""
    name, status = tj["metadata"]["name"], tj.get("status", {})
    assert status.get("phase") == "Succeeded", (name, status)
    assert status["jobName"] == f"{name}-train", (name, status)
    assert status["observedGeneration"] == tj["metadata"]["generation"], (name, status)
    assert status["qualified"] is qualified, (name, status)
    assert len(status["model"]["sha256"]) == 64, (name, status)
    cond = {t: c["status"] for t, c in conditions(tj).items()}
    want = {"Ready": "True", "Succeeded": "True", "Qualified": str(qualified), **SETTLED}
    assert cond == want, (name, cond)


def check_versions(items: dict[str, dict[str, Any]], model: str) -> dict[int, str]:
    """The model's versions are 1..N, one per TrainingJob; {version: TrainingJob}."""
    mine = {n: tj for n, tj in items.items() if tj["spec"]["model"] == model}
    by_version = {version_of(tj): name for name, tj in mine.items()}
    assert sorted(v for v in by_version if v is not None) == list(range(1, len(mine) + 1)), (
        model,
        by_version,
    )
    return {v: n for v, n in by_version.items() if v is not None}


def check_rollout(world: World, items: dict[str, dict[str, Any]]) -> list[int]:
    """Every chain version promoted, in order, and no other version; the kind settled."""
    md = world.get(MODELDEPLOYMENTS, MD)
    chain = [version_of(items[name]) for name in world.chain]
    history = [(h["version"], h["outcome"]) for h in md["status"]["history"]]
    # status.history keeps the last MAX_HISTORY records (a 600 s run promotes about 40)
    promoted = [(v, "Promoted") for v in chain][-MAX_HISTORY:]
    assert history == promoted, (history, chain)
    cond = {t: c["status"] for t, c in conditions(md).items()}
    assert cond["Ready"] == cond["Available"] == "True", cond
    assert cond["Degraded"] == cond["Progressing"] == "False", cond
    assert {t: cond[t] for t in SETTLED} == SETTLED, cond
    dep = client.AppsV1Api(world.api).read_namespaced_deployment(MD, world.namespace)
    assert dep.spec.template.metadata.labels["continuum.dev/model-version"] == str(chain[-1])
    return [v for v in chain if v is not None]


def check_retraining(world: World, items: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Exactly one retraining: one TrainingJob of the monitor's, recorded once, not qualified."""
    dm = world.get(DRIFTMONITORS, DM)
    status = dm["status"]
    retrains = [n for n, tj in items.items() if _labels(tj).get("continuum.dev/drift-monitor")]
    assert len(status["retrainings"]) == 1, status["retrainings"]
    assert retrains == [status["retrainings"][0]["trainingJob"]], (retrains, status)
    check_training_job(items[retrains[0]], qualified=False)
    cond = {t: c["status"] for t, c in conditions(dm).items()}
    assert cond["Ready"] == "True", cond
    assert {t: cond[t] for t in SETTLED} == SETTLED, cond
    return dm


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj["metadata"].get("labels") or {})


def reconcile_errors(op: Operator) -> Counter[str]:
    """``continuum_reconcile_errors_total`` of the operator, summed by kind and reason."""
    port = op.args[op.args.index("--metrics-port") + 1]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    errors: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("continuum_reconcile_errors_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            errors[f"{labels.get('kind')}/{labels.get('reason')}"] += int(float(line.split()[-1]))
    return errors


@pytest.mark.timeout(FAULT_SECONDS + CONVERGE_TIMEOUT + 300)
def test_workload_converges_through_api_faults(
    world: World, proxy: FaultProxy, report: Report, tmp_path: Path
) -> None:
    report(f"seed {proxy.seed} (CONTINUUM_FAULT_SEED replays it): {RATES}; workload for "
           f"{FAULT_SECONDS:.0f}s (CONTINUUM_FAULT_SECONDS); faults logged to "
           f"{tmp_path / 'faults.log'}")  # fmt: skip
    try:
        workload, converge = drive(world, proxy, report)
    except BaseException:
        report(f"seed {proxy.seed}: {proxy.summary()}")
        raise
    items = world.training_jobs()
    kinds = f"{len(world.bulk)} bulk, {len(world.chain)} chain, 1 retraining"
    report(f"converged {converge:.0f}s after the {workload:.0f}s workload: "
           f"{len(items)} TrainingJobs ({kinds})")  # fmt: skip
    report(f"injected: {proxy.summary()}")
    report(f"operator reconcile errors (kind/reason): {dict(reconcile_errors(world.op))}")

    jobs = jobs_per_training_job(world, items)
    assert jobs == dict.fromkeys(items, 1), jobs
    for name in [*world.bulk, *world.chain]:
        check_training_job(items[name], qualified=True)
    check_versions(items, "bulk")
    churn = check_versions(items, "churn")
    promoted = check_rollout(world, items)
    dm = check_retraining(world, items)
    retrained = version_of(items[dm["status"]["retrainings"][0]["trainingJob"]])
    assert sorted([*promoted, retrained]) == sorted(churn), (promoted, retrained, churn)
    report(f"one Job per TrainingJob; churn versions {promoted} promoted in order, "
           f"version {retrained} retrained once (not qualified)")  # fmt: skip
    require_alive(world.op)
    assert sum(proxy.counts.values()) > 0
