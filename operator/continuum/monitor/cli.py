"""``continuum monitor``: run one drift check inside the DriftMonitor's Job.

Environment (set by the operator on the Job)::

    CONTINUUM_MONITOR        the DriftMonitor's name (report folder)
    CONTINUUM_MODEL          model name
    CONTINUUM_MODEL_VERSION  the served version: its baseline is the reference
    CONTINUUM_MONITOR_SPEC   the DriftMonitor spec as JSON (or only tests/window/...)
    CONTINUUM_REPORT_TIME    optional report folder time (YYYYMMDDTHHMMSSZ), default now
    CONTINUUM_S3_ENDPOINT, CONTINUUM_S3_BUCKET, AWS_*   where the artefacts are
    CONTINUUM_TERMINATION_LOG  where the summary goes (default /dev/termination-log)

Exits 0 when the check ran (whatever the verdict) and 1 when it could not, having written
the summary, or the failure, to the termination message either way. Progress is JSON lines.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import Any

from continuum.monitor.report import termination_message
from continuum.monitor.run import run_monitor
from continuum.monitor.settings import ENV_REPORT_TIME, settings_from_env
from continuum.storage import ObjectStore, S3Settings
from continuum.storage.reports import check_time
from continuum.workload import emit, run


def build_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="continuum monitor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)
    return run(lambda: monitor(os.environ), render=termination_message)


def monitor(env: Mapping[str, str]) -> dict[str, Any]:
    target, settings = settings_from_env(env)
    time = env.get(ENV_REPORT_TIME) or None
    store = ObjectStore(S3Settings.from_env(env))
    store.check_bucket()  # a wrong endpoint, bucket or credential fails here, before any work
    emit("started", monitor=target.monitor, model=target.model, version=target.version)
    summary = run_monitor(
        store, target, settings, time=check_time(time) if time else None, progress=emit
    )
    emit("succeeded", verdict=summary["verdict"], reportURI=summary["reportURI"])
    return summary
