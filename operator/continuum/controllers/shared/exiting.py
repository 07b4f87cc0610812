"""The operator process ends once kopf has stopped, whatever is left running.

When kopf stops (SIGTERM, or a fatal error such as a watch it cannot restart), it runs the
cleanup handlers, gives the tasks still running 5 s, cancels them and then waits for them
without any limit; after that the interpreter joins every non-daemon thread (the S3 reader's
pool, the loop's default executor), again without a limit. One task or thread that does not
end keeps the process alive with nothing watched: the API fault test of 3-4 December saw an
operator whose kopf had stopped (cleanup had closed the gateway) go on for 10 minutes
answering every retry "Kube is closed", until it was killed; Kubernetes restarts a container
only once its process exits.

So the cleanup handler arms :func:`arm`: a daemon thread that, ``EXIT_GRACE_SECONDS`` later,
finds the process still there, logs what was still running (the main thread's stack, the
other live threads) and ends it with ``os._exit(STUCK_EXIT_CODE)``. A stop that completes
(kopf returns, the interpreter exits) is never affected: the thread dies with the process.
The grace covers kopf's 5 s for hung tasks and, with ``--leader-elect``, the Lease release
after it (at most the renew deadline, 10 s by default).

Measured with a stand-in API server (an ERROR event of code 500 in a watch stream, or a watch
answered 400, with a TrainingJob whose reconciles kept failing): kopf stopped and the process
exited with code 1 in 5-7 s in both cases, so the guard did not fire there; what kept the
fault test's operator up was not reproduced outside the cluster (see docs/operations.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from types import FrameType

EXIT_GRACE_SECONDS = 30.0
STUCK_EXIT_CODE = 1
STACK_FRAMES = 12  # of the main thread's stack in the log line: where it is stuck

log = logging.getLogger(__name__)
_armed = threading.Event()


def arm(
    grace: float = EXIT_GRACE_SECONDS,
    *,
    end: Callable[[int], object] = os._exit,
    why: str = "kopf stopped",
) -> bool:
    """End the process ``grace`` seconds from now unless it has ended by then (once per
    process: False when already armed)."""
    if _armed.is_set():
        return False
    _armed.set()
    thread = threading.Thread(
        target=_end_later, args=(grace, end, why), name="exit guard", daemon=True
    )
    thread.start()
    return True


def _end_later(grace: float, end: Callable[[int], object], why: str) -> None:
    threading.Event().wait(grace)
    frames = sys._current_frames()
    main = threading.main_thread()
    stack = frames.get(main.ident) if main.ident is not None else None
    log.critical(stuck_message(why, grace, stack, threading.enumerate()))
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    sys.stderr.flush()
    end(STUCK_EXIT_CODE)


def stuck_message(
    why: str, grace: float, stack: FrameType | None, threads: Iterable[threading.Thread]
) -> str:
    """What the log says before the process ends: why, how long ago, what still ran."""
    others = [
        f"{t.name}{' (daemon)' if t.daemon else ''}"
        for t in threads
        if t is not threading.main_thread() and t.name != "exit guard" and t.is_alive()
    ]
    where = "unknown"
    if stack is not None:
        frames = traceback.extract_stack(stack)[-STACK_FRAMES:]
        where = " <- ".join(f"{f.name} ({_short(f.filename)}:{f.lineno})" for f in reversed(frames))
    return (
        f"{why} {grace:g} s ago and the process is still running; exiting with code "
        f"{STUCK_EXIT_CODE} so that Kubernetes restarts it. Main thread at: {where}. "
        f"Other threads: {', '.join(others) or 'none'}"
    )


def _short(path: str) -> str:
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-2:])


def reset_for_tests() -> None:
    """Disarm (the guard's thread, if running, still fires: tests pass their own ``end``)."""
    _armed.clear()
