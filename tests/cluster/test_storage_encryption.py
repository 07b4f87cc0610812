"""Server-side encryption against a real MinIO with a KMS: every object Continuum writes is
stored encrypted, SSE-S3 or SSE-KMS with the key id from spec.storage.encryption.

The cluster's MinIO has no KMS, so the test starts a second MinIO from the same binary on a
free loopback port, in single-key KMS mode (``MINIO_KMS_SECRET_KEY``: one 256-bit key named
``continuum-key``, no external KMS), with its own data directory; stopped afterwards. The
storage code is the one the trainer, the server and the monitor run (``ObjectStore``,
``write_batch``, ``write_report``), and MinIO's HeadObject answer says how each object is
stored.
"""

from __future__ import annotations

import base64
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from continuum.errors import StorageError
from continuum.storage import ObjectStore, S3Settings
from continuum.storage.inference_logs import write_batch
from continuum.storage.reports import write_report
from tests.kit.cluster import store_settings
from tests.kit.minio import private_minio

pytestmark = pytest.mark.cluster

KMS_KEY = "continuum-key"
BUCKET = "encrypted"


@dataclass(frozen=True)
class KmsMinio:
    endpoint: str
    access_key: str
    secret_key: str

    def raw(self) -> Any:
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
        )  # fmt: skip

    def store(self, **encryption: Any) -> ObjectStore:
        settings = S3Settings(
            bucket=BUCKET, endpoint_url=self.endpoint, access_key=self.access_key,
            secret_key=self.secret_key, **encryption,
        )  # fmt: skip
        return ObjectStore(settings)


@pytest.fixture(scope="module")
def kms_minio() -> Iterator[KmsMinio]:
    """A MinIO with a single-key KMS (MINIO_KMS_SECRET_KEY), so SSE-S3 and SSE-KMS work."""
    user, password = "continuum", secrets.token_hex(16)
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    env = {"MINIO_ROOT_USER": user, "MINIO_ROOT_PASSWORD": password,
           "MINIO_KMS_SECRET_KEY": f"{KMS_KEY}:{key}"}  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="continuum-kms-minio-"))
    with private_minio(work, host="127.0.0.1", env=env) as endpoint:
        minio = KmsMinio(endpoint, user, password)
        minio.raw().create_bucket(Bucket=BUCKET)
        yield minio


def stored_as(minio: KmsMinio, key: str) -> tuple[str | None, str | None]:
    head = minio.raw().head_object(Bucket=BUCKET, Key=key)
    return head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")


def every_kind_of_write(store: ObjectStore, prefix: str) -> list[str]:
    """What the workloads write: plain and write-once objects, a log batch, a report."""
    store.put_bytes(f"{prefix}/models/m/1/model.skops", b"\x00model")
    store.put_json(f"{prefix}/models/m/1/manifest.json", {"model": "m"}, if_absent=True)
    moment = datetime(2026, 12, 4, tzinfo=UTC)
    log_key = write_batch(store, f"{prefix}-m", 1, [{"ts": "t", "features": {}}], moment)
    write_report(store, f"{prefix}-mon", "20261204T000000Z", report={"r": 1}, html="<p/>",
                 summary={"status": "Succeeded"})  # fmt: skip
    reports = [item.key for item in store.list_objects(f"reports/{prefix}-mon/")]
    assert len(reports) == 3
    return [f"{prefix}/models/m/1/model.skops", f"{prefix}/models/m/1/manifest.json", log_key,
            *reports]  # fmt: skip


def test_sse_s3_encrypts_every_object_written(kms_minio):
    store = kms_minio.store(sse="SSE-S3")
    keys = every_kind_of_write(store, "s3")
    assert {key: stored_as(kms_minio, key) for key in keys} == dict.fromkeys(keys, ("AES256", None))
    assert store.get_json("s3/models/m/1/manifest.json") == {"model": "m"}  # reads back


def test_sse_kms_uses_the_named_key(kms_minio):
    store = kms_minio.store(sse="SSE-KMS", sse_kms_key_id=KMS_KEY)
    keys = every_kind_of_write(store, "kms")
    for key in keys:
        algorithm, key_id = stored_as(kms_minio, key)
        assert algorithm == "aws:kms", key
        assert key_id is not None
        assert key_id.endswith(KMS_KEY), key_id


def test_without_encryption_nothing_is_asked_for(kms_minio):
    store = kms_minio.store()
    store.put_bytes("plain/x", b"x")
    assert stored_as(kms_minio, "plain/x") == (None, None)


def test_an_unknown_kms_key_is_refused_with_the_servers_reason(kms_minio):
    store = kms_minio.store(sse="SSE-KMS", sse_kms_key_id="no-such-key")
    with pytest.raises(StorageError, match="cannot write s3://encrypted/bad/x") as caught:
        store.put_bytes("bad/x", b"x")
    assert "asked for SSE-KMS encryption (spec.storage.encryption)" in str(caught.value)


def test_a_server_without_kms_refuses_saying_where_encryption_was_asked_for(s3, s3_bucket):
    store = ObjectStore(store_settings(s3, s3_bucket, sse="SSE-S3"))
    with pytest.raises(StorageError, match="KMS is not configured") as caught:
        store.put_bytes("x", b"x")
    assert "asked for SSE-S3 encryption (spec.storage.encryption)" in str(caught.value)
    assert not store.exists("x")
