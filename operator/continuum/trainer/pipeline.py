"""Building the declared pipeline: preprocessing + one estimator from an allow-list."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from continuum.api.trainingjob import (
    CategoricalPreprocessing,
    Estimator,
    NumericPreprocessing,
    TrainingJobSpec,
)
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
        HistGradientBoostingClassifier,
        ExtraTreesClassifier,
        SGDClassifier,
        GaussianNB,
        LinearRegression,
        Ridge,
        Lasso,
        RandomForestRegressor,
        GradientBoostingRegressor,
        DecisionTreeRegressor,
        HistGradientBoostingRegressor,
        ExtraTreesRegressor,
        SGDRegressor,
        ElasticNet,
        KNeighborsRegressor,
    )
}
# Defaults we set where scikit-learn's would not do: every classifier must have predict_proba
# (roc_auc, and the model server's probabilities), which SVC has only with probability=True and
# SGDClassifier only with a probabilistic loss (its default, hinge, has none).
OUR_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "SVC": {"probability": True},
    "SGDClassifier": {"loss": "log_loss"},
}
PROBABILISTIC_SGD_LOSSES = ("log_loss", "modified_huber")
# Set by the trainer from preprocessing.categorical (the columns' positions after preprocessing).
TRAINER_SET_PARAMS: Mapping[str, str] = {
    "categorical_features": "list the columns in preprocessing.categorical.columns instead",
}
# HistGradientBoosting takes at most max_bins (<= 255) categories per feature: the rarest
# beyond that share one code (OrdinalEncoder's infrequent category).
MAX_NATIVE_CATEGORIES = 255
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
    _check_param_names(config, cls().get_params(deep=False))
    estimator = _instantiate(cls, effective_params(config, seed))
    _validate_params(estimator, config.class_)
    _check_probabilities(estimator, config.class_)
    return estimator


def _check_param_names(config: Estimator, valid: Mapping[str, Any]) -> None:
    unknown = sorted(set(config.params) - set(valid))
    if unknown:
        raise ConfigError(
            f"estimator {config.class_} has no parameter(s) {', '.join(unknown)}; "
            f"valid parameters: {', '.join(sorted(valid))}"
        )
    for name, instead in TRAINER_SET_PARAMS.items():
        if name in config.params:
            raise ConfigError(
                f"estimator {config.class_} parameter {name} is set by the trainer: {instead}"
            )


def _check_probabilities(estimator: BaseEstimator, name: str) -> None:
    loss = getattr(estimator, "loss", None)
    if isinstance(estimator, SGDClassifier) and loss not in PROBABILISTIC_SGD_LOSSES:
        raise ConfigError(
            f"estimator {name} parameter loss={loss!r} gives no predict_proba, which roc_auc "
            f"and the model server's probabilities need: use loss "
            f"{' or '.join(map(repr, PROBABILISTIC_SGD_LOSSES))}"
        )


def effective_params(config: Estimator, seed: int) -> dict[str, Any]:
    """The spec's params plus the ones we set when the spec leaves them out."""
    valid = ESTIMATORS[config.class_]().get_params(deep=False)
    return {**_defaults_we_set(config.class_, valid, seed), **config.params}


def _defaults_we_set(name: str, valid: Mapping[str, Any], seed: int) -> dict[str, Any]:
    ours: dict[str, Any] = dict(OUR_DEFAULTS.get(name, {}))
    if "random_state" in valid:
        ours["random_state"] = seed  # reproducibility: same seed, same model bytes
    return ours


def native_categorical(config: Estimator, categorical: CategoricalPreprocessing) -> bool:
    """Whether categories go to the estimator as ordinal codes it splits on natively."""
    if categorical.encode == "auto":
        return config.native_categorical
    return categorical.encode == "native"


def resolved_encoding(config: Estimator, categorical: CategoricalPreprocessing) -> str:
    """``native`` or ``onehot``: what ``auto`` became for this estimator."""
    return "native" if native_categorical(config, categorical) else "onehot"


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
    *,
    native: bool = False,
    sparse: bool = True,
    max_categories: int = MAX_NATIVE_CATEGORIES,
) -> ColumnTransformer:
    """Numeric columns first, then categorical ones (one-hot, or ordinal codes if ``native``).

    ``sparse=False`` for estimators that refuse sparse input (HistGradientBoosting, GaussianNB):
    the one-hot block is then always dense.
    """
    numeric_columns = [f.name for f in schema if f.kind == "numeric"]
    categorical_columns = [f.name for f in schema if f.kind == "categorical"]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric_columns:
        transformers.append(("numeric", _numeric_steps(numeric), numeric_columns))
    if categorical_columns:
        steps = _categorical_steps(categorical, native=native, max_categories=max_categories)
        transformers.append(("categorical", steps, categorical_columns))
    return ColumnTransformer(
        transformers, remainder="drop", sparse_threshold=0.3 if sparse else 0.0
    )


def _numeric_steps(numeric: NumericPreprocessing) -> Any:
    steps: list[tuple[str, Any]] = []
    if numeric.impute != "none":
        steps.append(("impute", SimpleImputer(strategy=numeric.impute)))
    if numeric.scale == "standard":
        steps.append(("scale", StandardScaler()))
    elif numeric.scale == "minmax":
        steps.append(("scale", MinMaxScaler()))
    return Pipeline(steps) if steps else "passthrough"


def _categorical_steps(
    categorical: CategoricalPreprocessing, *, native: bool, max_categories: int
) -> Pipeline:
    steps: list[tuple[str, Any]] = []
    if categorical.impute != "none":
        steps.append(("impute", SimpleImputer(strategy="most_frequent")))
    encoder = _ordinal_encoder(max_categories) if native else _onehot_encoder()
    steps.append(("encode", encoder))
    return Pipeline(steps)


def _onehot_encoder() -> OneHotEncoder:
    # Unknown categories at serving time become all-zero rows instead of errors.
    return OneHotEncoder(handle_unknown="ignore")


def _ordinal_encoder(max_categories: int) -> OrdinalEncoder:
    # Unknown categories at serving time and nulls become NaN, which HistGradientBoosting
    # sends down its learned missing-value branch instead of failing.
    return OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
        max_categories=max_categories,
    )


def build_pipeline(
    estimator: BaseEstimator,
    schema: Sequence[Feature],
    numeric: NumericPreprocessing,
    categorical: CategoricalPreprocessing,
    *,
    native: bool = False,
) -> Pipeline:
    """preprocess -> estimator; with ``native``, the estimator is told which of the
    preprocessed columns are categorical (they come after the numeric ones)."""
    sparse = bool(estimator.__sklearn_tags__().input_tags.sparse)
    bins = min(int(getattr(estimator, "max_bins", MAX_NATIVE_CATEGORIES)), MAX_NATIVE_CATEGORIES)
    preprocessor = build_preprocessor(
        schema, numeric, categorical, native=native, sparse=sparse, max_categories=bins
    )
    if native:
        estimator.set_params(categorical_features=_categorical_positions(schema) or None)
    return Pipeline([(PREPROCESS_STEP, preprocessor), (ESTIMATOR_STEP, estimator)])


def pipeline_for(spec: TrainingJobSpec, schema: Sequence[Feature]) -> Pipeline:
    """The spec's unfitted pipeline for the validated feature ``schema``."""
    estimator = build_estimator(spec.estimator, spec.split.seed)
    preprocessing = spec.preprocessing
    native = native_categorical(spec.estimator, preprocessing.categorical)
    return build_pipeline(
        estimator, schema, preprocessing.numeric, preprocessing.categorical, native=native
    )


def _categorical_positions(schema: Sequence[Feature]) -> list[int]:
    numeric = sum(1 for f in schema if f.kind == "numeric")
    categorical = sum(1 for f in schema if f.kind == "categorical")
    return list(range(numeric, numeric + categorical))


def fitted_facts(pipeline: Pipeline, threads: int) -> dict[str, Any]:
    """What the fit decided that the params do not say, for the manifest: the threads it ran
    on and, for estimators that stop early (HistGradientBoosting, SGD), the iterations run."""
    estimator = pipeline.named_steps[ESTIMATOR_STEP]
    facts: dict[str, Any] = {"threads": threads}
    iterations = getattr(estimator, "n_iter_", None)
    if isinstance(iterations, int | np.integer):
        facts["iterations"] = int(iterations)
    return facts
