"""Drift benchmark: Continuum's drift check against Evidently's data-drift report.

    .venv/bin/python bench/drift_vs_evidently.py [--rows 100000] [--numeric 30]
                                                 [--categorical 20] [--repeat 1]

Generates one seeded reference and one current frame (mixed numeric and categorical, some
features shifted) to Parquet in a temporary directory, then, for each preset, runs each tool
in its own subprocess on those same files:

  default  Evidently's own choice at this size: normed Wasserstein (numeric) and
           Jensen-Shannon (categorical);
  ks_chi2  KS (numeric) and chi-square (categorical), chosen explicitly;
  psi      PSI on every column, chosen explicitly.

Continuum's side (bench/drift_ours_runner.py, project venv) times ``run_check``, which
computes every statistic of every feature at once; Evidently's side
(bench/drift_evidently_runner.py, its own venv at --evidently-venv, created if missing with
evidently==0.7.23 and pandas<3) times ``Dataset.from_pandas`` + ``Report.run``. Both report
import, load and compute times separately; compute is what the ratio is taken on. Peak RSS
of each subprocess comes from ``os.wait4`` (the child's own ru_maxrss), with the RSS
reached after loading the Parquet files reported beside it.

The per-feature statistics of the tests both tools compute are compared; where the two tools
define a statistic differently (Evidently's chi-square is a goodness-of-fit test against the
reference frequencies, ours the 2xK test of homogeneity; Evidently's numeric PSI uses Sturges
bins over both samples, ours reference deciles) the difference is reported as such, next to
a definition check: the same formula recomputed here from the generated data, to show the
difference is the definition and nothing else. Results: bench/results/<timestamp>-drift.json
and a section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EVIDENTLY_VERSION = "0.7.23"
DEFAULT_VENV = Path(f"/var/cache/continuum/bench-venvs/evidently-{EVIDENTLY_VERSION}")
PRESETS = ("default", "ks_chi2", "psi")
TARGET_RATIO = 25.0
EQUAL = 1e-9  # "equal": absolute difference at most this (statistics and p-values in [0, ~1])
SECTION = "## Drift computation vs Evidently"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- data -----------------------------------------------------------------------------------


def generate(rows: int, numeric: int, categorical: int, seed: int) -> tuple[pd.DataFrame, ...]:
    """Reference and current frames; every third feature of each kind shifted in current."""
    rng = np.random.default_rng(seed)
    ref: dict[str, Any] = {}
    cur: dict[str, Any] = {}
    for i in range(numeric):
        shift = 0.15 * (1 + i % 4) if i % 3 == 0 else 0.0
        ref[f"num_{i:02d}"], cur[f"num_{i:02d}"] = _numeric_pair(rng, i % 4, rows, shift)
    for i in range(categorical):
        levels = 3 + (i * 7) % 23
        labels = np.array([f"c{k:02d}" for k in range(levels)])
        # at least 0.5% per level: every level is seen on both sides (no floor or pooling)
        base = 0.005 + rng.dirichlet(np.ones(levels)) * (1 - 0.005 * levels)
        moved = base
        if i % 3 == 0:
            moved = 0.6 * base + 0.4 * (0.005 + rng.dirichlet(np.ones(levels)))
            moved = moved / moved.sum()
        ref[f"cat_{i:02d}"] = rng.choice(labels, rows, p=base)
        cur[f"cat_{i:02d}"] = rng.choice(labels, rows, p=moved)
    return pd.DataFrame(ref), pd.DataFrame(cur)


def _numeric_pair(
    rng: np.random.Generator, shape: int, rows: int, shift: float
) -> tuple[np.ndarray, np.ndarray]:
    draw: Callable[[float], np.ndarray]
    if shape == 0:

        def draw(s: float) -> np.ndarray:
            return rng.normal(50 + 10 * s, 10, rows)
    elif shape == 1:

        def draw(s: float) -> np.ndarray:
            return rng.lognormal(1 + s, 0.6, rows)
    elif shape == 2:

        def draw(s: float) -> np.ndarray:
            return rng.exponential(3 * (1 + s), rows)
    else:

        def draw(s: float) -> np.ndarray:
            return np.round(rng.uniform(0, 100 * (1 + s), rows), 2)  # ties, like prices

    return draw(0.0), draw(shift)


def write_data(directory: Path, args: argparse.Namespace) -> dict[str, Any]:
    begin = time.perf_counter()
    reference, current = generate(args.rows, args.numeric, args.categorical, args.seed)
    generated = time.perf_counter()
    reference.to_parquet(directory / "reference.parquet", index=False)
    current.to_parquet(directory / "current.parquet", index=False)
    schema = {
        "numeric": [c for c in reference.columns if c.startswith("num_")],
        "categorical": [c for c in reference.columns if c.startswith("cat_")],
    }
    (directory / "schema.json").write_text(json.dumps(schema))
    written = time.perf_counter()
    return {
        "reference": reference,
        "current": current,
        "schema": schema,
        "seconds": {"generate": generated - begin, "write_parquet": written - generated},
        "bytes": sum(
            (directory / f).stat().st_size for f in ("reference.parquet", "current.parquet")
        ),
    }


# --- running the tools ----------------------------------------------------------------------


def ensure_evidently(venv: Path) -> Path:
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import evidently, pandas; print(evidently.__version__)"]
    if python.exists():
        found = subprocess.run(check, capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip() == EVIDENTLY_VERSION:
            return python
    log(f"creating {venv} (evidently=={EVIDENTLY_VERSION}, pandas<3) ...")
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q"]
    subprocess.run([*pip, f"evidently=={EVIDENTLY_VERSION}", "pandas<3", "pyarrow"], check=True)
    return python


def run_tool(command: list[str], out: Path) -> dict[str, Any]:
    """Run one runner in its own process; its JSON plus the child's own peak RSS (wait4)."""
    begin = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{command[1]} failed with exit code {process.returncode}")
    result: dict[str, Any] = json.loads(out.read_text())
    result["wall_seconds"] = time.perf_counter() - begin
    result["peak_rss_mb"]["wait4"] = usage.ru_maxrss / 1024
    return result


