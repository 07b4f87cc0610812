"""How many threads the trainer's native code (OpenMP, BLAS) runs: the CPUs the pod is granted.

HistGradientBoosting fits with OpenMP. Left alone, OpenMP starts one thread per CPU of the
*node* and spins between parallel regions: on this project's 2-CPU test machine under load
(load average 7), fitting 1,600 rows x 4 features (100 iterations) took 13.7-21.9 s with two
spinning threads against 0.16 s with one thread and 0.30 s with two passive ones. So the
package sets ``OMP_WAIT_POLICY=PASSIVE`` before scikit-learn loads its OpenMP runtime
(``continuum/trainer/__init__.py``) and every fit runs under :func:`cpu_limited`: as many
threads as the cgroup's CPU quota allows (the affinity lists every CPU of the node).

The thread count is recorded in the manifest: HistGradientBoosting sums gradients with a
parallel reduction, so its model bytes are reproducible for the same thread count.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota."""
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


@contextmanager
def cpu_limited(threads: int) -> Iterator[None]:
    """OpenMP and BLAS held to ``threads`` while the block runs."""
    with threadpool_limits(limits=threads):
        yield
