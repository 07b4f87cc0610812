"""``coordination.k8s.io/v1`` Leases: the record leader election reads and writes.

``LeaseRecord`` is a Lease's ``spec`` (holder, duration, acquire and renew times, transitions)
plus the ``resourceVersion`` it was read at; ``Leases`` reads, creates and replaces one Lease.
A replace carries that ``resourceVersion``, so the API server refuses it (409,
``ResourceConflict``) when anyone wrote the Lease since: two candidates can never both believe
they took it over. What to write when is decided above this layer
(``continuum.controllers.election``).

``Leases`` is a ``Kube`` of its own, not the controllers' shared gateway: a renewal must not
queue behind the controllers' requests for a connection (under a burst of 1,000 new
TrainingJobs the shared pool of 32 is busy for seconds), or a busy leader would miss its renew
deadline and exit. Its requests time out after ``timeout`` seconds (the elector passes half the
renew deadline), so one stuck request leaves time for another attempt.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from continuum.kube.client import Kube, _q

API = "/apis/coordination.k8s.io/v1"
LEASE_POOL = 2  # one renewal at a time, one spare for a release racing a renewal


@dataclasses.dataclass(frozen=True)
class LeaseRecord:
    """A Lease's spec as leader election uses it; ``resource_version`` "" for no Lease yet."""

    holder: str = ""
    duration_seconds: int = 0
    acquire_time: datetime.datetime | None = None
    renew_time: datetime.datetime | None = None
    transitions: int = 0
    resource_version: str = ""

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> LeaseRecord:
        spec = body.get("spec") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration_seconds=_int(spec.get("leaseDurationSeconds")),
            acquire_time=parse_micro_time(spec.get("acquireTime")),
            renew_time=parse_micro_time(spec.get("renewTime")),
            transitions=_int(spec.get("leaseTransitions")),
            resource_version=str((body.get("metadata") or {}).get("resourceVersion") or ""),
        )

    def to_body(self, namespace: str, name: str) -> dict[str, Any]:
        """The Lease object to create or replace (the version guards a replace)."""
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if self.resource_version:
            metadata["resourceVersion"] = self.resource_version
        spec: dict[str, Any] = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration_seconds,
            "leaseTransitions": self.transitions,
        }
        if self.acquire_time is not None:
            spec["acquireTime"] = format_micro_time(self.acquire_time)
        if self.renew_time is not None:
            spec["renewTime"] = format_micro_time(self.renew_time)
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }


class Leases(Kube):
    """Read, create and replace Leases, on a connection pool of their own (see above)."""

    @classmethod
    async def open(cls, *, timeout: float) -> Leases:
        """Log in as ``Kube.connect`` does, with ``timeout`` seconds per request."""
        leases = cls(timeout=timeout, pool_size=LEASE_POOL)
        leases._login()
        return leases

    async def read_lease(self, namespace: str, name: str) -> LeaseRecord | None:
        """The Lease, or None if it does not exist."""
        found = await self._read(_lease_path(namespace, name), f"read Lease {namespace}/{name}")
        return None if found is None else LeaseRecord.from_body(found)

    async def create_lease(self, namespace: str, name: str, record: LeaseRecord) -> LeaseRecord:
        """Create the Lease holding ``record``; ``ResourceConflict`` if it exists already."""
        path = f"{API}/namespaces/{_q(namespace)}/leases"
        body = dataclasses.replace(record, resource_version="").to_body(namespace, name)
        created = await self._request("POST", path, f"create Lease {namespace}/{name}", body)
        return LeaseRecord.from_body(created)

    async def replace_lease(self, namespace: str, name: str, record: LeaseRecord) -> LeaseRecord:
        """Replace the Lease with ``record`` if it is still at ``record.resource_version``.

        ``ResourceConflict`` when someone wrote it since (or it was deleted and created again).
        """
        what = f"replace Lease {namespace}/{name}"
        body = record.to_body(namespace, name)
        replaced = await self._request("PUT", _lease_path(namespace, name), what, body)
        return LeaseRecord.from_body(replaced)


def parse_micro_time(value: object) -> datetime.datetime | None:
    """A ``metav1.MicroTime`` (RFC 3339 with microseconds), None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)


def format_micro_time(when: datetime.datetime) -> str:
    """``when`` as the API server writes a ``metav1.MicroTime``: UTC, microseconds, ``Z``."""
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _lease_path(namespace: str, name: str) -> str:
    return f"{API}/namespaces/{_q(namespace)}/leases/{_q(name)}"


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
