"""Operator faults on the real cluster; each test prints the figures it measured.

* SIGKILL at random moments: the operator (a subprocess with least-privilege credentials, see
  tests/kit/cluster.py) is killed with SIGKILL at ``KILLS`` moments drawn from a seeded RNG
  while ``TRAININGS`` real TrainingJobs run in the project image and a ModelDeployment rolls
  out (pinned to the first version, then switched to ``latestQualified``). It is restarted at
  once each time. At the end every TrainingJob has exactly one Job and a Succeeded status with
  consistent conditions, the versions are 1..TRAININGS with each claim in MinIO naming the
  TrainingJob that reports it, and the rollout has finished on the newest version.
* API server restart: kube-apiserver is SIGKILLed mid-workload (``hack/cluster-fault.sh``),
  kept down for ``APISERVER_DOWN_SECONDS`` and started again. The same operator process (same
  PID, never restarted) finishes the TrainingJobs created before and reconciles new ones.

The seed is printed; ``CONTINUUM_CHAOS_SEED=<seed>`` replays the same kill moments (the
cluster's timing still varies). ``CONTINUUM_CHAOS_TRAININGS`` and ``CONTINUUM_CHAOS_KILLS``
size the first test down for a quick look; ``CONTINUUM_CHAOS_APISERVER_DOWN`` (seconds) holds the
API server down longer than the default 20 s.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from kubernetes import client

from tests.kit import REPO
from tests.kit.cluster import Operator, S3Settings, pod_logs, s3_client, upload, wait_until
from tests.kit.datasets import dataset_csv
from tests.kit.kinds import (
    GROUP,
    MD,
    TERMINAL,
    TRAININGJOBS,
    VERSION,
    conditions,
    get_md,
    model_deployment,
    patch_spec,
    training_job,
)

pytestmark = [pytest.mark.reliability, pytest.mark.chaos]

TRAININGS = int(os.environ.get("CONTINUUM_CHAOS_TRAININGS", "50"))
KILLS = int(os.environ.get("CONTINUUM_CHAOS_KILLS", "20"))
# Unfinished TrainingJobs at a time: what 2 cores train without starving the control plane.
MAX_ACTIVE = 6
# A kill moment is drawn as a point of progress (how many TrainingJobs have finished, so the
# kills spread over the whole workload however fast this machine trains) plus a delay after
# the previous restart: some kills hit the restarted operator's startup, others a busy one.
MAX_KILL_DELAY = 8.0
# A few seconds per training on an idle 2-core machine; the bound allows one loaded by other
# work (15-20 s per training measured at load average 10-15).
WORKLOAD_TIMEOUT = 180 + 16 * TRAININGS
PROGRESS_EVERY = 60
ROLLOUT_TIMEOUT = 240
# Small requests: MAX_ACTIVE trainers plus two server pods fit beside other tests' pods.
TRAINER_REQUESTS = {"cpu": "50m", "memory": "128Mi"}
SERVER_REQUESTS = {"cpu": "50m", "memory": "128Mi"}
FAULT = REPO / "hack/cluster-fault.sh"
APISERVER = "kube-apiserver"
# Under the node lease's 40 s, so the node stays Ready and no pod is evicted meanwhile.
APISERVER_DOWN_SECONDS = float(os.environ.get("CONTINUUM_CHAOS_APISERVER_DOWN", "20"))
BEFORE_OUTAGE = 3
AFTER_OUTAGE = 3
TICK = 0.5

Report = Callable[[str], None]


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> Report:
    """Print past pytest's capture, so the figures show in every run (`make test` included)."""

    def show(line: str) -> None:
        with capsys.disabled():
            print(f"[chaos] {line}", flush=True)

    return show


