"""Retention: which objects a pruning pass deletes (pure selection; MinIO: tests/cluster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from continuum.errors import ConfigError
from continuum.monitor.settings import settings_from_env
from continuum.storage.client import ObjectInfo
from continuum.storage.retention import cutoff_of, expired, retention_prefixes

NOW = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)


def info(key: str, age: timedelta | None) -> ObjectInfo:
    return ObjectInfo(key, "e", 1, None if age is None else NOW - age)


def test_only_objects_older_than_the_cutoff_are_selected():
    cutoff = cutoff_of(NOW, 30)
    objects = [
        info("a", timedelta(days=31)),
        info("b", timedelta(days=30, seconds=1)),
        info("c", timedelta(days=30)),  # exactly the age: kept
        info("d", timedelta(days=2)),
        info("e", None),  # no time in the listing: never deleted
    ]
    assert expired(objects, cutoff) == ["a", "b"]


def test_last_modified_is_not_part_of_identity_or_order():
    assert info("a", timedelta(days=1)) == info("a", timedelta(days=9))
    assert sorted([info("b", None), info("a", timedelta(days=1))])[0].key == "a"


def test_prefixes_cover_logs_and_labels_of_the_model_and_reports_of_the_monitor():
    assert retention_prefixes("churn", "churn-drift") == [
        "inference-logs/churn/", "labels/churn/", "reports/churn-drift/",
    ]  # fmt: skip
    with pytest.raises(ConfigError):
        retention_prefixes("../x", "m")


@pytest.mark.parametrize("days", [0, 3651])
def test_cutoff_refuses_ages_out_of_range(days):
    with pytest.raises(ValueError, match="1 to 3650 days"):
        cutoff_of(NOW, days)


def test_monitor_reads_retention_from_env():
    env = {"CONTINUUM_MONITOR": "m", "CONTINUUM_MODEL": "churn", "CONTINUUM_MODEL_VERSION": "1"}
    assert settings_from_env(env)[1].retention_days is None
    assert settings_from_env({**env, "CONTINUUM_RETENTION_DAYS": "30"})[1].retention_days == 30
    with pytest.raises(ConfigError, match="CONTINUUM_RETENTION_DAYS must be a whole number"):
        settings_from_env({**env, "CONTINUUM_RETENTION_DAYS": "30d"})
