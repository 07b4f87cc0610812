"""What every workload process does at its edges: JSON progress lines, the outcome as the
pod's termination message, any failure turned into that outcome.

The trainer and the monitor run as Kubernetes Jobs, and the operator learns how a run ended
only from the pod's termination message (``/dev/termination-log``, at most 4 KiB), so a
failure must reach it as surely as a success does::

    {"status": "Failed", "reason": "DatasetInvalid", "message": "dataset invalid: column ..."}

Each workload renders its own summary (how to fit 4 KiB depends on what it holds); this
module writes whatever text it is given and owns the shape of a failure.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from continuum.errors import ContinuumError

DEFAULT_TERMINATION_LOG = "/dev/termination-log"
ENV_TERMINATION_LOG = "CONTINUUM_TERMINATION_LOG"
# A failure's message is cut to this many characters (the pod log keeps it whole): ASCII text
# leaves 2.5 KiB of the 4 KiB termination message for the rest of the summary.
MAX_MESSAGE_CHARS = 1500

Summary = dict[str, Any]


def emit(event: str, stream: TextIO | None = None, **fields: Any) -> None:
    """One JSON line of progress (``event`` first): the Job's log reads as a parsable trail."""
    line = json.dumps({"event": event, **fields}, separators=(",", ":"), default=str)
    print(line, file=stream or sys.stdout, flush=True)


def failure_summary(error: BaseException) -> Summary:
    """The outcome of a run that raised: the error's class as the reason, its text trimmed."""
    message = str(error) or type(error).__name__
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 3] + "..."
    return {"status": "Failed", "reason": type(error).__name__, "message": message}


def write_termination_message(text: str, path: str | None = None) -> bool:
    """Write ``text`` where Kubernetes reads it (writable only inside a pod); say if it was."""
    target = Path(path or os.environ.get(ENV_TERMINATION_LOG) or DEFAULT_TERMINATION_LOG)
    try:
        target.write_text(text, encoding="utf-8")
    except OSError:
        return False
    return True


def run(work: Callable[[], Summary], render: Callable[[Summary], str]) -> int:
    """Do ``work`` and leave its outcome, rendered, as the termination message; the exit code.

    0 when ``work`` returned a summary, 1 when it raised a ``ContinuumError`` (a failure the
    message explains). Any other exception is re-raised after the message is written, so the
    pod log keeps its traceback.
    """
    try:
        summary = work()
    except Exception as exc:  # every failure must reach the termination message
        summary = failure_summary(exc)
        emit("failed", stream=sys.stderr, reason=summary["reason"], message=summary["message"])
        write_termination_message(render(summary))
        if not isinstance(exc, ContinuumError):
            raise  # unexpected: keep the traceback in the pod log
        return 1
    write_termination_message(render(summary))
    return 0


# ---------------------------------------------------------------------------- CPUs

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """CPUs this process may run on: its affinity, capped by a cgroup v2 CPU quota.

    In a Pod with a CPU limit the affinity still lists every CPU of the node; the quota
    (``cpu.max``) is what the kubelet actually grants. The trainer sizes its OpenMP/BLAS
    threads by it, the monitor its per-feature thread pool.
    """
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    allowed = allowed or os.cpu_count() or 1
    quota = cgroup_cpu_quota(cpu_max)
    return max(1, min(allowed, quota) if quota else allowed)


def cgroup_cpu_quota(cpu_max: Path = CGROUP_CPU_MAX) -> int | None:
    """Whole CPUs of a cgroup v2 quota ("150000 100000" -> 2), None when unlimited or unknown."""
    try:
        fields = cpu_max.read_text().split()
    except OSError:
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None
