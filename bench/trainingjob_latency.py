"""TrainingJob benchmark against the real local cluster (see bench/README.md).

    .venv/bin/python bench/trainingjob_latency.py [--idle 20] [--burst 200] [--total 1000]
                                                  [--lifecycles 3]

Starts `continuum operator` (through bench/counting_operator.py, which tallies its API requests)
on two fresh namespaces and measures:

  a. idle latency: TrainingJob created -> its Job created, one object at a time (p50/p99);
  b. burst latency: the same for ``--burst`` TrainingJobs created at once (p50/p99);
  c. API writes per TrainingJob lifecycle: ``--lifecycles`` real trainings (project image,
     real MinIO) from creation to Succeeded, counted in the operator and cross-checked by a
     watch on the TrainingJobs;
  d. the operator's RSS with ``--total`` TrainingJobs present (steady state, and after a
     restart that lists and resumes them all);
  e. load (issue 7): a fresh operator on a fresh namespace, ``--load`` TrainingJobs created at
     once; how long after the last create the last Job appears, and the operator's RSS (peak).

The latency namespace has a ResourceQuota of 0 pods: the operator creates real Jobs, the Job
controller starts no pods. Both namespaces are deleted at the end. Results go to
bench/results/<timestamp>.json and bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import urllib3
from kubernetes import client, config, watch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the test kit: the pinned kubectl and the training data
from tests.kit import versions  # noqa: E402
from tests.kit.datasets import as_csv, two_class_rows  # noqa: E402

BENCH = REPO / "bench"
STATE = Path(os.environ.get("CONTINUUM_STATE", "/var/lib/continuum-cluster"))
KUBECONFIG = Path(os.environ.get("CONTINUUM_KUBECONFIG", STATE / "kubeconfig"))
GROUP, VERSION, PLURAL = "continuum.dev", "v1alpha1", "trainingjobs"
TJ_LABEL = "continuum.dev/training-job"
TARGETS = {  # from issue 3
    "idle_p50_ms": 50.0,
    "burst_p99_ms": 2000.0,
    "writes_per_lifecycle": 4.0,
    "rss_mb": 150.0,
    # from issue 7: N TrainingJobs created at once, all reconciled
    "load_jobs_after_last_create_s": 60.0,
    "load_rss_mb": 200.0,
}
T0 = time.monotonic()


LOAD_AVERAGES: dict[str, float] = {}  # 1-minute load average as each phase starts


def say(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {message}", flush=True)


def phase(title: str) -> None:
    """Announce a phase and record the machine's load average as it starts."""
    LOAD_AVERAGES[title.partition(")")[0] + ")"] = os.getloadavg()[0]
    say(f"{title} (load average {os.getloadavg()[0]:.1f})")


def kubectl() -> list[str]:
    return [str(versions.kubectl()), "--kubeconfig", str(KUBECONFIG)]


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "min": min(values),
        "max": max(values),
    }


# --- the cluster -------------------------------------------------------------------------


class Cluster:
    def __init__(self) -> None:
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(KUBECONFIG), client_configuration=cfg)
        cfg.connection_pool_maxsize = 64
        self.api = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.objs = client.CustomObjectsApi(self.api)

    def apply_crds(self) -> None:
        crds = str(REPO / "crds")
        subprocess.run([*kubectl(), "apply", "-f", crds], check=True, capture_output=True)
        subprocess.run(
            [*kubectl(), "wait", "--for=condition=Established", "--timeout=60s", "-f", crds],
            check=True,
            capture_output=True,
        )

    def namespace(self, name: str, *, pods: str | None = None) -> None:
        labels = {"continuum.dev/bench": "true", "pod-security.kubernetes.io/enforce": "restricted"}
        self.core.create_namespace({"metadata": {"name": name, "labels": labels}})
        if pods is not None:
            quota = {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": pods}}}
            self.core.create_namespaced_resource_quota(name, quota)

    def delete_namespace(self, name: str) -> None:
        try:
            self.core.delete_namespace(name, propagation_policy="Background")
        except client.ApiException as err:
            if err.status != 404:
                raise

    def create_tj(self, namespace: str, body: dict[str, Any]) -> None:
        self.objs.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def list_tjs(self, namespace: str) -> list[dict[str, Any]]:
        found = self.objs.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        return list(found["items"])


class JobWatch:
    """Arrival time of each Job's ADDED event in one namespace (keyed by TrainingJob).

    The events are read and stamped by bench/job_arrivals.py, a process of its own (see its
    docstring for why); this side only collects its lines.
    """

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.seen: dict[str, float] = {}
        self.changed = threading.Condition()
        command = [sys.executable, str(BENCH / "job_arrivals.py"), str(KUBECONFIG), namespace]
        self._process = subprocess.Popen([*command, TJ_LABEL], stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"bench/job_arrivals.py did not start (exit {self._process.poll()})")
        atexit.register(self.close)
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            owner, at = line.split()
            with self.changed:
                self.seen.setdefault(owner, float(at))
                self.changed.notify_all()

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)

    def wait_for(self, names: Iterable[str], timeout: float) -> bool:
        wanted = set(names)
        deadline = time.monotonic() + timeout
        with self.changed:
            while not wanted <= self.seen.keys():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(left)
        return True


