"""Building the declared pipeline: preprocessing + one estimator from an allow-list."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from continuum.api.trainingjob import CategoricalPreprocessing, Estimator, NumericPreprocessing
from continuum.errors import ConfigError
from continuum.trainer.validation import CLASSIFICATION, REGRESSION, Feature

# The classes of the API's allow-list (continuum.api.trainingjob.EstimatorClass), which a spec
# cannot leave: anything else could run arbitrary code at fit time or need types our skops
# allow-list (continuum.modelio.TRUSTED_TYPES) does not cover. A unit test keeps both equal.
ESTIMATORS: Mapping[str, type[BaseEstimator]] = {
    cls.__name__: cls
    for cls in (
        LogisticRegression,
        RandomForestClassifier,
        GradientBoostingClassifier,
        DecisionTreeClassifier,
        KNeighborsClassifier,
        SVC,
        LinearRegression,
        Ridge,
        Lasso,
        RandomForestRegressor,
        GradientBoostingRegressor,
        DecisionTreeRegressor,
    )
}
PREPROCESS_STEP = "preprocess"
ESTIMATOR_STEP = "estimator"


def task_of(estimator: Estimator) -> str:
    """``classification`` or ``regression``, as the API's allow-list sorts the class."""
    return REGRESSION if estimator.is_regressor else CLASSIFICATION


def build_estimator(config: Estimator, seed: int) -> BaseEstimator:
    """Instantiate the estimator with validated params; ConfigError says what is wrong.

    The params are free-form in the API (they depend on the class), so scikit-learn is the
    judge of them, here, before any data is read.
    """
    cls = ESTIMATORS[config.class_]
    valid = cls().get_params(deep=False)
    unknown = sorted(set(config.params) - set(valid))
    if unknown:
        raise ConfigError(
            f"estimator {config.class_} has no parameter(s) {', '.join(unknown)}; "
            f"valid parameters: {', '.join(sorted(valid))}"
        )
    estimator = _instantiate(cls, effective_params(config, seed))
    _validate_params(estimator, config.class_)
    return estimator


def effective_params(config: Estimator, seed: int) -> dict[str, Any]:
    """The spec's params plus the ones we set when the spec leaves them out."""
    valid = ESTIMATORS[config.class_]().get_params(deep=False)
    return {**_defaults_we_set(valid, seed), **config.params}


def _defaults_we_set(valid: Mapping[str, Any], seed: int) -> dict[str, Any]:
    ours: dict[str, Any] = {}
    if "random_state" in valid:
        ours["random_state"] = seed  # reproducibility: same seed, same model bytes
    if "probability" in valid:
        ours["probability"] = True  # SVC: roc_auc and serving probabilities need predict_proba
    return ours


@contextmanager
def svc_probability_deprecation_silenced() -> Iterator[None]:
    """scikit-learn 1.9 deprecates SVC(probability=True) (warned at init and fit); it works
    until 1.11, and we need its predict_proba. Only that one warning is hidden."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The `probability` parameter", FutureWarning)
        yield


def _instantiate(cls: type[BaseEstimator], params: Mapping[str, Any]) -> BaseEstimator:
    with svc_probability_deprecation_silenced():
        try:
            return cls(**params)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"estimator {cls.__name__} rejected its params: {exc}") from exc


def _validate_params(estimator: BaseEstimator, name: str) -> None:
    # scikit-learn's own constraint check (types, ranges, choices), run before any data is read.
    validate = getattr(estimator, "_validate_params", None)
    if validate is None:
        return
    try:
        validate()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"estimator {name}: {exc}") from exc


def build_preprocessor(
    schema: Sequence[Feature],
    numeric: NumericPreprocessing,
    categorical: CategoricalPreprocessing,
) -> ColumnTransformer:
    numeric_columns = [f.name for f in schema if f.kind == "numeric"]
    categorical_columns = [f.name for f in schema if f.kind == "categorical"]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric_columns:
        transformers.append(("numeric", _numeric_steps(numeric), numeric_columns))
    if categorical_columns:
        transformers.append(("categorical", _categorical_steps(categorical), categorical_columns))
    return ColumnTransformer(transformers, remainder="drop")


def _numeric_steps(numeric: NumericPreprocessing) -> Any:
    steps: list[tuple[str, Any]] = []
    if numeric.impute != "none":
        steps.append(("impute", SimpleImputer(strategy=numeric.impute)))
    if numeric.scale == "standard":
        steps.append(("scale", StandardScaler()))
    elif numeric.scale == "minmax":
        steps.append(("scale", MinMaxScaler()))
    return Pipeline(steps) if steps else "passthrough"


def _categorical_steps(categorical: CategoricalPreprocessing) -> Pipeline:
    steps: list[tuple[str, Any]] = []
    if categorical.impute != "none":
        steps.append(("impute", SimpleImputer(strategy="most_frequent")))
    # Unknown categories at serving time become all-zero rows instead of errors.
    steps.append(("encode", OneHotEncoder(handle_unknown="ignore")))
    return Pipeline(steps)


def build_pipeline(
    estimator: BaseEstimator,
    schema: Sequence[Feature],
    numeric: NumericPreprocessing,
    categorical: CategoricalPreprocessing,
) -> Pipeline:
    preprocessor = build_preprocessor(schema, numeric, categorical)
    return Pipeline([(PREPROCESS_STEP, preprocessor), (ESTIMATOR_STEP, estimator)])
