"""Finding the objects a dataset URI stands for: one key, or every object under a prefix."""

from __future__ import annotations

import posixpath

from continuum.errors import DatasetNotFound
from continuum.storage.client import ObjectInfo, ObjectStore
from continuum.storage.layout import parse_s3_uri


def list_dataset_objects(store: ObjectStore, uri: str) -> list[ObjectInfo]:
    """The data objects at ``uri``, sorted by key; DatasetNotFound if there are none.

    ``s3://b/data.csv`` names one object; ``s3://b/data/`` (or ``s3://b/data`` when no such
    object exists) means every object under that prefix.
    """
    parsed = parse_s3_uri(uri)
    candidates = store.list_objects(parsed.key, bucket=parsed.bucket)
    exact = [item for item in candidates if item.key == parsed.key]
    if exact and not parsed.key.endswith("/"):
        return exact
    folder = parsed.key if parsed.key.endswith("/") or not parsed.key else parsed.key + "/"
    found = [item for item in candidates if item.key.startswith(folder) and _is_data(item)]
    if not found:
        raise DatasetNotFound(
            f"no dataset objects at {uri}: check spec.dataset.uri (a key, or a prefix ending "
            "in '/') and that the files were uploaded to that bucket"
        )
    return found


def _is_data(item: ObjectInfo) -> bool:
    # Skip folder markers and the _SUCCESS / .crc side files that Spark and Hadoop write.
    name = posixpath.basename(item.key)
    return bool(name) and not name.startswith(("_", "."))
