"""Performance estimation benchmark: Continuum's estimate against NannyML 0.13.1's CBPE.

    .venv/bin/python bench/performance_vs_nannyml.py [--chunks 10] [--chunk-rows 5000]
                                                     [--repeat 3]

A real model (the trainer's kind of pipeline: one-hot plan, LogisticRegression) is trained on
churn customers (tests/kit/datasets); its holdout (5,000 rows: probability, prediction, label)
is the reference both tools calibrate on. The analysis set is ``--chunks`` chunks of
``--chunk-rows`` customers, the later ones moved further (covariate shift: tenure pulled to
where churn is a coin toss, so the model grows unsure and its accuracy falls), labelled by the
same rule as the training data (no concept drift: what estimation can see). Both tools estimate
accuracy, f1 and roc_auc per chunk from the same Parquet files:

* Continuum (this process, the project venv): ``trainer.calibration.calibration_document``
  on the reference (the model's precomputed probabilities stand in for the pipeline), then
  ``monitor.estimation.estimate`` per chunk and metric with its 95% interval;
* NannyML (bench/performance_nannyml_runner.py in its own venv at --nannyml-venv, created if
  missing with nannyml==0.13.1, pyarrow and statsmodels, which nannyml imports without
  declaring it, from the machine's PyPI mirror): ``CBPE.fit`` + ``estimate``.

Reported: per chunk and metric both estimates, our interval, NannyML's band, the realised
metric from the labels; whether NannyML's estimate lies inside our interval (the target:
every chunk); compute times (fit + estimate, import excluded) with the ratio (target >= 10x),
medians over ``--repeat`` runs taking turns. Results: bench/results/<time>-performance.json and
the "Performance estimation vs NannyML CBPE" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from tests.kit.datasets import churn_labels, customers  # noqa: E402

from continuum.monitor import intervals  # noqa: E402
from continuum.monitor.estimation import estimate, parse_calibration  # noqa: E402
from continuum.trainer.calibration import calibration_document  # noqa: E402

NANNYML_VERSION = "0.13.1"
DEFAULT_VENV = Path(f"/var/cache/continuum/bench-venvs/nannyml-{NANNYML_VERSION}")
METRICS = ("accuracy", "f1", "roc_auc")
FEATURES = ["tenure", "charges", "plan"]
TARGET_RATIO = 10.0
SECTION = "## Performance estimation vs NannyML CBPE"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- data -----------------------------------------------------------------------------------


def population(rows: int, rng: np.random.Generator, pull: float = 0.0) -> pd.DataFrame:
    """Churn customers; ``pull`` (0..1) moves tenure towards 43 months, the coin-toss region."""
    frame = customers(rows, rng)
    frame["tenure"] = (1 - pull) * frame["tenure"] + pull * rng.normal(43, 3, rows)
    frame["churned"] = churn_labels(frame, rng)
    return frame


def model_and_data(chunks: int, chunk_rows: int, seed: int = 7) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    encode = ColumnTransformer(
        [("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"
    )
    model = make_pipeline(encode, LogisticRegression(max_iter=1000))
    train = population(20_000, rng)
    model.fit(train[FEATURES], train["churned"])
    holdout = population(5000, rng)
    analysis = pd.concat(
        [population(chunk_rows, rng, pull=0.9 * i / max(chunks - 1, 1)) for i in range(chunks)],
        ignore_index=True,
    )
    return model, holdout, analysis


def scored(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """What both tools see: the positive class's probability, the prediction, the label."""
    proba = model.predict_proba(frame[FEATURES])[:, 1]
    return pd.DataFrame({
        "proba": proba,
        "pred": (model.predict(frame[FEATURES]) == "yes").astype(int),
        "label": (frame["churned"] == "yes").astype(int),
    })  # fmt: skip


# --- Continuum --------------------------------------------------------------------------------


class Precomputed:
    """A stand-in pipeline answering with the reference's precomputed probabilities."""

    classes_ = np.array(["0", "1"])

    def __init__(self, proba: np.ndarray) -> None:
        self.proba = proba

    def predict_proba(self, _features: Any) -> np.ndarray:
        return np.column_stack([1 - self.proba, self.proba])


