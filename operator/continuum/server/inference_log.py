"""Sampled copies of served rows and predictions, written to S3 off the request path.

The request path only samples rows and appends one record to a bounded in-memory buffer
(:class:`RowBuffer`); a background thread formats and writes batches through
:mod:`continuum.storage.inference_logs` (row format documented there) when ``flush_rows``
rows are waiting or ``flush_seconds`` have passed, and once more on shutdown.

While S3 is down the buffer is the outage buffer: a batch that cannot be written goes back
into it (ahead of newer rows), the writer retries only every ``flush_seconds``, and rows are
dropped only when the buffer holds ``buffer_rows`` — new rows are then refused, never waited
for, and counted in ``continuum_server_inference_log_dropped_rows_total{reason="buffer_full"}``.
So an outage loses at most the rows sampled during it beyond ``buffer_rows`` (less one
request's rows, as a request's rows are kept or dropped together). Only the last write at
shutdown has no later chance; its rows are counted with ``reason="write_failed"``, as are
rows that cannot be encoded.

What is kept of each feature follows ``spec.inferenceLog`` (:mod:`continuum.storage.privacy`):
a dropped feature never enters the buffer (it is left out when the request's rows are
sampled), a hashed one is buffered as served and hashed by the writer thread, off the request
path, before anything is written. Labels posted as feedback carry no features.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from continuum.errors import StorageError
from continuum.server.inputs import FeatureRows
from continuum.server.metrics import ServerMetrics
from continuum.server.model import Prediction
from continuum.server.settings import InferenceLogSettings
from continuum.storage import ObjectStore
from continuum.storage.inference_logs import write_batch
from continuum.storage.privacy import LogPolicy

log = logging.getLogger(__name__)
NO_POLICY = LogPolicy()


@dataclass(frozen=True)
class LogRecord:
    """The sampled rows of one request, still as arrays (formatted by the writer thread)."""

    ts: str
    request_id: str
    columns: dict[str, np.ndarray]
    labels: np.ndarray
    proba: np.ndarray | None
    # Each kept row's index within its request; None: every row was kept (0, 1, ...).
    positions: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return len(self.labels)


class Rows(Protocol):
    """A buffered record: it knows how many rows (log rows, labels) it holds."""

    @property
    def rows(self) -> int: ...


Record = TypeVar("Record", bound=Rows)


class RowBuffer(Generic[Record]):
    """A thread-safe buffer that holds at most ``capacity`` rows and refuses the excess.

    With ``hold_in_flight``, rows taken by a write still count against ``capacity`` until the
    write is :meth:`settled` or its records are restored, so a failed write always fits back
    and nothing once accepted is lost (the feedback labels); without it (the inference log)
    new rows may fill the room meanwhile and a restore gives up the oldest.
    """

    def __init__(self, capacity: int, *, hold_in_flight: bool = False) -> None:
        self.capacity = capacity
        self.hold_in_flight = hold_in_flight
        self._records: deque[Record] = deque()
        self._rows = 0
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def rows(self) -> int:
        return self._rows

    def offer(self, record: Record) -> bool:
        with self._lock:
            if self._rows + self._in_flight + record.rows > self.capacity:
                return False
            self._records.append(record)
            self._rows += record.rows
            return True

    def take(self) -> list[Record]:
        with self._lock:
            records, self._records = list(self._records), deque()
            if self.hold_in_flight:
                self._in_flight += self._rows
            self._rows = 0
            return records

    def settled(self, records: list[Record]) -> None:
        """The write of ``records`` (from :meth:`take`) is done: their room is free again."""
        if self.hold_in_flight:
            with self._lock:
                self._in_flight -= sum(record.rows for record in records)

    def restore(self, records: list[Record]) -> int:
        """Put back what a failed write took, ahead of newer rows, as far as it fits.

        When not all fit, the oldest records are the ones left out; returns their rows.
        """
        self.settled(records)
        with self._lock:
            room = self.capacity - self._rows - self._in_flight
            kept: list[Record] = []
            for record in reversed(records):
                if record.rows > room:
                    break
                kept.append(record)
                room -= record.rows
            self._records.extendleft(kept)  # kept is newest first: extendleft restores order
            kept_rows = sum(record.rows for record in kept)
            self._rows += kept_rows
            return sum(record.rows for record in records) - kept_rows


def sample_mask(n_rows: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    if rate >= 1.0:
        return np.ones(n_rows, dtype=bool)
    return rng.random(n_rows) < rate


def json_rows(
    record: LogRecord, model: str, version: int, policy: LogPolicy = NO_POLICY
) -> list[dict[str, Any]]:
    """The log lines of one record (see continuum.storage.inference_logs for the format),
    hashed features hashed (``policy``)."""
    features = {name: policy.apply(name, _plain(column)) for name, column in record.columns.items()}
    labels = _plain(record.labels)
    probas = record.proba.tolist() if record.proba is not None else None
    positions = range(record.rows) if record.positions is None else record.positions.tolist()
    rows = []
    for i, position in enumerate(positions):
        row = {
            "ts": record.ts,
            "request_id": record.request_id,
            "row": position,
            "model": model,
            "version": version,
            "features": {name: values[i] for name, values in features.items()},
            "prediction": labels[i],
        }
        if probas is not None:
            row["proba"] = probas[i]
        rows.append(row)
    return rows


def _plain(values: np.ndarray) -> list[Any]:
    # JSON has no NaN: a missing value is logged as null.
    return [None if isinstance(v, float) and math.isnan(v) else v for v in values.tolist()]


def utc_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class BatchWriter(Generic[Record]):
    """Write-behind of buffered records to S3 from a background thread (module doc).

    Shared by the inference log and the feedback labels (:mod:`continuum.server.feedback`),
    so both have the same loss guarantees: ``encode`` turns taken records into JSON rows,
    ``write`` stores them as one batch (returns its key), ``written``/``dropped`` count.
    """

    def __init__(
        self,
        what: str,
        buffer: RowBuffer[Record],
        settings: InferenceLogSettings,
        *,
        encode: Callable[[list[Record]], list[dict[str, Any]]],
        write: Callable[[list[dict[str, Any]], datetime], str],
        written: Callable[[int], None],
        dropped: Callable[[int, str], None],
        now: Callable[[], datetime],
    ) -> None:
        self.what, self.buffer, self.settings = what, buffer, settings
        self._encode, self._write = encode, write
        self._written, self._dropped = written, dropped
        self._now = now
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # The last write failed: wait for the next flush_seconds tick instead of retrying on
        # every request while S3 is down.
        self._s3_down = False

    def offer(self, record: Record) -> bool:
        """Buffer ``record``; False (nothing kept) when the buffer is full. Never blocks."""
        if not self.buffer.offer(record):
            return False
        if not self._s3_down and self.buffer.rows >= self.settings.flush_rows:
            self._wake.set()
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.what, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the writer thread and write what is still buffered."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.flush(last=True)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stopping.is_set():
            self._wake.wait(max(0.0, last + self.settings.flush_seconds - time.monotonic()))
            self._wake.clear()
            due = time.monotonic() - last >= self.settings.flush_seconds
            if due or (not self._s3_down and self.buffer.rows >= self.settings.flush_rows):
                self.flush()
                last = time.monotonic()

    def flush(self, *, last: bool = False) -> int:
        """Write every buffered row as one batch; returns the rows written (0 on failure).

        A failed batch goes back into the buffer for the next try, unless this is the
        ``last`` flush (shutdown): then its rows are dropped and counted.
        """
        records = self.buffer.take()
        try:
            rows = self._encode(records)
            if not rows:
                self.buffer.settled(records)
                return 0
            key = self._write(rows, self._now())
        except StorageError as exc:  # S3 down or refusing: keep the rows, keep serving
            self._s3_down = True
            taken = sum(record.rows for record in records)
            lost = taken if last else self.buffer.restore(records)
            if last:
                self.buffer.settled(records)
            if lost:
                self._dropped(lost, "write_failed" if last else "buffer_full")
            log.warning("%s: write of %d rows failed (%d dropped, %d kept): %s",
                        self.what, taken, lost, self.buffer.rows, exc)  # fmt: skip
            return 0
        except Exception as exc:  # rows that cannot be encoded would fail every retry too
            self.buffer.settled(records)
            lost = sum(record.rows for record in records)
            self._dropped(lost, "write_failed")
            log.warning("%s: dropped %d rows, write failed: %s", self.what, lost, exc)
            return 0
        self.buffer.settled(records)
        self._s3_down = False
        self._written(len(rows))
        log.debug("%s: wrote %d rows to %s", self.what, len(rows), key)
        return len(rows)


class InferenceLogger:
    def __init__(
        self,
        store: ObjectStore,
        model: str,
        version: int,
        settings: InferenceLogSettings,
        metrics: ServerMetrics,
        *,
        rng: np.random.Generator | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.model, self.version = store, model, version
        self.settings = settings
        self.metrics = metrics
        self.buffer: RowBuffer[LogRecord] = RowBuffer(settings.buffer_rows)
        self._rng = rng or np.random.default_rng()
        self._now = now
        self.writer = BatchWriter(
            "inference log", self.buffer, settings, encode=self._lines,
            write=lambda rows, when: write_batch(store, model, version, rows, when),
            written=metrics.log_written, dropped=metrics.log_dropped, now=now,
        )  # fmt: skip

    def _lines(self, records: list[LogRecord]) -> list[dict[str, Any]]:
        policy, model, version = self.settings.policy, self.model, self.version
        return [line for record in records for line in json_rows(record, model, version, policy)]

    def check_policy(self, features: tuple[str, ...]) -> list[str]:
        """Warn about drop/hash names the model has no feature of (a typo would log the
        feature it meant in full); returns them."""
        unknown = self.settings.policy.unknown(features)
        if unknown:
            log.warning(
                "spec.inferenceLog drop/hash name %s, not features of %s/%d (features: %s): "
                "nothing is dropped or hashed for them; check the spelling",
                unknown, self.model, self.version, ", ".join(features),
            )  # fmt: skip
        return unknown

    def log(self, request_id: str, rows: FeatureRows, prediction: Prediction) -> None:
        """Sample and buffer one request's rows; cheap and never blocking (request path)."""
        mask = sample_mask(rows.n_rows, self.settings.sample_rate, self._rng)
        if not mask.any():
            return
        keeps = self.settings.policy.keeps
        record = LogRecord(
            ts=utc_timestamp(self._now()),
            request_id=request_id,
            columns={name: column[mask] for name, column in rows.columns.items() if keeps(name)},
            labels=prediction.labels[mask],
            proba=None if prediction.proba is None else prediction.proba[mask],
            positions=None if mask.all() else np.flatnonzero(mask),
        )
        if not self.writer.offer(record):
            self.metrics.log_dropped(record.rows, "buffer_full")

    def start(self) -> None:
        self.writer.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the writer thread and write what is still buffered."""
        self.writer.stop(timeout)

    def flush(self, *, last: bool = False) -> int:
        """Write every buffered row as one batch (:meth:`BatchWriter.flush`)."""
        return self.writer.flush(last=last)