@dataclass
class Setup:
    """Everything a workload needs: the cluster, the bucket, its credentials, the dataset."""

    api: client.ApiClient
    namespace: str
    s3: S3Settings
    bucket: str
    secret: str
    data: str

    def create_training_job(self, name: str) -> None:
        body = training_job(name, self.data, self.s3, self.bucket, self.secret)
        body["spec"]["resources"] = {"requests": TRAINER_REQUESTS}
        objs = objects(self.api)
        retrying(lambda: objs.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, TRAININGJOBS, body
        ))  # fmt: skip

    def training_jobs(self) -> list[dict[str, Any]]:
        objs = objects(self.api)
        found = retrying(
            lambda: objs.list_namespaced_custom_object(GROUP, VERSION, self.namespace, TRAININGJOBS)
        )
        return list(found["items"])

    def jobs(self) -> list[client.V1Job]:
        return list(client.BatchV1Api(self.api).list_namespaced_job(self.namespace).items)


@pytest.fixture
def setup(
    api: client.ApiClient, namespace: str, s3: S3Settings, s3_bucket: str, s3_secret: str
) -> Setup:
    data = upload(s3, s3_bucket, "datasets/churn.csv", dataset_csv())
    return Setup(api, namespace, s3, s3_bucket, s3_secret, data)


