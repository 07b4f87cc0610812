"""Checking a dataset against its spec before training, and describing its features.

Every failure is a DatasetInvalid that names the column and the problem, so the TrainingJob's
status tells the user exactly what to fix in the data or the spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pandas.api import types as ptypes

from continuum.errors import ConfigError, DatasetInvalid
from continuum.trainer.config import TrainingConfig

CLASSIFICATION = "classification"
REGRESSION = "regression"
# A stratified split needs each class on both sides of the split.
MIN_ROWS_PER_CLASS = 2


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # "numeric" | "categorical"
    dtype: str
    categories: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "categories": list(self.categories),
        }


def feature_names(config: TrainingConfig, columns: Sequence[str]) -> tuple[str, ...]:
    """Declared features, or every column except the target when none are declared."""
    if config.dataset.features is not None:
        return config.dataset.features
    return tuple(c for c in columns if c != config.dataset.target)


def check_spec_columns(config: TrainingConfig) -> None:
    """Spec-only checks that need no data: the target is not a feature, categoricals are."""
    target, features = config.dataset.target, config.dataset.features
    if features is not None and target in features:
        raise ConfigError(f"spec.dataset.features lists the target {target!r}; remove it")
    undeclared = [c for c in config.categorical.columns if features and c not in features]
    if undeclared:
        raise ConfigError(
            f"preprocessing.categorical.columns {undeclared} are not in spec.dataset.features"
        )


def validate_dataset(frame: pd.DataFrame, config: TrainingConfig, task: str) -> list[Feature]:
    """Raise DatasetInvalid on the first problem; return the feature schema otherwise."""
    names = feature_names(config, list(frame.columns))
    check_columns_present(frame, [config.dataset.target, *names])
    check_row_count(frame, config.dataset.validation.min_rows)
    check_target(frame[config.dataset.target], config, task)
    schema = [describe_feature(frame[name], name, config) for name in names]
    rules = config.dataset.validation
    for name in names:
        limit = 1.0 if name in rules.allow_nulls else rules.max_null_fraction
        check_nulls(frame[name], name, limit)
    return schema


def check_columns_present(frame: pd.DataFrame, required: Sequence[str]) -> None:
    for column in required:
        if column not in frame.columns:
            available = ", ".join(map(str, frame.columns[:20]))
            raise DatasetInvalid(column, f"not found in the dataset (columns: {available})")


def check_row_count(frame: pd.DataFrame, min_rows: int) -> None:
    if len(frame) < min_rows:
        raise DatasetInvalid(
            None, f"{len(frame)} rows, fewer than validation.minRows={min_rows}; add data"
        )


def check_target(target: pd.Series, config: TrainingConfig, task: str) -> None:
    name = str(target.name)
    nulls = int(target.isna().sum())
    if nulls:
        raise DatasetInvalid(name, f"target has {nulls} empty value(s); drop or fill those rows")
    if task == REGRESSION and not ptypes.is_numeric_dtype(target):
        raise DatasetInvalid(name, f"regression target must be numeric, found dtype {target.dtype}")
    if task == CLASSIFICATION:
        check_classes(target, config)


def check_classes(target: pd.Series, config: TrainingConfig) -> None:
    name = str(target.name)
    counts = target.astype(str).value_counts()
    if len(counts) < 2:
        raise DatasetInvalid(name, f"only one class ({counts.index[0]!r}); need at least 2")
    missing = [c for c in config.dataset.validation.required_classes if c not in counts.index]
    if missing:
        raise DatasetInvalid(
            name, f"required class(es) {missing} absent; present: {list(counts.index)}"
        )
    rare = counts[counts < MIN_ROWS_PER_CLASS]
    if config.split.stratify and len(rare):
        raise DatasetInvalid(
            name,
            f"class(es) {list(rare.index)} have fewer than {MIN_ROWS_PER_CLASS} rows, too few "
            "for a stratified split; add rows or set split.stratify=false",
        )


def describe_feature(series: pd.Series, name: str, config: TrainingConfig) -> Feature:
    if name in config.categorical.columns:
        values = series.dropna().astype(str)
        return Feature(name, "categorical", str(series.dtype), tuple(sorted(values.unique())))
    if not ptypes.is_numeric_dtype(series):
        raise DatasetInvalid(
            name,
            f"not numeric (dtype {series.dtype}, e.g. {_example(series)!r}); list it in "
            "preprocessing.categorical.columns or fix the values",
        )
    return Feature(name, "numeric", str(series.dtype))


def check_nulls(series: pd.Series, name: str, max_fraction: float) -> None:
    fraction = float(series.isna().mean()) if len(series) else 0.0
    if fraction >= 1.0:
        raise DatasetInvalid(name, "every value is empty; drop the column from features")
    if fraction > max_fraction:
        raise DatasetInvalid(
            name,
            f"{fraction:.1%} of values are empty, above validation.maxNullFraction="
            f"{max_fraction}; fill them or raise the limit",
        )


def _example(series: pd.Series) -> Any:
    non_null = series.dropna()
    return non_null.iloc[0] if len(non_null) else None
