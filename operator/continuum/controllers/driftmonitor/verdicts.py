"""Pure status logic of a DriftMonitor: (monitor, finished check Job, summary) -> status.

The monitor Job writes a JSON summary to its termination message (``continuum.monitor``):
``{"status", "verdict": "Drift|NoDrift|InsufficientData", "datasetDrift", "share",
"reportURI", "rows", "features": [...]}`` or ``{"status": "Failed", "reason", "message"}``.

``consecutiveDrifts`` counts drifted checks in a row: Drift adds one, NoDrift resets it to 0,
and InsufficientData or a failed check leave it as it was (neither evidence of drift nor of
its absence), so alternating drift / no drift never reaches ``consecutiveChecks``.

Conditions (kstatus): ``DriftDetected`` True / False / Unknown (no data, failed or no check
yet); ``Ready`` True once a check has run and the last one succeeded; ``Stalled`` True while
the last check failed (the next scheduled check retries); ``Reconciling`` True only before
the first result (waiting for a serving version, or the first check running).
``DataQualityFailed`` True when the window failed a schema or data-quality check (the summary's
``quality``: the message names each failed feature and figure), False when it passed them,
Unknown when they did not run (disabled, too few rows, a failed check, a monitor image older
than the checks). It does not change ``DriftDetected`` or the drift count; it holds back a
retraining (``retrain.py``).

With ``spec.performance`` the summary also has ``performance`` (``verdict``: Degraded, Held or
InsufficientData, ``basis``, ``holdout``, ``realised`` and ``estimated`` intervals, ``reason``).
``status.performance.consecutiveDegraded`` counts Degraded checks in a row as drift is counted
(Held resets it, InsufficientData and failed checks leave it), and ``PerformanceDegraded`` is
True once it reaches ``performance.consecutiveChecks`` and stays True while it does (a check
without enough labels does not clear a drop it cannot see); before that a Degraded check is
``PerformanceDropUnconfirmed``, a Held one ``PerformanceHeld``, and with neither so far
Unknown (``InsufficientLabels``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from continuum.api import (
    DriftMonitor,
    DriftMonitorStatus,
    DriftSummary,
    FeatureDrift,
    MetricInterval,
    PerformanceSummary,
    load,
)
from continuum.api.driftmonitor import (
    MAX_QUALITY_LINE,
    QUALITY_CHECKS,
    SUMMARY_FEATURE_KEYS,
    QualitySummary,
)
from continuum.api.vocabulary import (
    CHECK_FAILED,
    CHECK_RUNNING,
    CHECKED,
    DATA_QUALITY_FAILED,
    DATASET_DRIFT,
    DRIFT_DETECTED,
    INSUFFICIENT_LABELS,
    PERFORMANCE_DEGRADED,
    PERFORMANCE_DROP,
    PERFORMANCE_DROP_UNCONFIRMED,
    PERFORMANCE_HELD,
    QUALITY_CHECKS_FAILED,
    QUALITY_CHECKS_PASSED,
    QUALITY_NOT_CHECKED,
    READY,
    RECONCILING,
    STALLED,
)
from continuum.controllers.shared.conditions import Want, find, merge_conditions
from continuum.controllers.shared.objects import Event

MAX_FEATURES = 20
MAX_MESSAGE = 1024
MAX_QUALITY_LINES = 10  # status.drift.quality.failures holds at most 10
Verdict = Literal["Drift", "NoDrift", "InsufficientData", "Failed"]
VERDICTS = frozenset({"Drift", "NoDrift", "InsufficientData"})


@dataclass(frozen=True)
class CheckResult:
    """One finished check, as the operator understands it."""

    verdict: Verdict
    finished: datetime
    job_name: str
    summary: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""

    @property
    def report_uri(self) -> str | None:
        uri = self.summary.get("reportURI")
        return uri if isinstance(uri, str) and uri else None

    @property
    def quality_passed(self) -> bool | None:
        """The window's data-quality verdict; None when the checks did not run."""
        return quality_passed(self.summary) if self.verdict != "Failed" else None

    def quality_failures(self) -> list[str]:
        return quality_failures(self.summary)


def quality_passed(summary: Mapping[str, Any]) -> bool | None:
    quality = summary.get("quality")
    passed = quality.get("passed") if isinstance(quality, Mapping) else None
    return passed if isinstance(passed, bool) else None


def quality_failures(summary: Mapping[str, Any]) -> list[str]:
    """The summary's failure lines, as many as status holds, each cut to its length."""
    quality = summary.get("quality")
    lines = quality.get("failures") if isinstance(quality, Mapping) else None
    if not isinstance(lines, list):
        return []
    return [str(line)[:MAX_QUALITY_LINE] for line in lines[:MAX_QUALITY_LINES]]


def job_outcome(job: Mapping[str, Any]) -> tuple[str, str, str | None] | None:
    """("Complete" | "Failed", message, finish time) of a finished Job; None while it runs."""
    status = job.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True" or cond.get("type") not in {"Complete", "Failed"}:
            continue
        when = status.get("completionTime") or cond.get("lastTransitionTime")
        return str(cond["type"]), str(cond.get("message") or cond.get("reason") or ""), when
    return None


def check_result(
    job_name: str,
    finished: datetime,
    complete: bool,
    message: str,
    summary: Mapping[str, Any] | None,
) -> CheckResult:
    """The verdict of a finished check from its Job's outcome and the monitor's summary."""
    if summary is not None and summary.get("status") == "Succeeded":
        verdict = summary.get("verdict")
        if verdict in VERDICTS:
            return CheckResult(verdict, finished, job_name, summary)
        return CheckResult("Failed", finished, job_name, message=f"unknown verdict {verdict!r}")
    if summary is not None and summary.get("status") == "Failed":
        text = f"{summary.get('reason', 'Error')}: {summary.get('message', '')}"
        return CheckResult("Failed", finished, job_name, message=text)
    why = "completed without a summary" if complete else f"failed: {message or 'no reason given'}"
    return CheckResult("Failed", finished, job_name, message=f"check Job {job_name} {why}")


def drift_summary(summary: Mapping[str, Any]) -> DriftSummary | None:
    """status.drift from the summary: the verdict, share and the first MAX_FEATURES features."""
    features = []
    for item in list(summary.get("features") or [])[:MAX_FEATURES]:
        try:
            features.append(load(FeatureDrift, feature_entry(item)))
        except (ValidationError, AttributeError):
            continue
    share = summary.get("share")
    return DriftSummary(
        dataset_drift=summary.get("datasetDrift") if summary.get("verdict") != "InsufficientData"
        else None,
        share=share if isinstance(share, int | float) and 0 <= share <= 1 else None,
        features=features,
        quality=quality_summary(summary),
    )  # fmt: skip


def feature_entry(item: Mapping[str, Any]) -> dict[str, Any]:
    """A summary feature as FeatureDrift: its failed quality checks, the known ones only (an
    older monitor sends none, a newer one may name a check this operator does not know)."""
    entry = {k: item.get(k) for k in SUMMARY_FEATURE_KEYS}
    failed = entry.get("quality")
    entry["quality"] = (
        [c for c in failed if c in QUALITY_CHECKS] if isinstance(failed, list) else []
    )
    return entry


def quality_summary(summary: Mapping[str, Any]) -> QualitySummary | None:
    """status.drift.quality; None when the summary has none (a monitor older than the checks)."""
    if not isinstance(summary.get("quality"), Mapping):
        return None
    return QualitySummary(
        passed=quality_passed(summary),
        failures=quality_failures(summary),
        checks=failed_checks(summary),
    )


def failed_checks(summary: Mapping[str, Any]) -> list[str]:
    """The kinds of check that failed: the summary's ``quality.checks``, or from a monitor that
    does not send them, those its features name (the features that fit in the summary)."""
    quality = summary.get("quality")
    listed = quality.get("checks") if isinstance(quality, Mapping) else None
    if not isinstance(listed, list):
        features = summary.get("features") or []
        listed = [c for f in features if isinstance(f, Mapping) for c in f.get("quality") or []]
    return sorted({str(c) for c in listed} & set(QUALITY_CHECKS))


def consecutive(previous: int | None, verdict: Verdict) -> int:
    """Drifted checks in a row after a check with ``verdict``."""
    if verdict == "Drift":
        return (previous or 0) + 1
    if verdict == "NoDrift":
        return 0
    return previous or 0


def status_after_check(dm: DriftMonitor, result: CheckResult) -> DriftMonitorStatus:
    """The status once ``result`` is folded in (conditions merged at ``result.finished``)."""
    old = dm.status
    update: dict[str, Any] = {
        "observed_generation": dm.metadata.generation,
        "last_check_time": result.finished,
        "check_job_name": result.job_name,
        "consecutive_drifts": consecutive(old.consecutive_drifts, result.verdict),
        "conditions": merge_conditions(
            old.conditions, check_conditions(result), generation=dm.metadata.generation,
            now=result.finished,
        ),
    }  # fmt: skip
    if result.verdict != "Failed":
        update["drift"] = drift_summary(result.summary)
        update["report_uri"] = result.report_uri
    performance = dm.spec.performance
    if performance is not None and result.verdict != "Failed":
        update["performance"] = performance_status(old.performance, result.summary)
        reason = _performance_reason(result.summary)
        wants = performance_conditions(
            update["performance"], performance.consecutive_checks, reason
        )
        update["conditions"] = merge_conditions(
            update["conditions"], wants, generation=dm.metadata.generation, now=result.finished
        )
    return old.model_copy(update=update)


