"""Continuum's side of bench/drift_vs_evidently.py; runs in the project venv, alone.

Reads the Parquet files and schema.json the harness wrote and times one drift check,
``continuum.monitor.check.run_check``: the pure computation the monitor Job runs between
reading its inputs and writing the report (every statistic of every feature -- KS or
chi-square, PSI, Wasserstein, Jensen-Shannon --, the plot data, the multiple-testing
correction and the verdicts). It computes the same things whatever the preset: the preset
only names which of them the harness compares with Evidently.

    python drift_ours_runner.py DATA_DIR PRESET OUT_JSON [REPEAT]
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(data_dir: str, preset: str, out: str, repeat: str = "1") -> None:
    started = time.perf_counter()
    import pandas as pd  # noqa: PLC0415 (imports are timed apart)

    from continuum.monitor.check import run_check  # noqa: PLC0415
    from continuum.monitor.reference import CATEGORICAL, NUMERIC, FeatureSpec, Reference  # noqa: PLC0415
    from continuum.monitor.settings import parse_check_settings  # noqa: PLC0415

    imported = time.perf_counter()
    root = Path(data_dir)
    schema = json.loads((root / "schema.json").read_text())
    reference = pd.read_parquet(root / "reference.parquet")
    current = pd.read_parquet(root / "current.parquet")
    loaded = time.perf_counter()
    rss_loaded = peak_rss_mb()

    specs = [FeatureSpec(name, NUMERIC) for name in schema["numeric"]]
    specs += [FeatureSpec(name, CATEGORICAL) for name in schema["categorical"]]
    ordered = [s for name in reference.columns for s in specs if s.name == name]
    settings = parse_check_settings({"window": {"maxRows": len(current), "minSamples": 1}})
    times, cpu = [], []
    for _ in range(max(1, int(repeat))):
        begin, begin_cpu = time.perf_counter(), time.process_time()
        result = run_check(Reference(tuple(ordered), reference, None, None), current, settings)
        times.append(time.perf_counter() - begin)
        cpu.append(time.process_time() - begin_cpu)

    payload = {
        "tool": "continuum",
        "pandas": pd.__version__,
        "preset": preset,
        "rows": {"reference": len(reference), "current": len(current)},
        "seconds": {
            "import": imported - started,
            "load": loaded - imported,
            "compute": statistics.median(times),
            "compute_runs": times,
            "compute_cpu": statistics.median(cpu),
            "compute_cpu_runs": cpu,
        },
        "peak_rss_mb": {"after_load": rss_loaded, "total": peak_rss_mb()},
        "verdict": result.verdict.verdict,
        "columns": {f.spec.name: _column(f.measurement) for f in result.features},
    }
    Path(out).write_text(json.dumps(payload, indent=1))


def _column(measurement: Any) -> dict[str, Any]:
    s = measurement.stats
    return {
        "test": s.test,
        "statistic": s.statistic,
        "p_value": s.p_value,
        "psi": s.psi,
        "wasserstein_normalized": s.wasserstein_normalized,
        "jensen_shannon": s.jensen_shannon,
    }


if __name__ == "__main__":
    main(*sys.argv[1:5])
