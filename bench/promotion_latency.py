"""ModelDeployment promotion latency with 10 vs 1,000 TrainingJobs of its model present
(issue 15: reacting to one TrainingJob must not cost O(N)). See bench/README.md.

    .venv/bin/python bench/promotion_latency.py [--sizes 10,1000] [--samples 10]
                                                [--operator-src DIR] [--label NAME]

For each size N, on a fresh namespace (ResourceQuota of 0 pods: no server or trainer pod ever
runs) with a fresh operator (``bench/counting_operator.py``, which tallies its API requests):

1. a ModelDeployment ``promo`` of model ``promo`` (``latestQualified``) and N TrainingJobs of
   that model, each made Succeeded and qualified with version 1..N by a status write of the
   bench (the TrainingJob controller leaves a finished run alone), until the ModelDeployment's
   Deployment runs version N and the operator is idle;
2. ``--samples`` times, one at a time: a new TrainingJob, its status written Succeeded and
   qualified with the next version; latency = that status write returned → a watch on the
   namespace's Deployments (opened before) delivers the Deployment whose pod template carries
   the new version (the operator's whole reaction: TrainingJob event, reconcile, status
   write, server-side apply). The rollout itself (pods pulling and verifying the model) is
   the same whatever N and is not part of it; no pod runs.

Also per promotion: the operator's API requests (by kind) and CPU seconds. ``--operator-src``
runs the operator from another checkout (``PYTHONPATH=<DIR>/operator``, e.g. a ``git
worktree`` of the commit before a change) for a same-hour before/after. Results: printed,
``bench/results/promotion-<timestamp>.json`` and the promotion section of bench/RESULTS.md
(``--label`` names the run there; sections of other labels are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from trainingjob_latency import (  # bench/ is this script's directory: sys.path[0]
    BENCH,
    GROUP,
    PLURAL,
    REPO,
    VERSION,
    Cluster,
    Operator,
    say,
    summary,
)

MD_NAME, MODEL = "promo", "promo"
VERSION_LABEL = "continuum.dev/model-version"
SETTLE_TIMEOUT = 900.0
SAMPLE_TIMEOUT = 60.0
BEGIN, END = "<!-- BEGIN promotion -->", "<!-- END promotion -->"


def training_job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": MODEL,
            "dataset": {"uri": "s3://bench/data/train.csv", "target": "label"},
            "estimator": {"class": "LogisticRegression", "params": {"max_iter": 200}},
            "preprocessing": {"categorical": {"columns": ["colour"]}},
            "evaluation": {"metric": "accuracy", "threshold": 0.6, "mustBeat": "none"},
            "storage": {
                "endpoint": "http://minio.invalid:9000",
                "bucket": "bench",
                "secretRef": {"name": "s3-credentials"},
            },
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
            "backoffLimit": 0,
            "activeDeadlineSeconds": 600,
        },
    }


def model_deployment() -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": MD_NAME},
        "spec": {
            "model": MODEL,
            "version": {"policy": "latestQualified"},
            "replicas": 1,
            "storage": {
                "endpoint": "http://minio.invalid:9000",
                "bucket": "bench",
                "secretRef": {"name": "s3-credentials"},
            },
            "rolloutDeadlineSeconds": 3600,
        },
    }


def qualified_status(version: int) -> dict[str, Any]:
    uri = f"s3://bench/models/{MODEL}/{version}/"
    return {
        "status": {
            "phase": "Succeeded",
            "qualified": True,
            "model": {"version": version, "uri": uri},
            "message": "written by bench/promotion_latency.py",
        }
    }


class DeploymentWatch:
    """When the namespace's Deployment first showed each model version in its pod template."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.apps = client.AppsV1Api(cluster.api)
        self.namespace = namespace
        self.seen: dict[int, float] = {}
        self.changed = threading.Condition()
        self._rv = self.apps.list_namespaced_deployment(namespace).metadata.resource_version
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                stream = watch.Watch().stream(
                    self.apps.list_namespaced_deployment,
                    self.namespace,
                    resource_version=self._rv,
                    timeout_seconds=300,
                )
                for event in stream:
                    self._saw(event["object"])
            except Exception as err:  # a broken watch: list again (a missed version shows now)
                say(f"  deployment watch broken ({err}); listing again")
                time.sleep(1)
                listed = self.apps.list_namespaced_deployment(self.namespace)
                for item in listed.items:
                    self._saw(item)
                self._rv = listed.metadata.resource_version

    def _saw(self, deployment: Any) -> None:
        now = time.monotonic()
        self._rv = deployment.metadata.resource_version
        labels = deployment.spec.template.metadata.labels or {}
        text = str(labels.get(VERSION_LABEL, ""))
        if text.isdigit():
            with self.changed:
                self.seen.setdefault(int(text), now)
                self.changed.notify_all()

    def wait_for(self, version: int, timeout: float, operator: Operator) -> float | None:
        """When ``version`` was first seen; None after ``timeout``; raises when the operator
        exits meanwhile."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while version not in self.seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.changed.wait(min(left, 1.0))
                operator.alive()
            return self.seen[version]


def write_status(cluster: Cluster, namespace: str, name: str, version: int) -> None:
    """Make the TrainingJob Succeeded and qualified; retried while the operator writes too."""
    for _ in range(20):
        try:
            cluster.objs.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, qualified_status(version)
            )
            return
        except client.ApiException as err:
            if err.status not in {404, 409, 429, 500, 503}:
                raise
            time.sleep(0.2)
    raise RuntimeError(f"could not write the status of TrainingJob {namespace}/{name}")


def populate(cluster: Cluster, namespace: str, n: int) -> None:
    """N qualified TrainingJobs of the model, versions 1..N."""

    def one(version: int) -> None:
        name = f"bg-{version:05d}"
        cluster.create_tj(namespace, training_job(name))
        write_status(cluster, namespace, name, version)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(1, n + 1)))


def idle(operator: Operator, quiet: float = 3.0, timeout: float = SETTLE_TIMEOUT) -> None:
    """Wait until the operator has made no request for ``quiet`` seconds (watches aside)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        operator.alive()
        counts = {k: v for k, v in operator.counts().items() if not k.startswith("WATCH")}
        if counts != last:
            last, since = counts, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the operator did not go idle within {timeout:.0f}s")


