"""Reading the operator's Prometheus registry in unit tests."""

from __future__ import annotations

from continuum.controllers.shared import metrics


def total(name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (others: any value)."""
    return sum(
        sample.value
        for family in metrics.REGISTRY.collect()
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )
