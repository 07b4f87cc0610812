"""Prometheus metrics of DriftMonitors: per check, per monitor and per feature."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from prometheus_client import Counter, Gauge

from continuum.api import PerformanceSummary
from continuum.controllers.driftmonitor.retrain import Decision
from continuum.controllers.driftmonitor.verdicts import CheckResult
from continuum.controllers.shared.metrics import REGISTRY

CHECKS = Counter(
    "continuum_drift_checks_total",
    "Finished drift checks, by monitor and verdict (Drift, NoDrift, InsufficientData, Failed).",
    ["namespace", "monitor", "verdict"],
    registry=REGISTRY,
)
FEATURE_STATISTIC = Gauge(
    "continuum_drift_feature_statistic",
    "Test statistic of one feature in the monitor's last check.",
    ["namespace", "monitor", "feature", "test"],
    registry=REGISTRY,
)
FEATURE_P_VALUE = Gauge(
    "continuum_drift_feature_p_value",
    "Corrected p-value of one feature's test in the monitor's last check; never 0: a p-value "
    "that underflowed is reported as 2.2250738585072014e-308 (an upper bound), as in status.",
    ["namespace", "monitor", "feature", "test"],
    registry=REGISTRY,
)
SHARE = Gauge(
    "continuum_drift_share",
    "Share of features that drifted in the monitor's last check.",
    ["namespace", "monitor"],
    registry=REGISTRY,
)
DETECTED = Gauge(
    "continuum_drift_detected",
    "1 when the monitor's last conclusive check found dataset drift, else 0.",
    ["namespace", "monitor"],
    registry=REGISTRY,
)
QUALITY_FAILED = Gauge(
    "continuum_data_quality_failed",
    "1 when the monitor's last check found its window failing a schema or data-quality "
    "check (spec.quality), 0 when it passed them; absent while they did not run.",
    ["namespace", "monitor"],
    registry=REGISTRY,
)
QUALITY_FEATURE_FAILED = Gauge(
    "continuum_data_quality_feature_failed",
    "1 for each (feature, check) the monitor's last check failed: missingColumn, typeMismatch, "
    "outOfRange, unseenCategories or missingShare.",
    ["namespace", "monitor", "feature", "check"],
    registry=REGISTRY,
)
RETRAININGS = Counter(
    "continuum_drift_retrainings_total",
    "Retraining triggers, by monitor, outcome (Created or Suppressed) and trigger (drift, "
    "performance or schedule).",
    ["namespace", "monitor", "outcome", "trigger"],
    registry=REGISTRY,
)

PERFORMANCE = Gauge(
    "continuum_model_performance",
    "Live performance of the served version in the monitor's last check (spec.performance): "
    "kind realised (labels) or estimated (calibrated probabilities, before labels); bound "
    "value, lower or upper (the confidence interval).",
    ["namespace", "monitor", "metric", "kind", "bound"],
    registry=REGISTRY,
)
PERFORMANCE_HOLDOUT = Gauge(
    "continuum_model_performance_holdout",
    "The served version's holdout metric the live performance is compared with.",
    ["namespace", "monitor", "metric"],
    registry=REGISTRY,
)
PERFORMANCE_DEGRADED = Gauge(
    "continuum_performance_degraded",
    "1 while the monitor's PerformanceDegraded condition is True, else 0.",
    ["namespace", "monitor"],
    registry=REGISTRY,
)
PERFORMANCE_CHECKS = Counter(
    "continuum_performance_checks_total",
    "Checks with spec.performance, by monitor and verdict (Degraded, Held, InsufficientData).",
    ["namespace", "monitor", "verdict"],
    registry=REGISTRY,
)
KINDS, BOUNDS = ("realised", "estimated"), ("value", "lower", "upper")

# By monitor: the (feature, test) pairs whose gauges the last check set, and the (feature,
# check) pairs of its quality failures.
_features: dict[tuple[str, str], set[tuple[str, str]]] = {}
_quality: dict[tuple[str, str], set[tuple[str, str]]] = {}


def export_decision(namespace: str, monitor: str, decision: Decision) -> None:
    """Count a created or suppressed retraining by its trigger."""
    if decision.create or decision.suppressed:
        outcome = "Created" if decision.create else "Suppressed"
        RETRAININGS.labels(
            namespace=namespace, monitor=monitor, outcome=outcome, trigger=decision.trigger
        ).inc()


def export_metrics(namespace: str, monitor: str, result: CheckResult, decision: Decision) -> None:
    """Per-check counter, per-monitor gauges and per-feature statistics."""
    CHECKS.labels(namespace=namespace, monitor=monitor, verdict=result.verdict).inc()
    export_decision(namespace, monitor, decision)
    if result.verdict not in {"Drift", "NoDrift"}:
        return
    export_quality(namespace, monitor, result)
    DETECTED.labels(namespace=namespace, monitor=monitor).set(result.verdict == "Drift")
    share = result.summary.get("share")
    if isinstance(share, int | float):
        SHARE.labels(namespace=namespace, monitor=monitor).set(share)
    export_features(namespace, monitor, result.summary.get("features") or [])


def export_features(namespace: str, monitor: str, features: list[Any]) -> None:
    """Replace the monitor's per-feature gauges with those of the latest check."""
    fresh: set[tuple[str, str]] = set()
    for item in features:
        value = item.get("statistic") if isinstance(item, dict) else None
        if isinstance(value, int | float):
            key = (str(item.get("name")), str(item.get("test")))
            FEATURE_STATISTIC.labels(namespace, monitor, *key).set(value)
            fresh.add(key)
            p_value = item.get("pValue")
            if isinstance(p_value, int | float):
                FEATURE_P_VALUE.labels(namespace, monitor, *key).set(p_value)
    for key in _features.get((namespace, monitor), set()) - fresh:
        for gauge in (FEATURE_STATISTIC, FEATURE_P_VALUE):
            with suppress(KeyError):
                gauge.remove(namespace, monitor, *key)
    _features[(namespace, monitor)] = fresh


