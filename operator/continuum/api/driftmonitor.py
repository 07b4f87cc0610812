"""DriftMonitor: checks one ModelDeployment's inference log for drift and triggers retraining.

On its schedule the operator runs the monitor as a Job that compares recent inference rows
with the reference sample of the served version; sustained drift creates a TrainingJob from
`spec.retrain.template`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal, get_args

from croniter import croniter
from pydantic import AfterValidator, ConfigDict, Field, model_validator

from continuum.api.common import (
    SET_LIST,
    ApiModel,
    ColumnName,
    CustomObject,
    CustomObjectStatus,
    ObjectName,
    cel,
    nested,
    no_duplicates,
    validations,
)
from continuum.api.trainingjob import Metric, TrainingJobSpec

ROWS_MESSAGE = "performance.minLabels must not exceed performance.maxRows"
WINDOW_MESSAGE = "window.minSamples must not exceed window.maxRows"
# A time window: whole minutes, hours or days. Go's duration syntax ("1h30m") is not taken:
# the days most windows are counted in are not in it, and one form keeps the message short.
DURATION = r"^[1-9][0-9]{0,5}[mhd]$"
LAST_MESSAGE = "window.last must be a whole number of minutes, hours or days, e.g. 30m, 6h or 7d"
# The keys of each feature in the monitor's summary (the termination message the operator
# reads): FeatureDrift's fields as spelled in JSON. A contract between the two sides: the
# monitor writes exactly these, the DriftMonitor controller reads them into status.drift.
SUMMARY_FEATURE_KEYS = (
    "name", "test", "statistic", "pValue", "pValueUnderflow", "effectSize", "drifted", "quality"
)  # fmt: skip
# The data-quality checks a feature can fail (FeatureDrift.quality, the report's names).
QualityCheck = Literal[
    "missingColumn", "typeMismatch", "outOfRange", "unseenCategories", "missingShare",
    "extraColumns",
]  # fmt: skip
# The checks whose failure holds a retraining back by default: those that say the pipeline is
# broken. A numeric shift beyond the training range or a new category is what drift looks
# like too, and retraining is the answer to it (a 6 sd shift puts ~70% of the values out of
# range: holding the retraining for it stopped the retraining the drift called for).
HOLD_RETRAINING: tuple[QualityCheck, ...] = ("missingColumn", "typeMismatch", "missingShare")
QUALITY_CHECKS: tuple[str, ...] = get_args(QualityCheck)
MAX_QUALITY_LINE = 256
QualityLine = Annotated[str, Field(max_length=MAX_QUALITY_LINE)]
# Cron: five fields of digits, ranges, lists, steps, names and wildcards, or a nickname.
CRON_FIELD = r"[-0-9A-Za-z*/,?]+"
CRON_NICKNAME = r"@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
CRON = rf"^({CRON_NICKNAME}|({CRON_FIELD} +){{4}}{CRON_FIELD})$"
CRON_MESSAGE = (
    "retrain.triggers.schedule must be a cron expression of five fields (minute hour "
    "day-of-month month day-of-week, e.g. '0 3 * * 0') or @hourly, @daily, @weekly, @monthly"
)
PerformanceTrigger = Literal["realised", "estimated", "either", "none"]
PERFORMANCE_TRIGGER_MESSAGE = (
    "retrain.triggers.performance needs spec.performance (the live performance it acts on)"
)
ESTIMATED_TRIGGER_MESSAGE = (
    "retrain.triggers.performance estimated or either needs spec.performance.estimate: true"
)
PERFORMANCE_TRIGGER_RULE = (
    "!has(self.retrain) || !has(self.retrain.triggers) || "
    "!has(self.retrain.triggers.performance) || self.retrain.triggers.performance == 'none' || "
    "has(self.performance)"
)
ESTIMATED_TRIGGER_RULE = (
    "!has(self.retrain) || !has(self.retrain.triggers) || "
    "!has(self.retrain.triggers.performance) || "
    "!(self.retrain.triggers.performance in ['estimated', 'either']) || "
    "(has(self.performance) && has(self.performance.estimate) && self.performance.estimate)"
)


def valid_cron(expression: str) -> bool:
    """Whether ``expression`` is a five-field cron line (or nickname) croniter can step."""
    return re.fullmatch(CRON, expression) is not None and croniter.is_valid(expression)


# The smallest normal double: a test's p-value below it is reported as this number, flagged.
P_VALUE_FLOOR = 2.2250738585072014e-308


class Schedule(ApiModel):
    """When checks run."""

    interval_seconds: int = Field(3600, ge=60, le=604800, description="Seconds between two checks.")


class Window(ApiModel):
    """Which logged rows a check compares with the reference sample."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("self.minSamples <= self.maxRows", WINDOW_MESSAGE),
            cel(f"!has(self.last) || self.last.matches('{DURATION}')", LAST_MESSAGE),
        )
    )

    max_rows: int = Field(
        10000,
        ge=1,
        le=10_000_000,
        description=(
            "Most logged rows compared: the newest ones, or with last set a seeded uniform "
            "sample of the rows logged in that time when more than this many were."
        ),
    )
    min_samples: int = Field(
        200, ge=1, le=10_000_000, description="Skip the check with fewer logged rows."
    )
    last: str | None = Field(
        None,
        max_length=7,
        description=(
            "A time window: the rows logged within this long before the check (by each row's "
            "ts), e.g. 30m, 6h or 7d; sampled down to maxRows when more. Omit: the newest "
            "maxRows rows, whenever they were logged."
        ),
    )
    seed: int = Field(
        0,
        ge=0,
        le=2_147_483_647,
        description="Seed of the sample drawn within last: the same log gives the same rows.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Window:
        if self.min_samples > self.max_rows:
            raise ValueError(WINDOW_MESSAGE)
        if self.last is not None and re.fullmatch(DURATION, self.last) is None:
            raise ValueError(f"{LAST_MESSAGE}, got {self.last!r}")
        return self

    def last_seconds(self) -> int | None:
        """``last`` in seconds; None for a window by count."""
        if self.last is None:
            return None
        return int(self.last[:-1]) * UNIT_SECONDS[self.last[-1]]


UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


class DriftTests(ApiModel):
    """Per-feature statistical tests and the dataset-level verdict."""

    p_value: float = Field(
        0.05,
        gt=0,
        le=0.5,
        description=(
            "Significance level of the per-feature tests, compared with each corrected "
            "p-value: above 0, at most 0.5."
        ),
    )
    correction: Literal["bonferroni", "holm", "bh"] = Field(
        "holm", description="Multiple-testing correction: bonferroni, holm or bh."
    )
    psi_threshold: float = Field(
        0.2, ge=0, le=10, description="Population stability index above which a feature drifts."
    )
    ks_effect_threshold: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Smallest KS statistic (effect size) that counts as drift.",
    )
    missing_share_threshold: float = Field(
        0.05,
        ge=0,
        le=1,
        description=(
            "Smallest change in a feature's share of missing values (absolute: 0.05 is 5 "
            "percentage points) that counts as drift, when the two-proportion test is also "
            "significant after the correction."
        ),
    )
    drift_share: float = Field(
        0.3,
        gt=0,
        le=1,
        description=(
            "Fraction of tested features that must drift for the dataset to count as drifted "
            "(drifted / tested >= driftShare): above 0, at most 1."
        ),
    )


