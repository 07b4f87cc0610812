"""Drift reports: ``reports/<monitor>/<time>/`` holds one check's files.

::

    reports/<monitor>/<YYYYMMDDTHHMMSSZ>/report.json    full results (inputs, statistics, plots)
    reports/<monitor>/<YYYYMMDDTHHMMSSZ>/report.html    the same, readable offline in a browser
    reports/<monitor>/<YYYYMMDDTHHMMSSZ>/summary.json   < 4 KiB, what the operator reads

The time is the check's start in UTC, compact so folders sort by time. Every file is
write-once, and ``summary.json`` is written last: a folder with a summary is complete.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from continuum.errors import ConfigError, ObjectNotFound, StorageError
from continuum.storage.client import ObjectStore
from continuum.storage.layout import S3Uri, check_name, report_prefix

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
SUMMARY_JSON = "summary.json"
TIME_FORMAT = "%Y%m%dT%H%M%SZ"
_TIME_PATTERN = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")


def report_time(moment: datetime) -> str:
    """``2025-01-31 12:00:05 UTC`` -> ``"20250131T120005Z"`` (naive times are taken as UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime(TIME_FORMAT)


def check_time(time: str) -> str:
    if not _TIME_PATTERN.match(time):
        raise ConfigError(f"report time {time!r} is not a compact UTC time like 20250131T120005Z")
    return time


def report_folder(monitor: str, time: str) -> str:
    return report_prefix(monitor, check_time(time))


def report_uri(bucket: str, monitor: str, time: str) -> str:
    """``s3://bucket/reports/<monitor>/<time>/``: the folder, as status.reportURI names it."""
    return str(S3Uri(bucket, report_folder(monitor, time)))


def write_report(
    store: ObjectStore,
    monitor: str,
    time: str,
    *,
    report: Mapping[str, Any],
    html: str,
    summary: Mapping[str, Any],
) -> str:
    """Write the three files (write-once, summary last) and return the folder's URI."""
    folder = report_folder(monitor, time)
    store.put_json(folder + REPORT_JSON, report, if_absent=True)
    html_bytes = html.encode("utf-8")
    store.put_bytes(
        folder + REPORT_HTML, html_bytes, if_absent=True, content_type="text/html; charset=utf-8"
    )
    # Compact, as measured against the 4 KiB budget, not put_json's indented form.
    compact = json.dumps(summary, separators=(",", ":"), sort_keys=True).encode()
    store.put_bytes(folder + SUMMARY_JSON, compact, if_absent=True, content_type="application/json")
    return report_uri(store.bucket, monitor, time)


def read_summary(store: ObjectStore, monitor: str, time: str) -> dict[str, Any]:
    return _read_object(store, report_folder(monitor, time) + SUMMARY_JSON)


def read_report(store: ObjectStore, monitor: str, time: str) -> dict[str, Any]:
    return _read_object(store, report_folder(monitor, time) + REPORT_JSON)


def list_report_times(store: ObjectStore, monitor: str) -> list[str]:
    """Report folders of ``monitor``, oldest first (complete or not)."""
    prefix = f"reports/{check_name('monitor', monitor)}/"
    return [name for name in store.list_folders(prefix) if _TIME_PATTERN.match(name)]


def latest_summary(store: ObjectStore, monitor: str) -> tuple[str, dict[str, Any]] | None:
    """The newest complete report's time and summary, or None when there is none."""
    for time in reversed(list_report_times(store, monitor)):
        try:
            return time, read_summary(store, monitor, time)
        except ObjectNotFound:
            continue  # a check that died before its summary: not complete
    return None


def _read_object(store: ObjectStore, key: str) -> dict[str, Any]:
    value = store.get_json(key)
    if not isinstance(value, dict):
        raise StorageError(f"s3://{store.bucket}/{key} is not a JSON object")
    return value
