"""TrainingJob: one immutable training run of a scikit-learn pipeline.

The operator runs the trainer in a batch Job; the trainer reads `spec` and writes a versioned
artefact folder; the operator fills `status` from that version's manifest, read from S3 and
checked against the summary the trainer left in its termination message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import ConfigDict, Field, model_validator

from continuum.api.common import (
    SET_LIST,
    ApiModel,
    ColumnName,
    ColumnSet,
    CustomObject,
    CustomObjectStatus,
    EffectiveStorage,
    LabelSet,
    ObjectName,
    ResourceRequirements,
    StorageSpec,
    cel,
    nested,
    validations,
)

ClassifierClass = Literal[
    "LogisticRegression",
    "RandomForestClassifier",
    "GradientBoostingClassifier",
    "DecisionTreeClassifier",
    "KNeighborsClassifier",
    "SVC",
    "HistGradientBoostingClassifier",
    "ExtraTreesClassifier",
    "SGDClassifier",
    "GaussianNB",
]
RegressorClass = Literal[
    "LinearRegression",
    "Ridge",
    "Lasso",
    "RandomForestRegressor",
    "GradientBoostingRegressor",
    "DecisionTreeRegressor",
    "HistGradientBoostingRegressor",
    "ExtraTreesRegressor",
    "SGDRegressor",
    "ElasticNet",
    "KNeighborsRegressor",
]
EstimatorClass = Literal[ClassifierClass, RegressorClass]
ClassificationMetric = Literal["accuracy", "f1", "f1_macro", "roc_auc", "precision", "recall"]
RegressionMetric = Literal["r2", "rmse", "mae"]
Metric = Literal[ClassificationMetric, RegressionMetric]

CLASSIFIERS: tuple[str, ...] = get_args(ClassifierClass)
REGRESSORS: tuple[str, ...] = get_args(RegressorClass)
CLASSIFICATION_METRICS: tuple[str, ...] = get_args(ClassificationMetric)
REGRESSION_METRICS: tuple[str, ...] = get_args(RegressionMetric)
LOWER_IS_BETTER: frozenset[str] = frozenset({"rmse", "mae"})
# The estimators with native categorical support (preprocessing.categorical.encode: native).
NATIVE_CATEGORICAL: tuple[str, ...] = (
    "HistGradientBoostingClassifier",
    "HistGradientBoostingRegressor",
)

IMMUTABLE_SPEC_MESSAGE = "spec is immutable: create a new TrainingJob to retrain"
METRIC_MESSAGE = (
    "evaluation.metric must fit estimator.class: r2, rmse and mae need a regressor; "
    "the other metrics need a classifier"
)
TARGET_MESSAGE = "dataset.target must not be listed in dataset.features"
CATEGORICAL_MESSAGE = "preprocessing.categorical.columns must be listed in dataset.features"
CLASSES_MESSAGE = "dataset.validation.requiredClasses needs a classification metric"
STREAM_MESSAGE = "dataset.mode stream needs dataset.format parquet"
SEARCH_MESSAGE = "search needs an in-memory dataset: dataset.mode memory or auto"
NATIVE_MESSAGE = (
    "preprocessing.categorical.encode native needs an estimator with native categorical "
    "support: HistGradientBoostingClassifier or HistGradientBoostingRegressor"
)


def _cel_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


class DatasetValidation(ApiModel):
    """Checks the trainer runs on the dataset before training; a failed check fails the job."""

    min_rows: int = Field(10, ge=1, le=1_000_000_000, description="Minimum number of rows.")
    max_null_fraction: float = Field(
        0.1,
        ge=0,
        le=1,
        description=(
            "Largest allowed fraction of null values per feature column (columns in allowNulls "
            "are exempt). The target column must never be null."
        ),
    )
    allow_nulls: ColumnSet = Field(
        default_factory=list,
        max_length=256,
        description="Feature columns that may contain any number of nulls (a set: no repeats).",
        json_schema_extra=SET_LIST,
    )
    required_classes: LabelSet | None = Field(
        None,
        min_length=1,
        max_length=100,
        description=(
            "Classification only: class labels (as text) that must occur in the target "
            "(a set: no repeats)."
        ),
        json_schema_extra=SET_LIST,
    )


MAX_FEEDBACK_SECONDS = 366 * 86400
MAX_FEEDBACK_ROWS = 10_000_000


class Feedback(ApiModel):
    """A training set built from served traffic: the model's logged predictions joined with
    the labels that came back, written once as an immutable Parquet snapshot and trained on."""

    model: ObjectName | None = Field(
        None,
        description=(
            "Model whose inference logs (every version) and labels are read. Omit for spec.model."
        ),
    )
    since_seconds: int = Field(
        2_592_000,
        ge=60,
        le=MAX_FEEDBACK_SECONDS,
        description=(
            "Window: predictions answered within this many seconds before the run started "
            "(default 30 days, at most 366). A label present at the run's start counts."
        ),
    )
    max_rows: int = Field(
        100_000,
        ge=1,
        le=MAX_FEEDBACK_ROWS,
        description=(
            "Cap on the labelled rows kept: the newest ones (by answer time, then request id "
            "and row) are kept."
        ),
    )
    include_base: bool = Field(
        True,
        description=(
            "Union the labelled rows with the rows at dataset.uri (false: dataset.uri is not read)."
        ),
    )


class Dataset(ApiModel):
    """The training data: one object or a prefix of objects in S3."""

    uri: str = Field(
        max_length=2048,
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$",
        description="s3://bucket/key of one file, or s3://bucket/prefix/ for all files below.",
    )
    format: Literal["csv", "parquet"] = Field("csv", description="File format: csv or parquet.")
    target: ColumnName = Field(description="Name of the column to predict.")
    features: ColumnSet | None = Field(
        None,
        min_length=1,
        max_length=256,
        description=(
            "Feature columns to use (a set: no repeats). Omit to use every column except the "
            "target."
        ),
        json_schema_extra=SET_LIST,
    )
    validation: DatasetValidation = nested(
        DatasetValidation, "Checks run on the dataset before training."
    )
    mode: Literal["auto", "memory", "stream"] = Field(
        "auto",
        description=(
            "memory: read the whole dataset into the pod's memory; stream: read Parquet by row "
            "group from the pod's scratch disk, train SGDClassifier, SGDRegressor and "
            "GaussianNB with partial_fit over every training row and the other estimators on "
            "a seeded sample of sampleRows training rows; auto: stream a Parquet dataset "
            "larger than the trainer's in-memory limit, else memory."
        ),
    )
    sample_rows: int = Field(
        500_000,
        ge=1_000,
        le=50_000_000,
        description=(
            "Streamed only: training rows kept for estimators without partial_fit (and to fit "
            "the preprocessing of those with it), drawn with split.seed."
        ),
    )
    passes: int = Field(
        1,
        ge=1,
        le=100,
        description="Streamed only: passes of partial_fit over the training rows.",
    )
    feedback: Feedback | None = Field(
        None,
        description=(
            "Add the model's served traffic with its labels (docs/feedback.md#training-on-"
            "feedback): the trainer writes the union once as a content-addressed Parquet "
            "snapshot (status.dataset.snapshot) and trains on that."
        ),
    )


class Estimator(ApiModel):
    """The scikit-learn estimator at the end of the pipeline."""

    class_: EstimatorClass = Field(
        alias="class", description="scikit-learn estimator class name, from an allow-list."
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        max_length=64,
        description="Constructor keyword arguments of the estimator class (free-form).",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )

    @property
    def is_regressor(self) -> bool:
        """Whether the class is a regressor (otherwise a classifier)."""
        return self.class_ in REGRESSORS

    @property
    def native_categorical(self) -> bool:
        """Whether the class reads ordinal-coded categories natively."""
        return self.class_ in NATIVE_CATEGORICAL


class NumericPreprocessing(ApiModel):
    """Preprocessing of numeric feature columns."""

    impute: Literal["mean", "median", "none"] = Field(
        "mean", description="How to fill nulls: mean, median or none."
    )
    scale: Literal["standard", "minmax", "none"] = Field(
        "standard", description="Scaling: standard (z-score), minmax or none."
    )


class CategoricalPreprocessing(ApiModel):
    """Preprocessing of categorical feature columns."""

    columns: ColumnSet = Field(
        default_factory=list,
        max_length=256,
        description="Columns treated as categorical (a set: no repeats).",
        json_schema_extra=SET_LIST,
    )
    impute: Literal["most_frequent", "none"] = Field(
        "most_frequent", description="How to fill nulls: most_frequent or none."
    )
    encode: Literal["auto", "onehot", "native"] = Field(
        "auto",
        description=(
            "Encoding: onehot (one column per category), native (ordinal codes the estimator "
            "treats as categories: HistGradientBoosting* only) or auto (native where the "
            "estimator supports it, else onehot)."
        ),
    )


class Preprocessing(ApiModel):
    """Pipeline steps applied to the features before the estimator."""

    numeric: NumericPreprocessing = nested(
        NumericPreprocessing, "Numeric columns: every feature not listed as categorical."
    )
    categorical: CategoricalPreprocessing = nested(CategoricalPreprocessing, "Categorical columns.")


class Split(ApiModel):
    """How the dataset is split into a training part and a held-out test part."""

    test_size: float = Field(
        0.2, ge=0.05, le=0.5, description="Fraction of rows held out for evaluation."
    )
    seed: int = Field(
        42, ge=0, le=2**31 - 1, description="Random seed of the split and of the estimator."
    )
    stratify: bool = Field(
        True, description="Stratify the split by the target (ignored for regressors)."
    )


class Evaluation(ApiModel):
    """The quality gate a trained model must pass to be qualified."""

    metric: Metric = Field(description="Metric computed on the held-out split.")
    threshold: float | None = Field(
        None,
        ge=-1e9,
        le=1e9,
        description=(
            "Qualification bound: the score must be at least this (at most, for rmse and mae)."
        ),
    )
    must_beat: Literal["current", "none"] = Field(
        "current",
        description=(
            "current: the model must also score better than the current champion "
            "(the newest qualified version); none: the threshold alone decides."
        ),
    )


class Search(ApiModel):
    """A hyperparameter search: trials scored by cross-validation on the training rows, the best
    one refit on all of them and gated as usual."""

    strategy: Literal["grid", "random"] = Field(
        "grid",
        description=(
            "grid: every combination of the listed values (in scikit-learn's ParameterGrid "
            "order); random: trials draws (ParameterSampler with seed) from the lists and ranges."
        ),
    )
    space: dict[str, Any] = Field(
        min_length=1,
        max_length=16,
        description=(
            "Estimator parameter -> list of values, or (random) a range {uniform|logUniform|"
            "randint: [low, high]}. Every candidate is validated against the estimator before "
            "any data is read."
        ),
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    trials: int = Field(
        20, ge=1, le=256, description="Trial budget: grid points allowed, or random draws."
    )
    folds: int = Field(5, ge=2, le=10, description="Cross-validation folds of each trial.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the random draws.")


class SearchSummary(ApiModel):
    """What the search found."""

    trials: int | None = Field(None, ge=0, description="Trials planned.")
    failed: int | None = Field(None, ge=0, description="Trials that failed (never chosen).")
    best_params: dict[str, Any] = Field(
        default_factory=dict,
        max_length=16,
        description="Parameters of the best trial (refit on all training rows).",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    best_score: float | None = Field(
        None, description="Mean cross-validated score of the best trial (evaluation.metric)."
    )


def _spec_rules() -> list[dict[str, str]]:
    reg_metric = f"self.evaluation.metric in {_cel_list(REGRESSION_METRICS)}"
    features = "!has(self.dataset.features) || "
    columns = "self.preprocessing.categorical.columns"
    classes = "self.dataset.validation.requiredClasses"
    return [
        cel(f"({reg_metric}) == (self.estimator.class in {_cel_list(REGRESSORS)})", METRIC_MESSAGE),
        cel(features + "!(self.dataset.target in self.dataset.features)", TARGET_MESSAGE),
        cel(
            features + "!has(self.preprocessing) || !has(self.preprocessing.categorical) || "
            f"!has({columns}) || {columns}.all(c, c in self.dataset.features)",
            CATEGORICAL_MESSAGE,
        ),
        cel(
            f"!has(self.dataset.validation) || !has({classes}) || !({reg_metric})", CLASSES_MESSAGE
        ),
        cel(
            "!has(self.preprocessing) || !has(self.preprocessing.categorical) || "
            "!has(self.preprocessing.categorical.encode) || "
            "self.preprocessing.categorical.encode != 'native' || "
            f"self.estimator.class in {_cel_list(NATIVE_CATEGORICAL)}",
            NATIVE_MESSAGE,
        ),
        cel(
            "!has(self.dataset.mode) || self.dataset.mode != 'stream' || "
            "(has(self.dataset.format) && self.dataset.format == 'parquet')",
            STREAM_MESSAGE,
        ),
        cel(
            "!has(self.search) || !has(self.dataset.mode) || self.dataset.mode != 'stream'",
            SEARCH_MESSAGE,
        ),
    ]


class TrainingJobSpec(ApiModel):
    """What to train, on which data, and how to judge it."""

    model_config = ConfigDict(json_schema_extra=validations(*_spec_rules()))

    model: ObjectName = Field(description="Model name; versions of one model are numbered 1, 2, …")
    dataset: Dataset = Field(description="Training data and the checks it must pass.")
    estimator: Estimator = Field(description="scikit-learn estimator class and parameters.")
    preprocessing: Preprocessing = nested(
        Preprocessing, "Imputation, scaling and encoding before the estimator."
    )
    split: Split = nested(Split, "Train/test split.")
    search: Search | None = Field(
        None,
        description=(
            "Hyperparameter search over estimator parameters (in-memory datasets): the best "
            "trial's parameters override estimator.params."
        ),
    )
    evaluation: Evaluation = Field(description="Metric and qualification gate.")
    storage: StorageSpec | None = Field(
        None,
        description=(
            "Object store for the model artefacts. Omit to use the namespace default: the "
            "ConfigMap continuum-storage, key storage (the same block as YAML)."
        ),
    )
    resources: ResourceRequirements | None = Field(
        None, description="CPU and memory of the training pod."
    )
    backoff_limit: int = Field(1, ge=0, le=10, description="Retries of the training Job.")
    active_deadline_seconds: int = Field(
        3600, ge=60, le=86400, description="Time limit of the training Job, in seconds."
    )

    @model_validator(mode="after")
    def _cross_field(self) -> TrainingJobSpec:
        regression = self.evaluation.metric in REGRESSION_METRICS
        if regression != self.estimator.is_regressor:
            raise ValueError(METRIC_MESSAGE)
        features = self.dataset.features
        if features is not None and self.dataset.target in features:
            raise ValueError(TARGET_MESSAGE)
        if features is not None and set(self.preprocessing.categorical.columns) - set(features):
            raise ValueError(CATEGORICAL_MESSAGE)
        if regression and self.dataset.validation.required_classes is not None:
            raise ValueError(CLASSES_MESSAGE)
        encode = self.preprocessing.categorical.encode
        if encode == "native" and self.estimator.class_ not in NATIVE_CATEGORICAL:
            raise ValueError(NATIVE_MESSAGE)
        if self.dataset.mode == "stream" and self.dataset.format != "parquet":
            raise ValueError(STREAM_MESSAGE)
        if self.search is not None and self.dataset.mode == "stream":
            raise ValueError(SEARCH_MESSAGE)
        return self


class ModelRef(ApiModel):
    """The model version a training run produced."""

    version: int | None = Field(None, ge=1, description="Version number within the model.")
    uri: str | None = Field(
        None, max_length=2048, description="s3:// URI of the version's artefact folder."
    )
    sha256: str | None = Field(
        None, max_length=64, pattern=r"^[a-f0-9]{64}$", description="SHA-256 of the model file."
    )


class Champion(ApiModel):
    """The version this run was compared against (the current champion)."""

    version: int | None = Field(None, ge=1, description="Champion version number.")
    metrics: dict[str, float] = Field(
        default_factory=dict, max_length=32, description="Champion's scores on this test split."
    )


class DatasetSummary(ApiModel):
    """What the trainer read."""

    fingerprint: str | None = Field(
        None, max_length=128, description="Content fingerprint of the dataset."
    )
    rows: int | None = Field(None, ge=0, description="Number of rows read.")
    mode: Literal["memory", "stream"] | None = Field(
        None, description="How the dataset was read: memory or stream."
    )
    sampled_rows: int | None = Field(
        None,
        ge=0,
        description=(
            "Streamed with an estimator without partial_fit: the training rows of the seeded "
            "sample it was fitted on."
        ),
    )
    snapshot: str | None = Field(
        None,
        max_length=2048,
        description=(
            "dataset.feedback: the s3:// URI of the Parquet snapshot trained on; a TrainingJob "
            "with dataset.uri set to it (format parquet, no feedback) replays the run."
        ),
    )
    feedback_rows: int | None = Field(
        None, ge=0, description="dataset.feedback: labelled served rows in the snapshot."
    )
    base_rows: int | None = Field(
        None, ge=0, description="dataset.feedback: rows of dataset.uri in the snapshot."
    )


class ImageRef(ApiModel):
    """The container image the trainer ran, as the kubelet reported it."""

    name: str | None = Field(None, max_length=512, description="Image reference of the pod.")
    digest: str | None = Field(
        None,
        max_length=128,
        pattern=r"^sha256:[a-f0-9]{64}$",
        description="Content digest of the image that ran (from the pod's imageID).",
    )


class TrainingJobStatus(CustomObjectStatus):
    """Observed state of a training run, written by the operator."""

    phase: Literal["Pending", "Running", "Succeeded", "Failed"] | None = Field(
        None, description="Pending, Running, Succeeded or Failed."
    )
    job_name: str | None = Field(None, max_length=63, description="Name of the training Job.")
    start_time: datetime | None = Field(None, description="When the training Job started.")
    completion_time: datetime | None = Field(None, description="When the training Job ended.")
    model: ModelRef | None = Field(None, description="The model version produced.")
    metrics: dict[str, float] = Field(
        default_factory=dict, max_length=32, description="Scores on the held-out split, by name."
    )
    champion: Champion | None = Field(None, description="The version this run had to beat.")
    dataset: DatasetSummary | None = Field(None, description="Summary of the data read.")
    search: SearchSummary | None = Field(None, description="What the search found.")
    qualified: bool | None = Field(
        None, description="Whether the version passed its gate and may be promoted."
    )
    message: str | None = Field(None, max_length=4096, description="Human-readable summary.")
    storage: EffectiveStorage | None = Field(
        None, description="The storage this run uses (spec.storage or the namespace default)."
    )
    warnings: list[Annotated[str, Field(max_length=512)]] = Field(
        default_factory=list,
        max_length=10,
        description=(
            "Problems found in the data that did not stop training, e.g. a declared categorical "
            "that looks like an identifier (more than half of its values distinct)."
        ),
    )
    image: ImageRef | None = Field(None, description="The trainer's image and its digest.")
    libraries: dict[str, Annotated[str, Field(max_length=64)]] = Field(
        default_factory=dict,
        max_length=8,
        description="Versions of Python and the libraries the model was trained with.",
    )


class TrainingJob(CustomObject):
    """A TrainingJob trains one scikit-learn model version; its spec is immutable."""

    kind: Literal["TrainingJob"] = Field("TrainingJob", description="TrainingJob")
    spec: TrainingJobSpec = Field(description="Desired training run.")
    status: TrainingJobStatus = Field(
        default_factory=TrainingJobStatus, description="Observed state."
    )
