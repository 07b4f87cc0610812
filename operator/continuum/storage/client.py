"""The only code that calls boto3: a small, typed object store over one S3 client.

Every botocore failure is turned into an error of :mod:`continuum.errors` whose message names
the bucket/key/endpoint involved and what to check, never a credential. Failures a retry may fix
(connection refused, timeouts, 5xx, throttling) are :class:`StorageUnavailable`; a store made
with a :class:`RetryPolicy` retries those until the policy's deadline (see ``retry.py``).
A certificate that does not verify is :class:`CertificateNotTrusted`, never retried: it names
the endpoint and points at ``spec.storage.caBundle``.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.exceptions import NoCredentialsError as _NoCredentialsError
from botocore.exceptions import SSLError as _SSLError
from urllib3.exceptions import NameResolutionError
from urllib3.util.ssl_match_hostname import CertificateError as _HostnameMismatch

from continuum.errors import (
    AccessDenied,
    CertificateNotTrusted,
    ConfigError,
    ObjectExists,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
)
from continuum.storage.retry import RetryPolicy, call_with_retry
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
# The server is down, starting, overloaded or restarting: the same request may succeed later.
_UNAVAILABLE_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "RequestTimeout",
        "InternalError",
        "XMinioServerNotInitialized",
    }
)
_UNAVAILABLE_STATUSES = frozenset({"429", "500", "502", "503", "504"})
T = TypeVar("T")
DELETE_BATCH = 1000


DOWNLOAD_PIECE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, order=True)
class ObjectInfo:
    """One listed object: what the dataset fingerprint is computed from."""

    key: str
    etag: str
    size: int
    # the S3 server's LastModified (retention); not part of the fingerprint or the order
    last_modified: datetime | None = field(default=None, compare=False)


class ObjectStore:
    """Reads and writes objects; the default bucket is the artefact bucket of the settings.

    With ``retry``, every operation is retried on StorageUnavailable within its deadline;
    without, a transient failure is raised after botocore's own few quick attempts.
    """

    def __init__(
        self,
        settings: S3Settings,
        client: S3Client | None = None,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.retry = retry
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
        """Write ``data``; with ``if_absent`` the write fails (ObjectExists) if ``key`` exists.

        Every write asks for the settings' server-side encryption (``spec.storage.encryption``).
        """
        encryption: Any = self.settings.encryption_args()
        with self._encryption_hint():
            self._put(key, data, if_absent=if_absent, content_type=content_type, **encryption)

    @contextmanager
    def _encryption_hint(self) -> Iterator[None]:
        """A write the server refuses for its encryption says where that was asked for."""
        try:
            yield
        except (ObjectExists, StorageUnavailable, AccessDenied):
            raise
        except StorageError as exc:
            if self.settings.sse is None:
                raise
            raise StorageError(
                f"{exc.message}; the write asked for {self.settings.sse} encryption "
                "(spec.storage.encryption): the S3 server needs a KMS configured for it "
                "(MinIO: MINIO_KMS_SECRET_KEY or a KES server) and, for SSE-KMS, a key of that "
                "name"
            ) from exc

    def _put(
        self, key: str, data: bytes, *, if_absent: bool, content_type: str, **encryption: Any
    ) -> None:
        if not if_absent:
            self._call("write", self.bucket, key, lambda: self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **encryption
            ))  # fmt: skip
            return

        def put_once() -> None:
            try:
                self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                    IfNoneMatch="*", **encryption,
                )  # fmt: skip
            except ClientError as exc:
                # An attempt that timed out may have been stored all the same, and the retry
                # (ours or botocore's) is then refused: our own bytes there are success.
                if _refused_as_existing(exc) and self._holds(key, data):
                    return
                raise

        self._call("write", self.bucket, key, put_once)

    def _holds(self, key: str, data: bytes) -> bool:
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError):
            return False
        return bool(body == data)

    def get_bytes(self, key: str, *, bucket: str | None = None) -> bytes:
        bucket = bucket or self.bucket

        def read() -> bytes:  # the body is read inside the retry: it can fail mid-stream too
            return self._client.get_object(Bucket=bucket, Key=key)["Body"].read()

        return self._call("read", bucket, key, read)

    def download(self, key: str, path: str, *, bucket: str | None = None) -> int:
        """Copy the object to the local file ``path`` in 8 MiB pieces; its size in bytes.

        A streamed training reads a dataset larger than the pod's memory from local disk
        (the pod's scratch ``/tmp``), never holding more than one piece of it in memory.
        Each attempt rewrites the file from its start, so a retried read leaves no partial
        copy behind.
        """
        bucket = bucket or self.bucket

        def copy() -> int:
            body = self._client.get_object(Bucket=bucket, Key=key)["Body"]
            written = 0
            with open(path, "wb") as sink:
                for piece in iter(lambda: body.read(DOWNLOAD_PIECE_BYTES), b""):
                    sink.write(piece)
                    written += len(piece)
            return written

        return self._call("read", bucket, key, copy)

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
            self._call(
                "inspect", bucket, key, lambda: self._client.head_object(Bucket=bucket, Key=key)
            )
        except ObjectNotFound:
            return False
        return True

    def list_objects(self, prefix: str, *, bucket: str | None = None) -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix``, sorted by key."""
        bucket = bucket or self.bucket
        paginator = self._client.get_paginator("list_objects_v2")

        def listing() -> list[ObjectInfo]:
            pages = paginator.paginate(Bucket=bucket, Prefix=prefix)
            return sorted(_object_info(item) for page in pages for item in page.get("Contents", []))

        return self._call("list", bucket, prefix, listing)

    def delete_objects(self, keys: Sequence[str]) -> None:
        """Delete ``keys`` (absent ones are no error), 1,000 a request (the S3 maximum)."""
        for start in range(0, len(keys), DELETE_BATCH):
            batch = list(keys[start : start + DELETE_BATCH])
            self._call("delete", self.bucket, batch[0], partial(self._delete, batch))

    def _delete(self, keys: list[str]) -> None:
        answer = self._client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
        )
        errors = answer.get("Errors") or []
        if errors:
            first = errors[0]
            raise StorageError(
                f"cannot delete s3://{self.bucket}/{first.get('Key')} and {len(errors) - 1} "
                f"more: S3 answered {first.get('Code')}: {first.get('Message')} (retention "
                "needs s3:DeleteObject on the bucket for the storage Secret's credentials)"
            )

    def list_folders(self, prefix: str, *, bucket: str | None = None) -> list[str]:
        """Names of the immediate "sub-folders" under ``prefix`` (which must end with '/')."""
        bucket = bucket or self.bucket
        paginator = self._client.get_paginator("list_objects_v2")

        def listing() -> list[str]:
            pages = paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
            return sorted(
                common.get("Prefix", "")[len(prefix) :].rstrip("/")
                for page in pages
                for common in page.get("CommonPrefixes", [])
            )

        return self._call("list", bucket, prefix, listing)

    def check_bucket(self, bucket: str | None = None) -> None:
        """Fail early, with a message naming the problem, if the bucket cannot be used."""
        bucket = bucket or self.bucket
        try:
            self._call("open bucket", bucket, "", lambda: self._client.head_bucket(Bucket=bucket))
        except ObjectNotFound as exc:  # HEAD answers a bare 404, without "NoSuchBucket"
            raise ObjectNotFound(
                f"bucket {bucket!r} does not exist: create it or fix the bucket name"
            ) from exc
        except AccessDenied:
            # ... and a bare 403: a one-key listing tells a wrong access key from a wrong
            # secret key (or a missing permission); if it works, the HEAD's answer stands.
            self._call("open bucket", bucket, "",
                       lambda: self._client.list_objects_v2(Bucket=bucket, MaxKeys=1))  # fmt: skip
            raise

    def _call(self, action: str, bucket: str, key: str, operation: Callable[[], T]) -> T:
        """``operation()`` with botocore errors mapped, retried as the store's policy says."""

        def mapped() -> T:
            with self._errors(action, bucket, key):
                return operation()

        return call_with_retry(mapped, self.retry)

    @contextmanager
    def _errors(self, action: str, bucket: str, key: str) -> Iterator[None]:
        try:
            yield
        except ClientError as exc:
            raise _map_client_error(exc, action, bucket, key) from exc
        except (EndpointConnectionError, _NoCredentialsError, BotoCoreError) as exc:
            raise _map_transport_error(exc, self.settings) from exc


