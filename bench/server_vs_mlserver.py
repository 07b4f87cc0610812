"""Model server benchmark: `continuum serve` against MLServer 1.7.1 (see bench/README.md).

    .venv/bin/python bench/server_vs_mlserver.py [--duration 10] [--concurrency 1,16,64]
                                                 [--models default,demo,forest-cat,hgb]
                                                 [--unbatched]

Publishes the pipelines users train (issue 21) with the project's own trainer (``run_training``
on generated tables, to a bucket of its own in the local MinIO, deleted at the end): the
default TrainingJob (20 numeric features, mean imputation + standard scaling,
LogisticRegression), the demo's (3 numeric features with the defaults + a one-hot ``plan``,
LogisticRegression), the same table with a 100-tree RandomForest and with
HistGradientBoosting (``plan`` native); ``--models logreg,forest`` adds the earlier headline's
20 passed-through features. Then serves each

  a. by ``continuum serve`` as deployed (adaptive batching on, its defaults), loading the
     verified model from S3 the normal way; inference log off (MLServer keeps none);
  b. with ``--unbatched``: by ``continuum serve --max-batch-size 1`` (batching off), the
     reference at concurrency 1; a concurrency-1 trio then runs a, b and a second copy of b
     (an A/A control: its distance from b is the noise of the comparison) side by side;
  c. by MLServer 1.7.1 + mlserver-sklearn with its default settings (one inference worker
     process, no adaptive batching);
  d. by MLServer with its best settings here: in-process inference (parallel_workers 0) and
     adaptive batching on;

with the same fitted pipeline (MLServer's copy saved with joblib), every server pinned to
CPU 0 and wrk pinned to CPU 1, all on 127.0.0.1. Each request is one row as an OIP v2 body
of one named tensor per feature (FP64, or BYTES for a category; content_type "pd", so MLServer
builds the DataFrame the pipeline was fitted on) asking for the ``predict`` output; both
servers get the same bodies (bench/wrk/infer.lua). For each server and concurrency:
requests/s, p50 and p99 latency.

Also measures, in this process pinned to CPU 0, the floors (the per-row cost of a bare batched
``pipeline.predict`` on a DataFrame, and of the server's scorer), the scoring paths (the
scorer as loaded against itself with the compiled path off) and the batcher's cost per lone
request (sequential 1-row requests through the server's ``Batcher`` against direct
``ServedModel.predict`` calls, on a uvloop event loop as the server runs). Results go to
bench/results/<timestamp>-server.json and to the "Model server" section of bench/RESULTS.md.

MLServer lives in its own venv (default /var/cache/continuum/bench-venvs/mlserver-1.7.1),
created here when missing; the project's .venv is not touched.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import joblib
import numpy as np
import pandas as pd
import sklearn
import uvloop
from sklearn.datasets import make_classification

from continuum.server.batching import Batcher
from continuum.server.inputs import FeatureRows
from continuum.server.model import load_served_model
from continuum.server.scoring import Scorer
from continuum.storage import ObjectStore, S3Settings
from continuum.trainer.config import TrainingConfig
from continuum.trainer.run import run_training

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
LUA = BENCH / "wrk" / "infer.lua"
S3_ENV = Path(os.environ.get("CONTINUUM_STATE", "/var/lib/continuum-cluster")) / "s3.env"
CACHE = Path(os.environ.get("CONTINUUM_CACHE", "/var/cache/continuum"))
MLSERVER_VERSION = "1.7.1"
MLSERVER_VENV = CACHE / "bench-venvs" / f"mlserver-{MLSERVER_VERSION}"
# uvloop 0.22 keeps MLServer 1.7.1's inference workers from starting; a plain
# `pip install mlserver` lacks httptools (uvicorn then falls back to h11).
MLSERVER_REQUIREMENTS = [
    f"mlserver=={MLSERVER_VERSION}",
    f"mlserver-sklearn=={MLSERVER_VERSION}",
    "uvloop<0.22",
    "httptools",
    f"scikit-learn=={sklearn.__version__}",  # the same as .venv, so the joblib file loads
]
HOST = "127.0.0.1"
PORTS = {
    "continuum": 18091,
    "mlserver_http": 18092,
    "mlserver_grpc": 18093,
    "mlserver_metrics": 18094,
    "trio": 18100,  # the concurrency-1 trio: 3 * TRIO_COPIES ports from here
}
# Concurrency-1 trio: runs per server, in an order that changes every round (each server
# first, second and third equally often, see trio_orders), then the medians of the p50s.
PAIR_ROUNDS = 6  # concurrency-1 trio: rounds over all its processes, each first once
TRIO_COPIES = 2  # processes per configuration in the trio
N_FEATURES = 20
FEATURES = [f"f{i:02d}" for i in range(N_FEATURES)]
# The demo's table (hack/demo/loop.py): three numbers and a plan, one-hot encoded.
CHURN_NUMERIC = {"monthly_charges": (50.0, 10.0), "data_usage_gb": (20.0, 5.0),
                 "support_minutes": (15.0, 5.0)}  # fmt: skip
PLANS = ["basic", "standard", "premium"]
CHURN_FEATURES = [*CHURN_NUMERIC, "plan"]
PLAN_CATEGORICAL = {"categorical": {"columns": ["plan"]}}  # numeric columns: the API's defaults
PASSTHROUGH = {"numeric": {"impute": "none", "scale": "none"}}


@dataclass(frozen=True)
class BenchModel:
    """One pipeline under test: what the trainer is asked for, on which table."""

    name: str  # the served model's name
    what: str  # for the report
    estimator: str
    params: dict[str, Any]
    table: str  # "numeric" (20 numeric features) | "churn" (the demo's 3 numeric + plan)
    preprocessing: dict[str, Any]

    @property
    def features(self) -> list[str]:
        return FEATURES if self.table == "numeric" else CHURN_FEATURES


FOREST = {"n_estimators": 100}
MODELS = {  # short name -> the pipeline; the first four are the default run (issue 21)
    "default": BenchModel("bench-default", "the default TrainingJob: 20 numeric features, mean "
                          "imputation + standard scaling, LogisticRegression",
                          "LogisticRegression", {}, "numeric", {}),
    "demo": BenchModel("bench-demo", "the demo's: 3 numeric (defaults) + plan one-hot, "
                       "LogisticRegression(max_iter=200)", "LogisticRegression",
                       {"max_iter": 200}, "churn", PLAN_CATEGORICAL),
    "forest-cat": BenchModel("bench-forest-cat", "3 numeric (defaults) + plan one-hot, "
                             "RandomForestClassifier(100 trees)", "RandomForestClassifier",
                             FOREST, "churn", PLAN_CATEGORICAL),
    "hgb": BenchModel("bench-hgb", "3 numeric (defaults) + plan native (encode auto), "
                      "HistGradientBoostingClassifier (100 iterations)",
                      "HistGradientBoostingClassifier", {}, "churn", PLAN_CATEGORICAL),
    "logreg": BenchModel("bench-logreg", "20 numeric features passed through (impute none, "
                         "scale none), LogisticRegression", "LogisticRegression", {},
                         "numeric", PASSTHROUGH),
    "forest": BenchModel("bench-forest", "20 numeric features passed through, "
                         "RandomForestClassifier(100 trees)", "RandomForestClassifier", FOREST,
                         "numeric", PASSTHROUGH),
}  # fmt: skip
DEFAULT_MODELS = ("default", "demo", "forest-cat", "hgb")
MLSERVER_BEST = {"parallel_workers": 0, "max_batch_size": 32, "max_batch_time": 0.002}
TARGET_RATIO = 5.0  # at concurrency 16 and 64: >= 5x MLServer's best, lower p99 (issue 21)
TARGET_CONCURRENCY = (16, 64)
TARGET_C1_P50_MS = 1.5  # one connection, LogisticRegression pipelines (issue 21)
TARGET_FLOOR_RATIO = 2.0  # c16 ms per request <= 2x the scorer's ms per row at batch 16
C1_P50_TOLERANCE = (
    1.05  # at concurrency 1, batched p50 within 5% of unbatched counts as "not worse"
)
T0 = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {message}", flush=True)


@dataclass
class Server:
    """One server configuration under test."""

    key: str  # continuum | continuum-unbatched | mlserver-default | mlserver-best
    label: str
    port: int
    start: Callable[[str, Path], subprocess.Popen[bytes]] = field(repr=False)


# ---------------------------------------------------------------- environment


def s3_env() -> dict[str, str]:
    values = dict(
        line.split("=", 1)
        for line in S3_ENV.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return {
        "AWS_ACCESS_KEY_ID": values["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": values["AWS_SECRET_ACCESS_KEY"],
        "AWS_DEFAULT_REGION": values.get("AWS_DEFAULT_REGION", "us-east-1"),
        "CONTINUUM_S3_ENDPOINT": values["S3_ENDPOINT"],
    }


def require_tools() -> None:
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"missing {missing}: apt-get install -y wrk (taskset is in util-linux)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs 2 CPUs: the servers on CPU 0, wrk on CPU 1")


def mlserver_venv() -> Path:
    """The MLServer venv, created (from PyPI) when missing."""
    binary = MLSERVER_VENV / "bin" / "mlserver"
    if not binary.exists():
        say(f"creating {MLSERVER_VENV}: pip install {' '.join(MLSERVER_REQUIREMENTS)}")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(MLSERVER_VENV)], check=True)
        pip = [str(MLSERVER_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, *MLSERVER_REQUIREMENTS], check=True)
    return binary


def venv_versions(python: Path, packages: list[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for p in sys.argv[1:]:\n"
        "    try: out[p] = m.version(p)\n"
        "    except m.PackageNotFoundError: out[p] = None\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run([str(python), "-c", code, *packages], capture_output=True, check=True)
    return dict(json.loads(done.stdout))


def wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (done.stdout + done.stderr).splitlines()[0].strip()


# ---------------------------------------------------------------- models


@contextlib.contextmanager
def bench_bucket(env: dict[str, str]) -> Iterator[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=env["CONTINUUM_S3_ENDPOINT"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    bucket = f"bench-server-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    say(f"bucket {bucket} created")
    try:
        yield bucket
    finally:
        keys = [
            {"Key": item["Key"]}
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for item in page.get("Contents", [])
        ]
        for start in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000]})
        s3.delete_bucket(Bucket=bucket)
        say(f"bucket {bucket} deleted ({len(keys)} objects)")


def dataset(rows: int, seed: int) -> pd.DataFrame:
    x, y = make_classification(
        n_samples=rows, n_features=N_FEATURES, n_informative=10, n_redundant=4, random_state=seed
    )
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["label"] = y
    return frame


def churn_dataset(rows: int, seed: int) -> pd.DataFrame:
    """The demo's table: churners pay more, use more data, call support longer (1 sd apart,
    so the classes overlap) and are more often on the basic plan."""
    rng = np.random.default_rng(seed)
    churned = rng.random(rows) < 0.4
    frame = pd.DataFrame({
        name: np.round(mean + sd * (rng.standard_normal(rows) + churned), 2)
        for name, (mean, sd) in CHURN_NUMERIC.items()
    })  # fmt: skip
    basic = rng.random(rows) < np.where(churned, 0.6, 0.25)
    others = rng.choice(PLANS[1:], rows)
    frame["plan"] = np.where(basic, PLANS[0], others).astype(object)
    frame["label"] = churned.astype(int)
    return frame


TABLES = {"numeric": dataset, "churn": churn_dataset}


def publish_models(store: ObjectStore, shorts: list[str]) -> dict[str, Any]:
    """Train and publish each model through the trainer; returns them as the server loads them."""
    for table, make in TABLES.items():
        data = make(5000, 0).to_csv(index=False).encode()
        store.put_bytes(f"datasets/{table}/part-0.csv", data)
    served_models = {}
    for short in shorts:
        model = MODELS[short]
        spec = {
            "model": model.name,
            "dataset": {"uri": f"s3://{store.bucket}/datasets/{model.table}/", "target": "label"},
            "estimator": {"class": model.estimator, "params": model.params},
            "preprocessing": model.preprocessing,
            "evaluation": {"metric": "accuracy", "mustBeat": "none"},
            "storage": {"bucket": store.bucket},
        }
        started = time.monotonic()
        result = run_training(TrainingConfig.from_spec(spec), store, progress=lambda *a, **k: None)
        served = load_served_model(store, model.name, result.version)
        scoring = served.scoring
        say(f"{short}: {model.estimator} published as {model.name}/{result.version} "
            f"in {time.monotonic() - started:.1f}s (sha256 {served.sha256[:12]}); scored by "
            f"{scoring.path}: {scoring.entry}, {scoring.reason}")  # fmt: skip
        served_models[short] = served
    return served_models


def request_body(row: pd.Series, served: Any) -> str:
    """One row as an OIP v2 body: a tensor per feature (FP64 numbers, BYTES strings)."""
    inputs = []
    for feature in served.features:
        value = row[feature.name]
        if feature.kind == "numeric":
            inputs.append({"name": feature.name, "shape": [1], "datatype": "FP64",
                           "data": [float(value)]})  # fmt: skip
        else:
            inputs.append({"name": feature.name, "shape": [1], "datatype": "BYTES",
                           "data": [str(value)]})  # fmt: skip
    body = {"parameters": {"content_type": "pd"}, "inputs": inputs,
            "outputs": [{"name": "predict"}]}  # fmt: skip
    return json.dumps(body, separators=(",", ":"))


# ---------------------------------------------------------------- floor


FLOOR_BATCHES = (1, 16, 32, 64, 1024)


def floor(served: dict[str, Any], rows: dict[str, pd.DataFrame], cpu: int) -> dict[str, Any]:
    """Per-row ms of a bare batched predict on 1..1024 rows, in this process on ``cpu``.

    Two floors per model: ``pipeline`` is ``pipeline.predict`` on a DataFrame (what the issue
    names), ``scorer`` is what the server itself calls per batch (``ServedModel.predict`` on
    feature columns: labels and probabilities, by its compiled path where it verified).
    """
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        out: dict[str, Any] = {}
        for short, model in served.items():
            out[short] = {"pipeline": {}, "scorer": {}}
            for size in FLOOR_BATCHES:
                frame = rows[short].iloc[:size].reset_index(drop=True)
                columns = request_columns(frame, model)
                out[short]["pipeline"][str(size)] = _per_row(model.pipeline.predict, frame, size)
                out[short]["scorer"][str(size)] = _per_row(model.predict, columns, size)
            for kind, sizes in out[short].items():
                say(f"floor {short} {kind}: " + ", ".join(
                    f"batch {size} {v['ms_per_row']:.4f} ms/row" for size, v in sizes.items()
                ))  # fmt: skip
        return out
    finally:
        os.sched_setaffinity(0, previous)


def request_columns(frame: pd.DataFrame, served: Any) -> dict[str, np.ndarray]:
    """The rows as the server's decoder hands them to the scorer: float64 numbers, categories
    as str objects."""
    return {
        feature.name: frame[feature.name].to_numpy(np.float64)
        if feature.kind == "numeric"
        else frame[feature.name].astype(str).to_numpy(object)
        for feature in served.features
    }


def _per_row(predict: Callable[[Any], Any], batch: Any, size: int) -> dict[str, float]:
    predict(batch)
    calls, started = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - started < 1.0:
        predict(batch)
        calls += 1
    per_call = (time.perf_counter() - started) / calls * 1000
    return {"ms_per_call": per_call, "ms_per_row": per_call / size}


SHORTCUT_BATCHES = (1, 32)


def shortcut_worth(
    served: dict[str, Any], rows: dict[str, pd.DataFrame], cpu: int
) -> dict[str, Any]:
    """Microseconds per call, in this process on ``cpu``, of each way to score a batch.

    ``scikit-learn``: the pipeline's own ``predict`` and ``predict_proba`` on a DataFrame;
    ``scorer``: the server's Scorer as loaded (the compiled path where it verified);
    ``scikit-learn path``: the same Scorer with the compiled path off (its fallback).
    """
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        return {short: _shortcut_worth(model, rows[short]) for short, model in served.items()}
    finally:
        os.sched_setaffinity(0, previous)


def _shortcut_worth(model: Any, rows: pd.DataFrame) -> dict[str, dict[str, float]]:
    scorers = {
        "scorer": model.scorer,
        "scikit-learn path": Scorer(
            model.pipeline, model.feature_names, has_proba=model.has_proba, compiled=False
        ),
    }
    out: dict[str, dict[str, float]] = {}
    for size in SHORTCUT_BATCHES:
        frame = rows.iloc[:size].reset_index(drop=True)
        columns = request_columns(frame, model)

        def plain(batch: pd.DataFrame) -> Any:
            return model.pipeline.predict(batch), model.pipeline.predict_proba(batch)

        figures = {"scikit-learn": _per_row(plain, frame, size)["ms_per_call"] * 1000}
        for key, scorer in scorers.items():
            figures[key] = _per_row(scorer, columns, size)["ms_per_call"] * 1000
        out[str(size)] = figures
        say(f"scoring {model.name} batch {size}: "
            + ", ".join(f"{key} {us:.1f} us" for key, us in figures.items()))  # fmt: skip
    return out


LONE_REPEATS = 5  # lone-request cost: repeats, each of interleaved pairs of calls ...
LONE_SECONDS = 1.0  # ... about this long


def lone_cost(served: dict[str, Any], rows: dict[str, pd.DataFrame], cpu: int) -> dict[str, Any]:
    """The batcher's cost per lone request, in this process on ``cpu``, per model.

    Sequential 1-row requests through the server's ``Batcher`` (its defaults: max batch 32,
    max latency 5 ms; its worker task running; each request announced then predicted, as the
    server's handler does) against direct ``ServedModel.predict`` calls on the same rows, both
    on a uvloop event loop (what uvicorn runs when uvloop is installed) and both yielding to
    the loop after each request, as a server does between requests (which is when the
    batcher's worker wakes up to the announcement).

    The two kinds of call alternate one by one on the same row (who goes first alternating
    too) and each call is timed alone, so a burst of background load hits both alike and
    shows up as outliers, which medians ignore: medians of each kind's per-call us, and the
    cost as the median of the per-pair differences (same row, adjacent in time). Timing whole
    runs of each kind instead moved the difference by tens of us from run to run here.
    """
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        out: dict[str, Any] = {}
        for short, model in served.items():
            arrays = request_columns(rows[short], model)
            requests = [
                FeatureRows({name: column[i : i + 1].copy() for name, column in arrays.items()}, 1)
                for i in range(256)
            ]
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                out[short] = runner.run(_lone(model.predict, requests))
            figures = out[short]
            say(f"lone request {short}: direct {figures['direct_median_us']:.1f} us, "
                f"through the batcher {figures['batcher_median_us']:.1f} us -> batcher cost "
                f"{figures['cost_us']:+.1f} us per request (per repeat: "
                f"{', '.join(f'{c:+.1f}' for c in figures['cost_us_per_repeat'])}; "
                f"{figures['pairs_per_repeat']} pairs x {LONE_REPEATS}; "
                f"worker batches while timing: {figures['worker_batches']})")  # fmt: skip
        return out
    finally:
        os.sched_setaffinity(0, previous)


class _CountingBatcher(Batcher):
    """Counts the batches its worker executes (one per lone request: each goes through it)."""

    worker_batches = 0

    async def execute(self, batch: Any) -> None:
        self.worker_batches += 1
        await super().execute(batch)


async def _lone(predict: Callable[[Any], Any], requests: list[FeatureRows]) -> dict[str, Any]:
    batcher = _CountingBatcher(predict, max_batch_size=32, max_latency=0.005)
    worker = asyncio.create_task(batcher.run())
    try:
        # A fresh batcher does not know the cost of a predict yet (last_cpu is inf), so its
        # first call goes through the worker to a thread: warm up before timing.
        started = time.perf_counter()
        for rows in requests[:50]:
            await _through_batcher(batcher, rows)
            await _direct(predict, rows)
        pairs = max(100, min(20000, int(LONE_SECONDS / ((time.perf_counter() - started) / 50))))
        warm = batcher.worker_batches
        direct, through = np.empty((LONE_REPEATS, pairs)), np.empty((LONE_REPEATS, pairs))
        for repeat, i in itertools.product(range(LONE_REPEATS), range(pairs)):
            rows = requests[i % len(requests)]
            if i % 2 == 0:
                direct[repeat, i] = await _direct(predict, rows)
                through[repeat, i] = await _through_batcher(batcher, rows)
            else:
                through[repeat, i] = await _through_batcher(batcher, rows)
                direct[repeat, i] = await _direct(predict, rows)
        cost = through - direct
        return {
            "pairs_per_repeat": pairs,
            "direct_median_us": float(np.median(direct)),
            "batcher_median_us": float(np.median(through)),
            "cost_us": float(np.median(cost)),
            "direct_us_per_repeat": np.median(direct, axis=1).tolist(),
            "batcher_us_per_repeat": np.median(through, axis=1).tolist(),
            "cost_us_per_repeat": np.median(cost, axis=1).tolist(),
            "worker_batches": batcher.worker_batches - warm,
        }
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker


async def _direct(predict: Callable[[Any], Any], rows: FeatureRows) -> float:
    started = time.perf_counter_ns()
    predict(rows.columns)
    await asyncio.sleep(0)  # a server goes back to the loop between requests
    return (time.perf_counter_ns() - started) / 1000


async def _through_batcher(batcher: Batcher, rows: FeatureRows) -> float:
    started = time.perf_counter_ns()
    with batcher.announce():  # the server's handler announces while reading the body
        pass
    await batcher.predict(rows)
    await asyncio.sleep(0)  # the worker wakes up to the announcement here
    return (time.perf_counter_ns() - started) / 1000


# ---------------------------------------------------------------- servers


def start_continuum(
    env: dict[str, str], bucket: str, max_batch_size: int | None, port: int = PORTS["continuum"]
) -> Callable[[str, Path], subprocess.Popen[bytes]]:
    def start(model: str, log: Path) -> subprocess.Popen[bytes]:
        command = [
            "taskset", "-c", "0", str(REPO / ".venv" / "bin" / "continuum"), "serve",
            "--model", model, "--version", "1", "--host", HOST,
            "--port", str(port), "--inference-log", "false",
        ]  # fmt: skip
        if max_batch_size is not None:
            command += ["--max-batch-size", str(max_batch_size)]
        return _spawn(command, {**env, "CONTINUUM_S3_BUCKET": bucket}, log)

    return start


def start_mlserver(
    binary: Path, folders: dict[str, Path], settings: dict[str, Any]
) -> Callable[[str, Path], subprocess.Popen[bytes]]:
    def start(model: str, log: Path) -> subprocess.Popen[bytes]:
        folder = folders[model]
        (folder / "settings.json").write_text(json.dumps({
            "host": HOST,
            "http_port": PORTS["mlserver_http"],
            "grpc_port": PORTS["mlserver_grpc"],
            "metrics_port": PORTS["mlserver_metrics"],
            **({} if "parallel_workers" not in settings
               else {"parallel_workers": settings["parallel_workers"]}),
        }))  # fmt: skip
        model_settings = {
            "name": model,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "1"},
        }
        for key in ("max_batch_size", "max_batch_time"):
            if key in settings:
                model_settings[key] = settings[key]
        (folder / "model-settings.json").write_text(json.dumps(model_settings))
        command = ["taskset", "-c", "0", str(binary), "start", str(folder)]
        return _spawn(command, {}, log)

    return start


def _spawn(command: list[str], extra_env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **extra_env, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def post(url: str, body: str, timeout: float = 10) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_ready(
    process: subprocess.Popen[bytes], base: str, model: str, log: Path, timeout: float = 120
) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}):\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{base}/v2/models/{model}/ready", timeout=2) as answer:
                if answer.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout:.0f}s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def check_answers(url: str, bodies: list[str], expected: np.ndarray) -> None:
    """The server's predictions for the first bodies equal the local pipeline's."""
    for body, want in zip(bodies[:20], expected[:20], strict=True):
        status, answer = post(url, body)
        if status != 200:
            raise RuntimeError(f"{url}: {status} {answer}")
        got = next(o for o in answer["outputs"] if o["name"] == "predict")["data"]
        if [float(v) for v in got] != [float(want)]:
            raise RuntimeError(f"{url}: predicted {got}, the local pipeline {want}")


def run_wrk(url: str, bodies: Path, connections: int, seconds: float) -> dict[str, Any]:
    command = [
        "taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        "--timeout", "10s", "-s", str(LUA), url,
    ]  # fmt: skip
    done = subprocess.run(
        command, env={**os.environ, "WRK_BODIES": str(bodies)}, capture_output=True, text=True,
        check=False, timeout=seconds + 60,
    )  # fmt: skip
    match = re.search(r"^WRK_RESULT (.*)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    raw = json.loads(match.group(1))
    errors = sum(raw["errors"].values())
    seconds_run = raw["duration_us"] / 1e6
    return {
        "connections": connections,
        "requests": raw["requests"],
        "errors": raw["errors"],
        "rps": (raw["requests"] - errors) / seconds_run,
        "p50_ms": raw["latency_us"]["p50"] / 1000,
        "p90_ms": raw["latency_us"]["p90"] / 1000,
        "p99_ms": raw["latency_us"]["p99"] / 1000,
        "mean_ms": raw["latency_us"]["mean"] / 1000,
        "max_ms": raw["latency_us"]["max"] / 1000,
        "errors_total": errors,
    }


def bench_server(
    server: Server, model: str, short: str, *, workdir: Path, bodies: Path,
    body_list: list[str], expected: np.ndarray, args: argparse.Namespace,
) -> dict[str, Any]:  # fmt: skip
    log = workdir / f"{server.key}-{short}.log"
    process = server.start(model, log)
    try:
        base = f"http://{HOST}:{server.port}"
        ready_s = wait_ready(process, base, model, log)
        url = f"{base}/v2/models/{model}/infer"
        check_answers(url, body_list, expected)
        run_wrk(url, bodies, 16, args.warmup)
        runs = []
        for connections in args.concurrency:
            before, cpu_before = batch_rows(base, server.key), group_cpu_ns(process.pid)
            result = run_wrk(url, bodies, connections, args.duration)
            result["mean_batch_rows"] = mean_batch(before, batch_rows(base, server.key))
            result["cpu_us_per_request"] = (
                (group_cpu_ns(process.pid) - cpu_before) / 1000 / max(1, result["requests"])
            )
            say(f"  {short:6} {server.key:19} c={connections:<3} {result['rps']:8.1f} req/s  "
                f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms  "
                f"CPU {result['cpu_us_per_request']:6.1f} us/request"
                + (f"  ERRORS {result['errors']}" if result["errors_total"] else ""))  # fmt: skip
            runs.append(result)
        return {"ready_s": ready_s, "runs": runs}
    finally:
        stop(process)


INTERLEAVE_ROUNDS = 4  # ours and MLServer best side by side: rounds per concurrency
PAIRED = ("continuum", "mlserver-best")


def bench_pair(
    servers: list[Server], model: str, short: str, *, workdir: Path, bodies: Path,
    body_list: list[str], expected: np.ndarray, args: argparse.Namespace,
) -> dict[str, Any]:  # fmt: skip
    """Our server and MLServer best up at once, each concurrency measured in alternating runs.

    The machine is shared: another process taking CPU 0 for a few seconds cut one server's
    req/s and not the other's when they ran one after the other (three full runs of one
    evening gave forest-cat at c=16 18.6x, 4.0x and 4.75x). Here each concurrency is
    ``INTERLEAVE_ROUNDS`` runs of a quarter of the duration per server, taking turns (the
    first alternating too), so both see the same background; per server, req/s and CPU per
    request are over all its rounds, p50 and p99 the medians of its rounds'.
    """
    processes: list[subprocess.Popen[bytes]] = []
    try:
        urls, bases, ready = [], [], {}
        for server in servers:
            log = workdir / f"{server.key}-{short}.log"
            processes.append(server.start(model, log))
            bases.append(f"http://{HOST}:{server.port}")
            ready[server.key] = wait_ready(processes[-1], bases[-1], model, log)
            urls.append(f"{bases[-1]}/v2/models/{model}/infer")
            check_answers(urls[-1], body_list, expected)
            run_wrk(urls[-1], bodies, 16, args.warmup)
        seconds = max(1, round(args.duration / INTERLEAVE_ROUNDS))
        runs: dict[str, list[dict[str, Any]]] = {server.key: [] for server in servers}
        for connections in args.concurrency:
            rounds: dict[str, list[dict[str, Any]]] = {server.key: [] for server in servers}
            for round_ in range(INTERLEAVE_ROUNDS):
                order = range(len(servers)) if round_ % 2 == 0 else reversed(range(len(servers)))
                for i in order:
                    rounds[servers[i].key].append(_measured_run(
                        servers[i].key, bases[i], urls[i], pid=processes[i].pid,
                        bodies=bodies, connections=connections, seconds=seconds,
                    ))  # fmt: skip
            for key, parts in rounds.items():
                runs[key].append(_combined(parts, connections))
                _say_run(short, key, runs[key][-1])
        return {key: {"ready_s": ready[key], "runs": runs[key]} for key in runs}
    finally:
        for process in processes:
            stop(process)


def _measured_run(
    key: str, base: str, url: str, *, pid: int, bodies: Path, connections: int, seconds: float
) -> dict[str, Any]:
    before, cpu_before = batch_rows(base, key), group_cpu_ns(pid)
    result = run_wrk(url, bodies, connections, seconds)
    result["mean_batch_rows"] = mean_batch(before, batch_rows(base, key))
    result["cpu_ns"] = group_cpu_ns(pid) - cpu_before
    return result


def _combined(parts: list[dict[str, Any]], connections: int) -> dict[str, Any]:
    """One figure per server and concurrency from its interleaved rounds."""
    requests = sum(part["requests"] for part in parts)
    good = sum(part["requests"] - part["errors_total"] for part in parts)
    seconds = sum(part["requests"] / part["rps"] for part in parts if part["rps"])
    batches = [part["mean_batch_rows"] for part in parts if part["mean_batch_rows"] is not None]
    errors = {kind: sum(part["errors"][kind] for part in parts) for kind in parts[0]["errors"]}
    return {
        "connections": connections,
        "requests": requests,
        "errors": errors,
        "errors_total": requests - good,
        "rps": good / seconds if seconds else 0.0,
        "p50_ms": float(np.median([part["p50_ms"] for part in parts])),
        "p90_ms": float(np.median([part["p90_ms"] for part in parts])),
        "p99_ms": float(np.median([part["p99_ms"] for part in parts])),
        "max_ms": max(part["max_ms"] for part in parts),
        "mean_batch_rows": float(np.mean(batches)) if batches else None,
        "cpu_us_per_request": sum(part["cpu_ns"] for part in parts) / 1000 / max(1, requests),
        "rounds": [{k: part[k] for k in ("rps", "p50_ms", "p99_ms")} for part in parts],
    }


def _say_run(short: str, key: str, result: dict[str, Any]) -> None:
    say(f"  {short:6} {key:19} c={result['connections']:<3} {result['rps']:8.1f} req/s  "
        f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms  "
        f"CPU {result['cpu_us_per_request']:6.1f} us/request"
        + (f"  ERRORS {result['errors']}" if result["errors_total"] else ""))  # fmt: skip


def group_cpu_ns(group: int) -> int:
    """CPU time (ns, user + system, every thread) used so far by the processes of the session
    ``group`` leads (each server is started in a session of its own: MLServer's workers
    count too). Per request, this is the server's cost whatever else the machine runs: wrk's
    req/s on a shared machine also falls when another process takes the server's CPU."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) != group:  # the process group (after state, ppid)
                continue
            for task in (stat.parent / "task").glob("*/schedstat"):
                total += int(task.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return total


BATCH_METRIC = re.compile(r"^continuum_server_batch_rows_(sum|count)\{[^}]*\} (\S+)$", re.M)


def batch_rows(base: str, key: str) -> dict[str, float] | None:
    """Rows and predict calls so far, from our server's batch histogram (None for MLServer)."""
    if not key.startswith("continuum"):
        return None
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {kind: float(value) for kind, value in BATCH_METRIC.findall(text)}


def mean_batch(before: dict[str, float] | None, after: dict[str, float] | None) -> float | None:
    """Mean rows per predict call between two snapshots."""
    if before is None or after is None:
        return None
    calls = after.get("count", 0.0) - before.get("count", 0.0)
    return (after.get("sum", 0.0) - before.get("sum", 0.0)) / calls if calls else None


def trio_orders(count: int, rounds: int) -> list[list[int]]:
    """The order of the servers in each round: every rotation, then every rotation reversed.

    Over each ``2 * count`` rounds every server runs first, second, ... equally often, and
    right after each other server equally often, so a drift in the background load does not
    keep favouring one of them.
    """
    forward = [[(first + i) % count for i in range(count)] for first in range(count)]
    cycle = forward + [order[::-1] for order in forward]
    return [cycle[round_ % len(cycle)] for round_ in range(rounds)]


def trio_servers(env: dict[str, str], bucket: str, batched: str, unbatched: str) -> list[Server]:
    """TRIO_COPIES processes each of batched, unbatched and unbatched again (the A/A control).

    Copies, because one process differs from another of the same configuration by several
    per cent at concurrency 1 (hash seeds, memory layout): with one process per configuration
    that difference was as large as the effect the target judges.
    """
    trio = []
    for copy in range(TRIO_COPIES):
        port = PORTS["trio"] + 3 * copy
        trio += [
            Server("continuum", batched, port, start_continuum(env, bucket, None, port)),
            Server("continuum-unbatched", unbatched, port + 1,
                   start_continuum(env, bucket, 1, port + 1)),
            Server("continuum-unbatched-control", f"{unbatched} (A/A control)", port + 2,
                   start_continuum(env, bucket, 1, port + 2)),
        ]  # fmt: skip
    return trio


def c1_trio(
    servers: list[Server], model: str, short: str, *, workdir: Path, bodies: Path,
    body_list: list[str], expected: np.ndarray, args: argparse.Namespace,
) -> dict[str, Any]:  # fmt: skip
    """Batched, unbatched and a second unbatched server up side by side, concurrency-1 runs.

    The machine is shared, so two runs minutes apart can differ more than the 5% the target
    allows; short runs in rotating order, compared by their medians, hold the background load
    equal. The two unbatched servers are identical (an A/A control): the distance between
    their medians is the noise left in the comparison, recorded next to the verdict.
    """
    processes = []
    try:
        urls = []
        for server in servers:
            log = workdir / f"trio-{server.key}-{server.port}-{short}.log"
            processes.append(server.start(model, log))
            base = f"http://{HOST}:{server.port}"
            wait_ready(processes[-1], base, model, log)
            urls.append(f"{base}/v2/models/{model}/infer")
            check_answers(urls[-1], body_list, expected)
            run_wrk(urls[-1], bodies, 1, args.warmup)
        seconds = max(2, round(args.duration / 4))  # wrk takes whole seconds
        p50s: dict[str, list[float]] = {server.key: [] for server in servers}
        by_process: dict[str, list[float]] = {f"{s.key}@{s.port}": [] for s in servers}
        orders = trio_orders(len(servers), PAIR_ROUNDS)
        for order in orders:
            for index in order:
                p50 = run_wrk(urls[index], bodies, 1, seconds)["p50_ms"]
                p50s[servers[index].key].append(p50)
                by_process[f"{servers[index].key}@{servers[index].port}"].append(p50)
        medians = {key: float(np.median(values)) for key, values in p50s.items()}
        process_medians = {key: float(np.median(values)) for key, values in by_process.items()}
        say(
            f"  {short:6} c=1 trio, median p50 per process (ms): "
            + ", ".join(f"{key} {value:.3f}" for key, value in process_medians.items())
        )
        plain, control = medians["continuum-unbatched"], medians["continuum-unbatched-control"]
        noise = abs(plain - control) / plain
        for key, values in p50s.items():
            say(f"  {short:6} c=1 trio {key:27} p50 (ms) "
                f"{' '.join(f'{v:.3f}' for v in values)} -> median {medians[key]:.3f}")  # fmt: skip
        say(f"  {short:6} c=1 trio: batched/unbatched {medians['continuum'] / plain:.3f}, "
            f"A/A noise |unbatched - control| / unbatched {noise:.1%}")  # fmt: skip
        return {
            "p50_ms": p50s,
            "median_p50_ms": medians,
            "process_median_p50_ms": process_medians,
            "copies": TRIO_COPIES,
            "noise": noise,
            "rounds": PAIR_ROUNDS,
            "orders": [[servers[index].key for index in order] for order in orders],
            "seconds_per_run": seconds,
        }
    finally:
        for process in processes:
            stop(process)


# ---------------------------------------------------------------- report


def by_concurrency(runs: list[dict[str, Any]], connections: int) -> dict[str, Any] | None:
    return next((run for run in runs if run["connections"] == connections), None)


def c1_p50(get: dict[str, Any]) -> float | None:
    """The batched server's p50 at concurrency 1 over HTTP: the trio's median, else its run."""
    if "c1-pair" in get:
        return float(get["c1-pair"]["median_p50_ms"]["continuum"])
    run = by_concurrency(get["continuum"]["runs"], 1)
    return run["p50_ms"] if run else None


def verdicts(results: dict[str, Any], floor_ms: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, per model (issue 21; and issue 4's batched-vs-unbatched at c=1 when
    the unbatched server ran)."""
    rows: list[dict[str, Any]] = []
    for short, get in results.items():
        for connections in TARGET_CONCURRENCY:
            rows += _against_best(short, get, connections)
        ours1 = by_concurrency(get["continuum"]["runs"], 1)
        if ours1 and MODELS[short].estimator == "LogisticRegression":
            rows.append({"model": short, "figure": "c1 p50 (ms), one core",
                         "measured": f"{ours1['p50_ms']:.3f}",
                         "target": f"<= {TARGET_C1_P50_MS}",
                         "ok": ours1["p50_ms"] <= TARGET_C1_P50_MS})  # fmt: skip
        rows += _c1_batched_vs_unbatched(short, get)
        ours16 = by_concurrency(get["continuum"]["runs"], 16)
        if ours16:
            rows += _per_request_vs_floor(short, ours16, floor_ms[short]["scorer"]["16"])
    return rows


def _per_request_vs_floor(
    short: str, run: dict[str, Any], at16: dict[str, float]
) -> list[dict[str, Any]]:
    """Issue 21: per-request cost at c16 <= 2x the scorer's per-row cost at batch 16; the cost
    both as wall time (1 / req/s: the server has one CPU) and as the server's own CPU."""
    floor = at16["ms_per_row"]
    rows = []
    cpu = run.get("cpu_us_per_request")
    for figure, per_request in (
        ("ms/request (1 / req/s)", 1000 / run["rps"]),
        ("server CPU ms/request", None if cpu is None else cpu / 1000),
    ):
        if per_request is None:
            continue
        ratio = per_request / floor
        rows.append({"model": short, "figure": f"c16 {figure} vs the scorer's ms/row at batch 16",
                     "measured": f"{per_request:.3f} vs {floor:.4f}",
                     "target": f"<= {TARGET_FLOOR_RATIO:.0f}x the floor",
                     "ok": ratio <= TARGET_FLOOR_RATIO, "ratio": ratio})  # fmt: skip
    return rows


def _against_best(short: str, get: dict[str, Any], connections: int) -> list[dict[str, Any]]:
    ours = by_concurrency(get["continuum"]["runs"], connections)
    best = by_concurrency(get["mlserver-best"]["runs"], connections)
    if not (ours and best):
        return []
    ratio = ours["rps"] / best["rps"]
    return [
        {"model": short, "figure": f"c{connections} req/s vs MLServer best", "measured": ratio,
         "target": f">= {TARGET_RATIO:.0f}x", "ok": ratio >= TARGET_RATIO},
        {"model": short, "figure": f"c{connections} p99 vs MLServer best (ms)",
         "measured": f"{ours['p99_ms']:.2f} vs {best['p99_ms']:.2f}", "target": "<",
         "ok": ours["p99_ms"] < best["p99_ms"]},
    ]  # fmt: skip


def _c1_batched_vs_unbatched(short: str, get: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 4: at c=1 the batched server's p50 within 5% of the unbatched one's."""
    pair = get.get("c1-pair")
    if pair:  # the side-by-side medians decide; the single runs above are shown too
        batched = pair["median_p50_ms"]["continuum"]
        plain = pair["median_p50_ms"]["continuum-unbatched"]
        control = pair["median_p50_ms"].get("continuum-unbatched-control")
        noise = pair.get("noise")
        measured = f"{batched:.3f} vs {plain:.3f}"
        if control is not None and noise is not None:
            measured += f" (A/A control {control:.3f}: noise {noise:.1%})"
        runs = pair.get("copies", 1) * pair.get("rounds", PAIR_ROUNDS)
        return [{"model": short,
                 "figure": f"c1 p50 batched vs unbatched (ms, median of {runs} rotating runs)",
                 "measured": measured, "target": f"<= (x{C1_P50_TOLERANCE})",
                 "ok": batched <= plain * C1_P50_TOLERANCE, "noise": noise}]  # fmt: skip
    ours1 = by_concurrency(get["continuum"]["runs"], 1)
    plain1 = by_concurrency(get.get("continuum-unbatched", {"runs": []})["runs"], 1)
    if ours1 and plain1:
        return [{"model": short, "figure": "c1 p50 batched vs unbatched (ms)",
                 "measured": f"{ours1['p50_ms']:.2f} vs {plain1['p50_ms']:.2f}",
                 "target": f"<= (x{C1_P50_TOLERANCE})",
                 "ok": ours1["p50_ms"] <= plain1["p50_ms"] * C1_P50_TOLERANCE}]  # fmt: skip
    return []


def trio_lines(results: dict[str, Any]) -> list[str]:
    """Markdown: the concurrency-1 trio's runs, medians and A/A noise, per model."""
    lines: list[str] = []
    pairs = [(short, get["c1-pair"]) for short, get in results.items()
             if "c1-pair" in get]  # fmt: skip
    if pairs:
        lines += ["", f"Concurrency 1, three configurations up side by side, {TRIO_COPIES} "
                  "processes each: batched, unbatched, and unbatched again (an A/A control, "
                  "identical to the unbatched); wrk runs over all the processes in rotating "
                  "order (each one first equally often); p50 ms per run, median, and the A/A "
                  "noise = |unbatched - control| / unbatched, the spread between two "
                  "identical configurations:", ""]  # fmt: skip
        names = {"continuum": "batched", "continuum-unbatched": "unbatched",
                 "continuum-unbatched-control": "control"}  # fmt: skip
        for short, pair in pairs:
            parts = [
                f"{names.get(key, key)} **{pair['median_p50_ms'][key]:.3f}** "
                f"({', '.join(f'{v:.2f}' for v in values)})"
                for key, values in pair["p50_ms"].items()
            ]
            noise, medians = pair.get("noise"), pair["median_p50_ms"]
            ratio = medians["continuum"] / medians["continuum-unbatched"]
            lines.append(
                f"- {short}, {pair.get('copies', 1) * pair.get('rounds', PAIR_ROUNDS)} runs of "
                f"{pair['seconds_per_run']:.0f} s each: "
                + "; ".join(parts)
                + (f"; A/A noise {noise:.1%}" if noise is not None else "")
                + f"; batched / unbatched {ratio:.3f}."
            )
    return lines


def lone_lines(lone: dict[str, Any]) -> list[str]:
    """Markdown: the batcher's cost per lone request, per model."""
    lines: list[str] = []
    if lone:
        lines += ["", "Batcher cost per lone request, in the bench process on CPU 0 (uvloop): "
                  "sequential 1-row requests through the server's `Batcher` (worker running, "
                  "each request announced first, as the handler does) vs direct "
                  "`ServedModel.predict` calls on the same rows, alternating call by call, "
                  "median us per call of each; the cost is the median of the per-pair "
                  f"differences, over {LONE_REPEATS} repeats (each repeat's own cost shown too):",
                  ""]  # fmt: skip
        for short, f in lone.items():
            share = (f" = {f['pct_of_c1_p50']:.1f}% of the batched c1 p50 over HTTP "
                     f"({f['c1_p50_ms']:.3f} ms)" if f.get("pct_of_c1_p50") is not None
                     else "")  # fmt: skip
            repeats = ", ".join(f"{c:+.1f}" for c in f["cost_us_per_repeat"])
            lines.append(f"- {short}: {f['batcher_median_us']:.1f} vs "
                         f"{f['direct_median_us']:.1f} us, cost {f['cost_us']:+.1f} us{share} "
                         f"(per repeat: {repeats}; batches through the worker while timing: "
                         f"{f['worker_batches']}).")  # fmt: skip
    return lines


def shortcut_lines(shortcuts: dict[str, Any]) -> list[str]:
    """Markdown: the server's scoring paths against scikit-learn's calls, per model and batch."""
    lines: list[str] = []
    if shortcuts:
        lines += ["", "Scoring paths (`continuum.server.scoring`), us per call, in the bench "
                  "process on CPU 0: scikit-learn's `pipeline.predict` + `predict_proba` on a "
                  "DataFrame, the server's scorer as loaded (each path above), and the "
                  "same scorer with the compiled path off (scikit-learn's own steps):",
                  ""]  # fmt: skip
        for short, sizes in shortcuts.items():
            for size, f in sizes.items():
                lines.append(
                    f"- {short}, batch {size}: scikit-learn {f['scikit-learn']:.0f}; scorer "
                    f"{f['scorer']:.1f}; scikit-learn path {f['scikit-learn path']:.0f}."
                )
    return lines


def markdown(report: dict[str, Any], command: str) -> str:
    lines = [
        "## Model server: `continuum serve` vs MLServer 1.7.1",
        "",
        f"Measured {report['when']} on this machine ({os.cpu_count()} CPUs; load average "
        f"before the run {report['loadavg'][0]:.2f}), with",
        "",
        f"    {command}",
        "",
        "Servers pinned to CPU 0, wrk (1 thread) to CPU 1, loopback only; one row per "
        f"request; {report['duration_s']:.0f} s per run after a {report['warmup_s']:.0f} s "
        f"warm-up{_interleaving(report)}. Pipelines (each trained by the project's trainer on "
        "a generated table, and scored by `continuum serve` on the path its load-time check "
        "chose):",
        "",
    ]
    for short, info in report["models"].items():
        lines.append(f"- **{short}**: {info['what']}; scored by **{info['scoring']['path']}** "
                     f"({info['scoring']['entry']}: {info['scoring']['reason']}).")  # fmt: skip
    lines += ["", "req/s | p50 ms | p99 ms | server CPU us per request (user + system, every "
              "thread and process of the server):", ""]  # fmt: skip
    labels = report["servers"]
    header = "| model | server | " + " | ".join(f"c={c}" for c in report["concurrency"]) + " |"
    lines += [header, "|---|---|" + "---:|" * len(report["concurrency"])]
    for short, per_server in report["results"].items():
        for key, label in labels.items():
            if key not in per_server:
                continue
            runs = per_server[key]["runs"]
            cells = []
            for c in report["concurrency"]:
                run = by_concurrency(runs, c)
                cpu = None if run is None else run.get("cpu_us_per_request")
                cells.append(
                    "—" if run is None
                    else f"{run['rps']:.0f} \\| {run['p50_ms']:.2f} \\| {run['p99_ms']:.2f}"
                    + ("" if cpu is None else f" \\| {cpu:.0f}")
                )  # fmt: skip
            lines.append(f"| {short} | {label} | " + " | ".join(cells) + " |")
    lines += ["", "Ratios (continuum / MLServer req/s; p99 ms, ours vs MLServer best; and server "
              "CPU per request, MLServer best's / ours: the same comparison, less moved by "
              "other processes taking the servers' CPU on this shared machine):", "",
              "| model | c | vs default | vs best | p99 vs best | CPU/request, best / ours |",
              "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for short, per_server in report["results"].items():
        for c in report["concurrency"]:
            ours = by_concurrency(per_server["continuum"]["runs"], c)
            default = by_concurrency(per_server["mlserver-default"]["runs"], c)
            best = by_concurrency(per_server["mlserver-best"]["runs"], c)
            if ours and default and best:
                cpu = _cpu_ratio(best, ours)
                lines.append(f"| {short} | {c} | {ours['rps'] / default['rps']:.2f}x | "
                             f"**{ours['rps'] / best['rps']:.2f}x** | "
                             f"{ours['p99_ms']:.2f} vs {best['p99_ms']:.2f} | {cpu} |")  # fmt: skip
    lines += ["", "Targets (issue 21; issue 4's c=1 batched vs unbatched when that server ran):",
              "", "| model | figure | measured | target | |",
              "|---|---|---:|---:|---|"]  # fmt: skip
    for row in report["verdicts"]:
        measured = row["measured"]
        text = f"{measured:.2f}x" if isinstance(measured, float) else str(measured)
        if "ratio" in row:
            text += f" ({row['ratio']:.0f}x the floor)"
        mark = {True: "ok", False: "MISSED", None: ""}[row["ok"]]
        lines.append(f"| {row['model']} | {row['figure']} | {text} | {row['target']} | {mark} |")
    lines += trio_lines(report["results"])
    lines += ["", "Rows per predict call of `continuum serve` (batching on), mean over each run: "
              + "; ".join(
                  f"{short} " + ", ".join(
                      f"c={run['connections']} {run['mean_batch_rows']:.1f}"
                      for run in per_server["continuum"]["runs"]
                      if run.get("mean_batch_rows") is not None)
                  for short, per_server in report["results"].items()) + "."]  # fmt: skip
    lines += lone_lines(report.get("lone_request", {}))
    lines += shortcut_lines(report.get("shortcuts_us_per_call", {}))
    lines += ["", "Floors, per row (ms), in the bench process on CPU 0: `pipeline.predict` on a "
              "DataFrame (labels only), and the server's own scorer (`ServedModel.predict` on "
              "feature columns: labels and probabilities):", ""]  # fmt: skip
    for short, kinds in report["floor"].items():
        for kind, sizes in kinds.items():
            lines.append(f"- {short}, {kind}: " + ", ".join(
                f"batch {size}: {v['ms_per_row']:.4f} ({v['ms_per_call']:.3f} per call)"
                for size, v in sizes.items()))  # fmt: skip
    versions = report["versions"]
    lines += [
        "",
        "Versions: continuum .venv: "
        + ", ".join(f"{k} {v}" for k, v in versions["continuum"].items())
        + "; MLServer venv: " + ", ".join(f"{k} {v}" for k, v in versions["mlserver"].items())
        + f"; {versions['wrk']}.",
        f"MLServer best = {json.dumps(MLSERVER_BEST)}; default = its defaults "
        "(parallel_workers 1, no adaptive batching).",
        "",
        f"Raw figures: `bench/results/{report['file']}` (not committed). Method: bench/README.md.",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _interleaving(report: dict[str, Any]) -> str:
    """How our server and MLServer best took turns, if they did (their runs have rounds)."""
    for per_server in report["results"].values():
        rounds = per_server.get("continuum", {}).get("runs", [{}])[0].get("rounds")
        if rounds:
            seconds = max(1, round(report["duration_s"] / len(rounds)))
            return (
                f"; our server and MLServer best up side by side, each run {len(rounds)} rounds "
                f"of {seconds} s per server taking turns (req/s and CPU over the rounds, p50 and "
                "p99 their medians), MLServer default alone after them"
            )
    return ""


def _cpu_ratio(theirs: dict[str, Any], ours: dict[str, Any]) -> str:
    a, b = theirs.get("cpu_us_per_request"), ours.get("cpu_us_per_request")
    return "—" if not (a and b) else f"{a / b:.2f}x"


BEGIN, END = "<!-- BEGIN model-server -->", "<!-- END model-server -->"


def replace_section(path: Path, text: str) -> None:
    """Write ``text`` between our markers in ``path``, leaving other sections alone."""
    block = f"{BEGIN}\n{text}{END}\n"
    current = path.read_text() if path.exists() else ""
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        new = head + block + ("\n" + tail if tail else "")
    else:
        new = current + ("\n" if current and not current.endswith("\n\n") else "") + block
    path.write_text(new)


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per server")
    parser.add_argument("--concurrency", default="1,16,64", help="wrk connections, comma-separated")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS),
                        help=f"comma-separated, of {','.join(MODELS)}")  # fmt: skip
    parser.add_argument("--unbatched", action="store_true",
                        help="also `continuum serve --max-batch-size 1`, and the c=1 trio "
                             "(issue 4's batched-vs-unbatched figure)")  # fmt: skip
    parser.add_argument("--no-results-md", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument("--no-interleave", action="store_true",
                        help="run our server and MLServer best one after the other instead of "
                             "side by side in alternating rounds")  # fmt: skip
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.models = [m for m in args.models.split(",") if m]
    unknown = set(args.models) - set(MODELS)
    if unknown:
        parser.error(f"unknown model(s) {sorted(unknown)}; choose from {list(MODELS)}")
    return args


def bench_model(
    servers: list[Server], model: str, short: str, *, workdir: Path, bodies: Path,
    body_list: list[str], expected: np.ndarray, args: argparse.Namespace,
) -> dict[str, Any]:  # fmt: skip
    """Every server on one model: ours and MLServer best side by side, the others alone."""
    out: dict[str, Any] = {}
    common = {"workdir": workdir, "bodies": bodies, "body_list": body_list,
              "expected": expected, "args": args}  # fmt: skip
    paired = [server for server in servers if server.key in PAIRED and not args.no_interleave]
    if paired:
        say(f"{short}: {' and '.join(server.label for server in paired)}, side by side")
        out.update(bench_pair(paired, model, short, **common))
    for server in (server for server in servers if server not in paired):
        say(f"{short}: {server.label}")
        out[server.key] = bench_server(server, model, short, **common)
    return out


def bench_servers(
    env: dict[str, str], bucket: str, mlserver: Path, folders: dict[str, Path], unbatched: bool
) -> list[Server]:
    servers = [
        Server("continuum", "continuum serve (batching on, defaults)", PORTS["continuum"],
               start_continuum(env, bucket, None)),
        Server("continuum-unbatched", "continuum serve --max-batch-size 1",
               PORTS["continuum"], start_continuum(env, bucket, 1)),
        Server("mlserver-default", "MLServer default", PORTS["mlserver_http"],
               start_mlserver(mlserver, folders, {})),
        Server("mlserver-best", "MLServer best (in-process, batching)",
               PORTS["mlserver_http"], start_mlserver(mlserver, folders, MLSERVER_BEST)),
    ]  # fmt: skip
    return servers if unbatched else [s for s in servers if s.key != "continuum-unbatched"]


def main() -> int:
    args = parse_args()
    command = "python bench/server_vs_mlserver.py " + " ".join(sys.argv[1:])
    require_tools()
    loadavg = os.getloadavg()
    mlserver = mlserver_venv()
    env = s3_env()
    versions = {
        "continuum": venv_versions(Path(sys.executable), [
            "scikit-learn", "pandas", "numpy", "fastapi", "uvicorn", "uvloop", "httptools"]),
        "mlserver": venv_versions(mlserver.parent / "python", [
            "mlserver", "mlserver-sklearn", "scikit-learn", "pandas", "numpy", "fastapi",
            "uvicorn", "uvloop", "httptools"]),
        "wrk": wrk_version(),
    }  # fmt: skip
    say(f"versions: {versions}")
    results: dict[str, Any] = {}
    with bench_bucket(env) as bucket, tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        workdir = Path(tmp)
        settings = S3Settings(
            bucket=bucket, endpoint_url=env["CONTINUUM_S3_ENDPOINT"],
            region=env["AWS_DEFAULT_REGION"], access_key=env["AWS_ACCESS_KEY_ID"],
            secret_key=env["AWS_SECRET_ACCESS_KEY"],
        )  # fmt: skip
        served = publish_models(ObjectStore(settings), args.models)
        tables = {table: make(2048, 1) for table, make in TABLES.items()}
        rows = {short: tables[MODELS[short].table][MODELS[short].features] for short in served}
        floor_ms, shortcuts = floor(served, rows, cpu=0), shortcut_worth(served, rows, cpu=0)
        lone = lone_cost(served, rows, cpu=0)
        folders = {}
        for short, model in served.items():
            folder = workdir / "mlserver" / short
            folder.mkdir(parents=True)
            joblib.dump(model.pipeline, folder / "model.joblib")
            folders[model.name] = folder
        servers = bench_servers(env, bucket, mlserver, folders, args.unbatched)
        trio = trio_servers(env, bucket, servers[0].label, "continuum serve --max-batch-size 1")
        for short, model in served.items():
            bodies = workdir / f"bodies-{short}.jsonl"
            body_list = [request_body(row, model) for _, row in rows[short].iloc[:512].iterrows()]
            bodies.write_text("\n".join(body_list) + "\n")
            expected = np.asarray(model.pipeline.predict(rows[short].iloc[:20]))
            results[short] = bench_model(
                servers, model.name, short, workdir=workdir, bodies=bodies,
                body_list=body_list, expected=expected, args=args,
            )  # fmt: skip
            if args.unbatched and 1 in args.concurrency:
                say(f"{short}: concurrency-1 trio, batched, unbatched and an unbatched A/A "
                    "control side by side")  # fmt: skip
                results[short]["c1-pair"] = c1_trio(
                    trio, model.name, short, workdir=workdir, bodies=bodies,
                    body_list=body_list, expected=expected, args=args,
                )  # fmt: skip
    for short, figures in lone.items():
        figures["c1_p50_ms"] = c1_p50(results[short])
        if figures["c1_p50_ms"]:
            figures["pct_of_c1_p50"] = figures["cost_us"] / (figures["c1_p50_ms"] * 1000) * 100
    stamp = datetime.now(UTC)
    file = f"{stamp.strftime('%Y%m%dT%H%M%SZ')}-server.json"
    report = {
        "when": stamp.strftime("%Y-%m-%d %H:%M UTC"),
        "file": file,
        "command": command,
        "loadavg": loadavg,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "concurrency": args.concurrency,
        "models": {
            short: {
                "what": MODELS[short].what,
                "name": model.name,
                "scoring": model.scoring.metadata(),
            }
            for short, model in served.items()
        },
        "servers": {server.key: server.label for server in servers},
        "mlserver_best": MLSERVER_BEST,
        "versions": versions,
        "floor": floor_ms,
        "shortcuts_us_per_call": shortcuts,
        "lone_request": lone,
        "results": results,
    }
    report["verdicts"] = verdicts(results, floor_ms)
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / file).write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report, command)
    print("\n" + text)
    if not args.no_results_md:
        replace_section(BENCH / "RESULTS.md", text)
    missed = [row for row in report["verdicts"] if row["ok"] is False]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
