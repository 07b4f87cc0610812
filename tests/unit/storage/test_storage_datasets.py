import pytest
from tests.kit.memory_store import MemoryObjectStore

from continuum.errors import DatasetNotFound
from continuum.storage import list_dataset_objects


@pytest.fixture
def store():
    store = MemoryObjectStore("data")
    for key in (
        "sets/a.csv",
        "sets/b/part-1.csv",
        "sets/b/part-0.csv",
        "sets/b/_SUCCESS",
        "sets/bb.csv",
    ):
        store.put_bytes(key, b"x,y\n1,2\n")
    return store


def keys(objects):
    return [item.key for item in objects]


def test_a_key_names_one_object(store):
    assert keys(list_dataset_objects(store, "s3://data/sets/a.csv")) == ["sets/a.csv"]


def test_a_prefix_names_every_data_object_under_it_sorted(store):
    expected = ["sets/b/part-0.csv", "sets/b/part-1.csv"]
    assert keys(list_dataset_objects(store, "s3://data/sets/b/")) == expected
    # Without the slash it is still a folder, and "sets/bb.csv" is not inside it.
    assert keys(list_dataset_objects(store, "s3://data/sets/b")) == expected


def test_listing_carries_etag_and_size(store):
    (item,) = list_dataset_objects(store, "s3://data/sets/a.csv")
    assert item.size == 8
    assert len(item.etag) == 32


def test_nothing_there_is_dataset_not_found(store):
    with pytest.raises(DatasetNotFound, match=r"s3://data/nope/.*spec\.dataset\.uri"):
        list_dataset_objects(store, "s3://data/nope/")
