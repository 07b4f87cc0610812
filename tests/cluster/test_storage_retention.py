"""Retention against the real MinIO: a pruning pass deletes what S3 dates before the cutoff
under the model's logs and labels and the monitor's reports, in batches of 1,000, and
nothing else (fixtures ``s3``, ``s3_bucket``: tests/kit/cluster.py)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from continuum.storage import ObjectStore
from continuum.storage.retention import prune, retention_prefixes
from tests.kit.cluster import object_store

pytestmark = pytest.mark.cluster

OLD_LOGS = 1005  # more than one DeleteObjects request (at most 1,000 keys each)


@pytest.fixture
def store(s3, s3_bucket) -> ObjectStore:
    return object_store(s3, s3_bucket)


def put_all(store: ObjectStore, keys: list[str]) -> None:
    for key in keys:
        store.put_bytes(key, b'{"row": 0}\n')


def test_prune_deletes_only_what_s3_dates_before_the_cutoff(store):
    old = [f"inference-logs/churn/1/2026-01-01/{i:05d}.jsonl" for i in range(OLD_LOGS)]
    old += ["labels/churn/export.csv", "reports/churn-drift/20260101T000000Z/report.json"]
    put_all(store, old)
    newest_old = max(item.last_modified for item in store.list_objects(""))
    time.sleep(1.5)  # S3 dates objects to the millisecond: a clear gap between the two sets
    new = ["inference-logs/churn/2/2026-12-04/a.jsonl", "labels/churn/feedback/b.jsonl",
           "reports/churn-drift/20261204T000000Z/report.json"]  # fmt: skip
    untouched = ["models/churn/1/manifest.json", "inference-logs/other/1/x.jsonl",
                 "reports/other-monitor/20260101T000000Z/report.json"]  # fmt: skip
    put_all(store, new)
    put_all(store, untouched)

    cutoff = newest_old + timedelta(milliseconds=500)
    pruned = prune(store, retention_prefixes("churn", "churn-drift"), cutoff)

    assert pruned.deleted == {"inference-logs/churn/": OLD_LOGS, "labels/churn/": 1,
                              "reports/churn-drift/": 1}  # fmt: skip
    assert pruned.kept == {"inference-logs/churn/": 1, "labels/churn/": 1,
                           "reports/churn-drift/": 1}  # fmt: skip
    assert sorted(item.key for item in store.list_objects("")) == sorted(new + untouched)
    assert "deleted 1007 object(s)" in pruned.note()


def test_a_second_pass_deletes_nothing_and_absent_keys_are_no_error(store):
    put_all(store, ["labels/churn/a.csv"])
    cutoff = store.list_objects("")[0].last_modified + timedelta(seconds=1)
    assert prune(store, ["labels/churn/"], cutoff).deleted == {"labels/churn/": 1}
    assert prune(store, ["labels/churn/"], cutoff).deleted == {"labels/churn/": 0}
    store.delete_objects(["labels/churn/never-there.csv"])
