"""Reading a finished run's manifest with the TrainingJob's own storage settings.

The Kubernetes gateway is a stand-in holding Secrets and ConfigMaps; S3 is an in-memory store
put where ``continuum.storage.manifests`` makes its stores, so nothing leaves the process.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any, cast

import pytest

from continuum.api import StorageSpec, load
from continuum.controllers.trainingjob.manifest import ManifestRead, read_manifest
from continuum.errors import (
    AccessDenied,
    CertificateNotTrusted,
    ContinuumError,
    StorageUnavailable,
)
from continuum.kube import (
    Kube,
    KubeError,
    KubeUnavailable,
    RequestForbidden,
    RequestThrottled,
)
from continuum.storage import S3Settings
from continuum.storage import manifests as stores
from tests.kit.memory_store import MemoryObjectStore
from tests.unit.controllers.trainingjob.builders import MANIFEST_URI, SPEC, manifest_of

ACCESS_KEY_VALUE = "AKIDEXAMPLE0001"
SECRET_KEY_VALUE = "wJalrXUtnFEMI-secret-value"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": f"{ACCESS_KEY_VALUE}\n".encode(),
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY_VALUE.encode(),
}
PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
MANIFEST_KEY = "models/iris/3/manifest.json"


class SecretsKube:
    """The two reads ``read_manifest`` makes of ``continuum.kube.Kube``, in memory."""

    def __init__(
        self,
        secrets: dict[str, dict[str, bytes]] | None = None,
        config_maps: dict[str, dict[str, str]] | None = None,
        error: KubeError | None = None,
    ) -> None:
        self.secrets = secrets if secrets is not None else {"s3-credentials": CREDENTIALS}
        self.config_maps = config_maps or {}
        self.error = error
        self.reads: list[tuple[str, str, str]] = []

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        self._asked(namespace, name, "*")
        return self.secrets.get(name)

    async def read_config_map_key(self, namespace: str, name: str, key: str) -> str | None:
        self._asked(namespace, name, key)
        return self.config_maps.get(name, {}).get(key)

    def _asked(self, namespace: str, name: str, key: str) -> None:
        self.reads.append((namespace, name, key))
        if self.error is not None:
            raise self.error


class FailingStore(MemoryObjectStore):
    def __init__(self, error: ContinuumError) -> None:
        super().__init__()
        self.error = error

    def get_bytes(self, key: str, *, bucket: str | None = None) -> bytes:
        raise self.error


class Stores:
    """Stands in for ``ObjectStore``: hands out ``store`` and records the settings asked for."""

    def __init__(self, store: MemoryObjectStore) -> None:
        self.store = store
        self.settings: list[S3Settings] = []

    def __call__(self, settings: S3Settings) -> MemoryObjectStore:
        self.settings.append(settings)
        return self.store


def holding(manifest: Any) -> MemoryObjectStore:
    store = MemoryObjectStore()
    if manifest is not None:
        data = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
        store.put_bytes(MANIFEST_KEY, data)
    return store


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Stores:
    """S3 as an in-memory store holding the manifest of ``SUCCESS``; no store is kept."""
    fake = Stores(holding(manifest_of()))
    monkeypatch.setattr(stores, "ObjectStore", fake)
    monkeypatch.setattr(stores, "_stores", OrderedDict())
    monkeypatch.setattr(stores, "_ca_dir", tmp_path)
    return fake


def storage(**fields: Any) -> StorageSpec:
    return load(StorageSpec, {**copy.deepcopy(SPEC["storage"]), **fields})


def read(kube: SecretsKube, spec: StorageSpec | None = None) -> ManifestRead:
    spec = storage() if spec is None else spec
    coro = read_manifest(cast(Kube, kube), "ml", spec, model="iris", version=3, uri=MANIFEST_URI)
    return asyncio.run(coro)


def assert_no_secret_in(result: ManifestRead) -> None:
    assert ACCESS_KEY_VALUE not in result.problem
    assert SECRET_KEY_VALUE not in result.problem


def test_the_manifest_is_read_with_the_credentials_of_the_secret(s3: Stores) -> None:
    kube = SecretsKube()
    result = read(kube)
    assert (result.kind, result.manifest, result.uri) == ("read", manifest_of(), MANIFEST_URI)
    assert {r[:2] for r in kube.reads} == {("ml", "s3-credentials")}
    (settings,) = s3.settings
    assert (settings.access_key, settings.secret_key) == (ACCESS_KEY_VALUE, SECRET_KEY_VALUE)
    assert (settings.bucket, settings.endpoint_url) == ("continuum", SPEC["storage"]["endpoint"])
    assert settings.ca_bundle is None


def test_without_a_secret_ref_the_operators_own_credentials_are_used(s3: Stores) -> None:
    kube = SecretsKube()
    spec = storage(secretRef=None)
    assert read(kube, spec).kind == "read"
    assert kube.reads == []
    assert (s3.settings[0].access_key, s3.settings[0].secret_key) == (None, None)


@pytest.mark.parametrize(
    ("secrets", "missing"),
    [
        ({}, "AWS_ACCESS_KEY_ID"),
        ({"s3-credentials": {"AWS_ACCESS_KEY_ID": CREDENTIALS["AWS_ACCESS_KEY_ID"]}},
         "AWS_SECRET_ACCESS_KEY"),
    ],
    ids=["no-secret", "no-secret-key"],
)  # fmt: skip
def test_a_missing_secret_or_key_needs_a_change(
    s3: Stores, secrets: dict[str, dict[str, bytes]], missing: str
) -> None:
    result = read(SecretsKube(secrets))
    assert (result.kind, result.needs_change) == ("unreadable", True)
    assert "Secret ml/s3-credentials" in result.problem
    assert f"key {missing}" in result.problem
    assert MANIFEST_URI in result.problem
    assert_no_secret_in(result)
    assert s3.settings == [], "S3 is not asked without credentials"


@pytest.mark.parametrize(
    ("error", "needs_change"),
    [
        (RequestForbidden("read Secret ml/s3-credentials: HTTP 403 Forbidden", status=403), True),
        (KubeError("read Secret ml/s3-credentials: HTTP 501", status=501), False),
    ],
    ids=["forbidden", "api-server-refusal"],
)
def test_a_refused_secret_read_needs_a_change_only_when_forbidden(
    s3: Stores, error: KubeError, needs_change: bool
) -> None:
    result = read(SecretsKube(error=error))
    assert (result.kind, result.needs_change) == ("unreadable", needs_change)
    assert error.message in result.problem
    assert "Secret s3-credentials" in result.problem


@pytest.mark.parametrize(
    "error",
    [
        KubeUnavailable("read Secret ml/s3-credentials: HTTP 503", status=503),
        RequestThrottled("read Secret ml/s3-credentials: HTTP 429", status=429, retry_after=1),
    ],
    ids=["unavailable", "throttled"],
)
def test_a_secret_read_the_api_server_failed_is_the_reconciles_failure(
    s3: Stores, error: KubeError
) -> None:
    """Retried by the work queue after ~1 s, not written to status as an unreadable manifest
    (read again only after 10-60 s): the API fault test's churn-1 sat there for minutes."""
    with pytest.raises(type(error)):
        read(SecretsKube(error=error))
    assert s3.settings == [], "S3 is not asked without credentials"


