"""Plot data for the report: reference and current shares on common bins or categories.

Computed once and stored in report.json, so the HTML is a pure rendering of the JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from continuum.monitor.stats import FloatArray

HISTOGRAM_BINS = 20
MAX_BARS = 20
OTHER = "(other)"


def numeric_plot(reference: FloatArray, current: FloatArray) -> dict[str, Any]:
    """Shares per bin over a range that covers the bulk of both samples (1st-99th pct)."""
    low, high = _plot_range(reference, current)
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    return {
        "kind": "histogram",
        "edges": edges.tolist(),
        "reference": _shares(reference, edges),
        "current": _shares(current, edges),
    }


def _plot_range(reference: FloatArray, current: FloatArray) -> tuple[float, float]:
    # Percentiles, not min/max: one outlier would squeeze every other bar into one bin.
    both = [np.quantile(sample, [0.01, 0.99]) for sample in (reference, current) if sample.size]
    low = float(min(q[0] for q in both))
    high = float(max(q[1] for q in both))
    return (low, high) if high > low else (low - 0.5, low + 0.5)


def _shares(values: FloatArray, edges: FloatArray) -> list[float]:
    """np.histogram of the values clipped to the outer edges, as shares."""
    if values.size > 1 and values[0] <= values[-1] and np.all(values[1:] >= values[:-1]):
        # Sorted (the check sorts once): bisect the inner edges instead of binning every value;
        # values outside the range land in the outer bins, as clipping puts them.
        below = values.searchsorted(edges[1:-1], side="left")
        counts = np.diff(np.concatenate(([0], below, [values.size])))
    else:
        counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return [float(c) / max(values.size, 1) for c in counts]


def categorical_plot(
    labels: Sequence[str], reference_counts: Sequence[int], current_counts: Sequence[int]
) -> dict[str, Any]:
    """Shares of the most frequent categories (both sides together); the rest as OTHER."""
    ref = _normalise(reference_counts)
    cur = _normalise(current_counts)
    order = sorted(range(len(labels)), key=lambda i: (-(ref[i] + cur[i]), labels[i]))
    kept, rest = order[:MAX_BARS], order[MAX_BARS:]
    names = [labels[i] for i in kept] + ([OTHER] if rest else [])
    ref_bars = [ref[i] for i in kept] + ([sum(ref[i] for i in rest)] if rest else [])
    cur_bars = [cur[i] for i in kept] + ([sum(cur[i] for i in rest)] if rest else [])
    return {"kind": "bars", "categories": names, "reference": ref_bars, "current": cur_bars}


def _normalise(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]