def objects(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def retrying(call: Callable[[], Any], seconds: float = 60) -> Any:
    """``call()``, retried while the API server answers 429 or 5xx: a restarted API server
    says "storage is (re)initializing" (429) for custom resources for a while after /readyz."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except client.ApiException as err:
            if not (err.status == 429 or err.status >= 500) or time.monotonic() > deadline:
                raise
        time.sleep(1)


def phase_of(tj: dict[str, Any]) -> str:
    return str((tj.get("status") or {}).get("phase") or "NoStatus")


def version_of(tj: dict[str, Any]) -> int | None:
    version = ((tj.get("status") or {}).get("model") or {}).get("version")
    return version if isinstance(version, int) else None


def phase_counts(items: list[dict[str, Any]]) -> str:
    counts = Counter(phase_of(tj) for tj in items)
    return ", ".join(f"{phase} {n}" for phase, n in sorted(counts.items())) or "none yet"


def require_alive(op: Operator) -> None:
    """Fail when the operator exited on its own (every exit the tests cause is awaited)."""
    assert op.process is not None
    assert op.process.poll() is None, f"the operator exited by itself:\n{op.output()}"


# -- SIGKILL at random moments ------------------------------------------------------------


@dataclass(frozen=True)
class Moment:
    """Kill once ``finished`` TrainingJobs have finished and ``delay`` s after the last restart."""

    finished: int
    delay: float


def draw_moments(rng: random.Random) -> list[Moment]:
    """``KILLS`` moments spread at random over the workload's progress."""
    points = sorted(int(rng.uniform(0, TRAININGS)) for _ in range(KILLS))
    return [Moment(p, round(rng.uniform(0, MAX_KILL_DELAY), 1)) for p in points]


@dataclass(frozen=True)
class Kill:
    """One SIGKILL: when (seconds into the workload), which process, what was going on."""

    at: float
    pid: int
    phases: str
    rollout: str


@dataclass
class Killer:
    """Kills the operator with SIGKILL at pre-drawn moments and restarts it at once."""

    op: Operator
    moments: list[Moment]
    done: list[Kill] = field(default_factory=list)
    restarted_at: float = 0.0

    def due(self, finished: int, elapsed: float) -> bool:
        if self.finished():
            return False
        moment = self.moments[len(self.done)]
        return finished >= moment.finished and elapsed >= self.restarted_at + moment.delay

    def finished(self) -> bool:
        return len(self.done) == len(self.moments)

    def kill_and_restart(self, elapsed: float, phases: str, rollout: str) -> None:
        assert self.op.process is not None
        pid = self.op.process.pid
        self.op.stop(signal.SIGKILL)
        self.op.start()
        self.restarted_at = elapsed
        self.done.append(Kill(round(elapsed, 1), pid, phases, rollout))


@dataclass
class Rollout:
    """The ModelDeployment's part of the workload: serve the first version, then the newest."""

    setup: Setup
    first: int | None = None
    switched_at: float | None = None

    def state(self) -> str:
        if self.first is None:
            return "no ModelDeployment yet"
        if self.switched_at is None:
            return f"pinned to version {self.first}"
        return "latestQualified"

    def advance(self, items: list[dict[str, Any]], created: int, elapsed: float) -> None:
        if self.first is None:
            self._create_pinned(items)
        elif self.switched_at is None and created >= TRAININGS // 2 and self._serving_first():
            patch_spec(
                self.setup.api,
                self.setup.namespace,
                {"version": {"pinned": None, "policy": "latestQualified"}},
            )
            self.switched_at = elapsed

    def _create_pinned(self, items: list[dict[str, Any]]) -> None:
        done = [v for v in map(version_of, items) if v is not None]
        if not done:
            return
        self.first = min(done)
        s = self.setup
        body = model_deployment(
            s.s3, s.bucket, s.secret, version={"pinned": self.first},
            resources={"requests": SERVER_REQUESTS}, rolloutDeadlineSeconds=300,
        )  # fmt: skip
        objects(s.api).create_namespaced_custom_object(
            GROUP, VERSION, s.namespace, "modeldeployments", body
        )

    def _serving_first(self) -> bool:
        md = get_md(self.setup.api, self.setup.namespace)
        available = conditions(md).get("Available", {}).get("status") == "True"
        return available and md.get("status", {}).get("servingVersion") == self.first


@dataclass
class Workload:
    """Keeps ``MAX_ACTIVE`` TrainingJobs in flight until ``TRAININGS`` have been created."""

    setup: Setup
    names: list[str] = field(default_factory=list)

    def top_up(self, items: list[dict[str, Any]]) -> None:
        unfinished = sum(phase_of(tj) not in TERMINAL for tj in items)
        while len(self.names) < TRAININGS and unfinished < MAX_ACTIVE:
            name = f"chaos-{len(self.names) + 1:02d}"
            self.setup.create_training_job(name)
            self.names.append(name)
            unfinished += 1

    def finished(self, items: list[dict[str, Any]]) -> bool:
        terminal = sum(phase_of(tj) in TERMINAL for tj in items)
        return len(self.names) == TRAININGS and terminal == TRAININGS


def run_under_kills(
    setup: Setup, op: Operator, killer: Killer, rollout: Rollout, report: Report
) -> float:
    """Drive workload, rollout and kills until all are done; the seconds it took."""
    workload = Workload(setup)
    start = time.monotonic()
    shown = 0
    while True:
        elapsed = time.monotonic() - start
        require_alive(op)
        items = setup.training_jobs()
        if elapsed >= shown + PROGRESS_EVERY:
            shown += PROGRESS_EVERY
            report(f"at {elapsed:5.0f}s: {phase_counts(items)}; {rollout.state()}")
        if killer.due(sum(phase_of(tj) in TERMINAL for tj in items), elapsed):
            killer.kill_and_restart(elapsed, phase_counts(items), rollout.state())
            kill = killer.done[-1]
            report(f"kill {len(killer.done):2d} at {kill.at:6.1f}s pid {kill.pid}: "
                   f"{kill.phases}; {kill.rollout}")  # fmt: skip
        workload.top_up(items)
        rollout.advance(items, len(workload.names), elapsed)
        if workload.finished(items) and killer.finished() and rollout.switched_at is not None:
            return elapsed
        if elapsed > WORKLOAD_TIMEOUT:
            print(op.output())
            pytest.fail(f"workload unfinished after {elapsed:.0f}s: {phase_counts(items)}, "
                        f"{len(killer.done)} kills, rollout {rollout.state()}")  # fmt: skip
        time.sleep(TICK)


def wait_for_final_rollout(setup: Setup, op: Operator, newest: int) -> dict[str, Any]:
    """The ModelDeployment, once it serves ``newest`` with the rollout complete."""

    def complete() -> dict[str, Any] | None:
        require_alive(op)
        md = get_md(setup.api, setup.namespace)
        cond = conditions(md)
        serving = md.get("status", {}).get("servingVersion") == newest
        done = cond.get("Progressing", {}).get("reason") == "RolloutComplete"
        return md if serving and done and cond["Available"]["status"] == "True" else None

    try:
        return wait_until(f"{MD} to serve version {newest}", complete, ROLLOUT_TIMEOUT, every=2)  # type: ignore[no-any-return]
    except BaseException:
        print(op.output())
        print(get_md(setup.api, setup.namespace).get("status"))
        print(pod_logs(setup.api, setup.namespace, "app.kubernetes.io/name=continuum-server"))
        raise


def jobs_per_training_job(setup: Setup, items: list[dict[str, Any]]) -> dict[str, int]:
    """How many Jobs each TrainingJob controls (by owner uid), and Jobs owned by none."""
    owners = {tj["metadata"]["uid"]: tj["metadata"]["name"] for tj in items}
    count = dict.fromkeys(owners.values(), 0)
    for job in setup.jobs():
        refs = [r for r in job.metadata.owner_references or [] if r.controller]
        name = owners.get(refs[0].uid) if refs else None
        key = name if name is not None else f"<orphan {job.metadata.name}>"
        count[key] = count.get(key, 0) + 1
    return count


def check_training_job(tj: dict[str, Any]) -> None:
    """A Succeeded status whose fields and kstatus conditions agree with each other."""
    name, status = tj["metadata"]["name"], tj.get("status", {})
    assert status.get("phase") == "Succeeded", (name, status)
    assert status["jobName"] == f"{name}-train", (name, status)
    assert status["observedGeneration"] == tj["metadata"]["generation"], (name, status)
    assert status["qualified"] is True, (name, status)
    assert len(status["model"]["sha256"]) == 64, (name, status)
    assert status["model"]["uri"].rstrip("/").endswith(f"/{status['model']['version']}"), status
    assert parse_time(status["startTime"]) <= parse_time(status["completionTime"]), status
    cond = {t: c["status"] for t, c in conditions(tj).items()}
    want = {"Ready": "True", "Succeeded": "True", "Qualified": "True",
            "Reconciling": "False", "Stalled": "False"}  # fmt: skip
    assert cond == want, (name, cond)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def claims(s3: S3Settings, bucket: str, model: str) -> dict[int, dict[str, Any]]:
    """{version: claim.json} of every claimed version of ``model`` in the bucket."""
    store = s3_client(s3)
    found = {}
    pages = store.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"models/{model}/"
    )
    for page in pages:
        for obj in page.get("Contents", []):
            parts = obj["Key"].split("/")
            if len(parts) == 4 and parts[3] == "claim.json" and parts[2].isdigit():
                body = store.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                found[int(parts[2])] = json.loads(body)
    return found


