"""Checking a dataset against its spec before training, and describing its features.

Every failure is a DatasetInvalid that names the column and the problem, so the TrainingJob's
status tells the user exactly what to fix in the data or the spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from pandas.api import types as ptypes

from continuum.api import TrainingJobSpec
from continuum.distinct import per_category, present_values, text_counts
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


def as_labels(target: pd.Series, task: str) -> pd.Series:
    """Class labels as strings (the same label compares equal from CSV, Parquet and JSON);
    regression targets as float64. A ``category`` target is converted once per class
    (:func:`per_category`): 0.15 s less for the 1,000,000 labels of the issue-19 bench."""
    if task != CLASSIFICATION:
        return target.astype(float)
    return per_category(target, _text_objects)


def _text_objects(series: pd.Series) -> pd.Series:
    return series.astype(str).astype(object)


def feature_names(spec: TrainingJobSpec, columns: Sequence[str]) -> tuple[str, ...]:
    """Declared features, or every column except the target when none are declared."""
    if spec.dataset.features is not None:
        return tuple(spec.dataset.features)
    return tuple(c for c in columns if c != spec.dataset.target)


@dataclass
class ColumnFacts:
    """What validation needs to know of one column, from a whole frame or chunk by chunk."""

    dtype: str
    numeric: bool
    nulls: int = 0
    example: Any = None  # the first non-null value
    values: set[str] | None = None  # distinct values as text (categoricals only)


@dataclass
class DatasetFacts:
    """The dataset's column names, row count and the facts of the columns training uses.

    Built from a frame (:meth:`of_frame`) or added to chunk by chunk (:meth:`add`), so a
    streamed dataset is validated with the same checks, in the same order, as one in memory.
    """

    columns: list[str]
    rows: int = 0
    facts: dict[str, ColumnFacts] = field(default_factory=dict)
    classes: dict[str, int] = field(default_factory=dict)  # target label (text) -> rows

    @classmethod
    def of_frame(cls, frame: pd.DataFrame, spec: TrainingJobSpec, task: str) -> DatasetFacts:
        facts = cls([str(c) for c in frame.columns])
        facts.add(frame, spec, task)
        return facts

    def add(self, frame: pd.DataFrame, spec: TrainingJobSpec, task: str) -> None:
        """Fold ``frame``'s rows in (only the target and feature columns present are read)."""
        self.rows += len(frame)
        categorical = set(spec.preprocessing.categorical.columns)
        target = spec.dataset.target
        for name in [target, *feature_names(spec, self.columns)]:
            if name in frame.columns:
                self._add_column(frame[name], name, name in categorical and name != target)
        if task == CLASSIFICATION and target in frame.columns:
            # Counted on the categories of a category target: 0.12 s less at 1,000,000 rows.
            for label, count in text_counts(frame[target]):
                self.classes[label] = self.classes.get(label, 0) + count

    def _add_column(self, series: pd.Series, name: str, categorical: bool) -> None:
        numeric = bool(ptypes.is_numeric_dtype(series))
        known = self.facts.get(name)
        if known is None:
            known = self.facts[name] = ColumnFacts(str(series.dtype), numeric)
        elif str(series.dtype) != known.dtype:  # e.g. a bool column with nulls in one chunk
            known.dtype = _wider_dtype(known.dtype, str(series.dtype))
        known.numeric = known.numeric and numeric
        known.nulls += int(series.isna().sum())
        if known.example is None and not numeric:  # only the not-numeric error quotes one
            known.example = _example(series)
        if categorical:
            text = present_values(series).astype(str)  # each present category once
            known.values = (known.values or set()) | set(text.unique())

    def class_counts(self) -> pd.Series:
        """Rows per class, most frequent first (ties: by label)."""
        ordered = sorted(self.classes.items(), key=lambda item: (-item[1], item[0]))
        return pd.Series(dict(ordered), dtype="int64")


def _wider_dtype(first: str, other: str) -> str:
    # As pandas reads a whole column whose chunks disagree: object over float over the rest.
    for dtype in ("object", "str", "string", "float64"):
        if dtype in (first, other):
            return dtype
    return first


