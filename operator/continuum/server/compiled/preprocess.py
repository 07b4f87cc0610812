"""The fitted ColumnTransformer compiled into array operations on the request's columns.

What the trainer builds (``continuum.trainer.pipeline.build_preprocessor``), and so what this
covers: numeric columns through ``SimpleImputer`` (mean, median, or any strategy: its fitted
``statistics_``) and ``StandardScaler`` or ``MinMaxScaler``, or passed through; categorical
columns through ``SimpleImputer(most_frequent)`` and ``OneHotEncoder(handle_unknown="ignore")``
or ``OrdinalEncoder`` (the native encoding of HistGradientBoosting, unknown and missing
categories as NaN, rare ones grouped by ``max_categories``). Each step does the arithmetic its
``transform`` does, in the same order (``X -= mean_; X /= scale_``, ``X *= scale_; X += min_``),
so the numbers are the same bits. A categorical column's codes come from the fitted encoder
itself: at compile time every known category, one unseen value and a missing one are run
through its ``transform``, and a request's values are looked up in that table.

Anything else (another step, column selection by position, a dropped or infrequent one-hot
category, a remainder that is not dropped) raises :class:`Unsupported` naming it: the server
then scores with scikit-learn's own steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)

from continuum.errors import ContinuumError

Columns = dict[str, np.ndarray]
NumericStep = Callable[[np.ndarray], np.ndarray]
UNSEEN = "\x00continuum-unseen-category\x00"  # no dataset's category: the trainer's are str()


class Unsupported(ContinuumError):  # noqa: N818 -- an outcome of compiling, like the errors' names
    """The pipeline has something the compiler does not cover; the message says what."""


@dataclass(frozen=True)
class Block:
    """One transformer of the ColumnTransformer: its input columns and what it computes."""

    columns: tuple[str, ...]
    kind: str  # "numeric" | "categorical"
    imputes: bool  # missing values are filled (so the probes send some)
    compute: Callable[[Columns], np.ndarray]
    center: tuple[float, ...] = ()  # numeric: where the training values were, for the probes
    spread: tuple[float, ...] = ()


@dataclass(frozen=True)
class Preprocessor:
    """The compiled ColumnTransformer: request columns in, the estimator's dense matrix out."""

    blocks: tuple[Block, ...]
    sparse: bool  # scikit-learn hands the estimator a CSR matrix of the same values
    categories: dict[str, tuple[Any, ...]]  # each categorical column's known categories
    # The memory order of the matrix scikit-learn's transform gives the estimator ("F": one
    # block of numeric columns, taken from the DataFrame's one float block; "C": several blocks
    # stacked). It matters: BLAS sums ``X @ coef`` in another order for a Fortran-ordered X, and
    # a C-ordered copy gave probabilities one unit in the last place apart on 48 of 276 probe
    # rows (a LogisticRegression on 20 passed-through columns). Set by the load-time check.
    order: str = "C"

    def __call__(self, columns: Columns) -> np.ndarray:
        parts = [block.compute(columns) for block in self.blocks]
        matrix = parts[0] if len(parts) == 1 else np.hstack(parts)
        return np.asfortranarray(matrix) if self.order == "F" else matrix


def compile_preprocessor(transformer: Any) -> Preprocessor:
    """The ColumnTransformer ``transformer`` as array operations, or Unsupported saying why."""
    if type(transformer) is not ColumnTransformer:
        raise Unsupported(f"the preprocessing step is a {type(transformer).__name__}")
    if transformer.remainder != "drop":
        raise Unsupported("the ColumnTransformer does not drop its remainder")
    blocks = [_block(name, step, cols) for name, step, cols in transformer.transformers_]
    kept = tuple(block for block in blocks if block is not None)
    if not kept:
        raise Unsupported("the ColumnTransformer outputs no column")
    categories: dict[str, tuple[Any, ...]] = {}
    for _, step, cols in transformer.transformers_:
        categories.update(_known_categories(step, cols))
    return Preprocessor(kept, bool(transformer.sparse_output_), categories)


def _block(name: str, step: Any, columns: Any) -> Block | None:
    if step == "drop" or (isinstance(columns, Sequence) and len(columns) == 0):
        return None
    names = _column_names(name, columns)
    if step == "passthrough" or _identity(step):
        return Block(names, "numeric", False, _numeric(names, []), *_where(names, []))
    steps = [s for _, s in (step.steps if type(step) is Pipeline else [(name, step)])]
    steps = [s for s in steps if s not in (None, "passthrough")]
    if any(type(s) in (OneHotEncoder, OrdinalEncoder) for s in steps):
        return _categorical_block(names, steps)
    numeric = [_numeric_step(s) for s in steps]
    imputes = any(type(s) is SimpleImputer for s in steps)
    return Block(names, "numeric", imputes, _numeric(names, numeric), *_where(names, steps))


def _identity(step: Any) -> bool:
    """The FunctionTransformer a fitted ColumnTransformer puts where "passthrough" was."""
    if type(step) is not FunctionTransformer:
        return False
    return step.func is None and step.inverse_func is None and not step.validate


def _where(names: tuple[str, ...], steps: list[Any]) -> tuple[tuple[float, ...], ...]:
    """Centre and spread of each column in training, as far as the fitted steps tell."""
    center, spread = np.zeros(len(names)), np.ones(len(names))
    for step in steps:
        if type(step) is SimpleImputer:
            center = np.asarray(step.statistics_, dtype=np.float64)
            spread = np.maximum(np.abs(center), 1.0)
        elif type(step) is StandardScaler and step.with_mean and step.with_std:
            center, spread = step.mean_, step.scale_
        elif type(step) is MinMaxScaler:
            center = (step.data_min_ + step.data_max_) / 2
            spread = np.maximum(step.data_range_ / 2, 1e-12)
    return tuple(map(float, center)), tuple(map(float, spread))


def _column_names(name: str, columns: Any) -> tuple[str, ...]:
    if isinstance(columns, str) or not isinstance(columns, Sequence | np.ndarray):
        raise Unsupported(f"transformer {name!r} selects its columns by {columns!r}, not by name")
    if not all(isinstance(column, str) for column in columns):
        raise Unsupported(f"transformer {name!r} selects its columns by position")
    return tuple(columns)


# ---------------------------------------------------------------- numeric columns


def _numeric(names: tuple[str, ...], steps: list[NumericStep]) -> Callable[[Columns], np.ndarray]:
    def compute(columns: Columns) -> np.ndarray:
        matrix = np.column_stack([columns[name] for name in names])
        for step in steps:
            matrix = step(matrix)
        return matrix

    return compute


def _numeric_step(step: Any) -> NumericStep:
    kind = type(step)
    if kind is SimpleImputer:
        return _imputer(step)
    if kind is StandardScaler:
        return _standard(step)
    if kind is MinMaxScaler:
        return _minmax(step)
    raise Unsupported(f"no compiled form of the numeric step {kind.__name__}")


def _imputer(step: SimpleImputer) -> NumericStep:
    _check_imputer(step)
    statistics = np.asarray(step.statistics_, dtype=np.float64)
    if np.isnan(statistics).any():  # an all-missing training column: transform drops it
        raise Unsupported("an imputer drops a column that was empty in training")

    def impute(matrix: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(matrix), statistics, matrix)

    return impute


def _check_imputer(step: SimpleImputer) -> None:
    missing = step.missing_values
    if not (isinstance(missing, float) and math.isnan(missing)) or step.add_indicator:
        raise Unsupported("an imputer with other missing values than NaN, or an indicator")


def _standard(step: StandardScaler) -> NumericStep:
    mean = step.mean_ if step.with_mean else None
    scale = step.scale_ if step.with_std else None

    def standardize(matrix: np.ndarray) -> np.ndarray:
        if mean is not None:
            matrix = matrix - mean
        if scale is not None:
            matrix = matrix / scale
        return matrix

    return standardize


def _minmax(step: MinMaxScaler) -> NumericStep:
    scale, low = step.scale_, step.min_
    clip = step.feature_range if step.clip else None

    def minmax(matrix: np.ndarray) -> np.ndarray:
        matrix = matrix * scale
        matrix += low
        if clip is not None:
            np.clip(matrix, clip[0], clip[1], out=matrix)
        return matrix

    return minmax


# ---------------------------------------------------------------- categorical columns


def _categorical_block(names: tuple[str, ...], steps: list[Any]) -> Block:
    *before, encoder = steps
    if type(encoder) not in (OneHotEncoder, OrdinalEncoder) or len(before) > 1:
        raise Unsupported("a categorical pipeline other than [imputer,] encoder")
    imputer = before[0] if before else None
    if imputer is not None and type(imputer) is not SimpleImputer:
        raise Unsupported(f"a categorical step {type(imputer).__name__} before the encoder")
    fill = _category_fill(imputer, len(names))
    tables = _code_tables(encoder, imputer)
    if type(encoder) is OneHotEncoder:
        compute = _one_hot(names, fill, tables, _one_hot_widths(encoder))
    else:
        compute = _ordinal(names, fill, tables)
    return Block(names, "categorical", imputer is not None, compute)


def _category_fill(imputer: SimpleImputer | None, width: int) -> list[Any]:
    """What each column's missing value becomes before encoding (itself without imputer)."""
    if imputer is None:
        return [math.nan] * width
    _check_imputer(imputer)
    fill = list(imputer.statistics_)
    if any(_missing(value) for value in fill):
        raise Unsupported("a categorical imputer drops a column that was empty in training")
    return fill


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class CodeTable:
    """One column's codes: known category -> code; anything else gets ``unseen``."""

    codes: dict[Any, float]
    unseen: float
    missing: float  # the code of a missing value reaching the encoder (no imputer)

    def lookup(self, value: Any) -> float:
        if _missing(value):
            return self.missing
        return self.codes.get(value, self.unseen)


