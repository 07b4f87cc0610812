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
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from continuum.errors import ContinuumError
from continuum.monitor.report import encode, failure_summary
from continuum.monitor.run import run_monitor
from continuum.monitor.settings import ENV_REPORT_TIME, settings_from_env
from continuum.storage import ObjectStore, S3Settings
from continuum.storage.reports import check_time

DEFAULT_TERMINATION_LOG = "/dev/termination-log"
ENV_TERMINATION_LOG = "CONTINUUM_TERMINATION_LOG"


def build_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="continuum monitor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)
    try:
        summary = monitor(os.environ)
    except Exception as exc:  # every failure must reach the termination message
        summary = failure_summary(exc)
        emit("failed", stream=sys.stderr, reason=summary["reason"], message=summary["message"])
        write_termination_message(summary)
        if not isinstance(exc, ContinuumError):
            raise  # unexpected: keep the traceback in the pod log
        return 1
    emit("succeeded", verdict=summary["verdict"], reportURI=summary["reportURI"])
    write_termination_message(summary)
    return 0


def monitor(env: Mapping[str, str]) -> dict[str, Any]:
    target, settings = settings_from_env(env)
    time = env.get(ENV_REPORT_TIME) or None
    store = ObjectStore(S3Settings.from_env(env))
    store.check_bucket()  # a wrong endpoint, bucket or credential fails here, before any work
    emit("started", monitor=target.monitor, model=target.model, version=target.version)
    return run_monitor(
        store, target, settings, time=check_time(time) if time else None, progress=emit
    )


def emit(event: str, stream: Any = None, **fields: Any) -> None:
    """One JSON line of progress: the Job's log reads as a machine-parsable trail."""
    line = json.dumps({"event": event, **fields}, separators=(",", ":"), default=str)
    print(line, file=stream or sys.stdout, flush=True)


def write_termination_message(summary: Mapping[str, Any], path: str | None = None) -> bool:
    """Write the summary where Kubernetes reads it (only writable inside a pod); say if it was."""
    target = Path(path or os.environ.get(ENV_TERMINATION_LOG) or DEFAULT_TERMINATION_LOG)
    try:
        target.write_bytes(encode(summary))
    except OSError:
        return False
    return True
