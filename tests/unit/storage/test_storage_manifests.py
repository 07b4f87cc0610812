"""The operator's manifest reads: stores kept per connection, CA bundles written once.

No network: ``ObjectStore`` is replaced by a factory of in-memory stores.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
from tests.kit.memory_store import MemoryObjectStore

from continuum.errors import ObjectNotFound
from continuum.storage import S3Settings, fetch_manifest
from continuum.storage import manifests as stores

PEM = "-----BEGIN CERTIFICATE-----\nMIIBfirst\n-----END CERTIFICATE-----\n"
OTHER_PEM = "-----BEGIN CERTIFICATE-----\nMIIBsecond\n-----END CERTIFICATE-----\n"
MANIFEST = {"model": "m", "version": 1, "sha256": "0" * 64, "qualified": True, "metrics": {}}


class MemoryStores:
    """Stands in for ``ObjectStore``: a new in-memory store (holding MANIFEST) per call."""

    def __init__(self) -> None:
        self.made: list[tuple[S3Settings, MemoryObjectStore]] = []

    def __call__(self, settings: S3Settings) -> MemoryObjectStore:
        store = MemoryObjectStore(settings.bucket)
        store.put_bytes("models/m/1/manifest.json", json.dumps(MANIFEST).encode())
        self.made.append((settings, store))
        return store


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MemoryStores:
    factory = MemoryStores()
    monkeypatch.setattr(stores, "ObjectStore", factory)
    monkeypatch.setattr(stores, "_stores", OrderedDict())
    monkeypatch.setattr(stores, "_ca_dir", tmp_path)
    return factory


def settings(**fields: Any) -> S3Settings:
    base: dict[str, Any] = {
        "bucket": "models", "endpoint_url": "https://s3.example.internal:9443",
        "access_key": "AKID", "secret_key": "sk",
    }  # fmt: skip
    return S3Settings(**{**base, **fields})


def test_equal_settings_share_one_store(made: MemoryStores) -> None:
    first = stores._store_for(settings())
    assert stores._store_for(settings()) is first
    assert len(made.made) == 1


@pytest.mark.parametrize(
    "change",
    [{"secret_key": "rotated"}, {"bucket": "other"}, {"endpoint_url": None}, {"ca_bundle": "x"}],
    ids=["credentials", "bucket", "endpoint", "ca-bundle"],
)
def test_a_different_connection_gets_its_own_store(
    made: MemoryStores, change: dict[str, Any]
) -> None:
    assert stores._store_for(settings(**change)) is not stores._store_for(settings())
    assert len(made.made) == 2


def test_the_least_recently_used_store_goes_first(
    made: MemoryStores, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stores, "MAX_STORES", 2)
    a, b, c = (settings(bucket=name) for name in ("aaa", "bbb", "ccc"))
    kept_a = stores._store_for(a)
    stores._store_for(b)
    assert stores._store_for(a) is kept_a, "used again: now the most recent"
    stores._store_for(c)  # evicts b
    assert list(stores._stores) == [a, c]
    stores._store_for(b)
    assert len(made.made) == 4


def test_a_ca_bundle_is_written_once_per_distinct_pem(made: MemoryStores, tmp_path: Path) -> None:
    path = stores._ca_file(PEM)
    assert path.parent == tmp_path
    assert path.name == f"{hashlib.sha256(PEM.encode()).hexdigest()}.pem"
    assert path.read_text(encoding="utf-8") == PEM
    path.write_text("left alone", encoding="utf-8")
    assert stores._ca_file(PEM) == path
    assert path.read_text(encoding="utf-8") == "left alone", "the same PEM is not written again"
    other = stores._ca_file(OTHER_PEM)
    assert other != path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, other.name])


def test_the_ca_directory_is_private_and_made_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(stores, "_ca_dir", None)
    first = stores._ca_file(PEM)
    assert first.parent.parent == tmp_path
    assert first.parent.stat().st_mode & 0o077 == 0
    assert stores._ca_file(OTHER_PEM).parent == first.parent


def test_fetch_manifest_trusts_the_pem_from_its_file(made: MemoryStores) -> None:
    assert fetch_manifest(settings(), "m", 1, ca_pem=PEM) == MANIFEST
    assert len(made.made) == 1
    used = made.made[0][0]
    assert used.ca_bundle is not None
    assert Path(used.ca_bundle).read_text(encoding="utf-8") == PEM
    assert fetch_manifest(settings(), "m", 1, ca_pem=PEM) == MANIFEST
    assert len(made.made) == 1, "the same connection, the same store"


def test_fetch_manifest_without_a_pem_keeps_the_settings(made: MemoryStores) -> None:
    assert fetch_manifest(settings(ca_bundle="/etc/ssl/ca.pem"), "m", 1) == MANIFEST
    assert made.made[0][0].ca_bundle == "/etc/ssl/ca.pem"


def test_fetch_manifest_of_a_missing_version_raises(made: MemoryStores) -> None:
    with pytest.raises(ObjectNotFound):
        fetch_manifest(settings(), "m", 2)
