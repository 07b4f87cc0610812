"""Adaptive batching: concurrent requests share one ``predict`` call.

One worker task takes the oldest waiting request, then adds every request already queued, up
to ``max_batch_size`` rows. It waits for more (at most ``max_latency``) only while other
requests are known to be on their way (announced but still reading or parsing their body),
so a lone request never waits: at concurrency 1 batching costs nothing, and under load the
batch fills with what arrived while the previous ``predict`` ran (requests read meanwhile by
the event loop, or already in the socket buffers, are parsed and queued before the worker
looks again). Results are split back per request in order. Every request goes through the
worker, even a lone one: handing it over is what lets the event loop read the requests that
came in meanwhile, so that they join the batch (a lone request predicted by its own handler,
tried on 2026-11-29, saved about 10 us at concurrency 1 and took batching away under load:
1.0 rows per predict call at concurrency 16, against 7.5 through the worker).

Small, quick batches are predicted on the event loop itself: on one core, handing a call of a
millisecond or two to a thread costs more than it saves — the hand-off itself (about a fifth
of the server's CPU in a profile at concurrency 1), then the two threads trading the GIL, each
waiting up to the interpreter's 5 ms switch interval. A batch runs inline when it has at most
``inline_rows`` rows and the previous predict took at most ``inline_cpu`` seconds of CPU;
otherwise (and for the very first call, whose cost is unknown) in a thread, so that a slow
model or a huge request cannot hold up the loop and the health probes it answers.

If a combined batch fails, each request is retried alone so that one bad request cannot fail
the others; a request that still fails gets InputInvalid when scikit-learn rejected its values
(ValueError/TypeError) and PredictionFailed otherwise.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from continuum.server.errors import InputInvalid, PredictionFailed, ServerUnavailable, ServingError
from continuum.server.inputs import FeatureRows
from continuum.server.model import Prediction

log = logging.getLogger(__name__)
PredictFn = Callable[[dict[str, np.ndarray]], Prediction]
INLINE_ROWS = 256  # batches up to this many rows may be predicted on the event loop ...
INLINE_CPU_SECONDS = 0.005  # ... when the previous predict took at most this much CPU


@dataclass
class Pending:
    rows: FeatureRows
    future: asyncio.Future[Prediction] = field(repr=False)


def combine(rows: Sequence[FeatureRows]) -> dict[str, np.ndarray]:
    """One array per feature holding every request's rows, in request order."""
    if len(rows) == 1:
        return rows[0].columns
    names = rows[0].columns.keys()
    return {name: np.concatenate([part.columns[name] for part in rows]) for name in names}


def split(prediction: Prediction, sizes: Sequence[int]) -> list[Prediction]:
    """The inverse of :func:`combine` for a prediction over the combined rows."""
    bounds = np.cumsum([0, *sizes]).tolist()
    return [prediction.rows(start, stop) for start, stop in itertools.pairwise(bounds)]


def scoring_error(exc: Exception) -> ServingError:
    if isinstance(exc, ValueError | TypeError):
        return InputInvalid(f"the model could not score these rows: {exc}")
    return PredictionFailed(f"prediction failed: {type(exc).__name__}: {exc}")


