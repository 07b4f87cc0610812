"""Realised-metric join benchmark (issue 16): Continuum's check path against pandas + sklearn.

    .venv/bin/python bench/realised_join.py [--sizes 100000,1000000] [--seed 7]

For each size N, N logged predictions and about N labels are generated (seeded) on local disk
as the server and the users write them: inference-log batches of 10,000 rows in the
storage.inference_logs encoding (request ids, row indices, ts, version, prediction, proba,
features incl. a categorical string; requests of 1-3 rows; 1% legacy one-row requests without
``row``), and label files of at most 100,000 labels in a mix of Parquet, JSON lines and
CSV (2% duplicates across files, 1% unknown ids, the last hour's predictions unripe for the
1 h label delay). Then, each in a fresh subprocess so the peak RSS (VmHWM) is that run's
alone:

* Continuum: exactly the check's calls (monitor.live.read_inputs, its default: in memory
  while the stored logs and labels fit the budget, else monitor.bounded_join's partitions)
  through a local-disk ObjectStore (same readers, only get_bytes/list_objects are served from
  files), then realised_of("accuracy") with its 95% interval; and the same in memory;
* the peer: pandas reads the same files (read_json lines / read_parquet / read_csv), pd.merge
  on (id, row), sklearn.metrics.accuracy_score: no duplicate rule, no label delay, no counts.

Reported: per size both times and peak RSS, the ratios ours/peer, each side's memory growth
from the smallest to the largest size, and both accuracies (the peer's counts every duplicate
and unripe label, so it differs slightly; the difference is printed). Results:
bench/results/<time>-realised-join.json and the section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "operator"), str(ROOT), str(HERE)]

import sections  # noqa: E402

from continuum.storage.client import ObjectInfo, ObjectStore  # noqa: E402
from continuum.storage.inference_logs import batch_key, encode_rows  # noqa: E402
from continuum.storage.layout import labels_prefix  # noqa: E402
from continuum.storage.settings import S3Settings  # noqa: E402

MODEL, VERSION, CLASSES = "churn", 1, ("no", "yes")
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
DELAY, SPAN = timedelta(hours=1), timedelta(days=7)
BATCH_ROWS = 10_000
LABEL_FILE_ROWS = 100_000  # a label file's rows at most (a day's drop, say)
SECTION = "## Realised-metric join vs pandas merge + scikit-learn"
BEGIN, END = "<!-- BEGIN realised-join -->", "<!-- END realised-join -->"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class LocalStore(ObjectStore):
    """The two calls the readers make (list_objects, get_bytes), served from a folder: the
    check's code path without an S3 round trip, so the figures are the join's own."""

    def __init__(self, root: Path) -> None:
        self.settings = S3Settings(bucket="bench")
        self.root = root

    def get_bytes(self, key: str, *, bucket: str | None = None) -> bytes:
        return (self.root / key).read_bytes()

    def list_objects(self, prefix: str, *, bucket: str | None = None) -> list[ObjectInfo]:
        paths = (p for p in self.root.rglob("*") if p.is_file())
        found = sorted((str(p.relative_to(self.root)), p.stat().st_size) for p in paths)
        return [
            ObjectInfo(k, hashlib.md5(k.encode()).hexdigest(), size)
            for k, size in found
            if k.startswith(prefix)
        ]


# --- data -----------------------------------------------------------------------------------


def requests(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(request number, row index) of n rows: requests of 1-3 rows."""
    sizes = rng.integers(1, 4, size=n)
    request = np.repeat(np.arange(n), sizes)[:n]
    starts = np.r_[0, np.flatnonzero(np.diff(request)) + 1]
    row = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    return request, row


def predictions_table(n: int, rng: np.random.Generator, clean: bool) -> pd.DataFrame:
    """``clean``: every prediction older than the label delay (none waiting)."""
    request, row = requests(n, rng)
    seconds = np.sort(rng.uniform(0, 3 * 86400, size=n)) + (2 * 3600 if clean else 0)
    p_yes = rng.uniform(0, 1, size=n)
    return pd.DataFrame(
        {
            "request_id": [f"req-{r:08d}" for r in request],
            "row": row,
            "ts": [NOW - timedelta(seconds=float(s)) for s in seconds[::-1]],
            "prediction": np.where(p_yes > 0.5, "yes", "no"),
            "p_yes": p_yes,
            "tenure": rng.uniform(0, 72, size=n).round(1),
            "plan": rng.choice(["basic", "plus", "premium"], size=n),
        }
    )


