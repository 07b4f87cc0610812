"""Plot data for the report: reference and current shares on common bins or categories.

Computed once and stored in report.json, so the HTML is a pure rendering of the JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from continuum.monitor.categories import MAX_TESTED, OTHER
from continuum.monitor.stats import FloatArray, sorted_quantiles

__all__ = ["MAX_BARS", "OTHER", "categorical_plot", "numeric_plot"]

HISTOGRAM_BINS = 20
MAX_BARS = MAX_TESTED
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
    """Shares of the columns the test saw, in its order: the check groups the categories
    (``categories.group_sparse``: at most MAX_BARS of them, the rest as OTHER) before both."""
    return {
        "kind": "bars",
        "categories": list(labels),
        "reference": _normalise(reference_counts),
        "current": _normalise(current_counts),
    }


def _normalise(counts: Sequence[int] | Any) -> list[float]:
    values = [int(c) for c in counts]
    total = sum(values)
    return [c / total if total else 0.0 for c in values]
