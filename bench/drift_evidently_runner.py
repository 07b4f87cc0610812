"""Evidently's side of bench/drift_vs_evidently.py; runs inside the Evidently venv, alone.

Never imports continuum (the Evidently venv does not have it, nor should it): it reads the
Parquet files and schema.json the harness wrote, runs one ``Report([DataDriftPreset(...)])``,
and writes the per-column drift scores, its timings and its own peak RSS as JSON.

    python drift_evidently_runner.py DATA_DIR PRESET OUT_JSON
"""

from __future__ import annotations

import json
import resource
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

# What each preset asks Evidently for: None = its own per-column choice (at 100k rows:
# Wasserstein (normed) for numeric, Jensen-Shannon for categorical).
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "ks_chi2": {"num_method": "ks", "cat_method": "chisquare"},
    "psi": {"method": "psi"},
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(data_dir: str, preset: str, out: str) -> None:
    started = time.perf_counter()
    import pandas as pd  # noqa: PLC0415 (imports are timed apart)
    from evidently import DataDefinition, Dataset, Report  # noqa: PLC0415
    from evidently.presets import DataDriftPreset  # noqa: PLC0415

    imported = time.perf_counter()
    root = Path(data_dir)
    schema = json.loads((root / "schema.json").read_text())
    reference = pd.read_parquet(root / "reference.parquet")
    current = pd.read_parquet(root / "current.parquet")
    loaded = time.perf_counter()
    rss_loaded = peak_rss_mb()
    loaded_cpu = time.process_time()

    definition = DataDefinition(
        numerical_columns=schema["numeric"], categorical_columns=schema["categorical"]
    )
    ref_ds = Dataset.from_pandas(reference, data_definition=definition)
    cur_ds = Dataset.from_pandas(current, data_definition=definition)
    report = Report([DataDriftPreset(**PRESETS[preset])])
    snapshot = report.run(cur_ds, ref_ds)
    computed, computed_cpu = time.perf_counter(), time.process_time()

    scores = column_scores(snapshot.dict())
    result = {
        "tool": "evidently",
        "version": _version(),
        "pandas": pd.__version__,
        "preset": preset,
        "rows": {"reference": len(reference), "current": len(current)},
        "seconds": {
            "import": imported - started,
            "load": loaded - imported,
            "compute": computed - loaded,
            "compute_cpu": computed_cpu - loaded_cpu,
        },
        "peak_rss_mb": {"after_load": rss_loaded, "total": peak_rss_mb()},
        "columns": scores,
    }
    Path(out).write_text(json.dumps(result, indent=1))


def column_scores(snapshot: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{column: {"method": ..., "score": ...}} from the ValueDrift metrics of a snapshot."""
    scores: dict[str, dict[str, Any]] = {}
    for metric in snapshot["metrics"]:
        config = metric.get("config") or {}
        if not str(config.get("type", "")).endswith("ValueDrift"):
            continue
        value = metric["value"]
        score = value if isinstance(value, int | float) else value.get("value")
        scores[config["column"]] = {"method": config.get("method"), "score": float(score)}
    return scores


def _version() -> str:
    return version("evidently")


if __name__ == "__main__":
    main(*sys.argv[1:4])
