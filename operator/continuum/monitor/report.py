"""The report document (report.json) and the short summary the operator reads.

The summary goes to ``summary.json`` and to the pod's termination message, so it must stay
under 4 KiB whatever the number of features: drifted features first, then by p-value, and as
many as fit; ``featuresTotal`` says how many there were. A failure's summary is every
workload's (``continuum.workload.failure_summary``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from continuum.api.driftmonitor import SUMMARY_FEATURE_KEYS
from continuum.monitor.check import CheckResult
from continuum.monitor.performance import performance_summary
from continuum.monitor.settings import CheckSettings, MonitorTarget
from continuum.monitor.window import CurrentWindow

REPORT_SCHEMA_VERSION = 1
MAX_SUMMARY_BYTES = 4096
# Quality failure lines in the summary: at most 5 of 160 characters (800 bytes of the 4 KiB;
# the report has them all), so a window failing every check still leaves room for features.
SUMMARY_QUALITY_LINES = 5
SUMMARY_QUALITY_LINE = 160


@dataclass(frozen=True)
class ReportInputs:
    """Everything about the check that is not a result: what was compared, how, and where."""

    target: MonitorTarget
    settings: CheckSettings
    window: CurrentWindow
    reference_rows: int
    reference_uri: str
    created: str  # ISO-8601 UTC
    time: str  # the report folder's compact UTC time
    report_uri: str


def build_report(
    inputs: ReportInputs, result: CheckResult, performance: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """report.json; ``performance`` is the live-performance section (monitor.live), if any."""
    verdict = result.verdict
    document = {
        "schemaVersion": REPORT_SCHEMA_VERSION,
        "monitor": inputs.target.monitor,
        "model": inputs.target.model,
        "version": inputs.target.version,
        "createdAt": inputs.created,
        "reportURI": inputs.report_uri,
        "verdict": verdict.verdict,
        "datasetDrift": verdict.dataset_drift,
        "share": verdict.share,
        "driftedFeatures": verdict.drifted,
        "testedFeatures": verdict.tested,
        "window": inputs.window.describe(inputs.settings.window.max_rows),
        "reference": {"rows": inputs.reference_rows, "uri": inputs.reference_uri},
        "settings": inputs.settings.to_json(),
        "features": [feature.to_json() for feature in result.features],
        "fairness": result.fairness.to_json() if result.fairness else None,
        "quality": quality_json(result, inputs.settings),
        "performance": performance,
        "notes": list(result.notes),
    }
    cleaned: dict[str, Any] = finite(document)
    return cleaned


def quality_json(result: CheckResult, settings: CheckSettings) -> dict[str, Any]:
    """The data-quality verdict; ``passed`` None when the checks did not run, and why."""
    if result.quality is not None:
        return result.quality.to_json()
    why = "disabled (quality.enabled: false)" if not settings.quality.enabled else "too few rows"
    return {"enabled": settings.quality.enabled, "passed": None, "failures": [], "skipped": why}


def finite(value: Any) -> Any:
    """The same structure with NaN and infinities replaced by None: JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def build_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """The summary of a report, trimmed to fit MAX_SUMMARY_BYTES."""
    features = sorted(report["features"], key=_summary_order)
    summary: dict[str, Any] = {
        "status": "Succeeded",
        "verdict": report["verdict"],
        "datasetDrift": report["datasetDrift"],
        "share": report["share"],
        "reportURI": report["reportURI"],
        "rows": report["window"]["rows"],
        "featuresTotal": len(features),
        "features": [summary_feature(feature) for feature in features],
    }
    fairness = report.get("fairness")
    if fairness:
        summary["fairness"] = {k: fairness[k] for k in ("feature", "gap", "flagged")}
    quality = report.get("quality") or {}
    failures = list(quality.get("failures") or [])
    summary["quality"] = {
        "passed": quality.get("passed"),
        "failures": [line[:SUMMARY_QUALITY_LINE] for line in failures[:SUMMARY_QUALITY_LINES]],
        "failuresTotal": len(failures),
        "checks": list(quality.get("checks") or []),
    }
    if report.get("performance"):
        summary["performance"] = performance_summary(report["performance"])
    return fit_summary(summary)


def summary_feature(feature: Mapping[str, Any]) -> dict[str, Any]:
    """The summary keys of one feature; ``quality`` is the list of checks it failed."""
    entry = {k: feature.get(k) for k in SUMMARY_FEATURE_KEYS}
    entry["quality"] = list((feature.get("quality") or {}).get("failed") or [])
    return entry


def _summary_order(feature: Mapping[str, Any]) -> tuple[bool, float, str]:
    p_value = feature["pValue"]
    return (not feature["drifted"], 1.0 if p_value is None else p_value, feature["name"])


def fit_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Drop features from the end (the least drifted) until the summary fits."""
    every = list(summary.get("features", []))
    kept = list(every)
    while kept and len(encode(summary | {"features": kept, "featuresTruncated": True})) > (
        MAX_SUMMARY_BYTES
    ):
        kept.pop()
    return summary | {"features": kept, "featuresTruncated": len(kept) < len(every)}


def encode(summary: Mapping[str, Any]) -> bytes:
    return json.dumps(summary, separators=(",", ":"), sort_keys=True).encode()


def termination_message(summary: Mapping[str, Any]) -> str:
    """The summary as the pod's termination message: ``encode``'s compact JSON, as text."""
    return encode(summary).decode()