class TJWatch:
    """Every change the API server records on the TrainingJobs of one namespace."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.modified: dict[str, list[str]] = {}
        self._last: dict[str, dict[str, Any]] = {}
        listed = cluster.objs.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        self._rv = listed["metadata"]["resourceVersion"]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            stream = watch.Watch().stream(
                self.cluster.objs.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                resource_version=self._rv,
                timeout_seconds=60,
            )
            try:
                for event in stream:
                    self._saw(event["type"], event["object"])
            except Exception as err:
                if not watch_broken(err):
                    raise
                relist_until_it_works(self._relist)

    def _saw(self, kind: str, obj: dict[str, Any]) -> None:
        self._rv = obj["metadata"].get("resourceVersion", self._rv)
        name = obj["metadata"]["name"]
        before = self._last.get(name)
        self._last[name] = obj
        if kind == "MODIFIED" and before is not None and before != obj:
            self.modified.setdefault(name, []).append(what_changed(before, obj))

    def _relist(self) -> None:
        """After 410 Gone: list again; a change missed meanwhile shows as one MODIFIED."""
        listed = self.cluster.objs.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL
        )
        for obj in listed["items"]:
            self._saw("MODIFIED", obj)
        self._rv = listed["metadata"]["resourceVersion"]


def watch_broken(err: Exception) -> bool:
    """Whether a watch ended in a way that a fresh list can recover from.

    410 Gone (the resourceVersion was compacted), or the connection dropped: other engineers'
    fault tests restart the shared API server now and then.
    """
    if isinstance(err, client.ApiException):
        return err.status in {410, 429, 500, 502, 503, 504}
    return isinstance(err, (urllib3.exceptions.HTTPError, OSError))


def relist_until_it_works(relist: Callable[[], None]) -> None:
    while True:
        time.sleep(1)
        try:
            relist()
            return
        except Exception as err:
            if not watch_broken(err):
                raise


def what_changed(before: dict[str, Any], after: dict[str, Any]) -> str:
    changed = []
    old_status, new_status = before.get("status") or {}, after.get("status") or {}
    if old_status != new_status:
        changed.append(f"status {old_status.get('phase')}->{new_status.get('phase')}")
    old_meta = {
        k: v for k, v in before["metadata"].items() if k not in {"resourceVersion", "managedFields"}
    }
    new_meta = {
        k: v for k, v in after["metadata"].items() if k not in {"resourceVersion", "managedFields"}
    }
    if old_meta != new_meta:
        keys = sorted(
            k for k in {*old_meta.get("annotations", {}), *new_meta.get("annotations", {})}
            if old_meta.get("annotations", {}).get(k) != new_meta.get("annotations", {}).get(k)
        )  # fmt: skip
        changed.append("metadata" + (f" (annotations {', '.join(keys)})" if keys else ""))
    return "; ".join(changed) or "no visible change"


# --- the operator ------------------------------------------------------------------------


class Operator:
    def __init__(self, namespaces: list[str], workdir: Path, image: str) -> None:
        self.workdir = workdir
        self.image = image
        self.namespaces = namespaces
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0

    @property
    def counts_file(self) -> Path:
        return self.workdir / f"counts-{self.runs}.json"

    @property
    def log(self) -> Path:
        return self.workdir / "operator.log"

    def start(self) -> None:
        self.runs += 1
        python = REPO / ".venv/bin/python"
        args = [str(python), str(BENCH / "counting_operator.py")]
        for namespace in self.namespaces:
            args += ["-n", namespace]
        args += ["--metrics-port", "0", "--liveness", "", "--image", self.image]
        env = {**os.environ, "KUBECONFIG": str(KUBECONFIG), "BENCH_COUNTS": str(self.counts_file)}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)

    def alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"the operator exited:\n{tail}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def counts(self) -> dict[str, int]:
        try:
            return dict(json.loads(self.counts_file.read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def cpu_seconds(self) -> float:
        """User + system CPU time the operator process has used so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_mb(self) -> dict[str, float]:
        assert self.process is not None
        fields = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in {"VmRSS", "VmHWM"}:
                fields[key] = int(value.split()[0]) / 1024
        return fields