def ours(reference: pd.DataFrame, analysis: pd.DataFrame, chunk_rows: int) -> dict[str, Any]:
    start = time.perf_counter()
    document = calibration_document(
        Precomputed(reference["proba"].to_numpy()), None, reference["label"].astype(str)
    )
    calibration = parse_calibration(document, "reference")
    fitted = time.perf_counter() - start
    start = time.perf_counter()
    chunks: dict[str, list[dict[str, Any]]] = {m: [] for m in METRICS}
    proba = analysis["proba"].to_numpy(np.float64)
    everything = np.column_stack([1 - proba, proba])
    predictions = analysis["pred"].to_numpy(np.int64)
    for offset in range(0, len(analysis), chunk_rows):
        raw = everything[offset : offset + chunk_rows]
        calibrated = calibration.apply(raw)
        predicted = predictions[offset : offset + chunk_rows]
        for metric in METRICS:
            found = estimate(metric, calibrated, predicted, raw, confidence=0.95)
            chunks[metric].append({"value": found.value, "lower": found.lower,
                                   "upper": found.upper})  # fmt: skip
    estimated = time.perf_counter() - start
    return {"seconds": {"fit": fitted, "estimate": estimated}, "chunks": chunks}


def realised(analysis: pd.DataFrame, chunk_rows: int) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {m: [] for m in METRICS}
    for offset in range(0, len(analysis), chunk_rows):
        part = analysis.iloc[offset : offset + chunk_rows]
        truth, predicted = part["label"].to_numpy(np.int64), part["pred"].to_numpy(np.int64)
        raw = np.column_stack([1 - part["proba"].to_numpy(), part["proba"].to_numpy()])
        data = intervals.Labelled(truth, predicted, raw, ["0", "1"])
        for metric in METRICS:
            value = intervals.realised(metric, data, 0.95).value
            found[metric].append(float(value) if value is not None else float("nan"))
    return found


# --- NannyML ----------------------------------------------------------------------------------


