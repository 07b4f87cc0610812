"""What the inference log keeps of each feature: the value, nothing (``drop``) or a keyed hash.

A hashed value is written as ``hmac:<hex>``: the first 128 bits of HMAC-SHA256 (RFC 2104
allows truncation to half the output; 128 bits leave a collision between two of a million
distinct values at odds of about 1 in 10^27) over the value's text, keyed with the bytes of
the Secret ``spec.inferenceLog.hashKey`` names. The text is the one the drift check labels a
category by (``3``, ``3.0`` and Int64 ``3`` are all ``"3"``, booleans ``True``/``False``,
timestamps ISO 8601), so the model server hashing a request's value and the drift check
hashing the reference sample's value of the same category get the same hash, and a hashed
categorical still drifts — or not — exactly as its plain values would. A missing value stays
missing (null), so the missing-share test is unchanged.

Without the key a hash cannot be recomputed from a guessed value (unlike a plain SHA-256 of a
low-cardinality value, which a dictionary reverses at once); the key never leaves the pods'
environment (a ``secretKeyRef``), never appears in status, Events or logs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from continuum.errors import ConfigError

PREFIX = "hmac:"
DIGEST_BYTES = 16
MIN_KEY_BYTES = 16
ENV_DROP = "CONTINUUM_INFERENCE_LOG_DROP"
ENV_HASH = "CONTINUUM_INFERENCE_LOG_HASH"
ENV_HASH_KEY = "CONTINUUM_INFERENCE_LOG_HASH_KEY"


def value_text(value: Any) -> str:
    """The text a value is hashed as: the drift check's category label of it
    (``continuum.monitor.categories.category_label`` returns it)."""
    if isinstance(value, bool | np.bool_):
        return "True" if value else "False"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def is_missing(value: Any) -> bool:
    """None, NaN, pandas' NA and NaT: kept as null, never hashed."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(float(value))


def is_hashed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def hash_value(value: Any, key: bytes) -> Any:
    """``value`` as ``hmac:<32 hex digits>``; a missing value as None; a hash unchanged."""
    if is_missing(value):
        return None
    if is_hashed(value):
        return value
    digest = hmac.new(key, value_text(value).encode(), hashlib.sha256).digest()
    return PREFIX + digest[:DIGEST_BYTES].hex()


@dataclass(frozen=True)
class LogPolicy:
    """Which features the inference log drops and which it hashes, and the key to hash with.

    The key is kept out of ``repr``: a policy may be logged, its key never.
    """

    drop: frozenset[str] = frozenset()
    hashed: frozenset[str] = frozenset()
    key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        both = sorted(self.drop & self.hashed)
        if both:
            raise ConfigError(f"features {both} are both dropped and hashed: choose one")
        if self.hashed and self.key is None:
            raise ConfigError(
                f"features {sorted(self.hashed)} are to be hashed but no HMAC key is set: "
                f"{ENV_HASH_KEY} comes from spec.inferenceLog.hashKey (a Secret key)"
            )

    @property
    def active(self) -> bool:
        return bool(self.drop or self.hashed)

    def keeps(self, feature: str) -> bool:
        return feature not in self.drop

    def apply(self, feature: str, values: Iterable[Any]) -> list[Any]:
        """One feature's values as the log keeps them (the feature must not be dropped)."""
        if feature not in self.hashed or self.key is None:
            return list(values)
        key = self.key
        return [hash_value(value, key) for value in values]

    def unknown(self, features: Iterable[str]) -> list[str]:
        """Names in the policy that are not among ``features`` (a typo leaks the real one)."""
        known = set(features)
        return sorted((self.drop | self.hashed) - known)


def policy_from_env(env: Mapping[str, str]) -> LogPolicy:
    """The policy the operator sets on the server and drift-check pods (JSON name lists)."""
    drop = _names(env, ENV_DROP)
    hashed = _names(env, ENV_HASH)
    key_text = env.get(ENV_HASH_KEY, "")
    key = key_text.encode() if key_text else None
    if key is not None and len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"the inference log's HMAC key ({ENV_HASH_KEY}, from spec.inferenceLog.hashKey) "
            f"has {len(key)} bytes; use at least {MIN_KEY_BYTES} random bytes "
            "(e.g. openssl rand -hex 32)"
        )
    return LogPolicy(drop, hashed, key if hashed else None)


def _names(env: Mapping[str, str], name: str) -> frozenset[str]:
    text = env.get(name, "").strip()
    if not text:
        return frozenset()
    try:
        names = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{name} is not a JSON list of feature names: {exc}") from exc
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{name} must be a JSON list of feature names, got {text[:200]!r}")
    return frozenset(names)
