"""glibc's allocator knobs, where the C library is glibc; no-ops elsewhere (musl, macOS).

Two processes tune glibc's allocator: the operator caps its per-thread heaps and trims freed
memory (``continuum.controllers.shared.heap``), the drift check keeps freed arrays for reuse
(``continuum.monitor.workers``). Both find the C library's functions here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

# mallopt parameter numbers, from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def libc_function(name: str) -> Any:
    """A ctypes function of the C library if it has one, else None."""
    library = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(library), name) if library else None
    except (OSError, AttributeError):  # e.g. musl has no mallopt, no malloc_trim
        return None


def mallopt(parameter: int, value: int) -> bool:
    """glibc's ``mallopt(parameter, value)``; True when it took, False without glibc."""
    function = libc_function("mallopt")
    return function is not None and bool(function(parameter, value))
