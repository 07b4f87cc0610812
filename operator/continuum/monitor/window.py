"""The current window: the newest logged rows of the served version, read with bounded memory.

Batches are listed (keys sort by time), then read newest first, one at a time, keeping only
the feature values and the prediction of each row, until ``max_rows`` rows are held. Nothing
older is downloaded, so memory grows with ``max_rows``, never with the log's size. The window
is "the newest N rows", not a random sample; the report says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from continuum.storage import ObjectStore
from continuum.storage.inference_logs import list_batches, read_batch

PREDICTION = "__prediction__"  # a column name no feature can have (not a valid column name)
STRATEGY = "newest"


@dataclass(frozen=True)
class CurrentWindow:
    frame: pd.DataFrame  # one column per feature, plus PREDICTION
    batches_read: int
    batches_total: int
    truncated: bool  # older rows exist that the window left out
    oldest: str | None  # "ts" of the oldest and newest row read
    newest: str | None

    @property
    def rows(self) -> int:
        return len(self.frame)

    def describe(self, max_rows: int) -> dict[str, Any]:
        return {
            "strategy": STRATEGY,
            "description": f"newest {self.rows} rows (at most {max_rows})",
            "sampled": False,
            "truncated": self.truncated,
            "maxRows": max_rows,
            "rows": self.rows,
            "batchesRead": self.batches_read,
            "batchesTotal": self.batches_total,
            "oldest": self.oldest,
            "newest": self.newest,
        }


def read_window(
    store: ObjectStore, model: str, version: int, features: Sequence[str], max_rows: int
) -> CurrentWindow:
    keys = list_batches(store, model, version)
    batches = (read_batch(store, key) for key in reversed(keys))
    collector = _Collector(features, max_rows)
    read = collector.consume(batches)
    return CurrentWindow(
        frame=collector.frame(),
        batches_read=read,
        batches_total=len(keys),
        truncated=collector.full and (collector.left_over or read < len(keys)),
        oldest=collector.oldest,
        newest=collector.newest,
    )


class _Collector:
    """Columnar buffers for at most ``limit`` rows, filled newest row first."""

    def __init__(self, features: Sequence[str], limit: int) -> None:
        self.limit = limit
        self.columns: dict[str, list[Any]] = {name: [] for name in features}
        self.predictions: list[Any] = []
        self.left_over = False
        self.oldest: str | None = None
        self.newest: str | None = None

    @property
    def full(self) -> bool:
        return len(self.predictions) >= self.limit

    def consume(self, batches: Iterable[list[dict[str, Any]]]) -> int:
        """Take rows from the batches (newest batch first) until full; return batches read."""
        read = 0
        for rows in batches:
            read += 1
            self.take(reversed(rows))  # rows in a batch are in time order
            if self.full:
                break
        return read

    def take(self, rows: Iterator[dict[str, Any]]) -> None:
        for row in rows:
            if self.full:
                self.left_over = True
                return
            self.add(row)

    def add(self, row: Mapping[str, Any]) -> None:
        features = row.get("features") or {}
        for name, values in self.columns.items():
            values.append(features.get(name))
        self.predictions.append(row.get("prediction"))
        stamp = row.get("ts")
        if isinstance(stamp, str):
            self.newest = self.newest or stamp
            self.oldest = stamp

    def frame(self) -> pd.DataFrame:
        # Oldest first, like the log; the order matters to nobody but reads naturally.
        data = {name: values[::-1] for name, values in self.columns.items()}
        data[PREDICTION] = self.predictions[::-1]
        return pd.DataFrame(data)
