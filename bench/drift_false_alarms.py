"""False alarms of the drift check: random splits of the same data must not drift (issue 14).

Three mixed-type datasets of our own (numeric and categorical, missing values, one
high-cardinality column each of a different kind), each written to Parquet by pandas/pyarrow
and read back, as the trainer's reference sample is. Each is split at random into a reference
and a current half ``--splits`` times (100); the current half goes through JSON, as the
inference log holds it; each split is one ``run_check`` with the DriftMonitor defaults
(holm at 0.05, KS D / Cramér's V >= 0.1 or PSI >= 0.2, missing share +-0.05, driftShare 0.3).
Nothing differs between the halves but chance, so every flag is a false alarm.

Targets: dataset-level drift in <= 5% of splits; no feature flagged in more than 5% of them.

    .venv/bin/python bench/drift_false_alarms.py              # about a minute
    .venv/bin/python bench/drift_false_alarms.py --splits 100 --write   # also bench/RESULTS.md

``--write`` replaces the section between ``<!-- BEGIN false-alarms -->`` markers.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from tests.kit.datasets import as_logged, as_parquet  # noqa: E402

from continuum.monitor.check import run_check  # noqa: E402
from continuum.monitor.reference import CATEGORICAL, NUMERIC, FeatureSpec, Reference  # noqa: E402
from continuum.monitor.settings import parse_check_settings  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
MARK = "false-alarms"
TARGET = 0.05
BEFORE = (
    "Before issue 14's fixes the same command stopped at the first split: `grade`'s Parquet "
    'category list holds an unused level and chi2_contingency raised "The internally computed '
    'table of expected frequencies has a zero element" (run on 5e08ded).'
)


def _missing(values: pd.Series, share: float, rng: np.random.Generator) -> pd.Series:
    return values.mask(rng.random(len(values)) < share)


def loans(rows: int, rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, str]]:
    """Loan applications: skewed amounts, integer terms (nullable), a 300-value employer
    column (free text, Zipf-like: a few big employers, most seen once or twice)."""
    employers = [f"employer-{i:03d}" for i in range(300)]
    weights = 1.0 / np.arange(1, 301)
    frame = pd.DataFrame(
        {
            "amount": _missing(pd.Series(rng.lognormal(9, 0.8, rows)), 0.08, rng),
            "term": pd.array(rng.choice([12, 24, 36, 60], rows), dtype="Int64"),
            "rate": rng.normal(7.5, 2.0, rows).round(2),
            "grade": pd.Categorical(rng.choice(list("ABCDEFG"), rows), categories=list("ABCDEFGH")),
            "employer": pd.array(rng.choice(employers, rows, p=weights / weights.sum()), "string"),
            "home": pd.array(rng.choice(["rent", "own", "mortgage"], rows), dtype="string"),
        }
    )
    frame.loc[rng.random(rows) < 0.05, "term"] = pd.NA
    frame.loc[rng.random(rows) < 0.03, "home"] = pd.NA
    kinds = {"amount": NUMERIC, "term": NUMERIC, "rate": NUMERIC, "grade": CATEGORICAL,
             "employer": CATEGORICAL, "home": CATEGORICAL}  # fmt: skip
    return frame, kinds


def passengers(rows: int, rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, str]]:
    """A passenger list: ages with 20% missing, fares with ties, class, port, a boolean, and
    a ticket column that is nearly an identifier (70% of values unique)."""
    tickets = [f"T{i:05d}" for i in range(rows)]
    frame = pd.DataFrame(
        {
            "age": _missing(pd.Series(rng.gamma(4, 8, rows).round()), 0.2, rng),
            "fare": rng.choice(np.round(rng.lognormal(3, 1, 60), 2), rows),
            "pclass": pd.array(rng.choice([1, 2, 3], rows, p=[0.25, 0.2, 0.55]), dtype="Int64"),
            "port": pd.Categorical(rng.choice(["S", "C", "Q"], rows, p=[0.7, 0.2, 0.1])),
            "alone": pd.array(rng.random(rows) < 0.6, dtype="boolean"),
            "ticket": rng.choice(tickets[: int(rows * 0.8)], rows),
        }
    )
    frame.loc[rng.random(rows) < 0.02, "port"] = np.nan
    kinds = {"age": NUMERIC, "fare": NUMERIC, "pclass": CATEGORICAL, "port": CATEGORICAL,
             "alone": CATEGORICAL, "ticket": CATEGORICAL}  # fmt: skip
    return frame, kinds


def housing(rows: int, rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, str]]:
    """House sales: area, rooms (nullable integer), build year, a postcode column with 150
    roughly even values (each about 10 times), condition with a rare level, sale date."""
    frame = pd.DataFrame(
        {
            "area": rng.normal(120, 35, rows).clip(20),
            "rooms": pd.array(rng.integers(1, 8, rows), dtype="Int64"),
            "built": rng.integers(1900, 2024, rows).astype("float64"),
            "postcode": pd.Categorical(rng.integers(1000, 1150, rows).astype(str)),
            "condition": pd.Categorical(
                rng.choice(["good", "fair", "poor", "ruin"], rows, p=[0.6, 0.3, 0.095, 0.005])
            ),
            "sold": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 30, rows), unit="D"),
        }
    )
    frame["built"] = _missing(frame["built"], 0.1, rng)
    frame.loc[rng.random(rows) < 0.04, "rooms"] = pd.NA
    kinds = {"area": NUMERIC, "rooms": NUMERIC, "built": NUMERIC, "postcode": CATEGORICAL,
             "condition": CATEGORICAL, "sold": CATEGORICAL}  # fmt: skip
    return frame, kinds


DATASETS: dict[str, tuple[Callable[..., tuple[pd.DataFrame, dict[str, str]]], int]] = {
    "loans": (loans, 3000),
    "passengers": (passengers, 1500),
    "housing": (housing, 2000),
}


def measure(name: str, splits: int, seed: int) -> dict[str, object]:
    make, rows = DATASETS[name]
    rng = np.random.default_rng(seed)
    frame, kinds = make(rows, rng)
    frame = as_parquet(frame)
    settings = parse_check_settings({"window": {"maxRows": 100_000, "minSamples": 100}})
    drifted_sets, flags = 0, dict.fromkeys(kinds, 0)
    failed_sets, quality_flags = 0, dict.fromkeys(kinds, 0)
    for _ in range(splits):
        order = rng.permutation(len(frame))
        half = len(frame) // 2
        reference = frame.iloc[order[:half]].reset_index(drop=True)
        current = as_logged(frame.iloc[order[half:]])
        features = trained_schema(reference, kinds)
        result = run_check(Reference(features, reference, None, None), current, settings)
        drifted_sets += bool(result.verdict.dataset_drift)
        failed_sets += result.quality is not None and not result.quality.passed
        for feature in result.features:
            flags[feature.spec.name] += feature.decision.drifted
            quality_flags[feature.spec.name] += bool(feature.quality and feature.quality.failed)
    return {"rows": rows, "dataset": drifted_sets / splits, "features": {
        k: v / splits for k, v in flags.items()}, "quality": failed_sets / splits,
        "qualityFeatures": {k: v / splits for k, v in quality_flags.items()}}  # fmt: skip


def trained_schema(reference: pd.DataFrame, kinds: dict[str, str]) -> tuple[FeatureSpec, ...]:
    """The manifest's schema as the trainer writes it from its data (the reference half):
    dtype, and every category as ``str(value)`` (``continuum.trainer.validation``)."""
    return tuple(
        FeatureSpec(
            column, kind, str(reference[column].dtype), _categories(reference[column], kind)
        )
        for column, kind in kinds.items()
    )


def _categories(values: pd.Series, kind: str) -> tuple[str, ...]:
    return tuple(sorted(values.dropna().astype(str).unique())) if kind == CATEGORICAL else ()


def table(results: dict[str, dict[str, object]], splits: int, seconds: float) -> str:
    lines = [
        f"<!-- BEGIN {MARK} -->",
        "## Drift check false alarms: random halves of the same data (issue 14)",
        "",
        f"    .venv/bin/python bench/drift_false_alarms.py --splits {splits} --write",
        "",
        f"{splits} random splits per dataset into a reference half (Parquet, pandas/pyarrow "
        "dtypes) and a current half (through JSON, as logged); DriftMonitor defaults. Target: "
        f"dataset drift in <= {TARGET:.0%} of splits, no feature flagged in > {TARGET:.0%}. "
        f"Took {seconds:.0f} s.",
        "",
        "| Dataset | Rows | Dataset drift | Most-flagged feature | Every feature's flag rate |",
        "|---|---|---|---|---|",
    ]
    body = []
    for name, result in results.items():
        rates: dict[str, float] = result["features"]  # type: ignore[assignment]
        worst = max(rates, key=lambda k: rates[k])
        every = ", ".join(f"{k} {v:.0%}" for k, v in rates.items())
        lines.append(
            f"| {name} | {result['rows']} | {result['dataset']:.0%} | {worst} "
            f"{rates[worst]:.0%} | {every} |"
        )
        body.append(quality_row(name, result))
    lines += [
        "",
        "The data-quality checks of the same splits (spec.quality defaults: out of range 5%, "
        "unseen categories 5% beyond the Good-Turing share plus two standard errors (without "
        "that margin passengers' ticket failed 8 of 100 splits), any type mismatch, missing "
        "share +10 points; the schema with dtype and categories as the trainer writes it from the "
        "reference half). Target: the check fails in <= 5% of splits, no feature in > 5%.",
        "",
        "| Dataset | Quality failed | Most-failed feature | Every feature's failure rate |",
        "|---|---|---|---|",
        *body,
    ]
    ok = all(
        max(r["dataset"], r["quality"], *r["features"].values(), *r["qualityFeatures"].values())  # type: ignore[union-attr]
        <= TARGET
        for r in results.values()
    )
    lines += ["", f"Targets met: {'yes' if ok else 'NO'}.", "", BEFORE, f"<!-- END {MARK} -->"]
    return "\n".join(lines)


def quality_row(name: str, result: dict[str, object]) -> str:
    rates: dict[str, float] = result["qualityFeatures"]  # type: ignore[assignment]
    worst = max(rates, key=lambda k: rates[k])
    every = ", ".join(f"{k} {v:.0%}" for k, v in rates.items())
    return f"| {name} | {result['quality']:.0%} | {worst} {rates[worst]:.0%} | {every} |"


def write(section: str) -> None:
    text = RESULTS.read_text()
    pattern = re.compile(rf"<!-- BEGIN {MARK} -->.*?<!-- END {MARK} -->", re.S)
    text = pattern.sub(section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    RESULTS.write_text(text.rstrip() + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=100)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    started = time.perf_counter()
    results = {name: measure(name, args.splits, args.seed + i) for i, name in enumerate(DATASETS)}
    section = table(results, args.splits, time.perf_counter() - started)
    print(section)
    if args.write:
        write(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
