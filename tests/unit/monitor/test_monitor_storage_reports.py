"""storage.reports: the layout, write-once files, summary last, latest complete report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from continuum.errors import ConfigError, ObjectExists
from continuum.storage.reports import (
    latest_summary,
    list_report_times,
    read_summary,
    report_time,
    report_uri,
    write_report,
)
from tests.kit.memory_store import MemoryObjectStore


def test_report_time_is_compact_utc():
    moment = datetime(2025, 1, 31, 13, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    assert report_time(moment) == "20250131T120005Z"
    assert report_time(datetime(2025, 1, 31, 12, 0, 5)) == "20250131T120005Z"


def test_uri_names_the_folder():
    assert report_uri("b", "mon", "20250131T120005Z") == "s3://b/reports/mon/20250131T120005Z/"


@pytest.mark.parametrize("time", ["2025-01-31", "../x", "20250131T120005"])
def test_bad_times_are_refused(time):
    with pytest.raises(ConfigError):
        report_uri("b", "mon", time)


def test_write_then_read_and_write_once():
    store = MemoryObjectStore("b")
    time = "20250131T120005Z"
    uri = write_report(store, "mon", time, report={"a": 1}, html="<p>x</p>", summary={"s": 1})
    assert uri == "s3://b/reports/mon/20250131T120005Z/"
    assert read_summary(store, "mon", time) == {"s": 1}
    assert store.get_bytes(f"reports/mon/{time}/summary.json") == b'{"s":1}'  # compact
    assert json.loads(store.get_bytes(f"reports/mon/{time}/report.json")) == {"a": 1}
    with pytest.raises(ObjectExists):
        write_report(store, "mon", time, report={}, html="", summary={})


def test_latest_summary_skips_incomplete_folders():
    store = MemoryObjectStore("b")
    assert latest_summary(store, "mon") is None
    write_report(store, "mon", "20250131T120000Z", report={}, html="", summary={"n": 1})
    store.put_json("reports/mon/20250131T130000Z/report.json", {})  # died before its summary
    assert list_report_times(store, "mon") == ["20250131T120000Z", "20250131T130000Z"]
    assert latest_summary(store, "mon") == ("20250131T120000Z", {"n": 1})
    assert report_time(datetime.now(UTC)) > "20250131T130000Z"
