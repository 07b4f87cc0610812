"""An in-memory ObjectStore for unit tests; cluster tests use the real MinIO instead.

It keeps the store's contract that matters to callers: sorted listings, write-once keys
(``if_absent``) and ObjectNotFound for missing keys. It lived in ``continuum.storage`` but
nothing in the product used it.
"""

from __future__ import annotations

import hashlib

from continuum.errors import ObjectExists, ObjectNotFound
from continuum.storage.client import ObjectInfo, ObjectStore
from continuum.storage.settings import S3Settings


class MemoryObjectStore(ObjectStore):
    def __init__(self, bucket: str = "continuum") -> None:
        # Deliberately no S3 client: every method below is served from a dict.
        self.settings = S3Settings(bucket=bucket)
        self.objects: dict[tuple[str, str], bytes] = {}

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        if_absent: bool = False,
        content_type: str = "application/octet-stream",
    ) -> None:
        if if_absent and (self.bucket, key) in self.objects:
            raise ObjectExists(f"s3://{self.bucket}/{key} already exists and is write-once")
        self.objects[(self.bucket, key)] = bytes(data)

    def get_bytes(self, key: str, *, bucket: str | None = None) -> bytes:
        try:
            return self.objects[(bucket or self.bucket, key)]
        except KeyError:
            raise ObjectNotFound(f"s3://{bucket or self.bucket}/{key}: no such object") from None

    def download(self, key: str, path: str, *, bucket: str | None = None) -> int:
        data = self.get_bytes(key, bucket=bucket)
        with open(path, "wb") as sink:
            sink.write(data)
        return len(data)

    def exists(self, key: str, *, bucket: str | None = None) -> bool:
        return (bucket or self.bucket, key) in self.objects

    def list_objects(self, prefix: str, *, bucket: str | None = None) -> list[ObjectInfo]:
        wanted = bucket or self.bucket
        return sorted(
            ObjectInfo(key, hashlib.md5(data).hexdigest(), len(data))  # S3-style ETag
            for (b, key), data in self.objects.items()
            if b == wanted and key.startswith(prefix)
        )

    def list_folders(self, prefix: str, *, bucket: str | None = None) -> list[str]:
        keys = (item.key[len(prefix) :] for item in self.list_objects(prefix, bucket=bucket))
        return sorted({rest.split("/", 1)[0] for rest in keys if "/" in rest})

    def check_bucket(self, bucket: str | None = None) -> None:
        return None
