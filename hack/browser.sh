#!/usr/bin/env bash
# Installs the headless browser the HTML drift report is checked in
# (tests/unit/monitor/test_monitor_report_browser.py): Debian's chromium, when missing, as CI
# starts on a fresh machine. `make test` and `make browser` run it.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_debian_packages chromium
