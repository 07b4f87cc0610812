"""The trainer against a plain scikit-learn script doing the same work (issue 19).

Both read the same Parquet objects (12 float features rounded to one decimal, a 3-level
category, a yes/no label; 1M-row objects of 250,000-row groups) from local disk, fit the
same pipeline (mean imputation + standard scaling, most-frequent imputation + one-hot,
LogisticRegression), evaluate it on a 20% holdout (the six classification metrics) and
save it with skops. The trainer also validates the data, fingerprints it, writes the drift
baseline and the manifest, which the script does not do: that is its overhead.

Each run is its own process; wall time and peak RSS (the child's ``ru_maxrss``) are taken
from outside. The runs alternate trainer/script, ``--repeat`` times, and the table gives the
medians and their ratios.

    .venv/bin/python bench/trainer_vs_sklearn.py --rows 100000 1000000 --repeat 3
"""

# Each child process imports only what its run needs (the script never loads the trainer's
# libraries, and the trainer not the script's), so the imports sit inside the two runs.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
PART_ROWS = 1_000_000
NUMERIC = 12
SEED = 7


def part(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": np.round(rng.normal(size=rows), 1) for i in range(NUMERIC)})
    frame["plan"] = pd.Categorical(rng.choice(["basic", "plus", "pro"], rows))
    signal = frame["x0"] - frame["x1"] + (frame["plan"] == "basic") + rng.normal(0, 0.5, rows)
    frame["label"] = pd.Categorical(np.where(signal > 0, "yes", "no"))
    return frame


def write_dataset(rows: int, directory: Path) -> None:
    for number, start in enumerate(range(0, rows, PART_ROWS)):
        frame = part(min(PART_ROWS, rows - start), number)
        frame.to_parquet(directory / f"part-{number:03d}.parquet", index=False,
                         row_group_size=250_000)  # fmt: skip


# ---------------------------------------------------------------------------- the two runs


def run_sklearn(data: Path, out: Path) -> dict[str, Any]:
    """The plain script: read, split, fit, evaluate, save."""
    import skops.io  # type: ignore[import-untyped]
    from sklearn import metrics
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.concat([pd.read_parquet(p) for p in sorted(data.glob("*.parquet"))],
                      ignore_index=True)  # fmt: skip
    x, y = frame.drop(columns="label"), frame["label"].astype(str)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=SEED, stratify=y
    )
    numeric = [f"x{i}" for i in range(NUMERIC)]
    pipeline = Pipeline([
        ("preprocess", ColumnTransformer([
            ("numeric", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]),
             numeric),
            ("categorical", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                      ("encode", OneHotEncoder(handle_unknown="ignore"))]),
             ["plan"]),
        ], sparse_threshold=0.3)),
        ("estimator", LogisticRegression(random_state=SEED)),
    ])  # fmt: skip
    pipeline.fit(x_train, y_train)
    predicted, scores = pipeline.predict(x_test), pipeline.predict_proba(x_test)[:, 1]
    result = {
        "accuracy": metrics.accuracy_score(y_test, predicted),
        "f1": metrics.f1_score(y_test, predicted, pos_label="yes"),
        "f1_macro": metrics.f1_score(y_test, predicted, average="macro"),
        "precision": metrics.precision_score(y_test, predicted, pos_label="yes"),
        "recall": metrics.recall_score(y_test, predicted, pos_label="yes"),
        "roc_auc": metrics.roc_auc_score(y_test == "yes", scores),
    }
    skops.io.dump(pipeline, out / "model.skops")
    return result


