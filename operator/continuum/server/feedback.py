"""Labels posted to the model server: ``POST /v2/models/{name}[/versions/{v}]/feedback``.

The body is ``{"labels": [{"id": …, "row": 0, "label": …, "time": …}, …]}`` (or one such
label object on its own), the columns of a label file (:mod:`continuum.storage.labels`,
docs/feedback.md). Each label is checked as a label file's row is, against the served model's
classes (or as a finite number for a regressor); a bad one is refused and named
(``labels[3]: label 'maybe' is not a class of the model ...``), the others are kept.

Kept labels are buffered and written to ``labels/<model>/feedback/<date>/<batch>.jsonl`` by
the inference log's own write-behind machinery (:class:`continuum.server.inference_log.
BatchWriter`: same flush rows and seconds, same buffer size, same retry every flush interval
while S3 is down), with one difference that makes the loss guarantee stronger: rows taken by a
write that is still in flight keep their room in the buffer (``hold_in_flight``), so a failed
write always fits back and no accepted label is lost while the server runs. When the buffer is
full the whole request is refused with 503 (nothing of it kept) and the client can retry; only
the last write at shutdown can lose labels, counted as ``write_failed``. A label without
``time`` gets the time it was received, so a label posted later wins the duplicate rule over
an earlier one for the same prediction.

Answers: 200 ``{"accepted": n, "rejected": m, "problems": [...]}`` when any label was kept or
none was bad; 422 with the same body when every label was refused; 400 for a body that is not
JSON or holds no labels; 503 when the buffer is full.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from continuum.server.errors import RequestInvalid, ServerUnavailable
from continuum.server.inference_log import BatchWriter, RowBuffer, utc_timestamp
from continuum.server.metrics import ServerMetrics
from continuum.server.model import ServedModel
from continuum.server.settings import InferenceLogSettings
from continuum.storage import ObjectStore
from continuum.storage.labels import (
    ID,
    LABEL,
    ROW,
    TIME,
    Labels,
    LabelSchema,
    check_table,
    empty_frame,
    write_feedback,
)

FEEDBACK = "feedback"  # the endpoint (label of the request metrics)


@dataclass(frozen=True)
class LabelBatch:
    """The kept labels of one request, as the JSON lines they are written as."""

    lines: list[dict[str, Any]]

    @property
    def rows(self) -> int:
        return len(self.lines)


@dataclass(frozen=True)
class Verdict:
    status: int
    body: dict[str, Any]
    kept: list[dict[str, Any]]  # the labels kept, as written (a rollout scores both versions)


class FeedbackWriter:
    def __init__(
        self,
        store: ObjectStore,
        model: ServedModel,
        settings: InferenceLogSettings,
        metrics: ServerMetrics,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.schema = LabelSchema(model.classes)
        self.metrics = metrics
        self.buffer: RowBuffer[LabelBatch] = RowBuffer(settings.buffer_rows, hold_in_flight=True)
        self._now = now
        self.writer = BatchWriter(
            "feedback", self.buffer, settings,
            encode=lambda batches: [line for batch in batches for line in batch.lines],
            write=lambda rows, when: write_feedback(store, model.name, rows, when),
            written=metrics.feedback_written, dropped=metrics.feedback_dropped, now=now,
        )  # fmt: skip

    def receive(self, body: bytes) -> Verdict:
        """Check the posted labels and buffer the good ones (module doc); never blocks."""
        items = _items(body)
        into = Labels(empty_frame())
        raw, numbers = _objects(items, into)
        frame = check_table(
            raw, "labels", self.schema, into, lambda n: f"labels[{n - 1}]", lines=numbers
        )
        lines = self._lines(frame)
        if lines and not self.writer.offer(LabelBatch(lines)):
            self.metrics.feedback_received("refused", len(items))
            raise ServerUnavailable(
                f"feedback buffer full ({self.buffer.capacity} labels waiting for S3): none of "
                "this request's labels were kept; retry later"
            )
        self.metrics.feedback_received("accepted", len(lines))
        self.metrics.feedback_received("rejected", into.rejected)
        status = 422 if into.rejected and not lines else 200
        problems = sorted(into.problems, key=_item_number)  # in the order of the items
        body_out = {"accepted": len(lines), "rejected": into.rejected, "problems": problems}
        return Verdict(status, body_out, lines)

    def _lines(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        received = utc_timestamp(self._now())
        times = [received if pd.isna(t) else utc_timestamp(t) for t in frame[TIME].tolist()]
        return [
            {"id": i, "row": r, "label": label, "time": t}
            for i, r, label, t in zip(
                frame[ID].tolist(), frame[ROW].tolist(), frame[LABEL].tolist(), times, strict=True
            )
        ]

    def start(self) -> None:
        self.writer.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.writer.stop(timeout)


def _item_number(problem: str) -> int:
    head = problem.partition("]")[0]
    number = head.removeprefix("labels[")
    return int(number) if number.isdigit() else -1


def _items(body: bytes) -> list[Any]:
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestInvalid(f"feedback body is not JSON: {exc}") from exc
    if isinstance(message, dict) and "labels" not in message and ID in message:
        return [message]  # one label on its own
    labels = message.get("labels") if isinstance(message, dict) else None
    if not isinstance(labels, list) or not labels:
        raise RequestInvalid(
            'feedback body must be {"labels": [{"id": ..., "label": ...}, ...]} '
            "(or one label object) with at least one label"
        )
    return labels


def _objects(items: list[Any], into: Labels) -> tuple[pd.DataFrame, list[int]]:
    """The items that are JSON objects, as a table numbered by their place in the list."""
    kept, numbers = [], []
    for number, item in enumerate(items, start=1):
        if isinstance(item, dict):
            kept.append(item)
            numbers.append(number)
        else:
            into.reject(f"labels[{number - 1}]: not a JSON object")
    return (pd.DataFrame.from_records(kept) if kept else pd.DataFrame()), numbers
