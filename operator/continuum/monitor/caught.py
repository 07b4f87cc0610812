"""Warnings raised while a feature is measured: caught and recorded in that feature's report.

scipy says important things as warnings (ks_2samp: "Exact calculation unsuccessful. Switching
to method=asymp"; overflow in a sum), and Python prints a warning once per code location, so
on a check of many features most would pass unseen. Here every warning is kept, per feature.

Features are measured on worker threads, and ``warnings.catch_warnings`` is process-wide state
(not thread-safe before Python 3.14). So the main thread, around the whole pool (``routed``),
sets the filter to "always" and installs one ``showwarning`` that appends each warning to the
list of the thread that raised it (``recorded``, a thread-local); a thread with no list open
hands it to the previous ``showwarning``. Outside ``routed`` (one thread, e.g. a direct call),
``recorded`` routes for its own block.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

_local = threading.local()
_ROUTED = "_continuum_routed"


def describe(message: Warning | str, category: type[Warning]) -> str:
    return f"{category.__name__}: {message}"


@contextmanager
def routed() -> Iterator[None]:
    """Around a pool of workers (call it in the thread that starts them): warnings of a thread
    inside ``recorded`` go to that thread's list, whatever the filters said before."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        previous = warnings.showwarning

        def show(  # noqa: PLR0917 - warnings.showwarning's signature
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            records: list[str] | None = getattr(_local, "records", None)
            if records is None:
                previous(message, category, filename, lineno, file, line)
            else:
                records.append(describe(message, category))

        setattr(show, _ROUTED, True)
        warnings.showwarning = show
        yield


@contextmanager
def recorded() -> Iterator[list[str]]:
    """The warnings raised in this thread inside the block, in order (a nested block passes
    its own on to the enclosing one as well). Outside ``routed``: routed for the block."""
    if not getattr(warnings.showwarning, _ROUTED, False):
        with routed(), recorded() as inside:
            yield inside
        return
    caught: list[str] = []
    outer: list[str] | None = getattr(_local, "records", None)
    _local.records = caught
    try:
        yield caught
    finally:
        _local.records = outer
        if outer is not None:
            outer.extend(caught)


def unique(messages: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Each message once, in first-seen order (a loop may raise the same one many times)."""
    seen: dict[str, Any] = {}
    for message in messages:
        seen.setdefault(message, None)
    return tuple(seen)