def requests_since(before: dict[str, int], after: dict[str, int]) -> Counter[str]:
    """Requests made between two tallies, by ``METHOD resource`` (namespace and status dropped)."""
    made: Counter[str] = Counter()
    for key, count in after.items():
        delta = count - before.get(key, 0)
        if delta > 0 and not key.startswith("WATCH"):
            method, _ns, resource, _status = key.split(" ")
            made[f"{method} {resource}"] += delta
    return made


def delete_all_jobs(cluster: Cluster, namespace: str) -> None:
    """Delete the TrainingJobs' Jobs (a finished TrainingJob is never re-run, even without its
    Job). Left alone, each one's pods are refused by the 0-pods quota again and again, and the
    Job controller's retries load the API server in proportion to N during the promotions."""
    cluster.batch.delete_collection_namespaced_job(namespace, propagation_policy="Background")
    while cluster.batch.list_namespaced_job(namespace, limit=1).items:
        time.sleep(1)
    say("  their Jobs deleted")


def run_size(
    cluster: Cluster, n: int, samples: int, image: str, workdir: Path, *, delete_jobs: bool
) -> dict[str, Any]:
    namespace = f"bench-promo-{uuid.uuid4().hex[:6]}-{n}"
    cluster.namespace(namespace, pods="0")
    (workdir / str(n)).mkdir(parents=True)
    operator = Operator([namespace], workdir / str(n), image)
    try:
        deployments = DeploymentWatch(cluster, namespace)
        operator.start()
        say(f"N={n}: namespace {namespace}, operator log {operator.log}")
        cluster.objs.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeldeployments", model_deployment()
        )
        start = time.monotonic()
        populate(cluster, namespace, n)
        if deployments.wait_for(n, SETTLE_TIMEOUT, operator) is None:
            raise RuntimeError(f"N={n}: the Deployment never ran version {n}")
        idle(operator)
        settle = time.monotonic() - start
        say(f"  {n} qualified TrainingJobs present, Deployment at v{n}, idle after {settle:.1f}s")
        if delete_jobs:
            delete_all_jobs(cluster, namespace)
            idle(operator)
        measured = measure(cluster, namespace, operator, deployments, n=n, samples=samples)
        return {"trainingjobs": n, "settle_seconds": settle, "jobs_deleted": delete_jobs,
                **measured}  # fmt: skip
    finally:
        operator.stop()
        cluster.delete_namespace(namespace)


def measure(
    cluster: Cluster,
    namespace: str,
    operator: Operator,
    deployments: DeploymentWatch,
    *,
    n: int,
    samples: int,
) -> dict[str, Any]:
    latencies: list[float] = []
    per_promotion: list[dict[str, Any]] = []
    for k in range(1, samples + 1):
        version = n + k
        name = f"new-{version:05d}"
        cluster.create_tj(namespace, training_job(name))
        idle(operator, quiet=1.0)  # its Job and first status: not part of the promotion
        before, cpu = operator.counts(), operator.cpu_seconds()
        write_status(cluster, namespace, name, version)
        written = time.monotonic()
        seen = deployments.wait_for(version, SAMPLE_TIMEOUT, operator)
        if seen is None:
            raise RuntimeError(f"N={n}: version {version} not rolled out in {SAMPLE_TIMEOUT}s")
        idle(operator, quiet=1.0)
        latencies.append((seen - written) * 1000)
        made = requests_since(before, operator.counts())
        per_promotion.append({"requests": dict(made), "cpu_seconds": operator.cpu_seconds() - cpu})
        say(f"  v{version}: {latencies[-1]:.0f} ms, {sum(made.values())} requests "
            f"({', '.join(f'{c} {k}' for k, c in sorted(made.items()))}), "
            f"CPU {per_promotion[-1]['cpu_seconds']:.2f}s")  # fmt: skip
    requests = [sum(p["requests"].values()) for p in per_promotion]
    return {
        "latency_ms": summary(latencies),
        "requests_per_promotion": summary([float(r) for r in requests]),
        "cpu_seconds_per_promotion": summary([p["cpu_seconds"] for p in per_promotion]),
        "promotions": per_promotion,
        "rss_mb": operator.memory_mb(),
    }


