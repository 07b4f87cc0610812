"""Per-feature drift statistics: pure functions over two samples, no I/O.

Numeric features: two-sample Kolmogorov-Smirnov (D is the effect size), PSI over bins cut at
reference quantiles, and the Wasserstein distance scaled by the reference spread.
Categorical features: chi-square on the 2xK table of category counts (categories never seen in
the reference pooled into one column), Cramér's V as effect size, and PSI on the frequencies.
Both: the Jensen-Shannon distance (natural log) of the same shares PSI is computed on.
The tests themselves are scipy's, so our numbers are the ones anybody can reproduce.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special as scipy_special  # type: ignore[import-untyped]
from scipy import stats as scipy_stats
from scipy.spatial import distance as scipy_distance  # type: ignore[import-untyped]

from continuum.monitor import caught
from continuum.monitor.categories import observed_counts

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
    jensen_shannon: float | None = None  # distance (natural log), on the PSI bins/categories
    extra: dict[str, Any] = field(default_factory=dict)
    # How the p-value was computed: "exact" or "asymp" (KS), "asymp" (chi-square: the
    # chi-square distribution), "none" (nothing could differ: p is 1 by definition)
    method: str = "none"


# Up to this sample size scipy's ks_2samp (method="auto") tries the exact p-value (and falls
# back to the asymptotic one, with a warning, when the exact sum fails); above it, the
# asymptotic one, kstwo.sf(D, round(n·m / (n + m))), which we compute from D directly.
KS_EXACT_MAX_N = 10_000


def numeric_stats(
    reference: FloatArray,
    current: FloatArray,
    sorted_samples: tuple[FloatArray, FloatArray] | None = None,
) -> FeatureStats:
    """KS, Wasserstein, PSI and Jensen-Shannon of two finite samples, each sample sorted once.

    The two ECDFs are evaluated once on the merged sorted values and shared by KS and
    Wasserstein: the same arithmetic as scipy's ks_2samp and wasserstein_distance (which would
    each sort both samples again), so the numbers are scipy's to the last bit (tests prove it).
    ``sorted_samples``: both samples already sorted, when the caller has them.
    """
    ref_sorted, cur_sorted = sorted_samples or (np.sort(reference), np.sort(current))
    merged, differences, run_ends = ecdf_differences(ref_sorted, cur_sorted)
    at_values = differences if run_ends is None else differences[run_ends]
    statistic, p_value, method = ks_two_sided(reference, current, at_values)
    # W1 = integral of |F_ref - F_cur|: the ECDFs step at the merged values. Inside a run of
    # equal values the step width is 0, so those slots add exact zeros whatever their count.
    steps = np.diff(merged)
    distance = float(_vecdot(np.abs(differences[:-1], out=differences[:-1]), steps))
    edges = quantile_edges(ref_sorted, is_sorted=True)
    ref_shares, cur_shares = sorted_shares(ref_sorted, edges), sorted_shares(cur_sorted, edges)
    return FeatureStats(
        test="ks",
        statistic=statistic,
        p_value=p_value,
        effect_size=statistic,
        psi=psi(ref_shares, cur_shares),
        wasserstein=distance,
        wasserstein_normalized=distance / reference_scale(reference),
        jensen_shannon=jensen_shannon(ref_shares, cur_shares),
        method=method,
    )


def ecdf_differences(
    ref_sorted: FloatArray, cur_sorted: FloatArray
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.intp] | None]:
    """The merged sorted values, F_ref - F_cur at each slot, and where runs of ties end.

    One linear merge of the two sorted samples counts, slot by slot, the values of each
    sample seen so far. At the last slot of a run of equal values (every slot when there are
    no ties, then ``None``) that is ``sample.searchsorted(value, "right")``, scipy's count,
    and the difference is computed with scipy's arithmetic (count / size, then subtract).
    """
    n, m = ref_sorted.size, cur_sorted.size
    both = np.concatenate((ref_sorted, cur_sorted))
    order = np.argsort(both, kind="stable")  # two sorted runs: a linear merge
    merged = both[order]
    # 32-bit counts when they fit: half the memory traffic of the cumulative sum
    counter = np.dtype(np.int32 if n + m < 2**31 else np.int64)
    ref_seen = np.cumsum(order < n, dtype=counter)
    cur_seen = np.subtract(np.arange(1, n + m + 1, dtype=counter), ref_seen)
    differences = np.divide(ref_seen, n, dtype=np.float64)
    differences -= np.divide(cur_seen, m, dtype=np.float64)
    ties = merged[1:] == merged[:-1]
    if not ties.any():
        return merged, differences, None
    run_ends = np.append(np.flatnonzero(~ties), n + m - 1)
    return merged, differences, run_ends


SWITCHED_TO_ASYMP = "Switching to method=asymp"
ASYMP, EXACT = "asymp", "exact"


def ks_two_sided(
    reference: FloatArray, current: FloatArray, cdf_differences: FloatArray
) -> tuple[float, float, str]:
    """D, p-value and method of the two-sided two-sample KS test, as scipy's ks_2samp.

    Up to KS_EXACT_MAX_N scipy tries the exact p-value and may fall back to the asymptotic one
    with a warning; the warning is what tells which one it returned (and it goes on into the
    feature's report, see ``continuum.monitor.caught``).
    """
    n, m = reference.size, current.size
    if max(n, m) <= KS_EXACT_MAX_N:  # small samples: scipy's exact p-value, if it succeeds
        with caught.recorded() as warned:
            ks = scipy_stats.ks_2samp(reference, current)
        method = ASYMP if any(SWITCHED_TO_ASYMP in w for w in warned) else EXACT
        return float(ks.statistic), float(ks.pvalue), method
    below = float(np.clip(-np.min(cdf_differences), 0, 1))
    above = float(np.max(cdf_differences))
    statistic = below if below > above else above
    larger, smaller = sorted([float(n), float(m)], reverse=True)
    effective = np.round(larger * smaller / (larger + smaller))
    p_value = float(np.clip(kolmogorov_sf(statistic, float(effective)), 0, 1))
    return statistic, p_value, ASYMP


# Where scipy's kstwo.sf(d, n) is 2 * smirnov(n, d) (scipy.stats._ksstats._kolmogn, n > 140):
# d >= 0.5, or n * d**2 in [2.2, 370). Ours stays inside those ranges by a relative margin, so
# that a product rounded differently from scipy's can never pick another formula; near the
# edges kstwo.sf itself decides.
SMIRNOV_MIN_N = 140
SMIRNOV_NXX = (2.2 * (1 + 1e-9), 370.0 * (1 - 1e-9))
SMIRNOV_D = (0.5, 0.99)  # above 1 - 1/n scipy has a closed form
# numpy releases the GIL inside a ufunc loop only above 500 elements (NPY_BEGIN_THREADS).
GIL_FREE_LOOP = 512


def kolmogorov_sf(statistic: float, n: float) -> float:
    """scipy's ``kstwo.sf(statistic, n)``: the same function on the same arguments.

    Where scipy sums Smirnov's exact series (the tail of a drifted feature: an O(n) sum, about
    50 ms at n = 50 000) we call that scipy function ourselves, padded with trivial arguments
    to a ufunc loop long enough for numpy to release the GIL: the other features' work goes on
    meanwhile. Elsewhere kstwo.sf is cheap and is called as is.
    """
    if not uses_smirnov_series(statistic, n):
        return float(scipy_stats.kstwo.sf(statistic, n))
    padded = np.ones(GIL_FREE_LOOP)  # smirnov(n, 1.0) = 0 at once
    padded[0] = statistic
    tail = scipy_special.smirnov(np.float64(n), padded)[0]
    return float(np.clip(2 * tail, 0.0, 1.0))


def uses_smirnov_series(statistic: float, n: float) -> bool:
    if n <= SMIRNOV_MIN_N or not 0.0 < statistic <= SMIRNOV_D[1]:
        return False
    if statistic >= SMIRNOV_D[0]:
        return True
    return SMIRNOV_NXX[0] <= n * statistic * statistic < SMIRNOV_NXX[1]


def _vecdot(x: FloatArray, y: FloatArray) -> float:
    # What scipy's wasserstein_distance uses (np.vecdot), so the sum runs in the same order.
    if hasattr(np, "vecdot"):
        return float(np.vecdot(x, y))
    return float(np.dot(x, y))  # pragma: no cover - numpy < 2


def reference_scale(reference: FloatArray) -> float:
    """The reference spread that makes a Wasserstein distance unit-free: std, else IQR, else 1."""
    std = float(np.std(reference))
    if std > 0:
        return std
    q1, q3 = np.quantile(reference, [0.25, 0.75])
    iqr = float(q3 - q1)
    return iqr if iqr > 0 else 1.0  # a constant reference: the raw distance is the best we have


def quantile_edges(
    reference: FloatArray, bins: int = PSI_BINS, *, is_sorted: bool = False
) -> FloatArray:
    """Inner bin edges at reference quantiles (ties merged); outer bins reach ±infinity."""
    levels = np.linspace(0, 1, bins + 1)[1:-1]
    inner = sorted_quantiles(reference, levels) if is_sorted else np.quantile(reference, levels)
    return np.unique(inner).astype(np.float64)


def sorted_quantiles(values: FloatArray, levels: FloatArray) -> FloatArray:
    """``np.quantile(values, levels)`` (its default "linear" method) of an ascending sample.

    np.quantile copies and partitions the whole sample on every call; a sorted sample only
    needs the two neighbours of each position, interpolated the way numpy does (from the lower
    neighbour below the midpoint, from the upper one above it; tests hold it to np.quantile).
    """
    position = (values.size - 1) * np.asarray(levels, dtype=np.float64)
    lower_index = np.floor(position)
    weight = position - lower_index
    lower = values[lower_index.astype(np.intp)]
    upper = values[np.minimum(lower_index.astype(np.intp) + 1, values.size - 1)]
    step = upper - lower
    from_upper = weight >= 0.5
    result = lower + step * weight
    result[from_upper] = (upper - step * (1 - weight))[from_upper]
    return result


def sorted_shares(values: FloatArray, inner_edges: FloatArray) -> FloatArray:
    """The share of a sorted sample in each bin, the counts from bisecting the edges; a value
    equal to an edge falls in the bin above it, as in np.histogram."""
    below = values.searchsorted(inner_edges, side="left")  # values < edge: the bins under it
    counts = np.diff(np.concatenate(([0], below, [values.size]))).astype(np.float64)
    return counts / max(values.size, 1)


def psi(reference_shares: FloatArray, current_shares: FloatArray) -> float:
    """Population stability index, sum (c - r) ln(c / r), with empty bins floored at epsilon."""
    ref = np.maximum(reference_shares, PSI_EPSILON)
    cur = np.maximum(current_shares, PSI_EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def jensen_shannon(reference_shares: FloatArray, current_shares: FloatArray) -> float:
    """sqrt of the mean KL divergence of each side to their average: 0 = same, <= sqrt(ln 2).

    scipy's, natural log; unlike PSI it needs no floor, an empty bin on one side is finite.
    """
    return float(scipy_distance.jensenshannon(reference_shares, current_shares))


def category_table(reference: Sequence[str], current: Sequence[str]) -> tuple[list[str], Any]:
    """Column labels and the 2xK count table; current-only categories pooled as UNSEEN."""
    labels, reference_counts = np.unique(np.asarray(reference, dtype=str), return_counts=True)
    seen, current_counts = np.unique(np.asarray(current, dtype=str), return_counts=True)
    return counts_table(labels, reference_counts, seen, current_counts)


def series_category_table(reference: pd.Series, current: pd.Series) -> tuple[list[str], Any]:
    """category_table of the non-null values of two Series, labels as ``str(value)``.

    Counted by hashing (value_counts), not by sorting every value as a string: the same table
    in a fraction of the time on large samples. Labels are ``categories.category_label``'s, so a
    Parquet reference and a JSON window label a value alike; unused categories are not counted.
    """
    return counts_table(*_string_counts(reference), *_string_counts(current, reference))


def _string_counts(values: pd.Series, like: pd.Series | None = None) -> tuple[Any, Any]:
    """Sorted distinct labels of the non-null values and their counts (see ``categories``)."""
    return observed_counts(values, like)


def counts_table(
    labels: Any, reference_counts: Any, seen: Any, current_counts: Any
) -> tuple[list[str], Any]:
    """The 2xK table from each side's sorted distinct labels and counts."""
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
    """Chi-square, Cramér's V and PSI of a 2xK table (row 0 reference, row 1 current).

    A column with no count on either side carries no information and would make scipy's
    chi2_contingency fail (an expected frequency of zero): it is left out.
    """
    present = table.sum(axis=0) > 0
    if not present.all():
        labels = [label for label, keep in zip(labels, present, strict=True) if keep]
        table = table[:, present]
    shares = table / np.maximum(table.sum(axis=1, keepdims=True), 1)
    drift_psi = psi(shares[0], shares[1])
    divergence = jensen_shannon(shares[0], shares[1])
    if table.shape[1] < 2:  # one category on both sides: nothing can have moved
        return FeatureStats(
            "chi2",
            0.0,
            1.0,
            0.0,
            drift_psi,
            jensen_shannon=divergence,
            extra={"categories": labels},
        )
    chi2, p_value, dof, _ = scipy_stats.chi2_contingency(table, correction=False)
    return FeatureStats(
        test="chi2",
        statistic=float(chi2),
        p_value=float(p_value),
        effect_size=cramers_v(float(chi2), int(table.sum()), table.shape),
        psi=drift_psi,
        jensen_shannon=divergence,
        extra={"categories": labels, "dof": int(dof)},
        method=ASYMP,
    )