def make_client(settings: S3Settings) -> S3Client:
    """A boto3 S3 client for MinIO or AWS: the settings' addressing style and CA bundle,
    bounded retries and timeouts."""
    config = Config(
        s3={"addressing_style": "path" if settings.path_style else "virtual"},
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
        verify=_verify(settings.ca_bundle),
        config=config,
    )


def _verify(ca_bundle: str | None) -> str | bool:
    """botocore's ``verify``: the CA bundle file, checked now (botocore would only fail at the
    first request, with an error that does not say where the path came from), else True."""
    if not ca_bundle:
        return True
    if not os.path.isfile(ca_bundle) or not os.access(ca_bundle, os.R_OK):
        raise ConfigError(
            f"the S3 CA bundle {ca_bundle} (AWS_CA_BUNDLE) is not a readable file: "
            "check spec.storage.caBundle (the Secret or ConfigMap and its key)"
        )
    return ca_bundle


def _refused_as_existing(exc: ClientError) -> bool:
    return isinstance(_map_client_error(exc, "write", "", ""), ObjectExists)


def _object_info(item: Any) -> ObjectInfo:
    etag = str(item.get("ETag", "")).strip('"')
    return ObjectInfo(item["Key"], etag, item["Size"], item.get("LastModified"))


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
        return ObjectExists(f"cannot {action} {where}: it already exists and is write-once")
    return _other_answer(code, status, str(error.get("Message", "")), f"cannot {action} {where}")