class Triggers(ApiModel):
    """What sets off a retraining: input drift, a performance drop, a schedule."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(f"!has(self.schedule) || self.schedule.matches('{CRON}')", CRON_MESSAGE)
        )
    )

    drift: bool = Field(
        True, description="Retrain when input drift holds for consecutiveChecks checks in a row."
    )
    performance: PerformanceTrigger | None = Field(
        None,
        description=(
            "Retrain when PerformanceDegraded turns True on this basis: realised (from labels), "
            "estimated (before them), either, or none. Omit: realised when spec.performance is "
            "set. Once per served version (a retraining that failed or did not qualify may be "
            "followed by another after the cooldown)."
        ),
    )
    schedule: str | None = Field(
        None,
        max_length=100,
        description=(
            "Also retrain on this cron schedule, in UTC: five fields (minute hour day-of-month "
            "month day-of-week, e.g. '0 3 * * 0' for Sundays 03:00) or @hourly, @daily, "
            "@weekly, @monthly, @yearly. Through the same cooldown and maxConcurrent; a tick "
            "missed while the operator was down fires once, late."
        ),
    )

    @model_validator(mode="after")
    def _cron(self) -> Triggers:
        if self.schedule is not None and not valid_cron(self.schedule):
            raise ValueError(f"{CRON_MESSAGE}, not {self.schedule!r}")
        return self


class Retrain(ApiModel):
    """Automatic retraining: on drift, a performance drop or a schedule (``triggers``)."""

    enabled: bool = Field(True, description="Whether a trigger creates a TrainingJob.")
    triggers: Triggers = nested(Triggers, "What sets off a retraining.")
    template: TrainingJobSpec | None = Field(
        None,
        description=(
            "Spec of the TrainingJobs a trigger creates. Omit to retrain with the spec of the "
            "TrainingJob that produced the served version (same dataset URI, so a dataset "
            "prefix that gains new files is read afresh)."
        ),
    )
    cooldown_seconds: int = Field(
        3600, ge=0, le=2_592_000, description="Least time between two retrainings, in seconds."
    )
    max_concurrent: int = Field(
        1, ge=1, le=10, description="Most retraining TrainingJobs running at once."
    )


class Performance(ApiModel):
    """Live performance of the served version: realised from labels, estimated before them."""

    model_config = ConfigDict(
        json_schema_extra=validations(cel("self.minLabels <= self.maxRows", ROWS_MESSAGE))
    )

    metric: Metric | None = Field(
        None,
        description=(
            "Metric to watch, a TrainingJob evaluation.metric name (accuracy, f1, f1_macro, "
            "roc_auc, precision, recall; r2, rmse, mae for regressors). Omit: the metric the "
            "served version was qualified on (its manifest's evaluation.metric)."
        ),
    )
    label_delay_seconds: int = Field(
        0,
        ge=0,
        le=7_776_000,
        description=(
            "How long labels take to arrive: only predictions answered at least this long "
            "before the check are judged (matured), younger ones wait for a later check."
        ),
    )
    window_seconds: int = Field(
        86400,
        ge=60,
        le=7_776_000,
        description=(
            "Span of predictions judged: the matured ones answered within this many seconds "
            "before the label delay (realised), and the newest ones within it (estimated)."
        ),
    )
    min_labels: int = Field(
        100,
        ge=1,
        le=10_000_000,
        description=(
            "Fewest labelled (or, for the estimate, logged) predictions a verdict needs; "
            "fewer: InsufficientData, the count of degraded checks unchanged."
        ),
    )
    max_drop: float = Field(
        0.05,
        ge=0,
        le=1_000_000_000,
        description=(
            "Allowed drop from the served version's holdout metric, in the metric's units "
            "(0.05: five points of accuracy; for rmse and mae an allowed rise). A check is "
            "degraded only when its whole confidence interval is past holdout - maxDrop."
        ),
    )
    consecutive_checks: int = Field(
        2,
        ge=1,
        le=100,
        description="Degraded checks in a row before PerformanceDegraded turns True.",
    )
    confidence: float = Field(
        0.95,
        ge=0.5,
        le=0.999,
        description="Confidence level of the metric's interval: at least 0.5, at most 0.999.",
    )
    estimate: bool = Field(
        False,
        description=(
            "Also estimate the metric before labels arrive, from the calibrated probabilities "
            "the server logged (classifiers with predict_proba; confidence-based performance "
            "estimation). Blind to concept drift: see docs/performance.md."
        ),
    )
    max_rows: int = Field(
        1_000_000,
        ge=1,
        le=100_000_000,
        description=(
            "Most predictions a metric rests on, on each side (matured labelled ones; the "
            "newest for the estimate). More: a sample of those whose hash of request id and "
            "row is smallest, so the same rows however the check reads them, and memory stays "
            "bounded; the join's counts still count every row. At 1,000,000 rows a 95% "
            "accuracy interval is within 0.001 of the value."
        ),
    )

    @model_validator(mode="after")
    def _bounds(self) -> Performance:
        if self.min_labels > self.max_rows:
            raise ValueError(ROWS_MESSAGE)
        return self


class DataQuality(ApiModel):
    """Schema and data-quality checks of every window against the served version's training."""

    enabled: bool = Field(True, description="Whether the checks run; off: reported as skipped.")
    max_out_of_range_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description=(
            "Largest share of a numeric feature's values outside the range of the reference "
            "sample (its min..max) before the feature fails the check."
        ),
    )
    max_unseen_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description=(
            "Largest share of a categorical feature's values never seen in training, beyond "
            "the share the reference itself predicts (its values seen once, Good-Turing), "
            "before the feature fails the check."
        ),
    )
    max_type_mismatch_share: float = Field(
        0,
        ge=0,
        le=1,
        description=(
            "Largest share of a numeric feature's values of another type (text such as "
            '"12", a boolean where training had numbers): 0, the default, fails on any.'
        ),
    )
    max_missing_increase: float = Field(
        0.1,
        ge=0,
        le=1,
        description=(
            "Largest rise of a feature's share of missing values over the reference sample's "
            "(absolute: 0.1 is 10 percentage points) before the feature fails the check."
        ),
    )
    fail_on_extra_columns: bool = Field(
        False,
        description=(
            "Whether logged columns the model was not trained on fail the check (always "
            "reported). A feature absent from every logged row always fails it."
        ),
    )
    hold_retraining: Annotated[list[QualityCheck], AfterValidator(no_duplicates)] = Field(
        default_factory=lambda: list(HOLD_RETRAINING),
        max_length=6,
        json_schema_extra=SET_LIST,
        description=(
            "Failed checks that hold back a retraining the same check's drift calls for "
            "(suppressed, reason 'data quality'): by default missingColumn, typeMismatch and "
            "missingShare, signs of a broken pipeline. outOfRange and unseenCategories fail "
            "the check but let the drift retrain: large real shifts leave the training range "
            "too. [] never holds one back."
        ),
    )


