"""The HTML drift report in a real headless Chromium: it renders with no console message,
fetches nothing from the network, and its plots are visible (bars of both colours on the
screenshot, kept as a test artefact under .artefacts/). A planted page with a fetch and a
console error proves the harness catches both."""

from __future__ import annotations

import shutil

import pytest

from continuum.monitor.html import CURRENT_COLOUR, REFERENCE_COLOUR, render_html
from continuum.monitor.run import run_monitor
from continuum.monitor.settings import MonitorTarget, parse_check_settings
from continuum.storage.reports import read_report
from tests.kit import REPO
from tests.kit.browser import render
from tests.kit.datasets import customers
from tests.unit.monitor.conftest import MODEL, VERSION, log_rows

ARTEFACTS = REPO / ".artefacts"
TIME = "20250131T120000Z"


@pytest.fixture
def report_page(store, tmp_path):
    log_rows(store, customers(3000, 2, shift=1.0))
    settings = parse_check_settings({"window": {"maxRows": 2000, "minSamples": 100},
                                     "sensitiveFeature": "plan"})  # fmt: skip
    run_monitor(store, MonitorTarget("mon", MODEL, VERSION), settings, time=TIME)
    page = tmp_path / "report.html"
    page.write_text(render_html(read_report(store, "mon", TIME)))
    return page


def test_the_report_renders_offline_without_console_messages_and_shows_its_plots(
    report_page, tmp_path
):
    seen = render(report_page, tmp_path / "chromium")
    ARTEFACTS.mkdir(exist_ok=True)
    shutil.copy(seen.screenshot, ARTEFACTS / "drift-report.png")
    assert seen.console == []
    assert seen.fetched == []
    # every feature's plot draws reference and current bars: thousands of pixels of each
    assert seen.count(REFERENCE_COLOUR) > 2000
    assert seen.count(CURRENT_COLOUR) > 2000


def test_the_harness_sees_a_fetch_and_a_console_error(tmp_path):
    page = tmp_path / "planted.html"
    page.write_text(
        '<html><body><svg width="300" height="100"><rect width="300" height="100" '
        f'fill="{REFERENCE_COLOUR}"/></svg><img src="http://example.invalid/x.png">'
        '<script>console.error("planted")</script></body></html>'
    )
    seen = render(page, tmp_path / "chromium")
    assert seen.fetched == ["http://example.invalid/x.png"]
    assert any('"planted"' in line for line in seen.console)
    assert seen.count(REFERENCE_COLOUR) == 300 * 100
    assert seen.count(CURRENT_COLOUR) == 0
