"""Loading the training dataset from S3 and fingerprinting exactly what was read."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pandas as pd

from continuum.api import Dataset
from continuum.errors import DatasetInvalid, DatasetTooLarge
from continuum.storage import ObjectInfo, ObjectStore, list_dataset_objects, parse_s3_uri

MEMORY = "memory"
STREAM = "stream"
HASH_PIECE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class LoadedDataset:
    frame: pd.DataFrame
    fingerprint: str
    objects: tuple[ObjectInfo, ...]

    @property
    def rows(self) -> int:
        return len(self.frame)


def load_dataset(
    store: ObjectStore,
    source: Dataset,
    *,
    max_bytes: int,
    objects: Sequence[ObjectInfo] | None = None,
) -> LoadedDataset:
    """Read every object at ``source.uri`` (sorted by key) into one frame."""
    objects = list(objects) if objects is not None else list_dataset_objects(store, source.uri)
    check_size(objects, source.uri, max_bytes)
    bucket = parse_s3_uri(source.uri).bucket
    content = hashlib.sha256()
    frames = []
    for item in objects:
        data = store.get_bytes(item.key, bucket=bucket)
        content.update(data)
        frames.append(parse_object(data, item.key, source.format))
    frame = concat_same_columns(frames, [item.key for item in objects])
    return LoadedDataset(frame, fingerprint(objects, content.hexdigest()), tuple(objects))


def choose_mode(source: Dataset, objects: Sequence[ObjectInfo], max_bytes: int) -> str:
    """``memory`` or ``stream``, as ``source.mode`` asks; ``auto`` streams a Parquet dataset
    larger than the in-memory limit (CONTINUUM_MAX_DATASET_BYTES) and reads the rest in memory.
    """
    if source.mode == STREAM:
        return STREAM
    total = sum(item.size for item in objects)
    if source.mode == "auto" and total > max_bytes and source.format == "parquet":
        return STREAM
    check_size(objects, source.uri, max_bytes)
    return MEMORY


def check_size(objects: Sequence[ObjectInfo], uri: str, max_bytes: int) -> None:
    total = sum(item.size for item in objects)
    if total > max_bytes:
        raise DatasetTooLarge(
            f"dataset at {uri} is {total} bytes in {len(objects)} object(s), over the trainer's "
            f"limit of {max_bytes} bytes for reading it in memory: store it as Parquet and set "
            "spec.dataset.mode to stream (or auto), sample it, or raise "
            "CONTINUUM_MAX_DATASET_BYTES and the Job's memory together"
        )


class Downloads:
    """The dataset's objects copied one by one to ``directory`` as they are iterated, each
    hashed into the content digest on the way: the fingerprint of a streamed dataset is the one
    :func:`load_dataset` computes, from one read of every byte.

    Iterating yields local paths; :attr:`paths` and :meth:`fingerprint` hold once it is done.
    """

    def __init__(self, store: ObjectStore, uri: str, objects: Sequence[ObjectInfo], directory: str):
        self.store, self.objects, self.directory = store, tuple(objects), directory
        self.bucket = parse_s3_uri(uri).bucket
        self.paths: list[str] = []
        self._content = hashlib.sha256()

    def __iter__(self) -> Iterator[str]:
        for position in range(len(self.objects)):
            yield self.get(position)

    def get(self, position: int) -> str:
        """The local copy of object ``position``, downloaded and hashed on first use."""
        if position < len(self.paths):
            return self.paths[position]
        if position != len(self.paths):
            raise ValueError("objects are downloaded in key order")
        path = os.path.join(self.directory, f"{position:06d}.data")
        self.store.download(self.objects[position].key, path, bucket=self.bucket)
        with open(path, "rb") as copy:
            for piece in iter(lambda: copy.read(HASH_PIECE_BYTES), b""):
                self._content.update(piece)
        self.paths.append(path)
        return path

    def fingerprint(self) -> str:
        if len(self.paths) != len(self.objects):
            raise ValueError("the fingerprint needs every object downloaded")
        return fingerprint(self.objects, self._content.hexdigest())


def fingerprint(objects: Sequence[ObjectInfo], content_sha256: str) -> str:
    """sha256 over the sorted (key, etag, size) list and the sha256 of all bytes read."""
    listing = [[item.key, item.etag, item.size] for item in sorted(objects)]
    payload = json.dumps({"objects": listing, "content": content_sha256}, sort_keys=True)
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


def parse_object(data: bytes, key: str, data_format: str) -> pd.DataFrame:
    try:
        if data_format == "parquet":
            return pd.read_parquet(io.BytesIO(data))
        return pd.read_csv(io.BytesIO(data))
    except Exception as exc:  # pandas/pyarrow raise many types for malformed input
        raise DatasetInvalid(
            None, f"object {key} is not valid {data_format}: {exc}; check spec.dataset.format"
        ) from exc


def concat_same_columns(frames: Sequence[pd.DataFrame], keys: Sequence[str]) -> pd.DataFrame:
    """Stack the objects' rows; all objects must have the first object's columns."""
    expected = list(frames[0].columns)
    for frame, key in zip(frames, keys, strict=True):
        if sorted(frame.columns) != sorted(expected):
            missing = sorted(set(expected) - set(frame.columns))
            extra = sorted(set(frame.columns) - set(expected))
            raise DatasetInvalid(
                None,
                f"object {key} has different columns than {keys[0]} (missing {missing}, "
                f"extra {extra}); every object under the prefix must share one schema",
            )
    return pd.concat([f[expected] for f in frames], ignore_index=True)