@pytest.mark.parametrize(
    ("error", "needs_change"),
    [
        (AccessDenied("access to s3://continuum denied: check the credentials"), True),
        (CertificateNotTrusted("the endpoint's certificate did not verify"), True),
        (StorageUnavailable("S3 at minio.minio.svc:9000 is unreachable"), False),
    ],
    ids=["access-denied", "certificate", "unavailable"],
)
def test_storage_failures_are_unreadable(
    s3: Stores, error: ContinuumError, needs_change: bool
) -> None:
    s3.store = FailingStore(error)
    result = read(SecretsKube())
    assert (result.kind, result.needs_change) == ("unreadable", needs_change)
    assert error.message in result.problem
    assert_no_secret_in(result)


def test_a_missing_manifest_needs_a_change(s3: Stores) -> None:
    s3.store = holding(None)
    result = read(SecretsKube())
    assert (result.kind, result.needs_change) == ("unreadable", True)
    assert "has no manifest" in result.problem


@pytest.mark.parametrize(
    "stored",
    [b"{not json", {"model": "iris", "version": 3}, {**manifest_of(), "version": 4}],
    ids=["not-json", "lacks-fields", "another-version"],
)
def test_a_damaged_manifest_is_invalid(s3: Stores, stored: Any) -> None:
    s3.store = holding(stored)
    result = read(SecretsKube())
    assert result.kind == "invalid"
    assert result.manifest is None
    assert "iris/3" in result.problem


CA_SPECS = {
    "config-map": {"configMapKeyRef": {"name": "s3-ca", "key": "ca.crt"}},
    "secret": {"secretKeyRef": {"name": "s3-ca", "key": "ca.crt"}},
}


def tls_storage(source: str) -> StorageSpec:
    return storage(endpoint="https://minio.minio.svc:9443", caBundle=CA_SPECS[source])


@pytest.mark.parametrize("source", list(CA_SPECS))
def test_the_ca_bundle_is_trusted_from_its_file(s3: Stores, source: str) -> None:
    kube = SecretsKube(config_maps={"s3-ca": {"ca.crt": PEM}})
    kube.secrets["s3-ca"] = {"ca.crt": PEM.encode()}
    assert read(kube, tls_storage(source)).kind == "read"
    ca_bundle = s3.settings[0].ca_bundle
    assert ca_bundle is not None
    assert Path(ca_bundle).read_text(encoding="utf-8") == PEM


@pytest.mark.parametrize(("source", "what"), [("config-map", "ConfigMap"), ("secret", "Secret")])
def test_a_missing_ca_bundle_needs_a_change(s3: Stores, source: str, what: str) -> None:
    result = read(SecretsKube(), tls_storage(source))
    assert (result.kind, result.needs_change) == ("unreadable", True)
    assert f"{what} ml/s3-ca (spec.storage.caBundle)" in result.problem
    assert "key ca.crt" in result.problem
    assert s3.settings == []