PERFORMANCE_VERDICTS = frozenset({"Degraded", "Held", "InsufficientData"})


def performance_status(
    old: PerformanceSummary | None, summary: Mapping[str, Any]
) -> PerformanceSummary:
    """status.performance from the check's summary, with the count of degraded checks."""
    found = summary.get("performance")
    found = found if isinstance(found, Mapping) else {}
    verdict = found.get("verdict")
    verdict = verdict if verdict in PERFORMANCE_VERDICTS else "InsufficientData"
    previous = old.consecutive_degraded if old is not None else None
    count = {"Degraded": (previous or 0) + 1, "Held": 0}.get(verdict, previous or 0)
    basis = found.get("basis") if found.get("basis") in {"realised", "estimated"} else None
    return PerformanceSummary(
        metric=_text(found.get("metric"), 32),
        verdict=verdict,
        basis=basis,
        holdout=_number(found.get("holdout")),
        realised=_interval(found.get("realised")),
        estimated=_interval(found.get("estimated")),
        consecutive_degraded=count,
    )


def _interval(value: Any) -> MetricInterval | None:
    if not isinstance(value, Mapping) or _number(value.get("value")) is None:
        return None
    rows = value.get("rows")
    return MetricInterval(
        value=_rounded(value.get("value")),
        lower=_rounded(value.get("lower")),
        upper=_rounded(value.get("upper")),
        rows=rows if isinstance(rows, int) and rows >= 0 else None,
    )


STATUS_DECIMALS = 4  # kubectl's Realised column showed 0.6433333333333333; the report keeps all


def _rounded(value: Any) -> float | None:
    number = _number(value)
    return None if number is None else round(number, STATUS_DECIMALS)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _performance_reason(summary: Mapping[str, Any]) -> str:
    found = summary.get("performance")
    return _text(found.get("reason"), 300) or "" if isinstance(found, Mapping) else ""


def performance_conditions(status: PerformanceSummary, needed: int, reason: str = "") -> list[Want]:
    """PerformanceDegraded after a check (module doc); ``reason`` is the monitor's why."""
    count = status.consecutive_degraded or 0
    detail = describe_performance(status, needed, reason)
    if count >= needed:
        return [Want(PERFORMANCE_DEGRADED, "True", PERFORMANCE_DROP, detail)]
    if status.verdict == "Degraded":
        return [Want(PERFORMANCE_DEGRADED, "False", PERFORMANCE_DROP_UNCONFIRMED, detail)]
    if status.verdict == "Held":
        return [Want(PERFORMANCE_DEGRADED, "False", PERFORMANCE_HELD, detail)]
    return [Want(PERFORMANCE_DEGRADED, "Unknown", INSUFFICIENT_LABELS, detail)]


def describe_performance(status: PerformanceSummary, needed: int, reason: str = "") -> str:
    """One line about live performance for the condition and the Event."""
    count = status.consecutive_degraded or 0
    chosen = status.realised if status.basis == "realised" else status.estimated
    if status.verdict == "InsufficientData" or chosen is None or chosen.value is None:
        head = f"{status.metric or 'performance'}: {reason or 'no verdict'}"
    else:
        head = (
            f"{status.basis} {status.metric} {chosen.value:.4g} "
            f"[{_shown(chosen.lower)}, {_shown(chosen.upper)}] over {chosen.rows} predictions, "
            f"holdout {_shown(status.holdout)}"
        )
    return f"{head}; {count}/{needed} degraded checks in a row"[:MAX_MESSAGE]


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def performance_events(
    dm: DriftMonitor, result: CheckResult, status: DriftMonitorStatus
) -> list[Event]:
    """A Warning for every degraded check (with the count so far); nothing otherwise."""
    spec, found = dm.spec.performance, status.performance
    if spec is None or found is None or result.verdict == "Failed":
        return []
    if found.verdict != "Degraded":
        return []
    message = describe_performance(found, spec.consecutive_checks)
    return [Event("Warning", PERFORMANCE_DEGRADED, f"{message}; report {result.report_uri}")]


def check_conditions(result: CheckResult) -> list[Want]:
    """DriftDetected and the kstatus conditions after a finished check."""
    detail = describe(result)
    if result.verdict == "Failed":
        return [
            Want(DRIFT_DETECTED, "Unknown", CHECK_FAILED, detail),
            Want(DATA_QUALITY_FAILED, "Unknown", CHECK_FAILED, detail),
            Want(READY, "False", CHECK_FAILED, detail),
            Want(RECONCILING, "False", CHECK_FAILED),
            Want(STALLED, "True", CHECK_FAILED, detail),
        ]
    drift = {"Drift": "True", "NoDrift": "False"}.get(result.verdict, "Unknown")
    reason = {"Drift": DATASET_DRIFT}.get(result.verdict, result.verdict)
    return [
        Want(DRIFT_DETECTED, drift, reason, detail),  # type: ignore[arg-type]
        quality_condition(result),
        Want(READY, "True", CHECKED, detail),
        Want(RECONCILING, "False", CHECKED),
        Want(STALLED, "False", CHECKED),
    ]


