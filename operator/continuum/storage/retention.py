"""Retention: the payload data of a model and the reports of its monitor, kept for a stated age.

``spec.inferenceLog.retentionDays`` of the ModelDeployment says how long; the drift-check Job
prunes before each check (:func:`prune`), deleting every object under

    inference-logs/<model>/      every version's logged rows
    labels/<model>/              label files, uploaded or posted as feedback
    reports/<monitor>/           the monitor's drift reports

whose ``LastModified`` (the S3 server's clock, so no pod's clock decides) is older than the
cutoff. Why a pruning step, not an S3 lifecycle rule: a lifecycle rule is per bucket and
shared by every model and namespace writing there (one ModelDeployment's retention would
rewrite another's rules, and the Job's credentials would need PutLifecycleConfiguration on
the bucket), its expiry runs on the server's own schedule (MinIO's scanner, AWS once a day),
so no test can see it act, and not every S3-compatible store has it. A bucket-wide lifecycle
rule remains the right tool for data no monitor prunes (see docs/security.md). Models and
their baselines are never pruned: a served version needs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from continuum.storage.client import ObjectInfo, ObjectStore
from continuum.storage.layout import check_name, labels_prefix

MAX_RETENTION_DAYS = 3650


@dataclass(frozen=True)
class Pruned:
    """What one pruning pass did: objects deleted and kept, per prefix, and the cutoff."""

    cutoff: datetime
    deleted: dict[str, int]
    kept: dict[str, int]

    def note(self) -> str:
        parts = ", ".join(f"{prefix} {count}" for prefix, count in self.deleted.items())
        total = sum(self.deleted.values())
        return (
            f"retention: deleted {total} object(s) last modified before "
            f"{self.cutoff.isoformat(timespec='seconds')} ({parts})"
        )


def retention_prefixes(model: str, monitor: str) -> list[str]:
    """The prefixes a monitor's retention covers (module doc)."""
    return [
        f"inference-logs/{check_name('model', model)}/",
        labels_prefix(model),
        f"reports/{check_name('monitor', monitor)}/",
    ]


def cutoff_of(now: datetime, days: int) -> datetime:
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise ValueError(f"retention must be 1 to {MAX_RETENTION_DAYS} days, got {days}")
    return now - timedelta(days=days)


def expired(objects: Iterable[ObjectInfo], cutoff: datetime) -> list[str]:
    """Keys of the objects last modified before ``cutoff``; an object whose time the listing
    did not give is kept (never delete what cannot be dated)."""
    return [
        item.key
        for item in objects
        if item.last_modified is not None and item.last_modified < cutoff
    ]


def prune(store: ObjectStore, prefixes: Sequence[str], cutoff: datetime) -> Pruned:
    """Delete every object under ``prefixes`` last modified before ``cutoff``."""
    deleted: dict[str, int] = {}
    kept: dict[str, int] = {}
    for prefix in prefixes:
        listed = store.list_objects(prefix)
        keys = expired(listed, cutoff)
        store.delete_objects(keys)
        deleted[prefix], kept[prefix] = len(keys), len(listed) - len(keys)
    return Pruned(cutoff, deleted, kept)