def check_versions(setup: Setup, items: list[dict[str, Any]]) -> list[int]:
    """Versions 1..N, one per TrainingJob, each claimed in MinIO by that TrainingJob, in order."""
    by_version = {version_of(tj): tj["metadata"]["name"] for tj in items}
    versions = sorted(v for v in by_version if v is not None)
    assert versions == list(range(1, len(items) + 1)), versions
    claimed = claims(setup.s3, setup.bucket, "churn")
    assert sorted(claimed) == versions, sorted(claimed)
    for version in versions:
        assert claimed[version]["claimant"] == by_version[version], (version, claimed[version])
    moments = [parse_time(claimed[v]["claimedAt"]) for v in versions]
    assert moments == sorted(moments), "versions were not claimed in increasing order"
    return versions


def check_rollout(md: dict[str, Any], first: int, newest: int, setup: Setup) -> None:
    status, cond = md["status"], conditions(md)
    assert cond["Degraded"]["status"] == "False", cond["Degraded"]
    assert cond["Ready"]["status"] == "True", cond["Ready"]
    assert status["readyReplicas"] == 1, status
    history = [(h["version"], h["outcome"]) for h in status["history"]]
    assert history[0] == (first, "Promoted"), history
    assert history[-1] == (newest, "Promoted"), history
    assert all(outcome == "Promoted" for _, outcome in history), history
    assert [v for v, _ in history] == sorted({v for v, _ in history}), history
    dep = client.AppsV1Api(setup.api).read_namespaced_deployment(MD, setup.namespace)
    assert dep.spec.template.metadata.labels["continuum.dev/model-version"] == str(newest)