class Batcher:
    def __init__(
        self,
        predict: PredictFn,
        *,
        max_batch_size: int,
        max_latency: float,
        on_batch: Callable[[int], None] = lambda rows: None,
        clock: Callable[[], float] = time.monotonic,
        inline_rows: int = INLINE_ROWS,
        inline_cpu: float = INLINE_CPU_SECONDS,
    ) -> None:
        self._predict = predict
        self.inline_rows = inline_rows
        self.inline_cpu = inline_cpu
        self.last_cpu = math.inf  # seconds the latest predict call cost; unknown at first
        self.max_batch_size = max_batch_size
        self.max_latency = max_latency
        self._on_batch = on_batch
        self._clock = clock
        self._queue: deque[Pending] = deque()
        self._in_hand: list[Pending] = []  # the batch being collected or predicted
        self._waiter: asyncio.Future[bool] | None = None  # the worker, waiting for a change
        self.arriving = 0

    @contextmanager
    def announce(self) -> Iterator[None]:
        """Mark a request as on its way for the duration of its parsing (see module doc)."""
        self.arriving += 1
        try:
            yield
        finally:
            self.arriving -= 1
            if self._in_hand:  # only a worker collecting a batch waits for arrivals to finish
                self._wake()

    async def predict(self, rows: FeatureRows) -> Prediction:
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self._queue.append(Pending(rows, future))
        self._wake()
        return await future

    async def run(self) -> None:
        """The worker: collect a batch, predict it, deliver; until cancelled."""
        try:
            while True:
                await self.run_once()
        finally:
            self._fail_waiting()

    async def run_once(self) -> None:
        await self.collect()  # fills self._in_hand, where shutdown finds it
        try:
            await self.execute(self._in_hand)
        except Exception as exc:  # a fault past predict must not kill the worker: answer, go on
            log.exception("batch of %d requests failed", len(self._in_hand))
            error = PredictionFailed(f"prediction failed: {type(exc).__name__}: {exc}")
            for item in self._in_hand:
                _fail(item, error)
        self._in_hand = []

    async def collect(self) -> list[Pending]:
        while not self._queue:
            await self._wait_for_change(None)
        batch = self._in_hand = [self._queue.popleft()]
        rows = batch[0].rows.n_rows
        deadline = self._clock() + self.max_latency
        while rows < self.max_batch_size:
            if self._queue:
                if rows + self._queue[0].rows.n_rows > self.max_batch_size:
                    break
                batch.append(self._queue.popleft())
                rows += batch[-1].rows.n_rows
            elif not self.arriving or not await self._wait_for_change(deadline):
                break
        return batch

    async def _wait_for_change(self, deadline: float | None) -> bool:
        """Sleep until a request is queued or finishes parsing; False once ``deadline`` passed.

        One future, resolved by :meth:`_wake` or by a timer: ``asyncio.wait_for`` on an
        ``Event`` made a task and a timeout context for every wait, and the worker waits once
        per request arriving while it collects (at 16 connections about once per request).
        """
        remaining = None if deadline is None else deadline - self._clock()
        if remaining is not None and remaining <= 0:
            return False
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        timer = None if remaining is None else loop.call_later(remaining, _settle, waiter, False)
        try:
            return await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _wake(self) -> None:
        """A request was queued or finished parsing: the waiting worker looks again."""
        if self._waiter is not None:
            _settle(self._waiter, True)

    async def execute(self, batch: Sequence[Pending]) -> None:
        rows = [item.rows for item in batch]
        n_rows = sum(part.n_rows for part in rows)
        self._on_batch(n_rows)
        try:
            prediction = await self._call(combine(rows), n_rows)
        except Exception as exc:  # scikit-learn raises many types; isolate the culprit
            await self._execute_one_by_one(batch, exc)
            return
        for item, part in zip(batch, split(prediction, [r.n_rows for r in rows]), strict=True):
            _resolve(item, part)

    async def _execute_one_by_one(self, batch: Sequence[Pending], exc: Exception) -> None:
        if len(batch) == 1:
            _fail(batch[0], scoring_error(exc))
            return
        for item in batch:
            try:
                prediction = await self._call(item.rows.columns, item.rows.n_rows)
            except Exception as single:  # as above: one request's own failure
                _fail(item, scoring_error(single))
            else:
                _resolve(item, prediction)

    async def _call(self, columns: dict[str, np.ndarray], n_rows: int) -> Prediction:
        if n_rows <= self.inline_rows and self.last_cpu <= self.inline_cpu:
            return self._timed_predict(columns, time.perf_counter)
        return await asyncio.to_thread(self._timed_predict, columns, time.thread_time)

    def _timed_predict(
        self, columns: dict[str, np.ndarray], clock: Callable[[], float]
    ) -> Prediction:
        """The prediction, its cost kept in ``last_cpu``.

        In a thread, the thread's CPU time (waiting for the GIL does not count). Inline, the
        wall time: the loop's thread holds the GIL throughout, so it is the call's CPU unless
        the OS preempted the process, and then one later batch runs in a thread, is measured
        there and brings the next ones back inline. ``time.thread_time`` is a system call
        (0.9 us here, two per batch; 7% of the event loop's samples at 16 connections in a
        py-spy profile of the demo's model), ``perf_counter`` is not (0.05 us).
        """
        started = clock()
        try:
            return self._predict(columns)
        finally:
            self.last_cpu = clock() - started

    def _fail_waiting(self) -> None:
        for item in self._in_hand:
            _fail(item, ServerUnavailable("the server is shutting down"))
        while self._queue:
            _fail(self._queue.popleft(), ServerUnavailable("the server is shutting down"))


def _settle(waiter: asyncio.Future[bool], changed: bool) -> None:
    if not waiter.done():
        waiter.set_result(changed)


def _resolve(item: Pending, prediction: Prediction) -> None:
    if not item.future.done():  # the client may have gone away meanwhile
        item.future.set_result(prediction)


def _fail(item: Pending, error: ServingError) -> None:
    if not item.future.done():
        item.future.set_exception(error)
