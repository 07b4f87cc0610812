"""Elementwise work on a pandas ``category`` column done once per category, not once per row.

A Parquet dataset written from pandas reads back with its ``category`` columns intact. The
trainer turns those values into text several times (validation, the stratified split, the
labels, the features), and doing it row by row made a million short strings each time: at
1,000,000 rows of the issue-19 bench (bench/trainer_vs_sklearn.py) these passes cost 0.5 s,
and stratifying the split on text labels another 1.0 s (scikit-learn sorts the strings).

Each helper here applies the very same conversion as before to a small column of the same
dtype holding every value the column holds once, and spreads the results over the rows by
their codes. The
result equals the row-by-row one for any elementwise conversion (unit-tested against it on
category, nullable Int64, string, bool, datetime and NaN columns); a column of any other
dtype takes the row-by-row path unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

Convert = Callable[[pd.Series], pd.Series]


def is_categorical(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.CategoricalDtype)


def per_category(series: pd.Series, convert: Convert) -> pd.Series:
    """``convert(series)``, computed once per distinct value instead of once per row.

    ``convert`` must be elementwise: one output per input. It is given a column of the same
    dtype holding each value ``series`` holds exactly once (the missing value too, if there
    is one), so a conversion that also looks at the whole column sees the same set of values:
    ``astype(str)`` writes an int category ``0`` as ``"0.0"`` once a NaN is among them. The
    rows then share the converted objects (one string per category instead of one per row).
    """
    if not is_categorical(series):
        return convert(series)
    # Position 0 stands for the missing value (code -1), position i + 1 for category i.
    positions = series.cat.codes.to_numpy().astype(np.intp) + 1
    held = np.flatnonzero(np.bincount(positions, minlength=len(series.cat.categories) + 1))
    each = pd.Series(pd.Categorical.from_codes(held - 1, dtype=series.dtype))
    converted = convert(each)
    if len(converted) != len(held):
        raise ValueError("per_category needs an elementwise conversion")
    slot = np.zeros(len(series.cat.categories) + 1, dtype=np.intp)
    slot[held] = np.arange(len(held))
    taken = converted.array.take(slot[positions])
    # dtype given: pandas would infer its string dtype from an object column of text.
    return pd.Series(taken, index=series.index, name=series.name, dtype=converted.dtype)


def present_values(series: pd.Series) -> pd.Series:
    """The non-null values of ``series``; for a category column each present category once.

    Enough for a distinct-values question (``set(...)``, ``unique()``) asked of the text of
    the values, at the cost of the categories instead of the rows.
    """
    if not is_categorical(series):
        return series.dropna()
    codes = series.cat.codes.to_numpy()
    present = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=len(series.cat.categories)))
    return pd.Series(pd.Categorical.from_codes(present, dtype=series.dtype))


def text_counts(series: pd.Series) -> list[tuple[str, int]]:
    """Rows per non-null value, the value as ``astype(str)`` writes it (as
    ``series.dropna().astype(str).value_counts()``: zero counts left out, no order promised).

    Two categories with the same text appear as two pairs; callers add them up.
    """
    if not is_categorical(series):
        counts = series.dropna().astype(str).value_counts()
        return [(str(label), int(count)) for label, count in counts.items()]
    codes = series.cat.codes.to_numpy()
    rows = np.bincount(codes[codes >= 0], minlength=len(series.cat.categories))
    present = np.flatnonzero(rows)
    labels = pd.Series(pd.Categorical.from_codes(present, dtype=series.dtype)).astype(str)
    return [(str(label), int(count)) for label, count in zip(labels, rows[present], strict=True)]


def sorted_text_codes(labels: pd.Series) -> np.ndarray:
    """Each row's position among the sorted distinct values of ``labels`` (text, no nulls).

    A stratified split that sees these codes instead of the text draws the same rows:
    scikit-learn uses only ``np.unique(y, return_inverse=True)``'s inverse, which for text
    is exactly these positions (factorize sorts its distinct values in the same code-point
    order). Splitting on codes skips the sort of a million strings: 0.25 s instead of 1.2 s
    at 1,000,000 rows.
    """
    codes, _ = pd.factorize(labels, sort=True)
    if (codes < 0).any():
        raise ValueError("sorted_text_codes needs labels without nulls")
    return np.asarray(codes)