# --- comparing ------------------------------------------------------------------------------


def gof_chi2_p(reference: pd.Series, current: pd.Series) -> float:
    """Evidently's chi-square, re-derived: goodness of fit of current to reference shares."""
    keys = sorted(set(reference.unique()) | set(current.unique()))
    ref = reference.value_counts().reindex(keys, fill_value=0).to_numpy(dtype=float)
    cur = current.value_counts().reindex(keys, fill_value=0).to_numpy(dtype=float)
    return float(scipy_stats.chisquare(cur, ref * len(current) / len(reference)).pvalue)


def sturges_psi(reference: pd.Series, current: pd.Series) -> float:
    """Evidently's numeric PSI, re-derived: Sturges bins over both samples, zeros filled."""
    edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
    ref = np.histogram(reference, edges)[0] / len(reference)
    cur = np.histogram(current, edges)[0] / len(current)
    for shares in (ref, cur):
        smallest = shares[shares > 0].min()
        shares[shares == 0] = smallest / 10**6 if smallest <= 1e-4 else 1e-4
    return float(np.sum((ref - cur) * np.log(ref / cur)))


# (preset, kind) -> (what is compared, our field, same definition?, definition check or None)
Check = Callable[[pd.Series, pd.Series], float]
COMPARISONS: dict[tuple[str, str], tuple[str, str, bool, Check | None]] = {
    ("default", "numeric"): ("Wasserstein / ref std", "wasserstein_normalized", True, None),
    ("default", "categorical"): ("Jensen-Shannon distance", "jensen_shannon", True, None),
    ("ks_chi2", "numeric"): ("KS p-value", "p_value", True, None),
    ("ks_chi2", "categorical"): ("chi-square p-value", "p_value", False, gof_chi2_p),
    ("psi", "numeric"): ("PSI", "psi", False, sturges_psi),
    ("psi", "categorical"): ("PSI", "psi", True, None),
}


