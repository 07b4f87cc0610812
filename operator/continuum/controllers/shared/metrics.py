"""The operator's Prometheus registry and the metrics every controller shares (served by
``prometheus_client`` on --metrics-port). Each kind's own metrics live beside its controller
(``<kind>/metrics.py``) in this registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILES = Counter(
    "continuum_reconciles_total",
    "Reconciliations run, by kind and trigger (a handler, retry or resync).",
    ["kind", "handler"],
    registry=REGISTRY,
)
COALESCED = Counter(
    "continuum_reconciles_coalesced_total",
    "Triggers folded into a reconcile of the same object already waiting to run (it reads "
    "after them, so it sees what they saw), by kind and trigger.",
    ["kind", "handler"],
    registry=REGISTRY,
)
ERRORS = Counter(
    "continuum_reconcile_errors_total",
    "Reconciliations that failed (each is retried with backoff), by kind, trigger and reason "
    "(the error's class: KubeUnavailable, RequestThrottled, ResourceConflict, ...).",
    ["kind", "handler", "reason"],
    registry=REGISTRY,
)


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Serve /metrics on ``port`` from a background thread."""
    start_http_server(port, addr=addr, registry=REGISTRY)
