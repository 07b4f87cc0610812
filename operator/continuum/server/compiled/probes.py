"""Probe rows for the load-time check: ordinary rows and the edge cases of each step.

Per numeric column: values around where training put it (the imputer's statistic, the
scaler's mean and scale, the min-max range), a few far outside (10^3 and 10^6 spreads away,
+-10^15), exactly the centre, zero and minus zero, and NaN where the pipeline imputes it. Per
categorical column: every known category at least once, a category never seen in training,
and a missing value where the pipeline imputes it. Then, for a classifier, more random rows
until every class is predicted at least once (or the search gives up: the verdict says how
many classes the probes reached).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from continuum.server.compiled.preprocess import Block, Columns, Preprocessor

RANDOM_ROWS = 256
EXTREME_SPREADS = (1e3, -1e3, 1e6, -1e6)
EXTREMES = (1e15, -1e15, 0.0, -0.0)
MISSING_SHARE = 0.1  # of the random rows, per column that imputes
UNSEEN_SHARE = 0.05  # of the random rows, per categorical column
CLASS_SEARCH_ROUNDS = 8
UNSEEN_CATEGORY = "never-seen-in-training"
EDGES = len(EXTREME_SPREADS) + len(EXTREMES) + 2  # edge values per column, each twice


def probe_columns(
    preprocessor: Preprocessor, names: Sequence[str], seed: int = 0
) -> tuple[Columns, int]:
    """Probe rows as request columns (every feature in ``names``) and how many there are."""
    rng = np.random.default_rng(seed)
    width = max(RANDOM_ROWS, _category_rows(preprocessor))
    columns: Columns = {}
    for block in preprocessor.blocks:
        for index, name in enumerate(block.columns):
            columns[name] = _column(block, index, preprocessor.categories.get(name, ()), rng, width)
    for name in names:  # features the ColumnTransformer drops: any value does
        columns.setdefault(name, np.zeros(len(next(iter(columns.values())))))
    return columns, len(columns[names[0]])


def _category_rows(preprocessor: Preprocessor) -> int:
    return max((len(values) for values in preprocessor.categories.values()), default=0)


def _column(
    block: Block, index: int, known: Sequence[object], rng: np.random.Generator, width: int
) -> np.ndarray:
    if block.kind == "categorical":
        return _categorical(known, block.imputes, rng, width)
    return _numeric(block.center[index], block.spread[index], block.imputes, rng, width)


def _numeric(
    center: float, spread: float, imputes: bool, rng: np.random.Generator, width: int
) -> np.ndarray:
    scale = rng.choice([0.3, 1.0, 3.0], size=width)
    ordinary = center + spread * scale * rng.standard_normal(width)
    if imputes:
        ordinary[rng.random(width) < MISSING_SHARE] = math.nan
    far = [center + spread * k for k in EXTREME_SPREADS]
    edges = np.array([*far, *EXTREMES, center, math.nan if imputes else center])
    shuffled = rng.permutation(edges)
    return np.concatenate([ordinary, shuffled, edges])


def _categorical(
    known: Sequence[object], imputes: bool, rng: np.random.Generator, width: int
) -> np.ndarray:
    values: list[object] = [known[i % len(known)] for i in range(width)] if known else []
    values = [values[i] for i in rng.permutation(len(values))] or [UNSEEN_CATEGORY] * width
    for i in np.flatnonzero(rng.random(width) < UNSEEN_SHARE):
        values[i] = UNSEEN_CATEGORY
    if imputes:
        for i in np.flatnonzero(rng.random(width) < MISSING_SHARE):
            values[i] = math.nan
    tail = [UNSEEN_CATEGORY, *([math.nan] if imputes else [])]
    extra = [(tail + list(known))[i % (len(tail) + len(known))] for i in range(2 * EDGES)]
    array = np.empty(width + 2 * EDGES, dtype=object)
    array[:] = values + extra
    return array


def every_class(
    columns: Columns,
    labels_of: Callable[[Columns], np.ndarray],
    classes: Sequence[object],
    preprocessor: Preprocessor,
    names: Sequence[str],
) -> tuple[Columns, set[object]]:
    """``columns`` plus rows predicted as each class missing from them, where found."""
    seen = set(labels_of(columns).tolist())
    for round_ in range(CLASS_SEARCH_ROUNDS):
        if seen >= set(classes):
            break
        more, _ = probe_columns(preprocessor, names, seed=round_ + 1)
        labels = labels_of(more)
        wanted = np.array([label not in seen for label in labels.tolist()])
        if wanted.any():
            columns = {name: np.concatenate([columns[name], more[name][wanted]]) for name in names}
            seen |= set(labels[wanted].tolist())
    return columns, seen