@pytest.mark.timeout(60 + WORKLOAD_TIMEOUT + ROLLOUT_TIMEOUT)
def test_operator_sigkilled_at_random_moments_loses_nothing(
    setup: Setup,
    operator: Operator,
    report: Report,
) -> None:
    seed = int(os.environ.get("CONTINUUM_CHAOS_SEED") or secrets.randbits(32))
    rng = random.Random(seed)
    moments = draw_moments(rng)
    report(f"seed {seed}: {TRAININGS} TrainingJobs ({MAX_ACTIVE} in flight), a rollout pinned "
           f"first -> latestQualified, {KILLS} SIGKILLs at (TrainingJobs finished, seconds "
           f"after the previous restart) {[(m.finished, m.delay) for m in moments]}")  # fmt: skip
    killer, rollout = Killer(operator, moments), Rollout(setup)
    started = time.monotonic()

    workload_seconds = run_under_kills(setup, operator, killer, rollout, report)
    items = setup.training_jobs()
    newest = max(v for v in map(version_of, items) if v is not None)
    md = wait_for_final_rollout(setup, operator, newest)
    total = time.monotonic() - started

    jobs = jobs_per_training_job(setup, items)
    per_tj = dict(Counter(jobs.values()))
    report(f"{len(killer.done)} kills, {len(items)} TrainingJobs: {phase_counts(items)}; "
           f"Jobs per TrainingJob: {per_tj} ({sum(jobs.values())} Jobs)")  # fmt: skip
    report(f"workload {workload_seconds:.0f}s, rollout switched at {rollout.switched_at:.0f}s, "
           f"version {rollout.first} -> {newest} served after {total:.0f}s; "
           f"history {[h['version'] for h in md['status']['history']]}")  # fmt: skip
    assert len(killer.done) == KILLS
    assert len(jobs) == TRAININGS, jobs
    assert all(n == 1 for n in jobs.values()), jobs
    for tj in items:
        check_training_job(tj)
    versions = check_versions(setup, items)
    report(f"versions {versions[0]}..{versions[-1]}: unique, claimed in order by their owners")
    assert rollout.first is not None
    check_rollout(md, rollout.first, newest, setup)
    require_alive(operator)


# -- API server restart --------------------------------------------------------------------


def fault(action: str, component: str) -> None:
    subprocess.run([str(FAULT), action, component], check=True, timeout=180)


@dataclass(frozen=True)
class Outage:
    """When the API server went down and when it answered /readyz again (monotonic), and
    the same moments in wall-clock time (to compare with the kubelet's timestamps)."""

    down: float
    up: float
    down_wall: float
    up_wall: float

    @property
    def seconds(self) -> float:
        return self.up - self.down


@pytest.fixture
def api_server_back() -> Iterator[None]:
    """Whatever a test does, the API server is running when it ends (others need it)."""
    yield
    fault("start", APISERVER)


def restart_api_server(hold: float) -> Outage:
    """SIGKILL kube-apiserver, keep it down ``hold`` seconds, start it (waits for /readyz)."""
    down, down_wall = time.monotonic(), time.time()
    fault("kill", APISERVER)
    time.sleep(max(0.0, hold - (time.monotonic() - down)))
    fault("start", APISERVER)
    return Outage(down, time.monotonic(), down_wall, time.time())


def trainer_pods(setup: Setup, names: list[str]) -> list[client.V1Pod]:
    selector = f"continuum.dev/training-job in ({','.join(names)})"
    core = client.CoreV1Api(setup.api)
    return list(core.list_namespaced_pod(setup.namespace, label_selector=selector).items)


def wait_for_running_trainers(setup: Setup, names: list[str]) -> None:
    """Until each TrainingJob's trainer pod runs: the outage then cuts into real training."""
    wait_until(
        f"trainer pods of {names} running",
        lambda: sum(p.status.phase == "Running" for p in trainer_pods(setup, names)) == len(names),
        180,
    )