@dataclass(frozen=True)
class MissingShift:
    """Did the share of missing values change? Shares, and the two-proportion test's result.

    The two-sided two-proportion z-test with pooled variance; its z squared is the chi-square
    of the 2x2 table (missing, present) x (reference, current) without continuity correction,
    which is what is computed (scipy's chi2_contingency, so the p-value is scipy's).
    """

    reference: float  # share of missing values
    current: float
    statistic: float  # chi-square with 1 degree of freedom (= z squared)
    p_value: float

    @property
    def difference(self) -> float:
        return self.current - self.reference


def missing_shift(
    reference_missing: int, reference_rows: int, current_missing: int, current_rows: int
) -> MissingShift | None:
    """The missing-share test; None when a side is empty or the share cannot vary (no value
    missing on either side, or every value missing on both)."""
    missing = reference_missing + current_missing
    if not reference_rows or not current_rows or missing in (0, reference_rows + current_rows):
        return None
    table = np.array(
        [
            [reference_missing, reference_rows - reference_missing],
            [current_missing, current_rows - current_missing],
        ]
    )
    chi2, p_value, _, _ = scipy_stats.chi2_contingency(table, correction=False)
    return MissingShift(
        reference_missing / reference_rows,
        current_missing / current_rows,
        float(chi2),
        float(p_value),
    )


def cramers_v(chi2: float, total: int, shape: tuple[int, ...]) -> float:
    """sqrt(chi2 / (n · (min(rows, cols) - 1))): 0 = same mix, 1 = completely different."""
    smaller = min(shape) - 1
    return float(np.sqrt(chi2 / (total * smaller))) if total and smaller else 0.0
