"""Give the heap that a burst of work freed back to the system.

On a burst (1,000 TrainingJobs created or resumed at once) the operator's handlers hold
bodies, parsed models and requests for a while; once they are done, glibc keeps most of the
freed memory in its heap for reuse, because a few live objects are scattered across it, and
only returns the very top of it by itself. ``malloc_trim`` hands every free page back (with
``madvise``), so the RSS after a burst falls back towards what the live objects need. It is
glibc-only (the project image is Debian); elsewhere this does nothing.

A trim that finds nothing to return takes well under a millisecond; one that returns 50 MB
about 15 ms (measured on this machine), so trimming every few seconds costs nothing noticeable.

glibc also gives each thread that allocates its own heap ("arena", up to 8 per core), and the
worker threads that read finished runs' manifests from S3 (boto3) would each leave one partly
filled: ``limit_arenas`` caps them at two. Measured with 1,000 TrainingJobs after three
manifest reads (bench/trainingjob_latency.py): RSS 162.6 MB uncapped, 141.9 MB with
MALLOC_ARENA_MAX=2 in the environment, 144.6 MB with this cap (bench/README.md).
"""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable

from continuum import libc

TRIM_EVERY_SECONDS = 5.0
MAX_ARENAS = 2


def limit_arenas(arenas: int = MAX_ARENAS) -> bool:
    """Cap glibc's per-thread heaps at ``arenas`` (True when it took; see the docstring)."""
    return libc.mallopt(libc.M_ARENA_MAX, arenas)


def heap_trimmer() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or None where there is no glibc."""
    trim = libc.libc_function("malloc_trim")
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


async def trim_forever(every: float = TRIM_EVERY_SECONDS) -> None:
    """Trim the heap every ``every`` seconds until cancelled (no-op without glibc)."""
    trim = heap_trimmer()
    if trim is None:
        return
    while True:
        await asyncio.sleep(every)
        trim()
