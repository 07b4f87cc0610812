"""The drift baseline stored beside each model: a bounded reference sample and its statistics.

The monitor compares recent inference rows with these, per feature. JSON and Parquet only.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from continuum.trainer.validation import Feature

MAX_REFERENCE_ROWS = 5000
QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
HISTOGRAM_BINS = 20
MAX_CATEGORIES = 100


def reference_sample(frame: pd.DataFrame, seed: int, max_rows: int = MAX_REFERENCE_ROWS) -> Any:
    """At most ``max_rows`` rows, drawn with ``seed`` so a rerun picks the same rows."""
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=max_rows, random_state=seed).sort_index().reset_index(drop=True)


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def feature_stats(frame: pd.DataFrame, schema: Sequence[Feature]) -> dict[str, Any]:
    """Per-feature statistics of ``frame`` (the reference sample), keyed by feature name."""
    stats: dict[str, Any] = {}
    for feature in schema:
        series = frame[feature.name]
        if feature.kind == "numeric":
            stats[feature.name] = numeric_stats(series)
        else:
            stats[feature.name] = categorical_stats(series)
    return {"rows": len(frame), "features": stats}


def numeric_stats(series: pd.Series) -> dict[str, Any]:
    values = pd.to_numeric(series, errors="coerce").astype("float64").dropna().to_numpy()
    base: dict[str, Any] = {"kind": "numeric", "count": int(values.size)}
    base["nullCount"] = int(series.isna().sum())
    if values.size == 0:
        return base
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
    return base | {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
        "quantiles": {str(q): float(np.quantile(values, q)) for q in QUANTILES},
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }


def categorical_stats(series: pd.Series) -> dict[str, Any]:
    values = series.dropna().astype(str)
    counts = values.value_counts()
    # Sort by count, then name, so equal data gives equal JSON.
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = ordered[:MAX_CATEGORIES]
    total = max(len(values), 1)
    return {
        "kind": "categorical",
        "count": len(values),
        "nullCount": int(series.isna().sum()),
        "frequencies": {str(k): int(v) / total for k, v in kept},
        "otherFrequency": sum(int(v) for _, v in ordered[MAX_CATEGORIES:]) / total,
        "distinct": len(ordered),
    }
