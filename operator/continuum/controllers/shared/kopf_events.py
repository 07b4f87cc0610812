"""kopf's Event queue, reachable from every task of ours, not only from kopf's own.

``kopf.info``/``kopf.warn`` put an Event on a queue that kopf binds (two context variables)
only inside the task that processes one object's watch events. Tasks we start ourselves (the
DriftMonitor schedule, the periodic resync, the retries they spawn) inherit no binding, and there
``kopf.info`` raised ``LookupError`` after the status was written: the reconcile failed, its
retry found nothing new to announce, and the Event was lost — a scheduled drift check's
``DriftDetected`` in CI on ea7c321 (tests/e2e/test_loop.py). So every reconcile remembers the
binding it ran under (``remember``), and a post from a task without one takes it (``bind``).

The variables are kopf's private ones (kopf is pinned below its next minor in pyproject.toml);
``tests/unit/controllers/shared/test_kopf_events.py`` fails if they move.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from kopf._core.engines import posting


@dataclass
class _Binding:
    loop: asyncio.AbstractEventLoop | None = None
    queue: Any = None


_SEEN = _Binding()


def remember() -> None:
    """Keep the binding of the current task, if kopf gave it one."""
    try:
        _SEEN.loop, _SEEN.queue = posting.event_queue_loop_var.get(), posting.event_queue_var.get()
    except LookupError:
        return


def bind() -> bool:
    """Bind kopf's Event queue in the current task if it is not bound; False when no task
    has shown one yet (kopf has processed no object so far)."""
    try:
        posting.event_queue_var.get()
    except LookupError:
        if _SEEN.loop is None or _SEEN.loop is not asyncio.get_running_loop():
            return False
        posting.event_queue_loop_var.set(_SEEN.loop)
        posting.event_queue_var.set(_SEEN.queue)
    return True
