"""The only code that calls boto3: a small, typed object store over one S3 client.

Every botocore failure is turned into an error of :mod:`continuum.errors` whose message names
the bucket/key/endpoint involved and what to check, never a credential.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from botocore.exceptions import NoCredentialsError as _NoCredentialsError

from continuum.errors import AccessDenied, AlreadyExists, ObjectNotFound, StorageError
from continuum.storage.settings import S3Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_DENIED_CODES = frozenset(
    {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}
)
# Which credential is wrong, by the error code S3 answers a request signed with it.
_WRONG_CREDENTIAL = {
    "InvalidAccessKeyId": "the S3 server does not know the access key ID (AWS_ACCESS_KEY_ID)",
    "SignatureDoesNotMatch": (
        "the secret key (AWS_SECRET_ACCESS_KEY) does not match the access key ID"
    ),
}
# 412: our If-None-Match precondition failed; 409: a concurrent conditional write won the race.
_EXISTS_CODES = frozenset({"412", "PreconditionFailed", "409", "ConditionalRequestConflict"})


@dataclass(frozen=True, order=True)
class ObjectInfo:
    """One listed object: what the dataset fingerprint is computed from."""

    key: str
    etag: str
    size: int


class ObjectStore:
    """Reads and writes objects; the default bucket is the artefact bucket of the settings."""

    def __init__(self, settings: S3Settings, client: S3Client | None = None) -> None:
        self.settings = settings
        self._client = client if client is not None else make_client(settings)

    @property
    def bucket(self) -> str:
        return self.settings.bucket

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        if_absent: bool = False,
        content_type: str = "application/octet-stream",
    ) -> None:
        """Write ``data``; with ``if_absent`` the write fails (AlreadyExists) if ``key`` exists."""
        with self._errors("write", self.bucket, key):
            if if_absent:
                self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                    IfNoneMatch="*",
                )  # fmt: skip
            else:
                self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
                )

    def get_bytes(self, key: str, *, bucket: str | None = None) -> bytes:
        bucket = bucket or self.bucket
        with self._errors("read", bucket, key):
            return self._client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def put_json(self, key: str, value: Any, *, if_absent: bool = False) -> None:
        data = json.dumps(value, indent=2, sort_keys=True).encode()
        self.put_bytes(key, data, if_absent=if_absent, content_type="application/json")

    def get_json(self, key: str, *, bucket: str | None = None) -> Any:
        data = self.get_bytes(key, bucket=bucket)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise StorageError(f"s3://{bucket or self.bucket}/{key} is not JSON: {exc}") from exc

    def exists(self, key: str, *, bucket: str | None = None) -> bool:
        bucket = bucket or self.bucket
        try:
            with self._errors("inspect", bucket, key):
                self._client.head_object(Bucket=bucket, Key=key)
        except ObjectNotFound:
            return False
        return True

    def list_objects(self, prefix: str, *, bucket: str | None = None) -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix``, sorted by key."""
        bucket = bucket or self.bucket
        paginator = self._client.get_paginator("list_objects_v2")
        found: list[ObjectInfo] = []
        with self._errors("list", bucket, prefix):
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                found.extend(_object_info(item) for item in page.get("Contents", []))
        return sorted(found)

    def list_folders(self, prefix: str, *, bucket: str | None = None) -> list[str]:
        """Names of the immediate "sub-folders" under ``prefix`` (which must end with '/')."""
        bucket = bucket or self.bucket
        paginator = self._client.get_paginator("list_objects_v2")
        names: list[str] = []
        with self._errors("list", bucket, prefix):
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
                for common in page.get("CommonPrefixes", []):
                    names.append(common.get("Prefix", "")[len(prefix) :].rstrip("/"))
        return sorted(names)

    def check_bucket(self, bucket: str | None = None) -> None:
        """Fail early, with a message naming the problem, if the bucket cannot be used."""
        bucket = bucket or self.bucket
        try:
            with self._errors("open bucket", bucket, ""):
                self._client.head_bucket(Bucket=bucket)
        except ObjectNotFound as exc:  # HEAD answers a bare 404, without "NoSuchBucket"
            raise ObjectNotFound(
                f"bucket {bucket!r} does not exist: create it or fix the bucket name"
            ) from exc
        except AccessDenied:
            # ... and a bare 403: a one-key listing tells a wrong access key from a wrong
            # secret key (or a missing permission); if it works, the HEAD's answer stands.
            with self._errors("open bucket", bucket, ""):
                self._client.list_objects_v2(Bucket=bucket, MaxKeys=1)
            raise

    @contextmanager
    def _errors(self, action: str, bucket: str, key: str) -> Iterator[None]:
        try:
            yield
        except ClientError as exc:
            raise _map_client_error(exc, action, bucket, key) from exc
        except (EndpointConnectionError, _NoCredentialsError, BotoCoreError) as exc:
            raise _map_transport_error(exc, self.settings) from exc


def make_client(settings: S3Settings) -> S3Client:
    """A boto3 S3 client for MinIO or AWS: path-style addressing, bounded retries/timeouts."""
    config = Config(
        s3={"addressing_style": "path"},
        retries={"max_attempts": 4, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        # Many S3-compatible servers reject the newer default CRC trailers; we verify our
        # artefacts with our own sha256 anyway.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
        aws_session_token=settings.session_token,
        verify=settings.ca_bundle if settings.ca_bundle else True,
        config=config,
    )


def _object_info(item: Any) -> ObjectInfo:
    return ObjectInfo(key=item["Key"], etag=str(item.get("ETag", "")).strip('"'), size=item["Size"])


def _map_client_error(exc: ClientError, action: str, bucket: str, key: str) -> StorageError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    where = f"s3://{bucket}/{key}"
    if code == "NoSuchBucket":
        return ObjectNotFound(f"bucket {bucket!r} does not exist: create it or fix the bucket name")
    if code in _NOT_FOUND_CODES or status == "404":
        return ObjectNotFound(f"cannot {action} {where}: no such object")
    if code in _WRONG_CREDENTIAL:
        return AccessDenied(f"cannot {action} {where}: {_WRONG_CREDENTIAL[code]} ({code}); "
                            "check the credentials in the storage Secret")  # fmt: skip
    if code in _DENIED_CODES or status == "403":
        return AccessDenied(
            f"cannot {action} {where}: access denied ({code or status}); check the access key, "
            "secret key and the bucket policy in the storage Secret"
        )
    if code in _EXISTS_CODES or status in {"412", "409"}:
        return AlreadyExists(f"cannot {action} {where}: it already exists and is write-once")
    message = error.get("Message", "")
    return StorageError(f"cannot {action} {where}: S3 answered {code or status}: {message}")


def _map_transport_error(exc: Exception, settings: S3Settings) -> StorageError:
    endpoint = settings.endpoint_url or "the default AWS endpoint"
    if isinstance(exc, _NoCredentialsError):
        return AccessDenied(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(from the Secret named in spec.storage.secretRef)"
        )
    if isinstance(exc, EndpointConnectionError):
        return StorageError(f"cannot reach S3 at {endpoint}: check spec.storage.endpoint ({exc})")
    return StorageError(f"S3 request to {endpoint} failed: {exc}")
