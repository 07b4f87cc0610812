"""Per-feature drift statistics: pure functions over two samples, no I/O.

Numeric features: two-sample Kolmogorov-Smirnov (D is the effect size), PSI over bins cut at
reference quantiles, and the Wasserstein distance scaled by the reference spread.
Categorical features: chi-square on the 2xK table of category counts (categories never seen in
the reference pooled into one column), Cramér's V as effect size, and PSI on the frequencies.
The tests themselves are scipy's, so our numbers are the ones anybody can reproduce.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats as scipy_stats  # type: ignore[import-untyped]

FloatArray = npt.NDArray[np.float64]

PSI_BINS = 10
# A bin that one side never hits would make PSI infinite; this floor keeps it finite and is
# the customary choice (1e-4 of the mass), small enough not to hide a real empty bin.
PSI_EPSILON = 1e-4
UNSEEN = "(unseen)"


@dataclass(frozen=True)
class FeatureStats:
    """The statistics of one feature; ``p_value`` is the raw (uncorrected) p-value."""

    test: str  # "ks" | "chi2" | "none"
    statistic: float | None
    p_value: float | None
    effect_size: float | None  # KS D for numeric, Cramér's V for categorical
    psi: float | None
    wasserstein: float | None = None  # raw distance, numeric only
    wasserstein_normalized: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def numeric_stats(reference: FloatArray, current: FloatArray) -> FeatureStats:
    ks = scipy_stats.ks_2samp(reference, current)
    distance = float(scipy_stats.wasserstein_distance(reference, current))
    return FeatureStats(
        test="ks",
        statistic=float(ks.statistic),
        p_value=float(ks.pvalue),
        effect_size=float(ks.statistic),
        psi=numeric_psi(reference, current),
        wasserstein=distance,
        wasserstein_normalized=distance / reference_scale(reference),
    )


def reference_scale(reference: FloatArray) -> float:
    """The reference spread that makes a Wasserstein distance unit-free: std, else IQR, else 1."""
    std = float(np.std(reference))
    if std > 0:
        return std
    q1, q3 = np.quantile(reference, [0.25, 0.75])
    iqr = float(q3 - q1)
    return iqr if iqr > 0 else 1.0  # a constant reference: the raw distance is the best we have


def quantile_edges(reference: FloatArray, bins: int = PSI_BINS) -> FloatArray:
    """Inner bin edges at reference quantiles (ties merged); outer bins reach ±infinity."""
    inner = np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(inner).astype(np.float64)


def binned_shares(values: FloatArray, inner_edges: FloatArray) -> FloatArray:
    # side="right": a value equal to an edge falls in the bin above it, like np.histogram.
    index = np.searchsorted(inner_edges, values, side="right")
    counts = np.bincount(index, minlength=inner_edges.size + 1).astype(np.float64)
    return counts / max(values.size, 1)


def psi(reference_shares: FloatArray, current_shares: FloatArray) -> float:
    """Population stability index, sum (c - r) ln(c / r), with empty bins floored at epsilon."""
    ref = np.maximum(reference_shares, PSI_EPSILON)
    cur = np.maximum(current_shares, PSI_EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def numeric_psi(reference: FloatArray, current: FloatArray) -> float:
    edges = quantile_edges(reference)
    return psi(binned_shares(reference, edges), binned_shares(current, edges))


def category_table(reference: Sequence[str], current: Sequence[str]) -> tuple[list[str], Any]:
    """Column labels and the 2xK count table; current-only categories pooled as UNSEEN."""
    labels, reference_counts = np.unique(np.asarray(reference, dtype=str), return_counts=True)
    seen, current_counts = np.unique(np.asarray(current, dtype=str), return_counts=True)
    position = np.searchsorted(labels, seen)
    known = (position < labels.size) & (labels[np.minimum(position, labels.size - 1)] == seen)
    current_row = np.zeros(labels.size, dtype=np.int64)
    np.add.at(current_row, position[known], current_counts[known])
    unseen = int(current_counts[~known].sum())
    names = [str(label) for label in labels]
    if not unseen:  # no unseen column when nothing new showed up
        return names, np.vstack([reference_counts, current_row])
    return [*names, UNSEEN], np.vstack(
        [np.append(reference_counts, 0), np.append(current_row, unseen)]
    )


def categorical_stats(reference: Sequence[str], current: Sequence[str]) -> FeatureStats:
    labels, table = category_table(reference, current)
    return table_stats(labels, table)


def table_stats(labels: list[str], table: Any) -> FeatureStats:
    """Chi-square, Cramér's V and PSI of a 2xK table (row 0 reference, row 1 current)."""
    shares = table / np.maximum(table.sum(axis=1, keepdims=True), 1)
    drift_psi = psi(shares[0], shares[1])
    if table.shape[1] < 2:  # one category on both sides: nothing can have moved
        return FeatureStats("chi2", 0.0, 1.0, 0.0, drift_psi, extra={"categories": labels})
    chi2, p_value, dof, _ = scipy_stats.chi2_contingency(table, correction=False)
    return FeatureStats(
        test="chi2",
        statistic=float(chi2),
        p_value=float(p_value),
        effect_size=cramers_v(float(chi2), int(table.sum()), table.shape),
        psi=drift_psi,
        extra={"categories": labels, "dof": int(dof)},
    )


def cramers_v(chi2: float, total: int, shape: tuple[int, ...]) -> float:
    """sqrt(chi2 / (n · (min(rows, cols) - 1))): 0 = same mix, 1 = completely different."""
    smaller = min(shape) - 1
    return float(np.sqrt(chi2 / (total * smaller))) if total and smaller else 0.0
