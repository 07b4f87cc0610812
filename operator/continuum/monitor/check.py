"""One drift check, pure: reference sample + current window + settings -> results.

No I/O here (see :mod:`continuum.monitor.run`), so every rule is unit-testable on frames.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from continuum.monitor import categories, caught, plots, stats
from continuum.monitor.fairness import FairnessResult, positive_class, prediction_rates
from continuum.monitor.quality import FeatureQuality, QualityResult, WindowSchema, check_quality
from continuum.monitor.reference import NUMERIC, FeatureSpec, Reference
from continuum.monitor.settings import CheckSettings
from continuum.monitor.stats import MissingShift
from continuum.monitor.verdict import (
    DatasetVerdict,
    Decision,
    dataset_verdict,
    decide_features,
    floored,
    insufficient,
)
from continuum.monitor.window import PREDICTION
from continuum.monitor.workers import (
    keep_freed_memory_for_reuse,
    map_in_order,
    single_threaded_blas,
    worker_count,
)

EFFECT_MEASURES = {"ks": "ks_d", "chi2": "cramers_v"}


@dataclass(frozen=True)
class Measurement:
    """Statistics and plot data of one feature, before the cross-feature decision."""

    stats: stats.FeatureStats | None  # None: no values on one side, nothing to test
    counts: tuple[int, int]  # non-null values: reference, current
    null_shares: tuple[float, float]
    plot: dict[str, Any] | None = None
    missing: MissingShift | None = None  # the missing-share test; None: nothing to test
    warnings: tuple[str, ...] = ()  # every warning raised while measuring it (``caught``)


@dataclass(frozen=True)
class FeatureReport:
    spec: FeatureSpec
    measurement: Measurement
    decision: Decision
    quality: FeatureQuality | None = None  # None: the quality checks did not run

    def to_json(self) -> dict[str, Any]:
        s, d, m = self.measurement.stats, self.decision, self.measurement
        return {
            "name": self.spec.name,
            "kind": self.spec.kind,
            "test": s.test if s else "none",
            "statistic": s.statistic if s else None,
            "pValue": d.p_adjusted,
            "rawPValue": floored(s.p_value) if s and s.p_value is not None else None,
            "pValueUnderflow": d.p_underflow,
            "method": s.method if s else None,
            "effectSize": s.effect_size if s else None,
            "effectMeasure": EFFECT_MEASURES.get(s.test) if s else None,
            "psi": s.psi if s else None,
            "wasserstein": s.wasserstein if s else None,
            "wassersteinNormalized": s.wasserstein_normalized if s else None,
            "grouping": s.extra.get("grouping") if s else None,
            "significant": d.significant,
            "largeEffect": d.large_effect,
            "drifted": d.drifted,
            "reason": d.reason,
            "counts": {"reference": m.counts[0], "current": m.counts[1]},
            "nullShare": {"reference": m.null_shares[0], "current": m.null_shares[1]},
            "missingShare": self.missing_json(),
            "warnings": list(m.warnings),
            "quality": self.quality.to_json() if self.quality else None,
            "plot": m.plot,
        }

    def missing_json(self) -> dict[str, Any] | None:
        """The missing-share test: shares, chi-square (z squared), raw and corrected p."""
        shift, d = self.measurement.missing, self.decision
        if shift is None:
            return None
        return {
            "reference": shift.reference,
            "current": shift.current,
            "difference": shift.difference,
            "test": "two-proportion z (chi-square 2x2, 1 dof)",
            "statistic": shift.statistic,
            "rawPValue": floored(shift.p_value),
            "pValue": d.missing_p_adjusted,
            "pValueUnderflow": d.missing_underflow,
            "drifted": d.missing_drifted,
        }


@dataclass(frozen=True)
class CheckResult:
    verdict: DatasetVerdict
    features: tuple[FeatureReport, ...]
    fairness: FairnessResult | None
    notes: tuple[str, ...]
    quality: QualityResult | None = None  # None: not run (disabled, or too few rows)


def run_check(
    reference: Reference,
    current: pd.DataFrame,
    settings: CheckSettings,
    schema: WindowSchema | None = None,
) -> CheckResult:
    """Drift tests and data-quality checks of ``current`` against ``reference``.

    ``schema``: which keys the logged rows carried (``window.CurrentWindow.schema``); without
    it the frame's columns say it (a feature without a column is absent from every row).
    """
    min_samples = settings.window.min_samples
    if len(current) < min_samples:
        note = f"only {len(current)} logged rows, fewer than minSamples={min_samples}: not tested"
        return CheckResult(insufficient(), (), None, (note,))
    names = [spec.name for spec in reference.features]
    schema = schema or WindowSchema.of_frame(current, names, PREDICTION)
    current = with_every_feature(current, names)
    measured = measure_features(reference, current)
    decisions = decide_features(
        [m.stats for m in measured], settings.tests, [m.missing for m in measured]
    )
    quality = run_quality(reference, current, settings, schema)
    features = tuple(
        FeatureReport(spec, m, d, quality.of(spec.name) if quality else None)
        for spec, m, d in zip(reference.features, measured, decisions, strict=True)
    )
    verdict = dataset_verdict(decisions, settings.tests.drift_share)
    fairness, notes = check_fairness(reference, current, settings)
    return CheckResult(verdict, features, fairness, (*warning_notes(features), *notes), quality)


def with_every_feature(current: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The window with an all-null column for each feature it lacks (a missing column)."""
    absent = [name for name in names if name not in current.columns]
    if not absent:
        return current
    return current.assign(**{name: pd.Series([None] * len(current), dtype=object,
                                             index=current.index) for name in absent})  # fmt: skip


def run_quality(
    reference: Reference,
    current: pd.DataFrame,
    settings: CheckSettings,
    schema: WindowSchema,
) -> QualityResult | None:
    if not settings.quality.enabled:
        return None
    return check_quality(reference.features, reference.frame, current, schema, settings.quality)


def warning_notes(features: tuple[FeatureReport, ...]) -> list[str]:
    """One note per feature whose measurement raised warnings: none passes unreported."""
    return [
        f"{f.spec.name}: {len(f.measurement.warnings)} warning(s) while measuring: "
        + "; ".join(f.measurement.warnings)[:500]
        for f in features
        if f.measurement.warnings
    ]


def measure_features(
    reference: Reference, current: pd.DataFrame, workers: int | None = None
) -> list[Measurement]:
    """Every feature's measurement, in feature order, spread over the available CPUs."""
    # The columns are taken here, in one thread: the workers only read arrays they are given.
    columns = [
        (spec, reference.frame[spec.name], current[spec.name]) for spec in reference.features
    ]
    keep_freed_memory_for_reuse()
    with single_threaded_blas(), caught.routed():
        return map_in_order(_measure_column, columns, workers or worker_count(len(columns)))


def _measure_column(column: tuple[FeatureSpec, pd.Series, pd.Series]) -> Measurement:
    return measure(*column)


def measure(spec: FeatureSpec, reference: pd.Series, current: pd.Series) -> Measurement:
    """The feature's statistics, its missing-share test and the warnings raised on the way."""
    with caught.recorded() as warned:
        measured = _measure(spec, reference, current)
    return replace(measured, warnings=caught.unique(warned))


def _measure(spec: FeatureSpec, reference: pd.Series, current: pd.Series) -> Measurement:
    nulls = (_null_share(reference), _null_share(current))
    if spec.kind == NUMERIC:
        measured = _numeric(numeric_values(reference), numeric_values(current), nulls)
    else:
        measured = _categorical(reference, current, nulls)
    missing = stats.missing_shift(
        int(reference.isna().sum()), len(reference), int(current.isna().sum()), len(current)
    )
    return replace(measured, missing=missing)


def _numeric(
    ref: stats.FloatArray, cur: stats.FloatArray, nulls: tuple[float, float]
) -> Measurement:
    counts = (int(ref.size), int(cur.size))
    if not ref.size or not cur.size:
        return Measurement(None, counts, nulls)
    ref_sorted, cur_sorted = np.sort(ref), np.sort(cur)  # once, for the statistics and the plot
    return Measurement(
        stats.numeric_stats(ref, cur, (ref_sorted, cur_sorted)),
        counts,
        nulls,
        plots.numeric_plot(ref_sorted, cur_sorted),
    )


def _categorical(ref: pd.Series, cur: pd.Series, nulls: tuple[float, float]) -> Measurement:
    """Chi-square on the table grouped by the sparse rule; the plot draws that same table."""
    counts = (int(ref.count()), int(cur.count()))  # non-null values
    if not counts[0] or not counts[1]:
        return Measurement(None, counts, nulls)
    grouped = categories.group_sparse(
        *categories.observed_counts(ref), *categories.observed_counts(cur, like=ref)
    )
    plot = plots.categorical_plot(grouped.labels, grouped.table[0], grouped.table[1])
    tested = stats.table_stats(grouped.labels, grouped.table)
    tested = replace(tested, extra=tested.extra | {"grouping": grouped.to_json()})
    return Measurement(tested, counts, nulls, plot)


def numeric_values(series: pd.Series) -> stats.FloatArray:
    values: stats.FloatArray = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
    finite = np.isfinite(values)
    return values if finite.all() else values[finite]


def _null_share(series: pd.Series) -> float:
    return float(series.isna().mean()) if len(series) else 0.0


def check_fairness(
    reference: Reference, current: pd.DataFrame, settings: CheckSettings
) -> tuple[FairnessResult | None, tuple[str, ...]]:
    feature = settings.sensitive_feature
    if feature is None:
        return None, ()
    if feature not in current.columns:
        return None, (
            f"sensitiveFeature {feature!r} is not a feature of the model: no fairness check",
        )
    if reference.task is not None and reference.task != "classification":
        return None, ("fairness needs a classifier (positive-prediction rates): skipped",)
    positive = positive_class(reference.classes(), current[PREDICTION])
    if positive is None:
        return None, ("no predictions in the window: no fairness check",)
    return prediction_rates(
        current[feature], current[PREDICTION], positive, feature, settings.fairness_threshold
    ), ()