def log_rows(frame: pd.DataFrame, legacy: np.ndarray) -> list[dict[str, Any]]:
    """The rows as the server logs them; ``legacy`` rows (one-row requests) lack ``row``."""
    rows = []
    for i, r in enumerate(frame.itertuples(index=False)):
        row: dict[str, Any] = {
            "ts": f"{r.ts:%Y-%m-%dT%H:%M:%S.%f}Z",
            "request_id": r.request_id,
            "row": int(r.row),
            "model": MODEL,
            "version": VERSION,
            "features": {"tenure": r.tenure, "plan": r.plan},
            "prediction": r.prediction,
            "proba": [round(1 - r.p_yes, 6), round(r.p_yes, 6)],
        }
        if legacy[i]:
            del row["row"]
        rows.append(row)
    return rows


def write_logs(root: Path, frame: pd.DataFrame, rng: np.random.Generator) -> int:
    alone = ~frame["request_id"].duplicated(keep=False).to_numpy()
    legacy = alone & (rng.uniform(size=len(frame)) < 0.03)
    batches = 0
    for start in range(0, len(frame), BATCH_ROWS):
        part = frame.iloc[start : start + BATCH_ROWS]
        key = batch_key(MODEL, VERSION, part["ts"].iloc[-1] + timedelta(seconds=1), f"b{start}")
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_rows(log_rows(part, legacy[start : start + BATCH_ROWS])))
        batches += 1
    return batches


def labels_table(frame: pd.DataFrame, rng: np.random.Generator, clean: bool) -> pd.DataFrame:
    """One label per prediction (the truth flips the prediction 15% of the time), plus (not
    ``clean``) 2% duplicates (half disagreeing, a later time) and 1% unknown ids."""
    n = len(frame)
    truth = np.where(rng.uniform(size=n) < 0.85, frame["prediction"], "")
    truth = np.where(truth == "", np.where(frame["prediction"] == "yes", "no", "yes"), truth)
    base = pd.DataFrame(
        {
            "id": frame["request_id"],
            "row": frame["row"],
            "label": truth,
            "time": "2026-12-05T12:00:00Z",
        }
    )
    if clean:
        return base
    dup = base.sample(frac=0.02, random_state=int(rng.integers(1 << 30))).copy()
    flip = rng.uniform(size=len(dup)) < 0.5
    dup.loc[flip, "label"] = np.where(dup.loc[flip, "label"] == "yes", "no", "yes")
    dup["time"] = "2026-12-05T12:30:00Z"
    unknown = base.sample(frac=0.01, random_state=int(rng.integers(1 << 30))).copy()
    unknown["id"] = "other-" + unknown["id"]
    return pd.concat([base, dup, unknown], ignore_index=True)