def markdown(label: str, results: dict[str, Any], command: str) -> list[str]:
    lines = [
        f"### {label}",
        "",
        f"Measured {results['date']} ({results['host']}, 1-minute load average "
        f"{results['load_average']:.1f} at the start), with",
        "",
        f"    {command}",
        "",
        "| TrainingJobs of the model | promotion p50 (ms) | p90 | max | requests per promotion "
        "(median) | operator CPU per promotion (s, median) | setup until idle (s) | RSS (MB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in results["sizes"]:
        lat = size["latency_ms"]
        lines.append(
            f"| {size['trainingjobs']:,} | {lat['p50']:.0f} | {lat['p90']:.0f} | {lat['max']:.0f} "
            f"| {size['requests_per_promotion']['p50']:.0f} "
            f"| {size['cpu_seconds_per_promotion']['p50']:.3f} | {size['settle_seconds']:.0f} "
            f"| {size['rss_mb'].get('VmRSS', float('nan')):.0f} |"
        )
    kinds = Counter[str]()
    for size in results["sizes"]:
        for promotion in size["promotions"]:
            kinds.update(promotion["requests"])
    kept = not all(size.get("jobs_deleted") for size in results["sizes"])
    jobs = (
        "the setup's Jobs kept (their pods refused by the quota, retried by the Job controller)"
        if kept
        else "the setup's Jobs deleted before the promotions"
    )
    lines += ["", f"Requests over all promotions, by kind: {dict(sorted(kinds.items()))}; {jobs}.",
              ""]  # fmt: skip
    return lines


def replace_section(label: str, block: list[str]) -> None:
    """Keep bench/RESULTS.md's other sections, the section's heading and summary, and other
    labels' runs; replace this label's (the summary under the heading was dropped before)."""
    path = BENCH / "RESULTS.md"
    current = path.read_text() if path.exists() else ""
    runs: dict[str, str] = {}
    title = "## ModelDeployment promotion latency (bench/promotion_latency.py)\n\n"
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        inner, tail = rest.split(END, 1)
        first, *chunks = inner.split("\n### ")
        title = first.lstrip("\n").rstrip() + "\n\n"  # the heading and the summary under it
        for chunk in chunks:
            runs[chunk.split("\n", 1)[0].strip()] = "### " + chunk.rstrip() + "\n"
    else:
        head, tail = current.rstrip() + "\n\n", "\n"
    runs[label] = "\n".join(block).rstrip() + "\n"
    body = "\n".join(runs[k] for k in sorted(runs))
    path.write_text(f"{head}{BEGIN}\n{title}{body}{END}{tail}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10,1000", help="TrainingJobs present (default 10,1000)")
    parser.add_argument("--samples", type=int, default=10, help="promotions per size (default 10)")
    parser.add_argument("--operator-src", type=Path, help="run the operator of this checkout")
    parser.add_argument("--label", default="this tree", help="the run's name in RESULTS.md")
    parser.add_argument("--image", default="continuum:bench", help="image named in the children")
    parser.add_argument(
        "--keep-jobs", action="store_true",
        help="leave the setup's Jobs in place during the promotions (default: delete them)",
    )  # fmt: skip
    args = parser.parse_args()
    command = shlex.join([".venv/bin/python", "bench/promotion_latency.py", *sys.argv[1:]])
    if args.operator_src is not None:
        os.environ["PYTHONPATH"] = str(args.operator_src.resolve() / "operator")
        say(f"operator from {args.operator_src} (PYTHONPATH={os.environ['PYTHONPATH']})")
    cluster = Cluster()
    cluster.apply_crds()
    workdir = Path(f"/tmp/continuum-bench-promo-{uuid.uuid4().hex[:8]}")
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{os.cpu_count()} CPUs",
        "load_average": os.getloadavg()[0],
        "command": command,
        "sizes": [],
    }
    for n in (int(s) for s in args.sizes.split(",")):
        size = run_size(
            cluster, n, args.samples, args.image, workdir, delete_jobs=not args.keep_jobs
        )
        results["sizes"].append(size)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = BENCH / "results" / f"promotion-{stamp}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    block = markdown(args.label, results, command)
    replace_section(args.label, block)
    print("\n".join(block))
    print(f"results: {out.relative_to(REPO)}, summary: bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
