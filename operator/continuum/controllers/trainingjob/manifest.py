"""Reading a finished run's manifest from S3, as the TrainingJob's own storage settings say.

When a TrainingJob's Job completes, its status is filled from the manifest the trainer stored
(``models/<model>/<version>/manifest.json``), not from what the pod said: the termination
message only tells which version to read, and is checked against the manifest.

The connection is the one the trainer used: ``spec.storage`` (endpoint, region, addressing,
bucket), the credentials from the Secret ``spec.storage.secretRef`` names and the CA bundle
``spec.storage.caBundle`` names. The operator ``get``s that one Secret (and ConfigMap) when it
needs them; values stay in memory for the connection and never reach a status, Event or log.

The S3 call runs in one of two threads of its own (``S3_THREADS``): a slow or unreachable
endpoint holds those, not the loop's default executor, which also resolves host names for the
API client. ``continuum.storage`` (and so boto3) is imported on the first read: an operator
that never sees a finished run does not carry it.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from continuum.api import StorageSpec
from continuum.controllers.shared.pods import ACCESS_KEY, SECRET_KEY
from continuum.errors import (
    AccessDenied,
    CertificateNotTrusted,
    ConfigError,
    ContinuumError,
    IntegrityError,
    ObjectNotFound,
)
from continuum.kube import Kube, KubeError, RequestForbidden

Kind = Literal["read", "unreadable", "invalid"]
# A retry cannot fix these until somebody changes a Secret, a bucket or a certificate.
NEEDS_A_CHANGE = (
    AccessDenied,
    CertificateNotTrusted,
    ConfigError,
    ObjectNotFound,
    RequestForbidden,
)
S3_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="continuum-s3")


@dataclass(frozen=True)
class ManifestRead:
    """What reading one manifest gave: the manifest, or why there is none."""

    uri: str
    kind: Kind
    manifest: dict[str, Any] | None = None
    problem: str = ""
    # True when retrying alone will not help (kstatus Stalled); the operator retries anyway.
    needs_change: bool = False


async def read_manifest(
    kube: Kube, namespace: str, storage: StorageSpec, *, model: str, version: int, uri: str
) -> ManifestRead:
    """Read and check the manifest of ``model`` ``version``.

    Never raises a ContinuumError except a retryable ``KubeError`` (5xx, 429, no answer) from
    reading the Secret or ConfigMap: that is the API server failing this reconcile like any
    other call, retried by the work queue after about 1 s, whereas an unreadable manifest is
    written to status and read again after 10-60 s (``MANIFEST_BACKOFF``). Under the API fault
    test's faults, churn-1 sat in ``ManifestUnreadable`` for minutes on failed Secret reads."""
    try:
        secrets = await _credentials(kube, namespace, storage)
        ca_pem = await _ca_bundle(kube, namespace, storage)
        manifest = await asyncio.get_running_loop().run_in_executor(
            S3_THREADS, _fetch, storage, secrets, model, version, ca_pem
        )
    except IntegrityError as exc:
        return ManifestRead(uri, "invalid", problem=exc.message)
    except KubeError as exc:
        if exc.retryable:  # the API server failed the Secret read, not the manifest
            raise
        return unreadable(uri, storage, exc)
    except ContinuumError as exc:
        return unreadable(uri, storage, exc)
    return ManifestRead(uri, "read", manifest=manifest)


def unreadable(uri: str, storage: StorageSpec, exc: ContinuumError) -> ManifestRead:
    """The ManifestRead for a failure, its message naming where the credentials came from."""
    source = (
        f" with the credentials of Secret {storage.secret_ref.name}"
        if storage.secret_ref is not None
        else ""
    )
    problem = f"cannot read the manifest {uri}{source}: {exc.message}"
    needs_change = isinstance(exc, NEEDS_A_CHANGE)
    return ManifestRead(uri, "unreadable", problem=problem, needs_change=needs_change)


async def _credentials(kube: Kube, namespace: str, storage: StorageSpec) -> dict[str, str]:
    """The access key pair from the Secret spec.storage names ({} without one)."""
    if storage.secret_ref is None:
        return {}  # the operator's own credential chain, as the trainer's pod had its own
    name = storage.secret_ref.name
    data = await kube.read_secret(namespace, name) or {}  # one GET for both keys
    return {key: _secret_key(data, namespace, name, key) for key in (ACCESS_KEY, SECRET_KEY)}


def _secret_key(data: dict[str, bytes], namespace: str, name: str, key: str) -> str:
    value = data.get(key)
    if value is None:
        raise ConfigError(
            f"Secret {namespace}/{name} (spec.storage.secretRef) does not exist or has no "
            f"key {key}; create it with the keys {ACCESS_KEY} and {SECRET_KEY}"
        )
    return value.decode("utf-8", errors="replace").strip()


async def _ca_bundle(kube: Kube, namespace: str, storage: StorageSpec) -> str | None:
    """The PEM text of spec.storage.caBundle, if set."""
    source = storage.ca_bundle
    if source is None:
        return None
    selector = source.selector
    if source.secret_key_ref is not None:
        raw = (await kube.read_secret(namespace, selector.name) or {}).get(selector.key)
        pem = None if raw is None else raw.decode("utf-8", errors="replace")
        what = "Secret"
    else:
        pem = await kube.read_config_map_key(namespace, selector.name, selector.key)
        what = "ConfigMap"
    if pem is None:
        raise ConfigError(
            f"{what} {namespace}/{selector.name} (spec.storage.caBundle) does not exist or "
            f"has no key {selector.key}"
        )
    return pem


def _fetch(
    storage: StorageSpec, secrets: dict[str, str], model: str, version: int, ca_pem: str | None
) -> dict[str, Any]:
    # Imported here, on the first finished run, in a worker thread (see the module docstring).
    from continuum.storage import S3Settings, fetch_manifest  # noqa: PLC0415

    settings = S3Settings(
        bucket=storage.bucket,
        endpoint_url=storage.endpoint,
        region=storage.region,
        access_key=secrets.get(ACCESS_KEY),
        secret_key=secrets.get(SECRET_KEY),
        path_style=storage.path_style,
    )
    return fetch_manifest(settings, model, version, ca_pem=ca_pem)
