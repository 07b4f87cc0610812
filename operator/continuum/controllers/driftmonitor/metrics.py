"""Prometheus metrics of DriftMonitors: per check, per monitor and per feature."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from prometheus_client import Counter, Gauge

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
RETRAININGS = Counter(
    "continuum_drift_retrainings_total",
    "Retraining triggers, by monitor and outcome (Created or Suppressed).",
    ["namespace", "monitor", "outcome"],
    registry=REGISTRY,
)

# By monitor: the (feature, test) pairs whose gauges the last check set.
_features: dict[tuple[str, str], set[tuple[str, str]]] = {}


def export_metrics(namespace: str, monitor: str, result: CheckResult, decision: Decision) -> None:
    """Per-check counter, per-monitor gauges and per-feature statistics."""
    CHECKS.labels(namespace=namespace, monitor=monitor, verdict=result.verdict).inc()
    if decision.create or decision.suppressed:
        outcome = "Created" if decision.create else "Suppressed"
        RETRAININGS.labels(namespace=namespace, monitor=monitor, outcome=outcome).inc()
    if result.verdict not in {"Drift", "NoDrift"}:
        return
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


def clear_metrics(namespace: str, monitor: str) -> None:
    """Remove a deleted monitor's gauges."""
    export_features(namespace, monitor, [])
    _features.pop((namespace, monitor), None)
    for gauge in (SHARE, DETECTED):
        with suppress(KeyError):
            gauge.remove(namespace, monitor)
