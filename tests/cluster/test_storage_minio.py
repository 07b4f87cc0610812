"""continuum.storage against a real MinIO (fixtures ``s3``, ``s3_bucket``: tests/kit/cluster.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from continuum.errors import AccessDenied, ObjectExists, ObjectNotFound, StorageError
from continuum.storage import (
    ObjectStore,
    allocate_version,
    list_dataset_objects,
    list_versions,
)
from tests.kit.cluster import object_store, store_settings

pytestmark = pytest.mark.cluster


@pytest.fixture
def store(s3, s3_bucket) -> ObjectStore:
    return object_store(s3, s3_bucket)


def test_bytes_and_json_round_trip(store):
    store.put_bytes("a/b.bin", b"\x00\x01")
    store.put_json("a/c.json", {"k": [1, 2]})
    assert store.get_bytes("a/b.bin") == b"\x00\x01"
    assert store.get_json("a/c.json") == {"k": [1, 2]}
    assert store.exists("a/b.bin")
    assert not store.exists("a/nope")


def test_listing_is_sorted_with_etag_and_size(store):
    for key in ("p/2.csv", "p/10.csv", "p/1.csv", "q/x"):
        store.put_bytes(key, b"abc")
    listed = store.list_objects("p/")
    assert [item.key for item in listed] == ["p/1.csv", "p/10.csv", "p/2.csv"]
    assert all(item.size == 3 and len(item.etag) == 32 for item in listed)
    assert store.list_folders("") == ["p", "q"]


def test_dataset_uri_prefix_and_key(store, s3_bucket):
    store.put_bytes("sets/d/part-0.csv", b"a\n1\n")
    store.put_bytes("sets/d/_SUCCESS", b"")
    assert [o.key for o in list_dataset_objects(store, f"s3://{s3_bucket}/sets/d/")] == [
        "sets/d/part-0.csv"
    ]
    assert len(list_dataset_objects(store, f"s3://{s3_bucket}/sets/d/part-0.csv")) == 1


def test_write_once_keys_are_enforced_by_the_server(store):
    store.put_bytes("once", b"first", if_absent=True)
    with pytest.raises(ObjectExists, match="write-once"):
        store.put_bytes("once", b"second", if_absent=True)
    assert store.get_bytes("once") == b"first"


def test_concurrent_allocations_never_share_a_version(store):
    def claim(i: int) -> int:
        return allocate_version(store, "race", claimant=f"trainer-{i}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        versions = list(pool.map(claim, range(4)))
    assert sorted(versions) == [1, 2, 3, 4]
    assert list_versions(store, "race") == [1, 2, 3, 4]


def test_missing_key(store):
    with pytest.raises(ObjectNotFound, match="no such object"):
        store.get_bytes("absent")


def test_missing_bucket_is_named(s3):
    store = ObjectStore(store_settings(s3, "no-such-bucket-continuum"))
    with pytest.raises(ObjectNotFound, match="bucket 'no-such-bucket-continuum' does not exist"):
        store.get_bytes("k")
    with pytest.raises(ObjectNotFound, match="bucket 'no-such-bucket-continuum' does not exist"):
        store.check_bucket()


def test_wrong_secret_is_access_denied_without_leaking_it(s3, s3_bucket):
    store = ObjectStore(store_settings(s3, s3_bucket, secret_key="wrong-secret-xyz"))
    with pytest.raises(
        AccessDenied, match=r"secret key .* does not match the access key ID"
    ) as info:
        store.get_bytes("k")
    assert "wrong-secret-xyz" not in str(info.value)


def test_unreachable_endpoint_is_named(s3, s3_bucket):
    # Port 1 on loopback: nothing listens there, and the traffic never leaves the machine.
    store = ObjectStore(store_settings(s3, s3_bucket, endpoint_url="http://127.0.0.1:1"))
    with pytest.raises(StorageError, match=r"cannot reach S3 at http://127\.0\.0\.1:1"):
        store.check_bucket()