def write_labels(root: Path, labels: pd.DataFrame) -> list[str]:
    """Files of at most LABEL_FILE_ROWS labels (at least 6), Parquet, JSON lines and CSV in
    turn (the duplicates land in later files): labels arrive as drops over time, as the
    feedback endpoint writes them, so the files grow in number with the data, not in size."""
    folder = root / labels_prefix(MODEL)
    folder.mkdir(parents=True, exist_ok=True)
    parts = np.array_split(np.arange(len(labels)), max(6, -(-len(labels) // LABEL_FILE_ROWS)))
    names = []
    for i, at in enumerate(parts):
        part = labels.iloc[at]
        name = folder / f"part-{i}{('.parquet', '.jsonl', '.csv')[i % 3]}"
        if name.suffix == ".parquet":
            part.to_parquet(name, index=False)
        elif name.suffix == ".jsonl":
            part.to_json(name, orient="records", lines=True)
        else:
            part.to_csv(name, index=False)
        names.append(name.name)
    return names


def generate(root: Path, n: int, seed: int, clean: bool = False) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    frame = predictions_table(n, rng, clean)
    batches = write_logs(root, frame, rng)
    labels = labels_table(frame, rng, clean)
    files = write_labels(root, labels)
    return {"predictions": n, "labels": len(labels), "batches": batches, "labelFiles": files}


# --- the two runs (each in its own subprocess) -------------------------------------------


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status: run this bench on Linux")


def peak_rss_mb() -> float:
    return status_mb("VmHWM")


def rss_mb() -> float:
    """After the imports, before any data: what the peak is measured above."""
    return status_mb("VmRSS")


def run_ours(root: Path, partitions: int | None = None) -> dict[str, Any]:
    """The check's own calls (monitor.live.read_inputs, partitioned as its stored size asks
    unless ``partitions`` is given), then the realised accuracy with its interval."""
    from continuum.monitor.bounded_join import stored_partitions  # noqa: PLC0415 (the peer must not pay for our imports)
    from continuum.monitor.live import read_inputs  # noqa: PLC0415 (the peer must not pay for our imports)
    from continuum.monitor.performance import Served, Window, realised_of  # noqa: PLC0415 (the peer must not pay for our imports)
    from continuum.monitor.settings import MonitorTarget  # noqa: PLC0415 (the peer must not pay for our imports)

    store, base = LocalStore(root), rss_mb()
    started = time.perf_counter()
    served = Served("classification", CLASSES, {}, None)
    window = Window(NOW, DELAY, SPAN - DELAY)  # its start: NOW - SPAN, as the peer reads
    target = MonitorTarget("bench", MODEL, VERSION)
    inputs, _ = read_inputs(store, target, served, window, None, partitions=partitions)
    data = inputs.labelled.after(window.start).arrays(served)
    interval = realised_of("accuracy", data, served, 0.95)
    seconds = time.perf_counter() - started
    assert inputs.join is not None
    return {"seconds": seconds, "accuracy": interval.value, "rows": interval.rows,
            "interval": [interval.lower, interval.upper], "counts": inputs.join.as_dict(),
            "partitions": partitions or stored_partitions(store, MODEL, VERSION),
            "baseRssMb": base}  # fmt: skip


def run_memory(root: Path) -> dict[str, Any]:
    """The same all in memory (one partition): faster, its peak grows with the data."""
    return run_ours(root, partitions=1)


def run_peer(root: Path) -> dict[str, Any]:
    """pandas reads the same files, one merge on (id, row), sklearn's accuracy_score."""
    from sklearn.metrics import accuracy_score  # noqa: PLC0415 (the peer must not pay for our imports)

    base = rss_mb()
    started = time.perf_counter()
    logs = sorted((root / "inference-logs").rglob("*.jsonl"))
    predictions = pd.concat(
        [pd.read_json(p, lines=True, dtype={"request_id": str}) for p in logs], ignore_index=True
    )
    predictions["row"] = predictions["row"].fillna(0).astype(np.int64)
    labels = pd.concat([read_label_file(p) for p in sorted((root / "labels").rglob("*.*"))])
    joined = predictions.merge(labels, left_on=["request_id", "row"], right_on=["id", "row"])
    accuracy = float(accuracy_score(joined["label"], joined["prediction"]))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "accuracy": accuracy, "rows": len(joined), "baseRssMb": base}


def read_label_file(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif path.suffix == ".jsonl":
        frame = pd.read_json(path, lines=True, dtype={"id": str})
    else:
        frame = pd.read_csv(path, dtype={"id": str})
    return frame[["id", "row", "label"]]


def child(side: str, root: Path) -> None:
    result = {"ours": run_ours, "memory": run_memory, "peer": run_peer}[side](root)
    print(json.dumps(result | {"peakRssMb": peak_rss_mb()}))


def measure(side: str, root: Path) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", side, str(root)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"the {side} run failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- report -------------------------------------------------------------------------------


def one_size(n: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="realised-join-") as folder:
        root = Path(folder)
        log(f"N={n:,}: generating logs and labels")
        data = generate(root, n, seed)
        log(f"N={n:,}: {data['batches']} batches, {data['labels']:,} labels; running Continuum")
        ours = measure("ours", root)
        log(f"N={n:,}: Continuum {ours['seconds']:.1f} s, {ours['peakRssMb']:.0f} MB; peer")
        peer = measure("peer", root)
        log(f"N={n:,}: peer {peer['seconds']:.1f} s, {peer['peakRssMb']:.0f} MB; in memory")
        memory = measure("memory", root)
        log(f"N={n:,}: in memory {memory['seconds']:.1f} s, {memory['peakRssMb']:.0f} MB")
        if (memory["counts"], memory["interval"]) != (ours["counts"], ours["interval"]):
            raise RuntimeError(f"the join in memory differs: {memory} vs {ours}")
    ratios = {
        "time": ours["seconds"] / peer["seconds"],
        "memory": ours["peakRssMb"] / peer["peakRssMb"],
    }
    return {"size": n, "data": data, "ours": ours, "peer": peer, "memory": memory,
            "ratios": ratios}  # fmt: skip


def agreement(n: int, seed: int) -> dict[str, Any]:
    """Both sides on data without duplicates, unknown ids or waiting predictions: the
    accuracies must be equal."""
    with tempfile.TemporaryDirectory(prefix="realised-join-clean-") as folder:
        generate(Path(folder), n, seed, clean=True)
        ours, peer = measure("ours", Path(folder)), measure("peer", Path(folder))
    difference = abs(ours["accuracy"] - peer["accuracy"])
    log(f"clean N={n:,}: accuracy ours {ours['accuracy']:.6f}, peer {peer['accuracy']:.6f}")
    return {
        "size": n,
        "ours": ours["accuracy"],
        "peer": peer["accuracy"],
        "difference": difference,
        "rows": [ours["rows"], peer["rows"]],
    }


def growth(runs: list[dict[str, Any]], side: str) -> float:
    """Peak RSS above the imports' (baseRssMb), largest size over smallest."""

    def above(run: dict[str, Any]) -> float:
        return float(run[side]["peakRssMb"] - run[side]["baseRssMb"])

    return above(runs[-1]) / max(above(runs[0]), 1.0)


def table(report: dict[str, Any]) -> list[str]:
    lines = [
        "| N (logged x labels) | partitions | Continuum s | peer s | time ours/peer | "
        "Continuum MB | peer MB | memory ours/peer | accuracy ours / peer |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in report["runs"]:
        o, p, r = run["ours"], run["peer"], run["ratios"]
        lines.append(
            f"| {run['size']:,} x {run['data']['labels']:,} | {o['partitions']} | "
            f"{o['seconds']:.1f} | "
            f"{p['seconds']:.1f} | {r['time']:.2f} | {o['peakRssMb']:.0f} | "
            f"{p['peakRssMb']:.0f} | {r['memory']:.2f} | "
            f"{o['accuracy']:.4f} / {p['accuracy']:.4f} |"
        )
    return lines


def section_text(report: dict[str, Any]) -> str:
    sizes = ",".join(str(run["size"]) for run in report["runs"])
    g = report["growth"]
    lines = [
        BEGIN,
        SECTION,
        "",
        f"`.venv/bin/python bench/realised_join.py --sizes {sizes}` "
        f"({report['measured']}, 2 shared CPUs; each run in a fresh subprocess, peak RSS "
        "= its VmHWM; data on local disk through the check's readers).",
        "",
        *table(report),
        "",
        f"- memory growth (peak above the post-import RSS) "
        f"{report['runs'][0]['size']:,} -> {report['runs'][-1]['size']:,}: "
        f"Continuum {g['ours']:.1f}x, peer {g['peer']:.1f}x; from one size to the next: "
        + "; ".join(
            f"{s['from']:,} -> {s['to']:,} ({s['to'] / s['from']:g}x the data): Continuum "
            f"{s['ours']:.1f}x, peer {s['peer']:.1f}x"
            for s in report["steps"]
        )
        + ".",
        "- Continuum is what the check runs (monitor.live.read_inputs): in memory while the "
        "window's logs and labels fit its budget, else hash partitions spilled to local disk "
        "(monitor.bounded_join). All in memory (one partition), the same counts and interval: "
        + "; ".join(
            f"{run['size']:,}: {run['memory']['seconds']:.1f} s, "
            f"{run['memory']['peakRssMb']:.0f} MB"
            for run in report["runs"]
        )
        + f"; growth {g['memory']:.1f}x.",
        "- rows Continuum's accuracy rests on (each side sampled down to the API's default "
        "performance.maxRows, 1,000,000, by the smallest hash of request id and row): "
        + "; ".join(f"{run['size']:,}: {run['ours']['rows']:,}" for run in report["runs"])
        + ".",
        "- the accuracies differ because the peer counts every duplicate label (2%, half "
        "disagreeing) and the unripe last hour; ours applies the duplicate rule and the "
        "label delay (counts in the JSON).",
        f"- clean data ({report['agreement']['size']:,} rows, no duplicates, unknown ids "
        f"or waiting predictions): accuracy ours {report['agreement']['ours']:.6f}, peer "
        f"{report['agreement']['peer']:.6f}, difference "
        f"{report['agreement']['difference']:.2g} (joined rows {report['agreement']['rows']}).",
        f"- raw figures: `{report['file']}` (not committed).",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_section(report: dict[str, Any]) -> None:
    """Replace (or append) this bench's marked section of bench/RESULTS.md."""
    sections.write_section(section_text(report), BEGIN, END)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], Path(args.child[1]))
    sizes = [int(size) for size in args.sizes.split(",")]
    runs = [one_size(size, args.seed) for size in sizes]
    agreed = agreement(sizes[0], args.seed)
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    out = HERE / "results" / f"{stamp}-realised-join.json"
    report = {
        "measured": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "runs": runs,
        "agreement": agreed,
        "growth": {side: growth(runs, side) for side in ("ours", "peer", "memory")},
        "steps": [
            {
                "from": a["size"],
                "to": b["size"],
                "ours": growth([a, b], "ours"),
                "peer": growth([a, b], "peer"),
            }
            for a, b in itertools.pairwise(runs)
        ],
        "file": str(out.relative_to(ROOT)),
    }
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    (HERE / "results" / f"{stamp}-realised-join.md").write_text("\n".join(table(report)) + "\n")
    write_section(report)
    print("\n".join(table(report)))
    log("growth: " + ", ".join(f"{k} {v:.1f}x" for k, v in report["growth"].items()))


if __name__ == "__main__":
    main()