# --- objects -----------------------------------------------------------------------------


def training_job(name: str, dataset: str, endpoint: str, bucket: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": "bench",
            "dataset": {"uri": dataset, "target": "label"},
            "estimator": {"class": "LogisticRegression", "params": {"max_iter": 200}},
            "preprocessing": {"categorical": {"columns": ["colour"]}},
            "evaluation": {"metric": "accuracy", "threshold": 0.6, "mustBeat": "none"},
            "storage": {
                "endpoint": endpoint,
                "bucket": bucket,
                "secretRef": {"name": "s3-credentials"},
            },
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
            "backoffLimit": 0,
            "activeDeadlineSeconds": 600,
        },
    }


def dataset_csv() -> bytes:
    """The cluster tests' two-class table, colours as letters and labels as 0/1."""
    return as_csv(two_class_rows(240, 7, colours="rgb", labels=(0, 1)))


def s3_env() -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in (STATE / "s3.env").read_text().splitlines() if "=" in line
    )


def s3_client(env: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT"],  # MinIO on this machine's node address
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


# --- phases ------------------------------------------------------------------------------


def create_timed(cluster: Cluster, namespace: str, body: dict[str, Any]) -> float:
    """Create the object; the wall-clock time at which the API server confirmed it."""
    cluster.create_tj(namespace, body)
    return time.monotonic()


def latencies_ms(created: dict[str, float], jobs: JobWatch) -> list[float]:
    return [(jobs.seen[name] - at) * 1000 for name, at in created.items()]


def phase_idle(
    cluster: Cluster, ns: str, jobs: JobWatch, body: Callable[[str], Any], n: int
) -> list[float]:
    created: dict[str, float] = {}
    for i in range(n):
        name = f"idle-{i:03d}"
        created[name] = create_timed(cluster, ns, body(name))
        if not jobs.wait_for([name], 30):
            raise RuntimeError(f"no Job for {name} after 30s")
        time.sleep(0.5)  # let the operator write the status and go idle again
    values = latencies_ms(created, jobs)
    say(f"  idle: p50 {percentile(values, 50):.1f} ms, p99 {percentile(values, 99):.1f} ms")
    return values


def create_many(
    cluster: Cluster, ns: str, names: list[str], body: Callable[[str], Any]
) -> dict[str, float]:
    with ThreadPoolExecutor(max_workers=32) as pool:
        times = list(pool.map(lambda name: create_timed(cluster, ns, body(name)), names))
    return dict(zip(names, times, strict=True))


def phase_burst(
    cluster: Cluster, ns: str, jobs: JobWatch, body: Callable[[str], Any], n: int
) -> dict[str, Any]:
    names = [f"burst-{i:04d}" for i in range(n)]
    start = time.monotonic()
    created = create_many(cluster, ns, names, body)
    creating = time.monotonic() - start
    say(f"  created {n} TrainingJobs in {creating:.2f}s; waiting for their Jobs")
    if not jobs.wait_for(names, 300):
        missing = len(set(names) - jobs.seen.keys())
        raise RuntimeError(f"{missing} Jobs missing after 300s")
    values = latencies_ms(created, jobs)
    last = max(jobs.seen[name] for name in names) - start
    say(f"  burst: p50 {percentile(values, 50):.0f} ms, p99 {percentile(values, 99):.0f} ms, "
        f"last Job {last:.2f}s after the first create")  # fmt: skip
    return {"latency_ms": values, "create_seconds": creating, "makespan_seconds": last}


def wait(what: str, check: Callable[[], Any], timeout: float, operator: Operator) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        operator.alive()
        value = check()
        if value:
            return value
        time.sleep(1)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def writes_in(counts: dict[str, int], namespace: str) -> dict[str, int]:
    """The non-GET requests (by method, resource, status) the operator sent to ``namespace``."""
    out: dict[str, int] = {}
    for key, count in counts.items():
        method, ns, resource, status = key.split(" ")
        if ns == namespace and method not in {"GET", "WATCH"}:
            name = f"{method} {resource} {status}"
            out[name] = out.get(name, 0) + count
    return out


def phase_lifecycle(
    cluster: Cluster,
    ns: str,
    operator: Operator,
    tjs: TJWatch,
    *,
    body: Callable[[str], Any],
    n: int,
) -> dict[str, Any]:
    names = [f"life-{i}" for i in range(n)]
    for name in names:
        cluster.create_tj(ns, body(name))

    def done() -> list[dict[str, Any]] | None:
        items = [t for t in cluster.list_tjs(ns) if t["metadata"]["name"] in names]
        phases = [(t.get("status") or {}).get("phase") for t in items]
        return (
            items if len(items) == n and all(p in {"Succeeded", "Failed"} for p in phases) else None
        )

    items = wait(f"{n} trainings to finish", done, 420, operator)
    time.sleep(3)  # trailing writes (if any) and the counts file
    phases = {t["metadata"]["name"]: t["status"]["phase"] for t in items}
    say(f"  finished: {phases}")
    writes = writes_in(operator.counts(), ns)
    events = sum(c for k, c in writes.items() if k.split(" ")[1] == "events")
    objects = sum(c for k, c in writes.items() if k.split(" ")[1] != "events")
    watched = {name: tjs.modified.get(name, []) for name in names}
    per_tj_watch = [len(v) + 1 for v in watched.values()]  # + the Job's creation
    result = {
        "trainings": n,
        "phases": phases,
        "writes_by_request": writes,
        "object_writes_per_lifecycle": objects / n,
        "event_posts_per_lifecycle": events / n,
        "writes_per_lifecycle_seen_by_watch": per_tj_watch,
        "trainingjob_changes_seen_by_watch": watched,
    }
    say(f"  writes per lifecycle: {objects / n:.2f} to objects (+{events / n:.2f} Event posts); "
        f"by request: {writes}")  # fmt: skip
    return result


def phase_rss(
    cluster: Cluster,
    ns: str,
    operator: Operator,
    jobs: JobWatch,
    *,
    body: Callable[[str], Any],
    total: int,
) -> dict[str, Any]:
    present = len(cluster.list_tjs(ns))
    names = [f"fill-{i:04d}" for i in range(max(0, total - present))]
    say(f"  {present} present; creating {len(names)} more")
    create_many(cluster, ns, names, body)
    if not jobs.wait_for(names, 300):
        raise RuntimeError("not every filler TrainingJob got its Job")

    def settled() -> bool:
        items = cluster.list_tjs(ns)
        return len(items) >= total and all((t.get("status") or {}).get("phase") for t in items)

    wait(f"all {total} TrainingJobs to have a status", settled, 300, operator)
    time.sleep(5)
    steady = operator.memory_mb()
    say(f"  steady state with {total} TrainingJobs: RSS {steady['VmRSS']:.1f} MB "
        f"(peak {steady['VmHWM']:.1f} MB)")  # fmt: skip

    operator.stop()
    started = time.monotonic()
    operator.start()

    def resumed() -> bool:
        counts = operator.counts()
        posts = sum(c for k, c in counts.items() if k.startswith(f"POST {ns} jobs "))
        return posts >= total

    wait("the restarted operator to resume every TrainingJob", resumed, 300, operator)
    resume_seconds = time.monotonic() - started
    time.sleep(5)
    restarted = operator.memory_mb()
    say(f"  after a restart: resumed {total} in {resume_seconds:.1f}s, RSS "
        f"{restarted['VmRSS']:.1f} MB (peak {restarted['VmHWM']:.1f} MB)")  # fmt: skip
    restart_writes = writes_in(operator.counts(), ns)
    return {
        "trainingjobs": total,
        "steady_mb": steady,
        "restart_mb": restarted,
        "restart_resume_seconds": resume_seconds,
        "restart_requests": restart_writes,
    }


def phase_load(
    cluster: Cluster, ns: str, operator: Operator, *, body: Callable[[str], Any], n: int
) -> dict[str, Any]:
    """``n`` TrainingJobs at once on a fresh operator: time to the last Job, and RSS."""
    jobs = JobWatch(cluster, ns)
    operator.start()
    cluster.create_tj(ns, body("warmup"))
    if not jobs.wait_for(["warmup"], 60):
        operator.alive()
        raise RuntimeError("the load operator created no Job for the warm-up object in 60s")
    time.sleep(1)
    before = operator.memory_mb()
    cpu = operator.cpu_seconds()
    names = [f"load-{i:04d}" for i in range(n)]
    start = time.monotonic()
    created = create_many(cluster, ns, names, body)
    last_create = max(created.values())
    say(f"  created {n} TrainingJobs in {last_create - start:.2f}s; waiting for their Jobs")
    if not jobs.wait_for(names, 600):
        missing = len(set(names) - jobs.seen.keys())
        raise RuntimeError(f"{missing} Jobs missing after 600s")
    last_job = max(jobs.seen[name] for name in names)
    operator_cpu = operator.cpu_seconds() - cpu

    def settled() -> bool:
        items = cluster.list_tjs(ns)
        return len(items) > n and all((t.get("status") or {}).get("phase") for t in items)

    wait(f"all {n} TrainingJobs to have a status", settled, 300, operator)
    settled_after = time.monotonic() - last_create
    time.sleep(5)
    memory = operator.memory_mb()
    values = latencies_ms(created, jobs)
    say(f"  load: last Job {last_job - last_create:.1f}s after the last create "
        f"({last_job - start:.1f}s after the first); every status {settled_after:.1f}s after it; "
        f"RSS {memory['VmRSS']:.1f} MB, peak {memory['VmHWM']:.1f} MB "
        f"(idle before: {before['VmRSS']:.1f} MB); operator CPU {operator_cpu:.1f}s")  # fmt: skip
    return {
        "trainingjobs": n,
        "create_seconds": last_create - start,
        "jobs_after_last_create_seconds": last_job - last_create,
        "jobs_after_first_create_seconds": last_job - start,
        "statuses_after_last_create_seconds": settled_after,
        "latency": summary(values),
        "operator_cpu_seconds": operator_cpu,
        "idle_mb": before,
        "settled_mb": memory,
    }


# --- report ------------------------------------------------------------------------------


def figures(results: dict[str, Any]) -> list[tuple[str, float, float, str]]:
    rss = max(results["rss"]["steady_mb"]["VmRSS"], results["rss"]["restart_mb"]["VmRSS"])
    return [
        ("idle p50, TrainingJob -> Job (ms)", results["idle"]["p50"], TARGETS["idle_p50_ms"], "ms"),
        ("200-at-once p99 (ms)", results["burst"]["p99"], TARGETS["burst_p99_ms"], "ms"),
        (
            "API writes per lifecycle (objects)",
            results["lifecycle"]["object_writes_per_lifecycle"],
            TARGETS["writes_per_lifecycle"],
            "",
        ),
        ("operator RSS, 1,000 TrainingJobs (MB)", rss, TARGETS["rss_mb"], "MB"),
        *load_figures(results.get("load")),
    ]


def load_figures(load: dict[str, Any] | None) -> list[tuple[str, float, float, str]]:
    if not load:
        return []
    n = f"{load['trainingjobs']:,}"
    return [
        (
            f"{n} at once: last Job after the last create (s)",
            load["jobs_after_last_create_seconds"],
            TARGETS["load_jobs_after_last_create_s"],
            "s",
        ),
        (
            f"{n} at once: operator peak RSS (MB)",
            load["settled_mb"]["VmHWM"],
            TARGETS["load_rss_mb"],
            "MB",
        ),
    ]


def table(rows: list[tuple[str, float, float, str]]) -> list[str]:
    lines = ["| figure | measured | target | ratio | |", "|---|---:|---:|---:|---|"]
    for name, value, target, _unit in rows:
        verdict = "ok" if value <= target else "MISSED"
        lines.append(f"| {name} | {value:.1f} | ≤ {target:g} | {value / target:.2f} | {verdict} |")
    return lines


def write_results(results: dict[str, Any], command: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = BENCH / "results" / f"{stamp}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    rows = figures(results)
    life = results["lifecycle"]
    md = [
        "# TrainingJob benchmark results",
        "",
        f"Measured {results['date']} on the local cluster ({results['host']}; 1-minute load "
        f"average as each phase started: {format_loads(results.get('load_averages', {}))}), with",
        "",
        f"    {command}",
        "",
        *table(rows),
        "",
        f"- idle: {results['idle']['n']} TrainingJobs one at a time; p99 "
        f"{results['idle']['p99']:.1f} ms.",
        f"- burst: {results['burst']['n']} created at once ({results['burst_create_seconds']:.2f}s "
        f"to create them); p50 {results['burst']['p50']:.0f} ms; last Job "
        f"{results['burst_makespan_seconds']:.2f}s after the first create; the operator used "
        f"{results.get('burst_operator_cpu_seconds', float('nan')):.1f}s of CPU meanwhile.",
        f"- writes: {life['trainings']} real trainings to {sorted(set(life['phases'].values()))}; "
        f"requests by kind: {life['writes_by_request']}; plus "
        f"{life['event_posts_per_lifecycle']:.1f} Event posts per lifecycle (not counted above).",
        f"- RSS: steady {results['rss']['steady_mb']['VmRSS']:.1f} MB; after a restart that "
        f"resumed all {results['rss']['trainingjobs']} in "
        f"{results['rss']['restart_resume_seconds']:.1f}s: "
        f"{results['rss']['restart_mb']['VmRSS']:.1f} MB (peak "
        f"{results['rss']['restart_mb']['VmHWM']:.1f} MB).",
        *load_lines(results.get("load")),
        "",
        f"Raw figures: `bench/results/{out.name}` (not committed). Method: bench/README.md.",
        "",
    ]
    replace_section(BENCH / "RESULTS.md", "\n".join(md))
    return out


def format_loads(loads: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.1f}" for name, value in loads.items()) or "not recorded"


def load_lines(load: dict[str, Any] | None) -> list[str]:
    if not load:
        return []
    return [
        f"- load (issue 7): a fresh operator on a fresh namespace; {load['trainingjobs']} "
        f"created at once in {load['create_seconds']:.2f}s; last Job "
        f"{load['jobs_after_last_create_seconds']:.1f}s after the last create; p50/p99 "
        f"{load['latency']['p50']:.0f}/{load['latency']['p99']:.0f} ms; every status "
        f"{load['statuses_after_last_create_seconds']:.1f}s after the last create; operator CPU "
        f"{load['operator_cpu_seconds']:.1f}s; RSS {load['settled_mb']['VmRSS']:.1f} MB settled, "
        f"peak {load['settled_mb']['VmHWM']:.1f} MB (idle before: "
        f"{load['idle_mb']['VmRSS']:.1f} MB).",
    ]


BEGIN, END = "<!-- BEGIN trainingjob -->", "<!-- END trainingjob -->"
TITLE = "# TrainingJob benchmark results"


def replace_section(path: Path, text: str) -> None:
    """Write ``text`` between our markers at the top of ``path``; other sections stay as they are.

    A file from before the markers starts with our unmarked section, up to the first other
    section's marker: that part is replaced.
    """
    block = f"{BEGIN}\n{text.rstrip()}\n{END}\n"
    current = path.read_text() if path.exists() else ""
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
    elif current.startswith(TITLE) and "<!-- BEGIN " in current:
        head, tail = "", "<!-- BEGIN " + current.split("<!-- BEGIN ", 1)[1]
    else:
        head, tail = "", current
    path.write_text(head + block + ("\n" + tail if tail else ""))


def prepare(cluster: Cluster, s3: Any, ns: str, run_ns: str, bucket: str) -> None:
    """CRDs, the two namespaces, the run namespace's S3 Secret, the bucket and dataset."""
    cluster.apply_crds()
    cluster.namespace(ns, pods="0")
    cluster.namespace(run_ns)
    src = cluster.core.read_namespaced_secret("minio-credentials", "continuum-system")
    cluster.core.create_namespaced_secret(
        run_ns, {"metadata": {"name": "s3-credentials"}, "data": src.data}
    )
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="data/train.csv", Body=dataset_csv())


def run_phases(
    args: argparse.Namespace,
    cluster: Cluster,
    operators: tuple[Operator, Operator],
    body: Callable[[str], Any],
) -> dict[str, Any]:
    operator, load_operator = operators
    ns, run_ns = operator.namespaces
    jobs = JobWatch(cluster, ns)
    tjs = TJWatch(cluster, run_ns)
    operator.start()
    say("operator started; warming up")
    cluster.create_tj(ns, body("warmup"))
    if not jobs.wait_for(["warmup"], 60):
        operator.alive()
        raise RuntimeError("the operator created no Job for the warm-up object in 60s")
    time.sleep(1)
    phase(f"(a) idle: {args.idle} TrainingJobs, one at a time")
    idle = phase_idle(cluster, ns, jobs, body, args.idle)
    phase(f"(b) burst: {args.burst} TrainingJobs at once")
    cpu, wall = operator.cpu_seconds(), time.monotonic()
    burst = phase_burst(cluster, ns, jobs, body, args.burst)
    burst["operator_cpu_seconds"] = operator.cpu_seconds() - cpu
    burst["wall_seconds"] = time.monotonic() - wall
    say(f"  operator CPU during the burst: {burst['operator_cpu_seconds']:.1f}s "
        f"in {burst['wall_seconds']:.1f}s")  # fmt: skip
    phase(f"(c) writes: {args.lifecycles} real trainings in {run_ns}")
    lifecycle = phase_lifecycle(cluster, run_ns, operator, tjs, body=body, n=args.lifecycles)
    phase(f"(d) RSS with {args.total} TrainingJobs")
    rss = phase_rss(cluster, ns, operator, jobs, body=body, total=args.total)
    load = None
    if args.load:
        operator.stop()  # one operator at a time on the 2 CPUs
        phase(f"(e) load: {args.load} TrainingJobs at once, fresh operator and namespace")
        cluster.namespace(load_operator.namespaces[0], pods="0")
        load = phase_load(
            cluster, load_operator.namespaces[0], load_operator, body=body, n=args.load
        )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end",
        "targets": TARGETS,
        "idle": summary(idle),
        "idle_ms": idle,
        "burst": summary(burst["latency_ms"]),
        "burst_ms": burst["latency_ms"],
        "burst_create_seconds": burst["create_seconds"],
        "burst_makespan_seconds": burst["makespan_seconds"],
        "burst_operator_cpu_seconds": burst["operator_cpu_seconds"],
        "lifecycle": lifecycle,
        "rss": rss,
        "load": load,
        "load_averages": dict(LOAD_AVERAGES),
    }


