"""Multiple-testing corrections across features: adjusted p-values, compared with alpha.

Testing 30 features at 5% each would flag about one and a half of them by chance on every
check; adjusting the p-values keeps the chance of any false alarm (holm, bonferroni) or the
expected share of false alarms (bh) at alpha.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats as scipy_stats  # type: ignore[import-untyped]

Correction = Callable[[Sequence[float]], list[float]]


def bonferroni(p_values: Sequence[float]) -> list[float]:
    count = len(p_values)
    return [min(1.0, p * count) for p in p_values]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down: the k-th smallest p times (m - k + 1), made non-decreasing."""
    count = len(p_values)
    order = np.argsort(p_values, kind="stable")
    scaled = [p_values[i] * (count - rank) for rank, i in enumerate(order)]
    return _unsort(order, np.minimum(1.0, np.maximum.accumulate(scaled)) if count else [])


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH step-up (scipy's ``false_discovery_control``): the k-th smallest p times m / k, made
    non-increasing from the top.

    scipy refuses NaN; here one NaN makes every adjusted value NaN, as the hand-written step-up
    did (its running minimum carried the NaN down). scipy scales by ``m / k`` where that one
    scaled ``p * m`` then divided by k: the two agree to one unit in the last place (2.2e-16).
    """
    values = np.asarray(p_values, dtype=np.float64)
    if np.isnan(values).any():
        return [math.nan] * len(values)
    return [float(p) for p in scipy_stats.false_discovery_control(values, method="bh")]


def _unsort(order: np.ndarray, sorted_values: Sequence[float] | np.ndarray) -> list[float]:
    adjusted = [0.0] * len(order)
    for position, original in enumerate(order):
        adjusted[int(original)] = float(sorted_values[position])
    return adjusted


CORRECTIONS: dict[str, Correction] = {
    "bonferroni": bonferroni,
    "holm": holm,
    "bh": benjamini_hochberg,
}


def adjust(p_values: Sequence[float], method: str) -> list[float]:
    return CORRECTIONS[method](p_values)
