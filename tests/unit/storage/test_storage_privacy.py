"""The inference log's privacy policy: HMAC hashing (deterministic, keyed), drop, env parsing."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import numpy as np
import pandas as pd
import pytest

from continuum.errors import ConfigError
from continuum.monitor.categories import category_label
from continuum.storage.privacy import (
    ENV_DROP,
    ENV_HASH,
    ENV_HASH_KEY,
    LogPolicy,
    hash_value,
    policy_from_env,
    value_text,
)

KEY = b"0123456789abcdef-test-key"
OTHER_KEY = b"fedcba9876543210-test-key"


def test_hash_is_keyed_hmac_sha256_truncated_to_128_bits():
    expected = hmac.new(KEY, b"premium", hashlib.sha256).hexdigest()[:32]
    assert hash_value("premium", KEY) == "hmac:" + expected


def test_same_value_same_hash_other_key_other_hash():
    assert hash_value("premium", KEY) == hash_value("premium", KEY)
    assert hash_value("premium", KEY) != hash_value("basic", KEY)
    assert hash_value("premium", KEY) != hash_value("premium", OTHER_KEY)


def test_value_logged_and_value_in_parquet_hash_alike():
    # the server sees 3.0 (float64) or "3"; the reference sample Int64 3, a category, a bool
    assert hash_value(3.0, KEY) == hash_value(np.int64(3), KEY) == hash_value("3", KEY)
    assert hash_value(np.bool_(True), KEY) == hash_value(True, KEY) == hash_value("True", KEY)
    stamp = pd.Timestamp("2026-01-31 12:00:00")
    assert hash_value(stamp, KEY) == hash_value("2026-01-31T12:00:00", KEY)


def test_missing_values_stay_missing_and_hashes_are_not_rehashed():
    for missing in (None, float("nan"), np.float64("nan"), pd.NA, pd.NaT):
        assert hash_value(missing, KEY) is None
    once = hash_value("x", KEY)
    assert hash_value(once, KEY) == once


def test_value_text_is_the_drift_checks_category_label():
    values = [3, 3.0, 3.5, np.int64(7), np.float32(0.5), True, np.bool_(False), "basic",
              pd.Timestamp("2026-01-31"), dt.date(2026, 1, 31), -0.0, 1e20]  # fmt: skip
    for value in values:
        assert value_text(value) == category_label(value), value


def test_policy_applies_hash_only_to_hashed_features_and_drops():
    policy = LogPolicy(frozenset({"email"}), frozenset({"plan"}), KEY)
    assert not policy.keeps("email")
    assert policy.keeps("plan")
    assert policy.keeps("tenure")
    assert policy.apply("tenure", [1.0, None]) == [1.0, None]
    assert policy.apply("plan", ["basic", None]) == [hash_value("basic", KEY), None]
    assert policy.unknown(["plan", "tenure"]) == ["email"]


def test_key_is_never_in_repr():
    assert "0123456789" not in repr(LogPolicy(frozenset(), frozenset({"plan"}), KEY))


def test_policy_refuses_hash_without_key_and_overlap():
    with pytest.raises(ConfigError, match=r"no HMAC key.*spec\.inferenceLog\.hashKey"):
        LogPolicy(frozenset(), frozenset({"plan"}), None)
    with pytest.raises(ConfigError, match=r"\['plan'\] are both dropped and hashed"):
        LogPolicy(frozenset({"plan"}), frozenset({"plan"}), KEY)


def test_policy_from_env():
    env = {ENV_DROP: '["email"]', ENV_HASH: '["plan","zip"]', ENV_HASH_KEY: KEY.decode()}
    policy = policy_from_env(env)
    assert policy.drop == {"email"}
    assert policy.hashed == {"plan", "zip"}
    assert policy.key == KEY
    assert not policy_from_env({}).active


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({ENV_DROP: "email"}, "CONTINUUM_INFERENCE_LOG_DROP is not a JSON list"),
        ({ENV_HASH: '{"a": 1}'}, "must be a JSON list of feature names"),
        ({ENV_HASH: '["plan"]'}, "no HMAC key"),
        ({ENV_HASH: '["plan"]', ENV_HASH_KEY: "short"}, "has 5 bytes; use at least 16"),
    ],
)
def test_policy_from_env_errors_name_the_problem(env, message):
    with pytest.raises(ConfigError, match=message):
        policy_from_env(env)