def cleanup(cluster: Cluster, s3: Any, namespaces: list[str], bucket: str) -> None:
    say("cleaning up")
    for name in namespaces:
        cluster.delete_namespace(name)
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)
    except Exception as err:
        say(f"bucket cleanup: {err}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--idle", type=int, default=20, help="idle samples (default 20)")
    parser.add_argument("--burst", type=int, default=200, help="created at once (default 200)")
    parser.add_argument("--total", type=int, default=1000, help="present for RSS (default 1000)")
    parser.add_argument("--lifecycles", type=int, default=3, help="real trainings (default 3)")
    parser.add_argument(
        "--load", type=int, default=1000, help="created at once on a fresh operator (0: skip)"
    )
    parser.add_argument("--image", default="continuum:0.1.0", help="the trainer image")
    args = parser.parse_args()
    command = " ".join([".venv/bin/python", "bench/trainingjob_latency.py", *sys.argv[1:]])

    cluster = Cluster()
    run_id = uuid.uuid4().hex[:8]
    ns, run_ns, bucket = f"bench-{run_id}", f"bench-{run_id}-run", f"bench-{run_id}"
    env = s3_env()
    s3 = s3_client(env)
    workdir = Path(f"/tmp/continuum-bench-{run_id}")
    workdir.mkdir()
    operator = Operator([ns, run_ns], workdir, args.image)
    load_ns = f"bench-{run_id}-load"
    (workdir / "load").mkdir()
    load_operator = Operator([load_ns], workdir / "load", args.image)
    say(f"namespaces {ns} (pods quota 0) and {run_ns}; operator log {operator.log}")
    # The node address, not the Service name: the bench runs the operator on the host, and it
    # reads each finished run's manifest from there.
    dataset, endpoint = f"s3://{bucket}/data/train.csv", env["S3_ENDPOINT"]
    try:
        prepare(cluster, s3, ns, run_ns, bucket)
        results = run_phases(
            args,
            cluster,
            (operator, load_operator),
            lambda name: training_job(name, dataset, endpoint, bucket),
        )
        results["command"] = command
        out = write_results(results, command)
        print()
        for line in table(figures(results)):
            print(line)
        print(f"\nresults: {out.relative_to(REPO)}, summary: bench/RESULTS.md")
        return 0
    finally:
        operator.stop()
        load_operator.stop()
        cleanup(cluster, s3, [ns, run_ns, load_ns], bucket)


if __name__ == "__main__":
    sys.exit(main())