def ensure_nannyml(venv: Path) -> Path:
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import nannyml; print(nannyml.__version__)"]
    if python.exists():
        found = subprocess.run(check, capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip() == NANNYML_VERSION:
            return python
    log(f"creating {venv} (nannyml=={NANNYML_VERSION}) ...")
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q"]
    # nannyml 0.13.1 imports statsmodels without declaring it (ModuleNotFoundError otherwise)
    subprocess.run([*pip, f"nannyml=={NANNYML_VERSION}", "pyarrow", "statsmodels"], check=True)
    return python


def nannyml(python: Path, folder: Path, chunk_rows: int) -> dict[str, Any]:
    out = folder / "nannyml.json"
    runner = HERE / "performance_nannyml_runner.py"
    subprocess.run([str(python), str(runner), str(folder), str(chunk_rows), str(out)], check=True)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


# --- comparison -------------------------------------------------------------------------------


def compare(ours_run: dict[str, Any], theirs: dict[str, Any], truth: dict[str, Any]) -> dict:
    rows, inside, total = [], 0, 0
    for metric in METRICS:
        for i, (a, b) in enumerate(zip(ours_run["chunks"][metric], theirs["chunks"][metric],
                                       strict=True)):  # fmt: skip
            agree = a["lower"] <= b["value"] <= a["upper"]
            inside += agree
            total += 1
            rows.append({
                "metric": metric, "chunk": i, "ours": a, "nannyml": b,
                "realised": truth[metric][i], "nannymlInsideOurInterval": agree,
                "difference": a["value"] - b["value"],
            })  # fmt: skip
    return {"rows": rows, "inside": inside, "total": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--chunk-rows", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--nannyml-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--dry", action="store_true", help="print only: no result files")
    args = parser.parse_args()
    python = ensure_nannyml(args.nannyml_venv)
    model, holdout, analysis_frame = model_and_data(args.chunks, args.chunk_rows)
    reference, analysis = scored(model, holdout), scored(model, analysis_frame)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        reference.to_parquet(folder / "reference.parquet", index=False)
        analysis[["proba", "pred"]].to_parquet(folder / "analysis.parquet", index=False)
        runs_ours, runs_theirs = [], []
        for turn in range(args.repeat):
            log(f"run {turn + 1}/{args.repeat}: Continuum")
            runs_ours.append(ours(reference, analysis, args.chunk_rows))
            log(f"run {turn + 1}/{args.repeat}: NannyML")
            runs_theirs.append(nannyml(python, folder, args.chunk_rows))
    truth = realised(analysis, args.chunk_rows)
    report = summarise(args, runs_ours, runs_theirs, truth)
    if args.dry:
        print(section_text(report))
        return
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = HERE / "results" / f"{stamp}-performance.json"
    out.write_text(json.dumps(report, indent=2))
    log(f"wrote {out}")
    write_section(report)
    print(section_text(report))


def _compute(run: dict[str, Any]) -> float:
    return float(run["seconds"]["fit"] + run["seconds"]["estimate"])


def summarise(args: argparse.Namespace, ours_runs: list, theirs_runs: list, truth: dict) -> dict:
    ours_s = statistics.median(_compute(r) for r in ours_runs)
    theirs_s = statistics.median(_compute(r) for r in theirs_runs)
    comparison = compare(ours_runs[0], theirs_runs[0], truth)
    return {
        "args": vars(args) | {"nannyml_venv": str(args.nannyml_venv)},
        "nannymlVersion": theirs_runs[0]["version"],
        "seconds": {
            "continuum": ours_s,
            "nannyml": theirs_s,
            "ratio": theirs_s / ours_s,
            "continuumRuns": [r["seconds"] for r in ours_runs],
            "nannymlRuns": [r["seconds"] for r in theirs_runs],
        },
        "agreement": {"inside": comparison["inside"], "total": comparison["total"]},
        "rows": comparison["rows"],
    }


def section_text(report: dict[str, Any]) -> str:
    a, s = report["args"], report["seconds"]
    lines = [
        SECTION,
        "",
        f"`.venv/bin/python bench/performance_vs_nannyml.py --chunks {a['chunks']} "
        f"--chunk-rows {a['chunk_rows']} --repeat {a['repeat']}` "
        f"({datetime.now(UTC):%Y-%m-%d}, NannyML {report['nannymlVersion']} in its own venv; "
        "a LogisticRegression on churn customers, a 5,000-row holdout as reference, later "
        "chunks moved towards the coin-toss region: covariate shift, no concept drift).",
        "",
        f"- NannyML's estimate inside our 95% interval: {report['agreement']['inside']} of "
        f"{report['agreement']['total']} (chunk, metric) pairs (target: all).",
        f"- compute (calibration fit + estimates of accuracy, f1, roc_auc for every chunk, "
        f"import excluded), median of {a['repeat']}: Continuum {s['continuum']:.3f} s, "
        f"NannyML {s['nannyml']:.3f} s: {s['ratio']:.1f}x (target >= {TARGET_RATIO:g}x).",
        "",
        "| metric | chunk | realised | Continuum [95% interval] | NannyML [band] | inside |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        o, n = row["ours"], row["nannyml"]
        lines.append(
            f"| {row['metric']} | {row['chunk']} | {row['realised']:.4f} | {o['value']:.4f} "
            f"[{o['lower']:.4f}, {o['upper']:.4f}] | {n['value']:.4f} [{n['lower']:.4f}, "
            f"{n['upper']:.4f}] | {'yes' if row['nannymlInsideOurInterval'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def write_section(report: dict[str, Any]) -> None:
    """Replace (or append) this bench's section of bench/RESULTS.md, leaving the rest."""
    path = HERE / "RESULTS.md"
    text = path.read_text()
    section = section_text(report)
    if SECTION in text:
        head, rest = text.split(SECTION, 1)
        after = rest.find("\n## ")
        text = head + section + (rest[after + 1 :] if after >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    main()