def run_trainer(data: Path, out: Path, mode: str) -> dict[str, Any]:
    """``run_training`` on the same files, through an object store over the local disk."""
    sys.path.insert(0, str(REPO))
    from tests.kit.memory_store import MemoryObjectStore

    from continuum.storage.client import ObjectInfo
    from continuum.trainer.config import TrainingConfig
    from continuum.trainer.run import run_training

    class DiskDatasetStore(MemoryObjectStore):
        """Dataset objects served from ``data``; what the trainer writes kept in memory."""

        def list_objects(self, prefix: str, *, bucket: str | None = None) -> list[ObjectInfo]:
            if prefix.startswith("bench/"):
                return [ObjectInfo(f"bench/{p.name}", f"etag-{p.name}", p.stat().st_size)
                        for p in sorted(data.glob("*.parquet"))]  # fmt: skip
            return super().list_objects(prefix, bucket=bucket)

        def get_bytes(self, key: str, *, bucket: str | None = None) -> bytes:
            if key.startswith("bench/"):
                return (data / key.removeprefix("bench/")).read_bytes()
            return super().get_bytes(key, bucket=bucket)

        def download(self, key: str, path: str, *, bucket: str | None = None) -> int:
            Path(path).write_bytes(self.get_bytes(key, bucket=bucket))
            return Path(path).stat().st_size

    spec = {
        "model": "bench",
        "dataset": {"uri": "s3://data/bench/", "target": "label", "format": "parquet",
                    "mode": mode},
        "estimator": {"class": "LogisticRegression"},
        "preprocessing": {"categorical": {"columns": ["plan"]}},
        "split": {"testSize": 0.2, "seed": SEED},
        "evaluation": {"metric": "roc_auc", "mustBeat": "none"},
        "storage": {"bucket": "data"},
    }  # fmt: skip
    config = TrainingConfig.from_spec(spec)
    config = dataclasses.replace(config, max_dataset_bytes=2**40)  # memory mode at any size
    store = DiskDatasetStore("data")
    result = run_training(config, store, progress=lambda *_a, **_k: None)
    (out / "model.skops").write_bytes(store.get_bytes("models/bench/1/model.skops"))
    return dict(result.metrics)


# ---------------------------------------------------------------------------- driver


def measure(kind: str, data: Path, mode: str) -> tuple[float, float, dict[str, Any]]:
    """Wall seconds, peak RSS (MiB) and metrics of one run in a fresh process."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, __file__, "--run", kind, "--data", str(data), "--out", out,
                   "--mode", mode]  # fmt: skip
        start = time.perf_counter()
        env = {**os.environ, "PYTHONPATH": str(REPO / "operator")}
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        output = child.stdout.read() if child.stdout else ""
        if status != 0:
            raise SystemExit(f"{kind} run failed ({status}): {output}")
        return wall, usage.ru_maxrss / 1024, json.loads(output.strip().splitlines()[-1])


def bench(rows: int, repeat: int, mode: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory)
        write_dataset(rows, data)
        runs: dict[str, list[tuple[float, float]]] = {"trainer": [], "sklearn": []}
        metrics: dict[str, Any] = {}
        for _ in range(repeat):
            for kind in ("trainer", "sklearn"):
                wall, rss, metrics[kind] = measure(kind, data, mode)
                runs[kind].append((wall, rss))
                print(f"  {rows:>10,} {kind:8} {wall:7.1f} s {rss:7.0f} MiB", file=sys.stderr)
    median = {k: (statistics.median(w for w, _ in v), statistics.median(r for _, r in v))
              for k, v in runs.items()}  # fmt: skip
    return {
        "rows": rows, "mode": mode, "repeat": repeat,
        "trainer_s": median["trainer"][0], "sklearn_s": median["sklearn"][0],
        "trainer_mib": median["trainer"][1], "sklearn_mib": median["sklearn"][1],
        "time_ratio": median["trainer"][0] / median["sklearn"][0],
        "memory_ratio": median["trainer"][1] / median["sklearn"][1],
        "roc_auc": {k: round(v["roc_auc"], 4) for k, v in metrics.items()},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mode", default="memory", choices=["memory", "stream"])
    parser.add_argument("--run", choices=["trainer", "sklearn"])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.run:
        work = run_trainer(args.data, args.out, args.mode) if args.run == "trainer" else (
            run_sklearn(args.data, args.out))  # fmt: skip
        print(json.dumps(work))
        return
    print("| rows | trainer s | script s | time ratio | trainer MiB | script MiB | memory ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for rows in args.rows:
        r = bench(rows, args.repeat, args.mode)
        print(f"| {rows:,} | {r['trainer_s']:.1f} | {r['sklearn_s']:.1f} | {r['time_ratio']:.2f} "
              f"| {r['trainer_mib']:.0f} | {r['sklearn_mib']:.0f} | {r['memory_ratio']:.2f} |",
              flush=True)  # fmt: skip
        print(json.dumps(r), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
