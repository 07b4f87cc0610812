"""Leader election's metrics, in the operator's registry (``shared.metrics.REGISTRY``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from continuum.controllers.shared.metrics import REGISTRY

IS_LEADER = Gauge(
    "continuum_operator_is_leader",
    "1 while this operator process holds the leader Lease and runs the controllers, "
    "0 while it is a standby (only with --leader-elect).",
    registry=REGISTRY,
)
LEADER_CHANGES = Counter(
    "continuum_operator_leader_changes_total",
    "Changes of the leader Lease's holder this process saw (its own acquisition included); "
    "a standby sees every takeover, so the max over the operator pods counts them.",
    registry=REGISTRY,
)
