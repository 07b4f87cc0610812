"""The drift check under spec.inferenceLog drop/hash: the log written by the server's own code,
the reference from Parquet (category dtype), compared on hashes made with the same key."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from continuum.monitor.run import run_monitor
from continuum.monitor.settings import MonitorTarget, parse_check_settings
from continuum.server.inference_log import LogRecord, json_rows
from continuum.storage.inference_logs import write_batch
from continuum.storage.privacy import LogPolicy, hash_value, policy_from_env
from continuum.storage.reports import read_report
from tests.kit.datasets import customers
from tests.kit.memory_store import MemoryObjectStore
from tests.unit.monitor.conftest import MODEL, VERSION, put_baseline, reference_frame

KEY = b"k" * 32
POLICY = LogPolicy(frozenset({"tenure"}), frozenset({"plan"}), KEY)
TARGET = MonitorTarget("mon", MODEL, VERSION)
TIME = "20250131T120000Z"


def served(store: MemoryObjectStore, frame: pd.DataFrame, policy: LogPolicy) -> None:
    """Log ``frame`` as the model server does: dropped columns never buffered, hashed by the
    writer's json_rows, 500 rows a batch."""
    moment = datetime(2025, 1, 31, 12, tzinfo=UTC)
    for offset in range(0, len(frame), 500):
        part = frame.iloc[offset : offset + 500]
        columns = {
            name: part[name].to_numpy(dtype=object if name == "plan" else float)
            for name in part.columns
            if policy.keeps(name)
        }
        record = LogRecord(
            ts=moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), request_id=f"r{offset}",
            columns=columns, labels=np.array(["no"] * len(part)), proba=None,
        )  # fmt: skip
        write_batch(store, MODEL, VERSION, json_rows(record, MODEL, VERSION, policy), moment)
        moment += timedelta(seconds=1)


def check(store: MemoryObjectStore, policy: LogPolicy) -> dict:
    settings = parse_check_settings({"window": {"maxRows": 3000, "minSamples": 100}})
    settings = replace(settings, log_policy=policy)
    run_monitor(store, TARGET, settings, time=TIME)
    return read_report(store, "mon", TIME)


def baseline_store() -> MemoryObjectStore:
    store = MemoryObjectStore("bucket")
    frame = reference_frame()
    frame["plan"] = frame["plan"].astype("category")  # as a training export stores it
    put_baseline(store, frame)
    return store


def test_log_holds_no_dropped_feature_and_no_plain_hashed_value():
    store = baseline_store()
    served(store, customers(1000, 2), POLICY)
    keys = [item.key for item in store.list_objects("inference-logs/")]
    rows = [row for key in keys for row in store.get_bytes(key).decode().splitlines()]
    assert rows
    assert all('"tenure"' not in row for row in rows)
    assert all('"basic"' not in row and '"plan":"hmac:' in row for row in rows)


def test_same_data_hashed_does_not_drift_and_dropped_feature_is_noted():
    store = baseline_store()
    served(store, customers(3000, 2), POLICY)
    report = check(store, POLICY)
    features = {f["name"]: f for f in report["features"]}
    assert set(features) == {"charges", "plan"}
    assert features["plan"]["kind"] == "categorical"
    assert not features["plan"]["drifted"]
    assert features["plan"]["counts"]["current"] > 0
    assert any(n.startswith("tenure: dropped from the inference log") for n in report["notes"])
    assert any(n.startswith("plan: hashed in the inference log") for n in report["notes"])
    assert report["settings"]["inferenceLog"] == {"drop": ["tenure"], "hash": ["plan"]}
    assert KEY.decode() not in str(report)


def test_a_shift_in_a_hashed_categorical_is_still_detected():
    store = baseline_store()
    current = customers(3000, 2)
    current["plan"] = np.where(np.arange(3000) % 4 == 0, current["plan"], "basic")
    served(store, current, POLICY)
    plan = next(f for f in check(store, POLICY)["features"] if f["name"] == "plan")
    assert plan["drifted"]
    assert plan["pValue"] < 1e-6


def test_rows_logged_before_hashing_began_are_hashed_at_check_time():
    store = baseline_store()
    plain = LogPolicy(frozenset({"tenure"}))
    served(store, customers(1500, 2), plain)  # older rows: plan in plain text
    served(store, customers(1500, 3), POLICY)
    plan = next(f for f in check(store, POLICY)["features"] if f["name"] == "plan")
    assert not plan["drifted"]
    assert plan["counts"]["current"] == 3000


def test_a_different_key_makes_every_category_new():
    store = baseline_store()
    served(store, customers(3000, 2), LogPolicy(frozenset(), frozenset({"plan"}), b"x" * 32))
    plan = next(f for f in check(store, POLICY)["features"] if f["name"] == "plan")
    assert plan["drifted"]  # the report shows it: no category of the window matches


def test_policy_env_round_trip_with_the_check_settings():
    env = {"CONTINUUM_INFERENCE_LOG_HASH": '["plan"]',
           "CONTINUUM_INFERENCE_LOG_HASH_KEY": KEY.decode()}  # fmt: skip
    assert policy_from_env(env).apply("plan", ["a"]) == [hash_value("a", KEY)]
