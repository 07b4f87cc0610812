"""Windows by time (``window.last``): the rows logged in the period, sampled down to maxRows with
a seed, the report saying which rows were used; ordered logs give the whole period (issue 14)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from continuum.api.driftmonitor import Window
from continuum.monitor.run import run_monitor
from continuum.monitor.settings import MonitorTarget, parse_check_settings
from continuum.monitor.window import PREDICTION, Period, period_of, read_window
from continuum.storage.inference_logs import write_batch
from tests.kit.datasets import customers
from tests.unit.monitor.conftest import MODEL, VERSION, log_rows
from tests.unit.monitor.test_monitor_window import CountingStore

NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)
FEATURES = ["tenure", "charges", "plan"]


def ordered_hours(store, hours: int = 6, rows: int = 1000, tail: int = 300) -> None:
    """One batch per hour, the last ``tail`` rows of each a subgroup (plan "pro", long tenure):
    the order a source that sends one group at the end of each period logs in."""
    for hour in range(hours):
        frame = customers(rows, hour)
        frame["plan"] = np.where(np.arange(rows) < rows - tail, "basic", "pro")
        frame.loc[frame.index[rows - tail :], "tenure"] += 40.0
        start = NOW - timedelta(hours=hours - hour) + timedelta(minutes=30)
        log_rows(store, frame, batch=rows, start=start)


def period(last: str = "6h", seed: int = 0) -> Period:
    window = Window(last=last, seed=seed, maxRows=300, minSamples=50)
    found = period_of(window, NOW)
    assert found is not None
    return found


def test_ordered_logs_give_the_whole_period_not_the_newest_subgroup(store):
    ordered_hours(store)
    newest = read_window(store, MODEL, VERSION, FEATURES, 300)
    assert (newest.frame["plan"] == "pro").all()  # newest-N: the subgroup alone
    timed = read_window(store, MODEL, VERSION, FEATURES, 300, period=period())
    share = float((timed.frame["plan"] == "pro").mean())
    assert timed.rows == 300
    assert timed.rows_in_period == 6000
    assert timed.sampled
    assert 0.2 < share < 0.4  # the period's 30%, sampled (sd 2.6 points)
    assert timed.frame["tenure"].mean() < newest.frame["tenure"].mean() - 20


def test_the_sample_is_seeded_and_capped(store):
    ordered_hours(store)
    first = read_window(store, MODEL, VERSION, FEATURES, 300, period=period(seed=7))
    again = read_window(store, MODEL, VERSION, FEATURES, 300, period=period(seed=7))
    other = read_window(store, MODEL, VERSION, FEATURES, 300, period=period(seed=8))
    pd.testing.assert_frame_equal(first.frame, again.frame)
    assert not first.frame.equals(other.frame)
    assert len(first.frame) == 300


def test_a_period_holding_fewer_rows_than_max_rows_takes_them_all(store):
    ordered_hours(store, hours=6, rows=100, tail=30)
    window = read_window(store, MODEL, VERSION, FEATURES, 300, period=period("2h"))
    assert window.rows == 200
    assert not window.sampled
    assert not window.truncated
    assert window.describe(300)["description"] == (
        "all 200 rows logged from 2025-03-01T10:00:00Z to 2025-03-01T12:00:00Z (last 2h)"
    )


def test_only_batches_that_can_hold_rows_of_the_period_are_read(store):
    old = customers(50, 1)
    log_rows(store, old, batch=50, start=NOW - timedelta(hours=10))  # before: not read
    straddling = [
        {"ts": (NOW - timedelta(hours=7)).isoformat(), "features": {"tenure": 1.0}},  # too old
        {"ts": (NOW - timedelta(hours=1)).isoformat(), "features": {"tenure": 2.0}},
        {"features": {"tenure": 3.0}},  # no ts: left out, counted
        {"ts": (NOW + timedelta(hours=1)).isoformat(), "features": {"tenure": 4.0}},  # after
    ]
    key = write_batch(store, MODEL, VERSION, straddling, NOW - timedelta(minutes=5))
    counting = CountingStore(store)
    window = read_window(counting, MODEL, VERSION, ["tenure"], 300, period=period())
    assert counting.read == [key]
    assert window.frame["tenure"].tolist() == [2.0]
    described = window.describe(300)
    assert described["strategy"] == "time"
    assert described["files"] == [key]
    assert described["undatedRows"] == 1
    assert described["rowsInPeriod"] == 1
    assert described["since"] == "2025-03-01T06:00:00Z"
    assert described["until"] == "2025-03-01T12:00:00Z"
    assert described["batchesTotal"] == 2
    assert described["batchesRead"] == 1


def test_the_window_records_absent_and_extra_keys(store):
    rows = [
        {"ts": NOW.isoformat(), "features": {"tenure": 1.0, "plan": "basic"}, "prediction": 1},
        {"ts": NOW.isoformat(), "features": {"tenure": 2.0, "coupon": "x", "plan": "pro"}},
    ]
    write_batch(store, MODEL, VERSION, rows, NOW - timedelta(minutes=1))
    for timed in (None, period()):
        window = read_window(store, MODEL, VERSION, FEATURES, 300, period=timed)
        assert window.schema.absent == {"charges": 2}
        assert window.schema.extra == {"coupon": 1}
        assert list(window.frame.columns) == [*FEATURES, PREDICTION]


def test_count_windows_list_the_files_read(store):
    log_rows(store, customers(300, 1), batch=100)
    window = read_window(store, MODEL, VERSION, FEATURES, 150)
    assert window.describe(150)["filesRead"] == 2
    assert window.describe(150)["strategy"] == "newest"


@pytest.mark.parametrize("bad", ["6 hours", "0h", "1.5h", "6H", "90s", "h", "-6h"])
def test_a_bad_duration_is_refused_with_the_spec_message(bad):
    with pytest.raises(ValidationError, match=r"window\.last must be a whole number of minutes"):
        Window(last=bad)
    assert Window(last="90m").last_seconds() == 5400
    assert Window(last="7d").last_seconds() == 7 * 86400
    assert Window().last_seconds() is None
    assert period_of(Window(), NOW) is None


def test_a_check_by_time_reports_the_rows_it_used(store):
    now = datetime.now(UTC)
    log_rows(store, customers(3000, 5), batch=500, start=now - timedelta(hours=9))  # too old
    log_rows(store, customers(2000, 6), batch=500, start=now - timedelta(hours=2))
    spec = {"window": {"last": "6h", "maxRows": 1000, "minSamples": 100, "seed": 3}}
    summary = run_monitor(
        store,
        MonitorTarget("m", MODEL, VERSION),
        parse_check_settings(spec),
        time="20250301T120000Z",
    )
    report = store.get_json(summary["reportURI"].split("/", 3)[3].rstrip("/") + "/report.json")
    window = report["window"]
    assert window["strategy"] == "time"
    assert window["last"] == "6h"
    assert window["seed"] == 3
    assert window["rowsInPeriod"] == 2000
    assert window["rows"] == 1000
    assert window["sampled"]
    assert window["filesRead"] == 4
    assert window["batchesTotal"] == 10
    assert window["description"].startswith("1000 of the 2000 rows logged from ")
    assert summary["rows"] == 1000
    assert summary["quality"]["passed"] is True