class DriftMonitorSpec(ApiModel):
    """What to watch, how to test it, and what to do about drift."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(PERFORMANCE_TRIGGER_RULE, PERFORMANCE_TRIGGER_MESSAGE),
            cel(ESTIMATED_TRIGGER_RULE, ESTIMATED_TRIGGER_MESSAGE),
        )
    )

    deployment: ObjectName = Field(
        description="Name of the ModelDeployment (same namespace) to watch."
    )
    schedule: Schedule = nested(Schedule, "Check interval.")
    window: Window = nested(Window, "Rows compared.")
    tests: DriftTests = nested(DriftTests, "Statistical tests and thresholds.")
    quality: DataQuality = nested(DataQuality, "Schema and data-quality checks of each window.")
    sensitive_feature: ColumnName | None = Field(
        None, description="Column whose groups are compared for prediction-rate fairness."
    )
    fairness_threshold: float = Field(
        0.1,
        ge=0,
        le=1,
        description=(
            "Largest allowed gap in positive-prediction rate between sensitiveFeature groups "
            "(used only when sensitiveFeature is set)."
        ),
    )
    consecutive_checks: int = Field(
        2, ge=1, le=100, description="Drifted checks in a row needed to act."
    )
    retrain: Retrain | None = Field(
        None,
        description="Retraining on drift, a performance drop or a schedule. Omit to only monitor.",
    )
    performance: Performance | None = Field(
        None,
        description=(
            "Live performance from labels (docs/feedback.md) and, optionally, estimated before "
            "them. Omit: drift only."
        ),
    )

    @model_validator(mode="after")
    def _performance_trigger(self) -> DriftMonitorSpec:
        chosen = self.retrain.triggers.performance if self.retrain is not None else None
        if chosen in (None, "none"):
            return self
        if self.performance is None:
            raise ValueError(PERFORMANCE_TRIGGER_MESSAGE)
        if chosen in ("estimated", "either") and not self.performance.estimate:
            raise ValueError(ESTIMATED_TRIGGER_MESSAGE)
        return self

    def performance_trigger(self) -> PerformanceTrigger:
        """The basis a performance drop retrains on: the one set, else realised when live
        performance is watched, else none."""
        chosen = self.retrain.triggers.performance if self.retrain is not None else None
        if chosen is not None:
            return chosen
        return "realised" if self.performance is not None else "none"


class FeatureDrift(ApiModel):
    """The drift verdict of one feature in the last check (its report has every number)."""

    name: ColumnName = Field(description="Feature column name.")
    test: str = Field(
        min_length=1,
        max_length=32,
        description=(
            "Test of the feature's values: ks (two-sample Kolmogorov-Smirnov, numeric), chi2 "
            "(Pearson chi-square on the category counts, categorical) or none (no values on "
            "one side)."
        ),
    )
    statistic: float | None = Field(
        None, description="The test's statistic: KS D (0..1) or the chi-square value."
    )
    p_value: float | None = Field(
        None,
        ge=0,
        le=1,
        description=(
            "p-value of the test after the monitor's multiple-testing correction "
            "(tests.correction). Never 0: a p-value below 2.2250738585072014e-308 (the "
            "smallest normal double) is raised to it before the correction and "
            "pValueUnderflow is true, so the number is then an upper bound."
        ),
    )
    p_value_underflow: bool | None = Field(
        None,
        description=(
            "True when the test's p-value underflowed below 2.2250738585072014e-308: pValue "
            "is an upper bound, the true value is smaller."
        ),
    )
    effect_size: float | None = Field(
        None,
        description=(
            "Effect size compared with tests.ksEffectThreshold: KS D (largest gap between "
            "the two empirical CDFs, 0..1) for ks, Cramér's V (0..1) for chi2. Not the PSI: "
            "that is in the report."
        ),
    )
    drifted: bool = Field(
        description=(
            "Whether the feature drifted: its test significant and its effect size or PSI "
            "over threshold, or its missing-value share moved (see the report)."
        )
    )
    quality: list[QualityCheck] = Field(
        default_factory=list,
        max_length=5,
        description=(
            "Data-quality checks the feature failed: missingColumn, typeMismatch, outOfRange, "
            "unseenCategories, missingShare (the figures are in status.drift.quality and the "
            "report). Empty: it passed them all."
        ),
    )


class QualitySummary(ApiModel):
    """The data-quality verdict of the last check."""

    passed: bool | None = Field(
        None, description="Whether the window passed every check; null when they did not run."
    )
    failures: list[QualityLine] = Field(
        default_factory=list,
        max_length=10,
        description="One line per failed check, naming the feature and the figure (at most 10).",
    )
    checks: list[QualityCheck] = Field(
        default_factory=list,
        max_length=6,
        description="The kinds of check that failed, over every feature (quality.holdRetraining).",
    )


class DriftSummary(ApiModel):
    """Summary of the last check."""

    dataset_drift: bool | None = Field(None, description="Whether the dataset as a whole drifted.")
    share: float | None = Field(None, ge=0, le=1, description="Fraction of features that drifted.")
    features: list[FeatureDrift] = Field(
        default_factory=list,
        max_length=100,
        description="Per-feature results (at most 100).",
    )
    quality: QualitySummary | None = Field(
        None, description="Schema and data-quality checks of the window (spec.quality)."
    )


Trigger = Literal["drift", "performance", "schedule"]


class RetrainEvidence(ApiModel):
    """What a trigger saw: the check's report, the live metric and its interval, the tick."""

    report: str | None = Field(
        None, max_length=2048, description="s3:// URI of the check's report folder."
    )
    share: float | None = Field(None, ge=0, le=1, description="Drift: share of features drifted.")
    metric: str | None = Field(None, max_length=32, description="Performance: the metric.")
    basis: Literal["realised", "estimated"] | None = Field(
        None, description="Performance: from labels (realised) or estimated."
    )
    value: float | None = Field(None, description="Performance: the metric on the window.")
    lower: float | None = Field(None, description="Performance: its interval's lower end.")
    upper: float | None = Field(None, description="Performance: its interval's upper end.")
    holdout: float | None = Field(None, description="Performance: the served version's holdout.")
    schedule: str | None = Field(None, max_length=100, description="Schedule: the cron line.")
    tick: datetime | None = Field(None, description="Schedule: the tick that fired.")


