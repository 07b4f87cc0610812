"""Prometheus metrics of ModelDeployments."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from prometheus_client import Counter, Gauge

from continuum.api.vocabulary import PROMOTED, ROLLED_BACK
from continuum.controllers.shared.metrics import REGISTRY

SERVING_VERSION = Gauge(
    "continuum_modeldeployment_serving_version",
    "Model version a ModelDeployment serves (absent until one is serving).",
    ["namespace", "name"],
    registry=REGISTRY,
)
ROLLOUTS = Counter(
    "continuum_rollouts_total",
    "Finished rollouts of model versions, by outcome (Promoted or RolledBack).",
    ["outcome"],
    registry=REGISTRY,
)
# Exported at 0 from the start: a counter that first appears at 1 shows no increase() in
# Prometheus, so the first rollback would not fire ContinuumRolloutRolledBack (chart alerts).
for _outcome in (PROMOTED, ROLLED_BACK):
    ROLLOUTS.labels(outcome=_outcome)


def observe_serving(namespace: str, name: str, version: Any) -> None:
    """Export the serving version of one ModelDeployment (None: none, or it is gone)."""
    if isinstance(version, int):
        SERVING_VERSION.labels(namespace=namespace, name=name).set(version)
        return
    with suppress(KeyError):
        SERVING_VERSION.remove(namespace, name)
