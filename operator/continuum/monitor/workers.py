"""Spreading the per-feature work of a check over the CPUs the monitor may use.

Each feature's statistics are independent and pure, and their heavy parts (numpy sorts and
merges, pyarrow counts, scipy's KS tail) run with the GIL released, so threads give real
parallelism without copying the frames into other processes. Results come back in the order
of the inputs, whatever finishes first, so a check gives the same report on 1 or 16 CPUs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from continuum import libc
from continuum.workload import available_cpus, cgroup_cpu_quota

Item = TypeVar("Item")
Result = TypeVar("Result")
__all__ = [
    "available_cpus",
    "cgroup_cpu_quota",
    "keep_freed_memory_for_reuse",
    "map_in_order",
    "single_threaded_blas",
    "worker_count",
]

# Each busy worker holds one feature's temporaries (about a dozen arrays as long as both
# samples together), so the worker count bounds the memory a check adds over its inputs.
MAX_WORKERS = 8


def worker_count(tasks: int, cpus: int | None = None) -> int:
    return max(1, min(tasks, cpus or available_cpus(), MAX_WORKERS))


def map_in_order(
    function: Callable[[Item], Result], items: Sequence[Item], workers: int
) -> list[Result]:
    """``[function(item) for item in items]``, computed by up to ``workers`` threads."""
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="drift") as pool:
        return list(pool.map(function, items))


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Keep BLAS to one thread while our own workers use the CPUs.

    The only BLAS call of a check is one dot product per numeric feature (the Wasserstein
    integral), far too small to gain from threads; OpenBLAS's threads would instead spin after
    each call, taking a CPU from the workers (measured: a third of a check's CPU time).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# Arrays up to this size come from the heap, not from mmap (glibc's ceiling on 64-bit).
MMAP_THRESHOLD_BYTES = 32 << 20
# Free memory a heap keeps for reuse instead of handing it back to the kernel.
TRIM_THRESHOLD_BYTES = 256 << 20


@functools.cache
def keep_freed_memory_for_reuse() -> bool:
    """Ask glibc to reuse the memory a feature frees for the next one; True when it took.

    By default glibc serves each array of a few hundred kB and up with a fresh mmap and returns
    it on free, so every feature's dozen arrays are page-faulted in and zeroed by the kernel
    again: about 100 000 page faults and a fifth of a check's CPU time on 100 000-row samples
    (measured). With these thresholds freed blocks are reused; the process's peak memory is
    the same (the largest set of arrays alive at once), it just is not returned in between.
    Process-wide and idempotent: the monitor Job runs one check per process.
    """
    took_mmap = libc.mallopt(libc.M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    took_trim = libc.mallopt(libc.M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    return took_mmap and took_trim
