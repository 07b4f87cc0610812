"""The trainer's view of a TrainingJob spec: plain frozen dataclasses.

``TrainingConfig.from_spec`` reads the camelCase spec dict (as stored in the cluster), so the
trainer depends on nothing but that JSON shape. Defaults here match the CRD's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from continuum.errors import ConfigError

T = TypeVar("T")

DATASET_FORMATS = ("csv", "parquet")
NUMERIC_IMPUTE = ("mean", "median", "none")
NUMERIC_SCALE = ("standard", "minmax", "none")
CATEGORICAL_IMPUTE = ("most_frequent", "none")
CATEGORICAL_ENCODE = ("onehot",)
MUST_BEAT = ("current", "none")
DEFAULT_MAX_DATASET_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class ValidationRules:
    min_rows: int = 10
    max_null_fraction: float = 0.1
    allow_nulls: tuple[str, ...] = ()  # feature columns exempt from max_null_fraction
    required_classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetConfig:
    uri: str
    target: str
    format: str = "csv"
    features: tuple[str, ...] | None = None
    validation: ValidationRules = field(default_factory=ValidationRules)


@dataclass(frozen=True)
class EstimatorConfig:
    class_name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NumericPreprocessing:
    impute: str = "mean"
    scale: str = "standard"


@dataclass(frozen=True)
class CategoricalPreprocessing:
    columns: tuple[str, ...] = ()
    impute: str = "most_frequent"
    encode: str = "onehot"


@dataclass(frozen=True)
class SplitConfig:
    test_size: float = 0.2
    seed: int = 42
    stratify: bool = True


@dataclass(frozen=True)
class EvaluationConfig:
    metric: str
    threshold: float | None = None
    must_beat: str = "current"


@dataclass(frozen=True)
class StorageConfig:
    endpoint: str | None = None
    bucket: str | None = None
    secret_name: str | None = None


@dataclass(frozen=True)
class TrainingConfig:
    model: str
    dataset: DatasetConfig
    estimator: EstimatorConfig
    evaluation: EvaluationConfig
    numeric: NumericPreprocessing = field(default_factory=NumericPreprocessing)
    categorical: CategoricalPreprocessing = field(default_factory=CategoricalPreprocessing)
    split: SplitConfig = field(default_factory=SplitConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    training_job: str | None = None
    max_dataset_bytes: int = DEFAULT_MAX_DATASET_BYTES

    @classmethod
    def from_spec(
        cls, spec: Mapping[str, Any], *, training_job: str | None = None
    ) -> TrainingConfig:
        """Parse a TrainingJob ``spec`` dict; ConfigError names the first bad field."""
        preprocessing = _section(spec, "preprocessing", "spec")
        return cls(
            model=_required(spec, "model", str, "spec"),
            dataset=_dataset(_section(spec, "dataset", "spec", required=True)),
            estimator=_estimator(_section(spec, "estimator", "spec", required=True)),
            evaluation=_evaluation(_section(spec, "evaluation", "spec", required=True)),
            numeric=_numeric(_section(preprocessing, "numeric", "spec.preprocessing")),
            categorical=_categorical(_section(preprocessing, "categorical", "spec.preprocessing")),
            split=_split(_section(spec, "split", "spec")),
            storage=_storage(_section(spec, "storage", "spec")),
            training_job=training_job,
        )


def _dataset(raw: Mapping[str, Any]) -> DatasetConfig:
    where = "spec.dataset"
    features = _optional(raw, "features", list, where)
    rules = _section(raw, "validation", where)
    return DatasetConfig(
        uri=_required(raw, "uri", str, where),
        target=_required(raw, "target", str, where),
        format=_choice(raw, "format", DATASET_FORMATS, "csv", where),
        features=_strings(features, f"{where}.features") if features is not None else None,
        validation=ValidationRules(
            min_rows=_min_rows(rules, f"{where}.validation"),
            max_null_fraction=_fraction(rules, "maxNullFraction", 0.1, f"{where}.validation"),
            allow_nulls=_strings(
                _optional(rules, "allowNulls", list, where) or [], f"{where}.allowNulls"
            ),
            required_classes=tuple(
                str(c) for c in _optional(rules, "requiredClasses", list, where) or ()
            ),
        ),
    )


def _min_rows(rules: Mapping[str, Any], where: str) -> int:
    value = _optional(rules, "minRows", int, where)
    if value is not None and value < 1:
        raise ConfigError(f"{where}.minRows must be at least 1, got {value}")
    return ValidationRules.min_rows if value is None else int(value)


def _estimator(raw: Mapping[str, Any]) -> EstimatorConfig:
    params = _optional(raw, "params", dict, "spec.estimator") or {}
    return EstimatorConfig(class_name=_required(raw, "class", str, "spec.estimator"), params=params)


def _evaluation(raw: Mapping[str, Any]) -> EvaluationConfig:
    where = "spec.evaluation"
    threshold = _optional(raw, "threshold", (int, float), where)
    return EvaluationConfig(
        metric=_required(raw, "metric", str, where),
        threshold=float(threshold) if threshold is not None else None,
        must_beat=_choice(raw, "mustBeat", MUST_BEAT, "current", where),
    )


def _numeric(raw: Mapping[str, Any]) -> NumericPreprocessing:
    where = "spec.preprocessing.numeric"
    return NumericPreprocessing(
        impute=_choice(raw, "impute", NUMERIC_IMPUTE, "mean", where),
        scale=_choice(raw, "scale", NUMERIC_SCALE, "standard", where),
    )


def _categorical(raw: Mapping[str, Any]) -> CategoricalPreprocessing:
    where = "spec.preprocessing.categorical"
    columns = _optional(raw, "columns", list, where) or []
    return CategoricalPreprocessing(
        columns=_strings(columns, f"{where}.columns"),
        impute=_choice(raw, "impute", CATEGORICAL_IMPUTE, "most_frequent", where),
        encode=_choice(raw, "encode", CATEGORICAL_ENCODE, "onehot", where),
    )


def _split(raw: Mapping[str, Any]) -> SplitConfig:
    where = "spec.split"
    test_size = _fraction(raw, "testSize", 0.2, where)
    if not 0.0 < test_size < 1.0:
        raise ConfigError(f"{where}.testSize must be between 0 and 1 (exclusive), got {test_size}")
    seed = _optional(raw, "seed", int, where)
    stratify = _optional(raw, "stratify", bool, where)
    return SplitConfig(
        test_size=test_size,
        seed=42 if seed is None else seed,
        stratify=True if stratify is None else stratify,
    )


def _storage(raw: Mapping[str, Any]) -> StorageConfig:
    where = "spec.storage"
    secret = _section(raw, "secretRef", where)
    return StorageConfig(
        endpoint=_optional(raw, "endpoint", str, where),
        bucket=_optional(raw, "bucket", str, where),
        secret_name=_optional(secret, "name", str, f"{where}.secretRef"),
    )


def _section(
    raw: Mapping[str, Any], key: str, where: str, *, required: bool = False
) -> Mapping[str, Any]:
    value = _required(raw, key, dict, where) if required else _optional(raw, key, dict, where)
    return value or {}


def _required(raw: Mapping[str, Any], key: str, kind: type[T], where: str) -> T:
    value = _optional(raw, key, kind, where)
    if value is None or value == "":
        raise ConfigError(f"{where}.{key} is required")
    return value  # type: ignore[no-any-return]  # isinstance-checked in _optional


def _optional(raw: Mapping[str, Any], key: str, kind: Any, where: str) -> Any:
    value = raw.get(key)
    # bool is an int in Python; a YAML "true" must not pass as a seed or a row count.
    wrong_bool = isinstance(value, bool) and kind is not bool
    if value is not None and (wrong_bool or not isinstance(value, kind)):
        raise ConfigError(f"{where}.{key} must be {_kind_name(kind)}, got {value!r}")
    return value


def _choice(
    raw: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str, where: str
) -> str:
    value = _optional(raw, key, str, where) or default
    if value not in allowed:
        raise ConfigError(f"{where}.{key} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def _fraction(raw: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = _optional(raw, key, (int, float), where)
    value = default if value is None else float(value)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{where}.{key} must be a fraction between 0 and 1, got {value}")
    return float(value)


def _strings(values: list[Any], where: str) -> tuple[str, ...]:
    if not all(isinstance(v, str) and v for v in values):
        raise ConfigError(f"{where} must be a list of column names (non-empty strings)")
    return tuple(values)


def _kind_name(kind: Any) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", list: "a list"}
    names[dict] = "an object"
    return names.get(kind, "a number")
