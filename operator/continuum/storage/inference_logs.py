"""Inference log batches: where the model server writes them and how the monitor reads them.

::

    inference-logs/<model>/<version>/<YYYY-MM-DD>/<YYYYMMDDTHHMMSS.ffffffZ>-<uuid>.jsonl

One object per flushed batch, UTC dates, so a time window is a listing of a few date folders
and the keys sort by time. Each line is one logged row (JSON object)::

    {"ts": "2025-01-31T12:00:00.123456Z",  # when the server answered (UTC)
     "request_id": "…",                   # the request's id, or one the server generated
     "row": 0,                             # the row's index within its request (0-based);
                                           # absent in rows logged before 2026-12-04
     "model": "churn", "version": 3,
     "features": {"tenure": 12.0, "plan": "basic", …},   # null where a value was missing
     "prediction": "yes",                  # label or regression value
     "proba": [0.2, 0.8]}                  # classifiers with probabilities only,
                                           # in the manifest's class order
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from continuum.errors import StorageError
from continuum.storage.client import ObjectStore
from continuum.storage.layout import inference_log_prefix, inference_logs_prefix, parse_version

CONTENT_TYPE = "application/x-ndjson"
SUFFIX = ".jsonl"


def batch_key(model: str, version: int, when: datetime, batch_id: str | None = None) -> str:
    """Key of a new log batch written at ``when`` (made UTC)."""
    moment = when.astimezone(UTC)
    name = f"{moment:%Y%m%dT%H%M%S.%f}Z-{batch_id or uuid.uuid4().hex}{SUFFIX}"
    return f"{inference_log_prefix(model, version)}{moment:%Y-%m-%d}/{name}"


def encode_rows(rows: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(json.dumps(row, separators=(",", ":")).encode() + b"\n" for row in rows)


def decode_rows(data: bytes, where: str = "inference log batch") -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in data.splitlines() if line.strip()]
    except ValueError as exc:
        raise StorageError(f"{where} is not JSON lines: {exc}") from exc


def write_batch(
    store: ObjectStore,
    model: str,
    version: int,
    rows: Iterable[Mapping[str, Any]],
    when: datetime,
) -> str:
    """Write one batch (write-once key) and return its key."""
    key = batch_key(model, version, when)
    store.put_bytes(key, encode_rows(rows), if_absent=True, content_type=CONTENT_TYPE)
    return key


def logged_versions(store: ObjectStore, model: str) -> list[int]:
    """The versions of ``model`` with an inference log folder, oldest first."""
    folders = store.list_folders(inference_logs_prefix(model))
    return sorted(n for n in map(parse_version, folders) if n is not None)


def list_batches(store: ObjectStore, model: str, version: int) -> list[str]:
    """Keys of every log batch of a model version, oldest first."""
    prefix = inference_log_prefix(model, version)
    return [item.key for item in store.list_objects(prefix) if item.key.endswith(SUFFIX)]


def batch_time(key: str) -> datetime | None:
    """When a batch was written, from its key (:func:`batch_key`); None for another name."""
    stamp = key.rsplit("/", 1)[-1].split("Z-", 1)[0]
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)
    except ValueError:
        return None


def list_batches_since(store: ObjectStore, model: str, version: int, since: datetime) -> list[str]:
    """Keys of the batches that can hold rows answered after ``since``, oldest first.

    A batch is written after every row in it was answered, so a batch written before
    ``since`` holds none of them and is not read; a key whose time cannot be read is kept.
    """
    keys = list_batches(store, model, version)
    return [key for key in keys if (moment := batch_time(key)) is None or moment >= since]


def read_batch(store: ObjectStore, key: str) -> list[dict[str, Any]]:
    return decode_rows(store.get_bytes(key), where=f"s3://{store.bucket}/{key}")
