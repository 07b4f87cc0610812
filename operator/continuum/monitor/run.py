"""One check end to end: read baseline and window, compute, write the report, return the summary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from continuum.errors import StorageError
from continuum.monitor.check import CheckResult, run_check
from continuum.monitor.html import render_html
from continuum.monitor.live import check_performance
from continuum.monitor.privacy import redact_reference, redact_window
from continuum.monitor.reference import Reference, load_reference
from continuum.monitor.report import ReportInputs, build_report, build_summary
from continuum.monitor.settings import CheckSettings, MonitorTarget
from continuum.monitor.window import CurrentWindow, period_of, read_window
from continuum.storage import ObjectStore, layout
from continuum.storage.reports import TIME_FORMAT, report_time, report_uri, write_report
from continuum.storage.retention import cutoff_of, prune, retention_prefixes

Progress = Callable[..., None]


def quiet(event: str, **fields: Any) -> None:
    return None


def run_monitor(
    store: ObjectStore,
    target: MonitorTarget,
    settings: CheckSettings,
    *,
    time: str | None = None,
    progress: Progress = quiet,
) -> dict[str, Any]:
    """Run one check and write ``reports/<monitor>/<time>/``; returns the summary."""
    started = datetime.now(UTC)
    time = time or report_time(started)
    pruned = apply_retention(store, target, settings, started, progress)
    reference, window, notes = read_inputs(store, target, settings, progress)
    notes = [*pruned, *notes]
    result = run_check(reference, window.frame, settings, window.schema)
    result = replace(result, notes=(*notes, *result.notes))
    progress("checked", verdict=result.verdict.verdict, share=result.verdict.share)
    performance = live_performance(store, target, settings, check_moment(time), progress)
    inputs = ReportInputs(
        target=target,
        settings=settings,
        window=window,
        reference_rows=reference.rows,
        reference_uri=_reference_uri(store, target),
        created=started.isoformat(timespec="seconds"),
        time=time,
        report_uri=report_uri(store.bucket, target.monitor, time),
    )
    return publish(store, inputs, result, progress, performance=performance)


def apply_retention(
    store: ObjectStore,
    target: MonitorTarget,
    settings: CheckSettings,
    now: datetime,
    progress: Progress,
) -> list[str]:
    """Prune what is older than ``retentionDays`` before reading (so the window never holds
    expired rows); the note says what went. A prune S3 refuses (no delete permission) is a
    note too: the check itself can still run."""
    if settings.retention_days is None:
        return []
    prefixes = retention_prefixes(target.model, target.monitor)
    try:
        pruned = prune(store, prefixes, cutoff_of(now, settings.retention_days))
    except StorageError as exc:
        progress("retention_failed", error=str(exc))
        return [f"retention: pruning failed, nothing older was deleted this time: {exc}"]
    progress("retention", deleted=pruned.deleted, kept=pruned.kept)
    return [pruned.note()]


def read_inputs(
    store: ObjectStore, target: MonitorTarget, settings: CheckSettings, progress: Progress
) -> tuple[Reference, CurrentWindow, list[str]]:
    """The reference and the window as the inference log's policy leaves them, and the notes
    saying what it dropped and hashed (:mod:`continuum.monitor.privacy`)."""
    reference = load_reference(store, target.model, target.version)
    reference, notes = redact_reference(reference, settings.log_policy)
    progress("reference_loaded", rows=reference.rows, features=len(reference.features))
    names = [feature.name for feature in reference.features]
    period = period_of(settings.window, datetime.now(UTC))
    window = read_window(
        store, target.model, target.version, names, settings.window.max_rows, period=period
    )
    window = redact_window(window, settings.log_policy)
    progress(
        "window_read", rows=window.rows, batches=window.batches_read, truncated=window.truncated
    )
    return reference, window, notes


def check_moment(time: str) -> datetime:
    """The check's time from its report folder's name: the scheduled slot the operator names
    the Job and the folder after, so a rerun of the same check judges the same window."""
    return datetime.strptime(time, TIME_FORMAT).replace(tzinfo=UTC)


def live_performance(
    store: ObjectStore,
    target: MonitorTarget,
    settings: CheckSettings,
    now: datetime,
    progress: Progress,
) -> dict[str, Any] | None:
    """The live-performance section (spec.performance), None when the spec has none."""
    if settings.performance is None:
        return None
    section = check_performance(
        store, target, settings.performance, now=now,
        sensitive=settings.sensitive_feature, fairness_threshold=settings.fairness_threshold,
    )  # fmt: skip
    progress("performance", verdict=section["verdict"], basis=section["basis"])
    return section


def publish(
    store: ObjectStore,
    inputs: ReportInputs,
    result: CheckResult,
    progress: Progress,
    performance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write report.json, report.html and summary.json; return the summary."""
    report = build_report(inputs, result, performance)
    summary = build_summary(report)
    html = render_html(report)
    monitor = inputs.target.monitor
    write_report(store, monitor, inputs.time, report=report, html=html, summary=summary)
    progress("report_written", uri=inputs.report_uri)
    return summary


def _reference_uri(store: ObjectStore, target: MonitorTarget) -> str:
    key = layout.version_key(target.model, target.version, layout.REFERENCE_FILE)
    return str(layout.S3Uri(store.bucket, key))