def _code_tables(encoder: Any, imputer: Any) -> list[CodeTable]:
    """Each column's codes, as the fitted encoder gives them (one-hot: the active column)."""
    categories = [list(values) for values in encoder.categories_]
    if type(encoder) is OneHotEncoder:
        _check_one_hot(encoder)
    known = [[value for value in values if not _missing(value)] for values in categories]
    longest = max(len(values) for values in known) if any(known) else 0
    probe = [[column[i % len(column)] if column else UNSEEN for column in known]
             for i in range(longest)]  # fmt: skip
    probe += [[UNSEEN] * len(known), [math.nan] * len(known)]
    codes = _encode(encoder, np.array(probe, dtype=object))
    return [
        CodeTable(
            codes={value: codes[i][j] for i, value in enumerate(column)},
            unseen=codes[longest][j],
            missing=codes[longest + 1][j],
        )
        for j, column in enumerate(known)
    ]


def _encode(encoder: Any, rows: np.ndarray) -> list[list[float]]:
    """The encoder's code of each value: ordinal code, or the one-hot column set (-1: none)."""
    names = getattr(encoder, "feature_names_in_", None)
    try:
        out = encoder.transform(rows if names is None else pd.DataFrame(rows, columns=names))
    except ValueError as exc:  # handle_unknown="error", or NaN it cannot encode
        name = type(encoder).__name__
        raise Unsupported(f"the {name} refuses unseen or missing values: {exc}") from exc
    if type(encoder) is OrdinalEncoder:
        return np.asarray(out, dtype=np.float64).tolist()  # type: ignore[no-any-return]
    dense = out.toarray() if hasattr(out, "toarray") else np.asarray(out)
    return [_active_columns(row, _one_hot_widths(encoder)) for row in dense]


def _active_columns(row: np.ndarray, widths: list[int]) -> list[float]:
    active, start = [], 0
    for width in widths:
        part = row[start : start + width]
        hits = np.flatnonzero(part)
        if len(hits) > 1 or (len(hits) == 1 and part[hits[0]] != 1.0):
            raise Unsupported("a one-hot encoder that sets more than one 1.0 per column")
        active.append(float(hits[0]) if len(hits) else -1.0)
        start += width
    return active


def _check_one_hot(encoder: OneHotEncoder) -> None:
    if encoder.drop_idx_ is not None or getattr(encoder, "_infrequent_enabled", False):
        raise Unsupported("a one-hot encoder that drops or groups categories")
    if np.dtype(encoder.dtype) != np.float64:
        raise Unsupported(f"a one-hot encoder of dtype {encoder.dtype}")


def _one_hot_widths(encoder: OneHotEncoder) -> list[int]:
    return [len(values) for values in encoder.categories_]


def _known_categories(step: Any, columns: Any) -> dict[str, tuple[Any, ...]]:
    steps = list(step.steps) if type(step) is Pipeline else [("", step)]
    encoder = next((s for _, s in steps if type(s) in (OneHotEncoder, OrdinalEncoder)), None)
    if encoder is None:
        return {}
    return {
        name: tuple(value for value in values if not _missing(value))
        for name, values in zip(columns, encoder.categories_, strict=True)
    }


def _codes(column: np.ndarray, fill: Any, table: CodeTable) -> np.ndarray:
    values = [fill if _missing(value) else value for value in column.tolist()]
    return np.array([table.lookup(value) for value in values], dtype=np.float64)


def _ordinal(
    names: tuple[str, ...], fill: list[Any], tables: list[CodeTable]
) -> Callable[[Columns], np.ndarray]:
    def compute(columns: Columns) -> np.ndarray:
        codes = [_codes(columns[n], f, t) for n, f, t in zip(names, fill, tables, strict=True)]
        return np.column_stack(codes)

    return compute


def _one_hot(
    names: tuple[str, ...], fill: list[Any], tables: list[CodeTable], widths: list[int]
) -> Callable[[Columns], np.ndarray]:
    offsets = np.cumsum([0, *widths[:-1]])
    total = int(sum(widths))

    def compute(columns: Columns) -> np.ndarray:
        first = columns[names[0]]
        out = np.zeros((len(first), total), dtype=np.float64)
        rows = np.arange(len(first))
        for name, value, table, offset in zip(names, fill, tables, offsets, strict=True):
            active = _codes(columns[name], value, table).astype(np.intp)
            hit = active >= 0
            out[rows[hit], offset + active[hit]] = 1.0
        return out

    return compute