class RetrainingRecord(ApiModel):
    """A TrainingJob a trigger created."""

    training_job: str = Field(max_length=253, description="Name of the TrainingJob created.")
    time: datetime = Field(description="When it was created.")
    reason: str = Field(max_length=1024, description="Why it was created.")
    report: str | None = Field(
        None, max_length=2048, description="s3:// URI of the check's report that triggered it."
    )
    trigger: Trigger | None = Field(
        None, description="What set it off: drift, performance or schedule (older: drift)."
    )
    version: int | None = Field(
        None, ge=1, description="The version a check-based trigger judged (none for a schedule)."
    )
    evidence: RetrainEvidence | None = Field(None, description="What the trigger saw.")


class SuppressedRecord(ApiModel):
    """A retraining a trigger called for but a brake (cooldown, budget, quality) held back."""

    time: datetime = Field(description="When it was suppressed.")
    reason: str = Field(max_length=1024, description="Why it was suppressed.")
    trigger: Trigger | None = Field(None, description="The trigger held back.")


class MetricInterval(ApiModel):
    """One metric value with its confidence interval."""

    value: float | None = Field(None, description="The metric on the window.")
    lower: float | None = Field(None, description="Lower end of the confidence interval.")
    upper: float | None = Field(None, description="Upper end of the confidence interval.")
    rows: int | None = Field(
        None, ge=0, description="Predictions it was computed on (labelled ones when realised)."
    )


