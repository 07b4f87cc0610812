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

from continuum.api import TrainingJobSpec
from continuum.errors import DatasetInvalid

CLASSIFICATION = "classification"
REGRESSION = "regression"
# A stratified split needs each class on both sides of the split.
MIN_ROWS_PER_CLASS = 2
# A declared categorical whose distinct values exceed this share of its non-empty values looks
# like an identifier or free text. The drift check gives a category a column of its own only
# when it expects 5+ of it in the window (continuum.monitor.categories): at a 50% distinct
# share most values are seen once or twice, so nearly all of them pool into "(other)" and the
# column's drift is almost untestable, and a model learns little from such a column.
IDENTIFIER_SHARE = 0.5
IDENTIFIER_MIN_DISTINCT = 20  # a few values in a tiny table are not an identifier


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


def feature_names(spec: TrainingJobSpec, columns: Sequence[str]) -> tuple[str, ...]:
    """Declared features, or every column except the target when none are declared."""
    if spec.dataset.features is not None:
        return tuple(spec.dataset.features)
    return tuple(c for c in columns if c != spec.dataset.target)


def validate_dataset(frame: pd.DataFrame, spec: TrainingJobSpec, task: str) -> list[Feature]:
    """Raise DatasetInvalid on the first problem; return the feature schema otherwise.

    The checks of the spec alone (target not a feature, categoricals among the features) are
    the API model's, made when the spec was parsed; these are the ones that need the data.
    """
    names = feature_names(spec, list(frame.columns))
    check_columns_present(frame, [spec.dataset.target, *names])
    check_row_count(frame, spec.dataset.validation.min_rows)
    check_target(frame[spec.dataset.target], spec, task)
    schema = [describe_feature(frame[name], name, spec) for name in names]
    rules = spec.dataset.validation
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


def check_target(target: pd.Series, spec: TrainingJobSpec, task: str) -> None:
    name = str(target.name)
    nulls = int(target.isna().sum())
    if nulls:
        raise DatasetInvalid(name, f"target has {nulls} empty value(s); drop or fill those rows")
    if task == REGRESSION and not ptypes.is_numeric_dtype(target):
        raise DatasetInvalid(name, f"regression target must be numeric, found dtype {target.dtype}")
    if task == CLASSIFICATION:
        check_classes(target, spec)


def check_classes(target: pd.Series, spec: TrainingJobSpec) -> None:
    name = str(target.name)
    counts = target.astype(str).value_counts()
    if len(counts) < 2:
        raise DatasetInvalid(name, f"only one class ({counts.index[0]!r}); need at least 2")
    required = spec.dataset.validation.required_classes or []
    missing = [c for c in required if c not in counts.index]
    if missing:
        raise DatasetInvalid(
            name, f"required class(es) {missing} absent; present: {list(counts.index)}"
        )
    rare = counts[counts < MIN_ROWS_PER_CLASS]
    if spec.split.stratify and len(rare):
        raise DatasetInvalid(
            name,
            f"class(es) {list(rare.index)} have fewer than {MIN_ROWS_PER_CLASS} rows, too few "
            "for a stratified split; add rows or set split.stratify=false",
        )


def describe_feature(series: pd.Series, name: str, spec: TrainingJobSpec) -> Feature:
    if name in spec.preprocessing.categorical.columns:
        values = series.dropna().astype(str)
        return Feature(name, "categorical", str(series.dtype), tuple(sorted(values.unique())))
    if not ptypes.is_numeric_dtype(series):
        raise DatasetInvalid(
            name,
            f"not numeric (dtype {series.dtype}, e.g. {_example(series)!r}); list it in "
            "preprocessing.categorical.columns or fix the values",
        )
    return Feature(name, "numeric", str(series.dtype))


def identifier_warnings(frame: pd.DataFrame, schema: Sequence[Feature]) -> list[str]:
    """A warning per declared categorical that looks like an identifier (see IDENTIFIER_SHARE).

    Not an error: a large categorical can be right, but its owner should know what it costs.
    """
    warnings = []
    for feature in schema:
        if feature.kind != "categorical":
            continue
        values = frame[feature.name].dropna()
        distinct = len(feature.categories)
        share = distinct / len(values) if len(values) else 0.0
        if distinct >= IDENTIFIER_MIN_DISTINCT and share > IDENTIFIER_SHARE:
            warnings.append(
                f"{feature.name}: {distinct} distinct values in {len(values)} rows ({share:.0%}, "
                f"above {IDENTIFIER_SHARE:.0%}) looks like an identifier or free text; the drift "
                "check pools rare values into (other), so its drift is barely tested; drop it "
                "from dataset.features or group its values"
            )
    return warnings


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