def export_quality(namespace: str, monitor: str, result: CheckResult) -> None:
    """The quality verdict and one gauge per failed (feature, check), replacing the last."""
    passed = result.quality_passed
    if passed is None:
        with suppress(KeyError):
            QUALITY_FAILED.remove(namespace, monitor)
    else:
        QUALITY_FAILED.labels(namespace=namespace, monitor=monitor).set(not passed)
    fresh = {
        (str(item.get("name")), str(check))
        for item in result.summary.get("features") or []
        if isinstance(item, dict)
        for check in item.get("quality") or []
    }
    for key in fresh:
        QUALITY_FEATURE_FAILED.labels(namespace, monitor, *key).set(1)
    for key in _quality.get((namespace, monitor), set()) - fresh:
        with suppress(KeyError):
            QUALITY_FEATURE_FAILED.remove(namespace, monitor, *key)
    _quality[(namespace, monitor)] = fresh


# By monitor: the metric its performance gauges were last set for.
_performance: dict[tuple[str, str], str] = {}


def export_performance(
    namespace: str, monitor: str, found: PerformanceSummary | None, degraded: bool
) -> None:
    """The performance gauges of the monitor's last check; series it no longer has removed."""
    if found is None:
        return
    PERFORMANCE_CHECKS.labels(namespace, monitor, found.verdict or "InsufficientData").inc()
    PERFORMANCE_DEGRADED.labels(namespace, monitor).set(1 if degraded else 0)
    metric = found.metric or ""
    _clear_performance(namespace, monitor)
    _performance[(namespace, monitor)] = metric
    if found.holdout is not None:
        PERFORMANCE_HOLDOUT.labels(namespace, monitor, metric).set(found.holdout)
    for kind, interval in (("realised", found.realised), ("estimated", found.estimated)):
        for bound in BOUNDS:
            value = getattr(interval, bound) if interval is not None else None
            if value is not None:
                PERFORMANCE.labels(namespace, monitor, metric, kind, bound).set(value)


def _clear_performance(namespace: str, monitor: str) -> None:
    metric = _performance.pop((namespace, monitor), None)
    if metric is None:
        return
    with suppress(KeyError):
        PERFORMANCE_HOLDOUT.remove(namespace, monitor, metric)
    for kind in KINDS:
        for bound in BOUNDS:
            with suppress(KeyError):
                PERFORMANCE.remove(namespace, monitor, metric, kind, bound)


def clear_metrics(namespace: str, monitor: str) -> None:
    """Remove a deleted monitor's gauges."""
    export_features(namespace, monitor, [])
    _features.pop((namespace, monitor), None)
    _clear_performance(namespace, monitor)
    with suppress(KeyError):
        PERFORMANCE_DEGRADED.remove(namespace, monitor)
    for key in _quality.pop((namespace, monitor), set()):
        with suppress(KeyError):
            QUALITY_FEATURE_FAILED.remove(namespace, monitor, *key)
    for gauge in (SHARE, DETECTED, QUALITY_FAILED):
        with suppress(KeyError):
            gauge.remove(namespace, monitor)
