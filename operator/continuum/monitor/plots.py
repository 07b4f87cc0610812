"""Plot data for the report: reference and current shares on common bins or categories.

Computed once and stored in report.json, so the HTML is a pure rendering of the JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from continuum.monitor.stats import FloatArray, sorted_quantiles

HISTOGRAM_BINS = 20
MAX_BARS = 20
OTHER = "(other)"
PLOT_RANGE = np.array([0.01, 0.99])


def numeric_plot(reference_sorted: FloatArray, current_sorted: FloatArray) -> dict[str, Any]:
    """Shares per bin over a range that covers the bulk of both samples (1st-99th pct).

    Both samples come sorted (the check sorts each once for all statistics): percentiles are
    then lookups and the bins bisections, instead of passes over every value.
    """
    low, high = _plot_range(reference_sorted, current_sorted)
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    return {
        "kind": "histogram",
        "edges": edges.tolist(),
        "reference": _shares(reference_sorted, edges),
        "current": _shares(current_sorted, edges),
    }


def _plot_range(reference: FloatArray, current: FloatArray) -> tuple[float, float]:
    # Percentiles, not min/max: one outlier would squeeze every other bar into one bin.
    both = [sorted_quantiles(sample, PLOT_RANGE) for sample in (reference, current) if sample.size]
    low = float(min(q[0] for q in both))
    high = float(max(q[1] for q in both))
    return (low, high) if high > low else (low - 0.5, low + 0.5)


def _shares(values_sorted: FloatArray, edges: FloatArray) -> list[float]:
    """np.histogram of the values clipped to the outer edges, as shares.

    Bisecting the inner edges of the sorted values: values outside the range land in the
    outer bins, as clipping puts them.
    """
    below = values_sorted.searchsorted(edges[1:-1], side="left")
    counts = np.diff(np.concatenate(([0], below, [values_sorted.size])))
    return [float(c) / max(values_sorted.size, 1) for c in counts]


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
