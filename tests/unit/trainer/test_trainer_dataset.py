import io

import pandas as pd
import pytest

from continuum.api import Dataset
from continuum.errors import DatasetInvalid, DatasetNotFound, DatasetTooLarge
from continuum.storage import ObjectInfo
from continuum.trainer.dataset import fingerprint, load_dataset

CHURN = Dataset(uri="s3://data/sets/churn/", target="label")
OBJECTS = [ObjectInfo("a.csv", "e1", 10), ObjectInfo("b.csv", "e2", 20)]


def test_fingerprint_is_deterministic_and_order_independent():
    assert fingerprint(OBJECTS, "c") == fingerprint(list(reversed(OBJECTS)), "c")
    assert fingerprint(OBJECTS, "c").startswith("sha256:")


@pytest.mark.parametrize(
    "changed",
    [
        [ObjectInfo("a.csv", "e1", 10), ObjectInfo("b.csv", "e3", 20)],  # ETag
        [ObjectInfo("a.csv", "e1", 10), ObjectInfo("b.csv", "e2", 21)],  # size
        [ObjectInfo("a.csv", "e1", 10), ObjectInfo("c.csv", "e2", 20)],  # key
    ],
)
def test_fingerprint_changes_with_any_listing_detail(changed):
    assert fingerprint(changed, "c") != fingerprint(OBJECTS, "c")


def test_fingerprint_changes_with_content():
    assert fingerprint(OBJECTS, "c1") != fingerprint(OBJECTS, "c2")


def test_prefix_objects_are_concatenated_in_key_order(store, frame):
    loaded = load_dataset(store, CHURN, max_bytes=10**7)
    assert loaded.rows == 400
    assert loaded.frame["x2"].tolist() == pytest.approx(frame["x2"].tolist())
    again = load_dataset(store, CHURN, max_bytes=10**7)
    assert again.fingerprint == loaded.fingerprint


def test_parquet_objects_load(store, frame):
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    store.put_bytes("sets/churn.parquet", buffer.getvalue())
    config = Dataset(uri="s3://data/sets/churn.parquet", target="label", format="parquet")
    assert load_dataset(store, config, max_bytes=10**7).rows == 400


def test_size_limit_is_checked_before_downloading(store):
    with pytest.raises(DatasetTooLarge, match="over the trainer's limit of 100 bytes"):
        load_dataset(store, CHURN, max_bytes=100)


def test_objects_with_different_columns_are_refused(store):
    store.put_bytes(
        "sets/churn/part-2.csv", pd.DataFrame({"other": [1]}).to_csv(index=False).encode()
    )
    with pytest.raises(
        DatasetInvalid, match=r"part-2\.csv has different columns.*missing \['amount', 'color'"
    ):
        load_dataset(store, CHURN, max_bytes=10**7)


def test_wrong_format_says_so(store):
    store.put_bytes("sets/bad.parquet", b"not parquet at all")
    config = Dataset(uri="s3://data/sets/bad.parquet", target="label", format="parquet")
    with pytest.raises(DatasetInvalid, match=r"bad\.parquet is not valid parquet"):
        load_dataset(store, config, max_bytes=10**7)


def test_missing_dataset(store):
    with pytest.raises(DatasetNotFound):
        load_dataset(store, Dataset(uri="s3://data/none/", target="label"), max_bytes=10**7)