def _other_answer(code: str, status: str, message: str, what: str) -> StorageError:
    """An answer that is none of the above: an outage (retry may help) or something else."""
    if code in _UNAVAILABLE_CODES or status in _UNAVAILABLE_STATUSES:
        return StorageUnavailable(
            f"{what}: S3 is unavailable, answered {code or status}: {message}"
        )
    return StorageError(f"{what}: S3 answered {code or status}: {message}")


def _map_transport_error(exc: Exception, settings: S3Settings) -> StorageError:
    endpoint = settings.endpoint_url or "the default AWS endpoint"
    if isinstance(exc, _NoCredentialsError):
        return AccessDenied(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(from the Secret named in spec.storage.secretRef)"
        )
    if isinstance(exc, _SSLError):
        return _map_tls_error(exc, endpoint, settings.ca_bundle)
    if isinstance(exc, EndpointConnectionError) and _unknown_host(exc):
        # A name that does not resolve is almost always a wrong endpoint, not an outage.
        return StorageError(f"cannot reach S3 at {endpoint}: check spec.storage.endpoint ({exc})")
    if isinstance(exc, EndpointConnectionError):
        return StorageUnavailable(
            f"cannot reach S3 at {endpoint}: is it running? check spec.storage.endpoint ({exc})"
        )
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError | ConnectionClosedError):
        return StorageUnavailable(f"S3 at {endpoint} did not answer in time: {exc}")
    return StorageError(f"S3 request to {endpoint} failed: {exc}")


def _map_tls_error(exc: _SSLError, endpoint: str, ca_bundle: str | None) -> StorageError:
    """A TLS failure is never worth retrying: a certificate does not become trusted later."""
    cause = _certificate_problem(exc)
    if cause is None:  # e.g. https:// to a plain-HTTP port, or no common protocol
        return StorageError(
            f"TLS handshake with S3 at {endpoint} failed: {exc.kwargs.get('error') or exc}; "
            "check that spec.storage.endpoint says https:// only for a TLS server"
        )
    detail = getattr(cause, "verify_message", None) or str(cause)
    if isinstance(cause, _HostnameMismatch):
        advice = "the certificate must name the host of spec.storage.endpoint"
    elif ca_bundle:
        advice = (
            f"the CA bundle {ca_bundle} from spec.storage.caBundle does not hold the CA "
            "that signed it"
        )
    else:
        advice = "set spec.storage.caBundle to the CA that signed it"
    return CertificateNotTrusted(
        f"cannot connect to S3 at {endpoint}: its TLS certificate was not trusted "
        f"({detail}); {advice}"
    )


def _certificate_problem(exc: BaseException) -> BaseException | None:
    """The certificate-verification error inside a botocore SSLError, if that is what it is."""
    seen: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if isinstance(current, ssl.SSLCertVerificationError | _HostnameMismatch):
            return current
        seen.append(current)
        inner = [getattr(current, "kwargs", {}).get("error"), current.__cause__,
                 current.__context__, *current.args]  # fmt: skip
        pending += [e for e in inner if isinstance(e, BaseException) and e not in seen]
    return None


def _unknown_host(exc: EndpointConnectionError) -> bool:
    cause = exc.kwargs.get("error")
    return isinstance(cause, NameResolutionError | socket.gaierror)