def quality_condition(result: CheckResult) -> Want:
    """DataQualityFailed: True naming each failed check, False, or Unknown when not run."""
    passed = result.quality_passed
    if passed is None:
        why = "the check failed" if result.verdict == "Failed" else "not checked"
        if result.verdict == "InsufficientData":
            why = "too few logged rows to check"
        elif isinstance(result.summary.get("quality"), Mapping):
            why = "disabled (spec.quality.enabled: false)"
        return Want(DATA_QUALITY_FAILED, "Unknown", QUALITY_NOT_CHECKED, why)
    if passed:
        return Want(DATA_QUALITY_FAILED, "False", QUALITY_CHECKS_PASSED, "every check passed")
    return Want(DATA_QUALITY_FAILED, "True", QUALITY_CHECKS_FAILED, quality_message(result))


def quality_message(result: CheckResult) -> str:
    lines = result.quality_failures()
    quality = result.summary.get("quality") or {}
    total = quality.get("failuresTotal") if isinstance(quality, Mapping) else None
    more = total - len(lines) if isinstance(total, int) and total > len(lines) else 0
    tail = f"; and {more} more" if more else ""
    return (f"{'; '.join(lines)}{tail}; report {result.report_uri}")[:MAX_MESSAGE]


def waiting_conditions(reason: str, message: str) -> list[Want]:
    """Before any result: waiting for a serving version, or for the first check."""
    return [
        Want(DRIFT_DETECTED, "Unknown", reason, message),
        Want(READY, "False", reason, message),
        Want(RECONCILING, "True", reason, message),
        Want(STALLED, "False", reason),
    ]


def status_waiting(
    dm: DriftMonitor, reason: str, message: str, *, now: datetime, job_name: str | None = None
) -> DriftMonitorStatus:
    """The status while no check result is there yet (or the deployment serves nothing)."""
    old = dm.status
    generation = dm.metadata.generation
    wants = waiting_conditions(reason, message)
    if old.last_check_time is not None and reason == CHECK_RUNNING:
        wants = []  # a later check: the last result's conditions stand
    update: dict[str, Any] = {
        "observed_generation": generation,
        "conditions": merge_conditions(old.conditions, wants, generation=generation, now=now),
    }
    if job_name is not None:
        update["check_job_name"] = job_name
    return old.model_copy(update=update)


def describe(result: CheckResult) -> str:
    """One line about a check for conditions and Events."""
    if result.verdict == "Failed":
        return f"check {result.job_name} failed: {result.message}"[:MAX_MESSAGE]
    summary = result.summary
    rows = summary.get("rows")
    if result.verdict == "InsufficientData":
        return f"not enough logged rows to decide ({rows} rows); drift count unchanged"
    drifted = [f.get("name") for f in summary.get("features") or [] if f.get("drifted")]
    share = summary.get("share")
    share_text = f"{share:.0%}" if isinstance(share, int | float) else "?"
    names = f": {', '.join(str(n) for n in drifted)}" if drifted else ""
    text = f"{share_text} of features drifted ({rows} rows){names}; report {result.report_uri}"
    return text[:MAX_MESSAGE]


def check_events(result: CheckResult, drifts: int, needed: int) -> list[Event]:
    """The Events for a finished check: its verdict, and a Warning when its data failed."""
    quality = (
        [Event("Warning", QUALITY_CHECKS_FAILED, quality_message(result))]
        if result.quality_passed is False
        else []
    )
    return verdict_events(result, drifts, needed) + quality


def verdict_events(result: CheckResult, drifts: int, needed: int) -> list[Event]:
    detail = describe(result)
    if result.verdict == "Failed":
        return [Event("Warning", CHECK_FAILED, detail)]
    if result.verdict == "Drift":
        return [Event("Warning", DRIFT_DETECTED, f"{detail} ({drifts}/{needed} checks)")]
    if result.verdict == "NoDrift":
        return [Event("Normal", "NoDrift", detail)]
    return [Event("Normal", "InsufficientData", detail)]


def performance_degraded(status: DriftMonitorStatus) -> bool:
    """Whether PerformanceDegraded is True in ``status`` (the gauge's value)."""
    condition = find(status.conditions, PERFORMANCE_DEGRADED)
    return condition is not None and condition.status == "True"