def validate_dataset(frame: pd.DataFrame, spec: TrainingJobSpec, task: str) -> list[Feature]:
    """Raise DatasetInvalid on the first problem; return the feature schema otherwise.

    The checks of the spec alone (target not a feature, categoricals among the features) are
    the API model's, made when the spec was parsed; these are the ones that need the data.
    """
    return validate_facts(DatasetFacts.of_frame(frame, spec, task), spec, task)


def validate_facts(facts: DatasetFacts, spec: TrainingJobSpec, task: str) -> list[Feature]:
    """:func:`validate_dataset` on the facts of a dataset (whole or streamed)."""
    names = feature_names(spec, facts.columns)
    check_columns_present(facts.columns, [spec.dataset.target, *names])
    check_row_count(facts.rows, spec.dataset.validation.min_rows)
    check_target(facts, spec, task)
    schema = [describe_feature(facts.facts[name], name, spec) for name in names]
    rules = spec.dataset.validation
    for name in names:
        limit = 1.0 if name in rules.allow_nulls else rules.max_null_fraction
        check_nulls(facts.facts[name].nulls, facts.rows, name, limit)
    return schema


def check_columns_present(columns: Sequence[str], required: Sequence[str]) -> None:
    for column in required:
        if column not in columns:
            available = ", ".join(map(str, columns[:20]))
            raise DatasetInvalid(column, f"not found in the dataset (columns: {available})")


def check_row_count(rows: int, min_rows: int) -> None:
    if rows < min_rows:
        raise DatasetInvalid(
            None, f"{rows} rows, fewer than validation.minRows={min_rows}; add data"
        )


def check_target(facts: DatasetFacts, spec: TrainingJobSpec, task: str) -> None:
    name = spec.dataset.target
    target = facts.facts[name]
    if target.nulls:
        raise DatasetInvalid(
            name, f"target has {target.nulls} empty value(s); drop or fill those rows"
        )
    if task == REGRESSION and not target.numeric:
        raise DatasetInvalid(name, f"regression target must be numeric, found dtype {target.dtype}")
    if task == CLASSIFICATION:
        check_classes(facts.class_counts(), name, spec)


def check_classes(counts: pd.Series, name: str, spec: TrainingJobSpec) -> None:
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


def describe_feature(facts: ColumnFacts, name: str, spec: TrainingJobSpec) -> Feature:
    if name in spec.preprocessing.categorical.columns:
        return Feature(name, "categorical", facts.dtype, tuple(sorted(facts.values or ())))
    if not facts.numeric:
        raise DatasetInvalid(
            name,
            f"not numeric (dtype {facts.dtype}, e.g. {facts.example!r}); list it in "
            "preprocessing.categorical.columns or fix the values",
        )
    return Feature(name, "numeric", facts.dtype)


def identifier_warnings(frame: pd.DataFrame | DatasetFacts, schema: Sequence[Feature]) -> list[str]:
    """A warning per declared categorical that looks like an identifier (see IDENTIFIER_SHARE).

    Not an error: a large categorical can be right, but its owner should know what it costs.
    """
    warnings = []
    for feature in schema:
        if feature.kind != "categorical":
            continue
        values = _non_null(frame, feature.name)
        distinct = len(feature.categories)
        share = distinct / values if values else 0.0
        if distinct >= IDENTIFIER_MIN_DISTINCT and share > IDENTIFIER_SHARE:
            warnings.append(
                f"{feature.name}: {distinct} distinct values in {values} rows ({share:.0%}, "
                f"above {IDENTIFIER_SHARE:.0%}) looks like an identifier or free text; the drift "
                "check pools rare values into (other), so its drift is barely tested; drop it "
                "from dataset.features or group its values"
            )
    return warnings


def _non_null(source: pd.DataFrame | DatasetFacts, name: str) -> int:
    if isinstance(source, DatasetFacts):
        return source.rows - source.facts[name].nulls
    return int(source[name].notna().sum())


def check_nulls(nulls: int, rows: int, name: str, max_fraction: float) -> None:
    fraction = nulls / rows if rows else 0.0
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