def finished_during(setup: Setup, names: list[str], outage: Outage) -> int:
    """How many trainer containers finished while the API server was down."""
    count = 0
    for pod in trainer_pods(setup, names):
        for status in pod.status.container_statuses or []:
            done = status.state.terminated
            if (
                done is not None
                and outage.down_wall <= done.finished_at.timestamp() <= outage.up_wall
            ):
                count += 1
    return count


def create_and_wait_for_jobs(setup: Setup, names: list[str]) -> float:
    """Create TrainingJobs; the seconds until each has its Job."""
    start = time.monotonic()
    for name in names:
        setup.create_training_job(name)
    wanted = {f"{n}-train" for n in names}
    wait_until(
        f"Jobs of {names}",
        lambda: wanted <= {j.metadata.name for j in setup.jobs()},
        120,
    )
    return time.monotonic() - start


def all_succeeded(setup: Setup, op: Operator, names: list[str]) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        require_alive(op)
        items = [tj for tj in setup.training_jobs() if tj["metadata"]["name"] in names]
        return items if sum(phase_of(tj) in TERMINAL for tj in items) == len(names) else None

    try:
        return wait_until(f"{names} to finish", check, 300, every=2)  # type: ignore[no-any-return]
    except BaseException:
        print(op.output())
        raise


def outage_log(op: Operator, offset: int) -> Counter[str]:
    """What the operator logged since ``offset``: failed requests, retries, errors."""
    text = op.log.read_bytes()[offset:].decode(errors="replace")
    lines = text.splitlines()
    return Counter(
        {
            "lines": len(lines),
            "failed requests": sum("Request attempt" in x and "failed" in x for x in lines),
            "errors": sum("[ERROR" in x for x in lines),
            "tracebacks": sum(x.startswith("Traceback") for x in lines),
        }
    )


@pytest.mark.timeout(600)
def test_operator_survives_an_api_server_restart(
    setup: Setup,
    operator: Operator,
    api_server_back: None,
    report: Report,
) -> None:
    before = [f"before-{i}" for i in range(1, BEFORE_OUTAGE + 1)]
    create_and_wait_for_jobs(setup, before)
    wait_for_running_trainers(setup, before)
    require_alive(operator)
    assert operator.process is not None
    pid, offset = operator.process.pid, operator.log.stat().st_size

    outage = restart_api_server(APISERVER_DOWN_SECONDS)
    report(f"kube-apiserver SIGKILLed and down for {outage.seconds:.1f}s "
           f"({APISERVER_DOWN_SECONDS}s held down + start until /readyz); "
           f"TrainingJobs then: {phase_counts(setup.training_jobs())}")  # fmt: skip

    after = [f"after-{i}" for i in range(1, AFTER_OUTAGE + 1)]
    to_jobs = create_and_wait_for_jobs(setup, after)
    items = all_succeeded(setup, operator, before)
    before_done = time.monotonic() - outage.up
    items += all_succeeded(setup, operator, after)
    finished = time.monotonic() - outage.up
    during = finished_during(setup, before, outage)
    require_alive(operator)
    assert operator.process.pid == pid, "the operator was restarted"
    logged = outage_log(operator, offset)
    report(f"operator pid {pid} kept running; logged since the outage: {dict(logged)}")
    report(f"{during} of {BEFORE_OUTAGE} trainers running at the kill finished during the "
           f"outage; their TrainingJobs finished {before_done:.0f}s after /readyz")  # fmt: skip
    report(f"after the outage: Jobs for {AFTER_OUTAGE} new TrainingJobs in {to_jobs:.1f}s, "
           f"all {len(items)} TrainingJobs finished {finished:.0f}s after /readyz: "
           f"{phase_counts(items)}")  # fmt: skip
    jobs = jobs_per_training_job(setup, items)
    assert len(jobs) == len(items), jobs
    assert all(n == 1 for n in jobs.values()), jobs
    for tj in items:
        check_training_job(tj)