class PerformanceSummary(ApiModel):
    """Live performance in the last check (its report has every number)."""

    metric: str | None = Field(None, max_length=32, description="Metric watched.")
    verdict: Literal["Degraded", "Held", "InsufficientData"] | None = Field(
        None,
        description=(
            "Degraded: the interval is past holdout - maxDrop; Held: it is not; "
            "InsufficientData: fewer than minLabels labelled (or logged) predictions."
        ),
    )
    basis: Literal["realised", "estimated"] | None = Field(
        None,
        description=(
            "What the verdict rests on: realised (labels) or estimated (spec.performance."
            "estimate); a degraded side decides, realised named first when both are."
        ),
    )
    holdout: float | None = Field(None, description="The served version's holdout metric.")
    realised: MetricInterval | None = Field(None, description="From labels, matured predictions.")
    estimated: MetricInterval | None = Field(
        None, description="Estimated from calibrated probabilities, newest predictions."
    )
    consecutive_degraded: int | None = Field(
        None, ge=0, description="Degraded checks in a row so far."
    )


class DriftMonitorStatus(CustomObjectStatus):
    """Observed state of the monitor, written by the operator."""

    last_check_time: datetime | None = Field(None, description="When the last check finished.")
    check_job_name: str | None = Field(
        None, max_length=63, description="Name of the latest check Job."
    )
    drift: DriftSummary | None = Field(None, description="Result of the last check.")
    report_uri: str | None = Field(
        None,
        alias="reportURI",
        max_length=2048,
        description="s3:// URI of the last check's report folder (JSON + HTML).",
    )
    consecutive_drifts: int | None = Field(
        None, ge=0, description="Drifted checks in a row so far."
    )
    retrainings: list[RetrainingRecord] = Field(
        default_factory=list, max_length=20, description="Most recent retrainings, newest last."
    )
    suppressed: list[SuppressedRecord] = Field(
        default_factory=list,
        max_length=20,
        description="Most recent suppressed retrainings, newest last.",
    )
    performance: PerformanceSummary | None = Field(
        None, description="Live performance in the last check (spec.performance)."
    )
    last_schedule_tick: datetime | None = Field(
        None,
        description=(
            "The last tick of retrain.triggers.schedule acted on (a retraining created or "
            "suppressed); the next one is due after it."
        ),
    )


class DriftMonitor(CustomObject):
    """A DriftMonitor checks a ModelDeployment for data drift and retrains on sustained drift."""

    kind: Literal["DriftMonitor"] = Field("DriftMonitor", description="DriftMonitor")
    spec: DriftMonitorSpec = Field(description="Desired monitoring.")
    status: DriftMonitorStatus = Field(
        default_factory=DriftMonitorStatus, description="Observed state."
    )