def compare(
    preset: str, ours: dict[str, Any], theirs: dict[str, Any], data: dict[str, Any]
) -> list[dict[str, Any]]:
    rows = []
    for kind in ("numeric", "categorical"):
        label, field, same, check = COMPARISONS[(preset, kind)]
        diffs, check_diffs, worst = [], [], None
        for column in data["schema"][kind]:
            our = ours["columns"][column][field]
            their = theirs["columns"][column]["score"]
            diff = abs(our - their)
            diffs.append(diff)
            if worst is None or diff > worst[1]:
                worst = (column, diff, our, their)
            if check is not None:
                expected = check(data["reference"][column], data["current"][column])
                check_diffs.append(abs(expected - their))
        rows.append(
            {
                "preset": preset,
                "kind": kind,
                "statistic": label,
                "evidently_method": theirs["columns"][data["schema"][kind][0]]["method"],
                "same_definition": same,
                "features": len(diffs),
                "max_abs_diff": max(diffs),
                "worst": {"column": worst[0], "ours": worst[2], "evidently": worst[3]}
                if worst
                else None,
                "definition_check_max_abs_diff": max(check_diffs) if check_diffs else None,
                "equal": max(diffs) <= EQUAL,
            }
        )
    return rows


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--numeric", type=int, default=30)
    parser.add_argument("--categorical", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--repeat", type=int, default=1, help="compute runs of ours per preset")
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--evidently-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--no-record", action="store_true", help="skip RESULTS.md and JSON")
    args = parser.parse_args()
    started = datetime.now(UTC)

    evidently_python = ensure_evidently(args.evidently_venv)
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp:
        directory = Path(tmp)
        log(f"generating {args.rows} x {args.numeric + args.categorical} (x2) into {tmp} ...")
        data = write_data(directory, args)
        log(
            f"data: generated in {data['seconds']['generate']:.2f}s, Parquet written in "
            f"{data['seconds']['write_parquet']:.2f}s ({data['bytes'] / 1e6:.1f} MB)"
        )
        presets = []
        for preset in args.presets.split(","):
            presets.append(run_preset(preset, directory, data, evidently_python, args.repeat))

    summary = {
        "started": started.isoformat(timespec="seconds"),
        "args": {k: str(v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "data_seconds": data["seconds"],
        "data_bytes": data["bytes"],
        "target_ratio": TARGET_RATIO,
        "presets": presets,
    }
    print_summary(summary)
    if not args.no_record:
        record(summary, started)


def run_preset(
    preset: str, directory: Path, data: dict[str, Any], evidently: Path, repeat: int
) -> dict[str, Any]:
    ours_out, theirs_out = directory / f"ours-{preset}.json", directory / f"ev-{preset}.json"
    log(f"[{preset}] continuum ...")
    ours = run_tool(
        [
            str(ROOT / ".venv" / "bin" / "python"),
            str(HERE / "drift_ours_runner.py"),
            str(directory),
            preset,
            str(ours_out),
            str(repeat),
        ],
        ours_out,
    )
    log(
        f"[{preset}] continuum: compute {ours['seconds']['compute']:.3f}s "
        f"(CPU {ours['seconds']['compute_cpu']:.3f}s)"
    )
    log(f"[{preset}] evidently {EVIDENTLY_VERSION} ...")
    theirs = run_tool(
        [
            str(evidently),
            str(HERE / "drift_evidently_runner.py"),
            str(directory),
            preset,
            str(theirs_out),
        ],
        theirs_out,
    )
    ratio = theirs["seconds"]["compute"] / ours["seconds"]["compute"]
    cpu_ratio = theirs["seconds"]["compute_cpu"] / ours["seconds"]["compute_cpu"]
    log(
        f"[{preset}] evidently: compute {theirs['seconds']['compute']:.3f}s "
        f"(CPU {theirs['seconds']['compute_cpu']:.3f}s) -> ratio {ratio:.1f}x "
        f"(CPU {cpu_ratio:.1f}x)"
    )
    comparisons = compare(preset, ours, theirs, data)
    for row in comparisons:
        log(
            f"[{preset}]   {row['kind']:<11} {row['statistic']:<24} max |diff| "
            f"{row['max_abs_diff']:.3g}"
            + (
                ""
                if row["same_definition"]
                else f" (other definition; check {row['definition_check_max_abs_diff']:.3g})"
            )
        )
    strip = ("columns",)
    return {
        "preset": preset,
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "meets_target": ratio >= TARGET_RATIO,
        "continuum": {k: v for k, v in ours.items() if k not in strip},
        "evidently": {k: v for k, v in theirs.items() if k not in strip},
        "comparisons": comparisons,
        "columns": {"continuum": ours["columns"], "evidently": theirs["columns"]},
    }


def print_summary(summary: dict[str, Any]) -> None:
    print()
    print(
        f"{'preset':<8} {'ours s':>7} {'evidently s':>11} {'ratio':>7}  {'ours CPU s':>10} "
        f"{'ev. CPU s':>9} {'CPU ratio':>9}  target  {'RSS ours':>8} {'RSS ev.':>7} (MB)"
    )
    for p in summary["presets"]:
        ours, theirs = p["continuum"], p["evidently"]
        print(
            f"{p['preset']:<8} {ours['seconds']['compute']:>7.3f} "
            f"{theirs['seconds']['compute']:>11.3f} {p['ratio']:>6.1f}x  "
            f"{ours['seconds']['compute_cpu']:>10.3f} {theirs['seconds']['compute_cpu']:>9.3f} "
            f"{p['cpu_ratio']:>8.1f}x  >=25x  {ours['peak_rss_mb']['wait4']:>8.0f} "
            f"{theirs['peak_rss_mb']['wait4']:>7.0f}  {'ok' if p['meets_target'] else 'MISSED'}"
        )
    print()
    for p in summary["presets"]:
        for row in p["comparisons"]:
            tag = (
                "equal"
                if row["equal"]
                else ("DIFFERENT" if row["same_definition"] else "differs by definition")
            )
            print(
                f"{p['preset']:<8} {row['kind']:<11} {row['statistic']:<24} "
                f"max |diff| {row['max_abs_diff']:.3g}  {tag}"
            )


def record(summary: dict[str, Any], started: datetime) -> None:
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    path = results / f"{stamp}-drift.json"
    path.write_text(json.dumps(summary, indent=1, default=float))
    log(f"raw figures: {path.relative_to(ROOT)}")
    write_section(summary, path.relative_to(ROOT), started)


def fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.2g}" if value else "0"


def section(summary: dict[str, Any], raw: Path, started: datetime) -> str:
    a = summary["args"]
    lines = [
        SECTION,
        "",
        f"Measured {started:%Y-%m-%d %H:%M} UTC ({summary['machine']['cpus']} CPUs, shared with "
        "other work; all figures from one run), with",
        "",
        f"    .venv/bin/python bench/drift_vs_evidently.py --rows {a['rows']} "
        f"--numeric {a['numeric']} --categorical {a['categorical']} --repeat {a['repeat']}",
        "",
        f"Data: {a['rows']} reference + {a['rows']} current rows, {a['numeric']} numeric + "
        f"{a['categorical']} categorical features, seeded; generated in "
        f"{summary['data_seconds']['generate']:.1f}s, written to Parquet in "
        f"{summary['data_seconds']['write_parquet']:.1f}s (not in any figure below).",
        "",
        "| preset | Continuum (s) | Evidently 0.7.23 (s) | ratio | target | | CPU s: "
        "Continuum / Evidently | CPU ratio | peak RSS Continuum (MB) | peak RSS Evidently (MB) |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for p in summary["presets"]:
        ours, theirs = p["continuum"], p["evidently"]
        lines.append(
            f"| {p['preset']} | {ours['seconds']['compute']:.3f} | "
            f"{theirs['seconds']['compute']:.2f} | {p['ratio']:.1f}x | ≥ 25x | "
            f"{'ok' if p['meets_target'] else 'MISSED'} | "
            f"{ours['seconds']['compute_cpu']:.3f} / {theirs['seconds']['compute_cpu']:.2f} | "
            f"{p['cpu_ratio']:.1f}x | "
            f"{ours['peak_rss_mb']['wait4']:.0f} ({ours['peak_rss_mb']['after_load']:.0f} "
            f"after load) | {theirs['peak_rss_mb']['wait4']:.0f} "
            f"({theirs['peak_rss_mb']['after_load']:.0f} after load) |"
        )
    lines += [
        "",
        "Statistics, per feature, for the tests both compute (max over features of "
        "|ours - Evidently|):",
        "",
        "| preset | features | statistic | Evidently method | max abs diff | same definition? "
        "| definition check |",
        "|---|---|---|---|---:|---|---:|",
    ]
    for p in summary["presets"]:
        for row in p["comparisons"]:
            lines.append(
                f"| {p['preset']} | {row['features']} {row['kind']} | {row['statistic']} | "
                f"{row['evidently_method']} | {fmt(row['max_abs_diff'])} | "
                f"{'yes' if row['same_definition'] else 'no'} | "
                f"{fmt(row['definition_check_max_abs_diff'])} |"
            )
    lines += [
        "",
        f"Raw figures: `{raw}` (not committed).",
        "",
    ]
    return "\n".join(lines)


NOTES = """
How it is measured:

- Each tool runs in its own subprocess on the same Parquet files: Continuum in the project
  venv (pandas 3), Evidently 0.7.23 in its own venv (pandas < 3). Times are the computation
  only: Continuum's `run_check` (every statistic of every feature in one pass -- KS or
  chi-square, PSI, Wasserstein, Jensen-Shannon --, the report's plot data, the Holm correction
  and the verdicts; the same work whatever the preset), Evidently's `Dataset.from_pandas` +
  `Report([DataDriftPreset(...)]).run`. Imports and Parquet reads are timed apart (in the JSON).
- Peak RSS is each subprocess's own `ru_maxrss` (`os.wait4`); "after load" is the peak once the
  two frames are in memory, so the rest is the computation's.
- Same definition: normed Wasserstein (scipy's distance / `np.std` of the reference; Evidently
  floors that std at 0.001), Jensen-Shannon distance (scipy, natural log, on category shares;
  Evidently on the union of categories -- equal to ours when no category is new in current),
  KS p-value (scipy `ks_2samp`), categorical PSI (shares per category, empty ones floored).
- Different definitions, reported as such: Evidently's chi-square is a goodness-of-fit test of
  the current counts against the reference shares taken as exact (`scipy.stats.chisquare`);
  ours is the 2xK test of homogeneity of two samples (`chi2_contingency`), which accounts for the
  reference being a sample too, so its p-values are larger. Evidently's numeric PSI uses
  Sturges bins over both samples together (19 at 200k values), ours the reference deciles. The
  "definition check" column recomputes Evidently's formula here from the generated data: a
  difference of ~0 there means the gap is the definition, not the counting.

Where Continuum's time goes (cProfile of `run_check` on this data, CPU time): about 20 ms per
undrifted numeric feature (one sort per sample, one merge for both ECDFs shared by KS and
Wasserstein, the PSI/JS bins bisected on the sorted samples, the plot from the same sorted
samples), about 65 ms per drifted one, of which ~40 ms is scipy's exact KS tail probability
(`kstwo.sf`, what `ks_2samp` returns at this size; Evidently pays it too in `ks_chi2`), and
~5 ms per categorical feature (hash counts, not string sorts). Before this benchmark the same
check took 5.1-5.7 s CPU on this data (scipy's `ks_2samp` and `wasserstein_distance` sorting
each sample again, per-value `str()` and string sorts for categories); now 1.8-2.1 s, measured
back to back (before and after this change). The 25x target
is missed: what is left is the KS tail probability of drifted features and numpy passes over
200k-value arrays, on a machine whose 2 cores were shared with other work during the run
(wall times above exceed CPU times by up to 1.7x for that reason).
"""


def write_section(summary: dict[str, Any], raw: Path, started: datetime) -> None:
    """Replace our section of RESULTS.md (up to the next '## ' heading) or append it."""
    path = HERE / "RESULTS.md"
    text = path.read_text() if path.exists() else ""
    body = section(summary, raw, started)
    body += NOTES
    if SECTION in text:
        head, rest = text.split(SECTION, 1)
        found = [i for i in (rest.find("\n## "), rest.find("\n# ")) if i >= 0]
        nxt = min(found) if found else -1
        tail = rest[nxt + 1 :] if nxt >= 0 else ""
        text = head + body + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + body
    path.write_text(text)
    log(f"section written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
