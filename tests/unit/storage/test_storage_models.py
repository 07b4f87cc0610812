import pytest
from tests.kit.memory_store import MemoryObjectStore

from continuum.errors import ManifestInvalid, ObjectExists, ObjectNotFound, VersionConflict
from continuum.storage import (
    allocate_version,
    latest_qualified_version,
    list_versions,
    read_manifest,
)


def manifest(version: int, qualified: bool) -> dict:
    return {
        "model": "m",
        "version": version,
        "sha256": "0" * 64,
        "qualified": qualified,
        "metrics": {},
    }


def test_versions_start_at_one_and_increase():
    store = MemoryObjectStore()
    assert [allocate_version(store, "m", claimant="t") for _ in range(3)] == [1, 2, 3]
    assert list_versions(store, "m") == [1, 2, 3]


def test_listing_sorts_numerically_not_lexically():
    store = MemoryObjectStore()
    for version in (2, 10, 9):
        store.put_bytes(f"models/m/{version}/claim.json", b"{}")
    store.put_bytes("models/m/not-a-version/x", b"")
    assert list_versions(store, "m") == [2, 9, 10]
    assert allocate_version(store, "m", claimant="t") == 11


def test_a_taken_version_is_skipped_never_overwritten():
    store = MemoryObjectStore()
    real_put = store.put_bytes
    calls = []

    def rival_wins_first(key, data, **kwargs):
        calls.append(key)
        if key == "models/m/1/claim.json" and len(calls) == 1:
            real_put(key, b'{"token": "rival"}')  # a rival claims 1 between our list and put
            raise ObjectExists("taken")
        real_put(key, data, **kwargs)

    store.put_bytes = rival_wins_first  # type: ignore[method-assign]
    assert allocate_version(store, "m", claimant="t") == 2
    assert store.get_bytes("models/m/1/claim.json") == b'{"token": "rival"}'


def test_gives_up_with_version_conflict_when_every_attempt_is_taken():
    store = MemoryObjectStore()

    def always_taken(key, data, **kwargs):
        raise ObjectExists("taken")

    store.put_bytes = always_taken  # type: ignore[method-assign]
    with pytest.raises(VersionConflict, match="retry the training run"):
        allocate_version(store, "m", claimant="t")


def test_read_manifest_checks_identity_and_fields():
    store = MemoryObjectStore()
    store.put_json("models/m/1/manifest.json", manifest(1, True))
    store.put_json("models/m/2/manifest.json", manifest(1, True))  # copied from version 1
    store.put_json("models/m/3/manifest.json", {"model": "m"})
    store.put_bytes("models/m/4/manifest.json", b"[]")
    assert read_manifest(store, "m", 1)["version"] == 1
    with pytest.raises(ManifestInvalid, match="copied or moved"):
        read_manifest(store, "m", 2)
    with pytest.raises(ManifestInvalid, match="lacks version, sha256, qualified, metrics"):
        read_manifest(store, "m", 3)
    with pytest.raises(ManifestInvalid, match="not a JSON object"):
        read_manifest(store, "m", 4)
    with pytest.raises(ObjectNotFound, match="training has not finished"):
        read_manifest(store, "m", 5)


def test_latest_qualified_skips_unqualified_and_unfinished_versions():
    store = MemoryObjectStore()
    assert latest_qualified_version(store, "m") is None
    store.put_json("models/m/1/manifest.json", manifest(1, True))
    store.put_json("models/m/2/manifest.json", manifest(2, False))
    store.put_json("models/m/3/claim.json", {})
    assert latest_qualified_version(store, "m") == 1
