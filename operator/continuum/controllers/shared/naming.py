"""Deterministic names and labels of the objects the operator creates."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from continuum.api.vocabulary import (
    COMPONENT,
    MANAGED_BY,
    OPERATOR,
    PART_OF,
)

MAX_NAME = 63


def child_name(parent: str, suffix: str, limit: int = MAX_NAME) -> str:
    """``<parent>-<suffix>`` as a DNS label; over ``limit``, cut and add a short hash."""
    name = re.sub(r"[^a-z0-9-]", "-", f"{parent}-{suffix}".lower())
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def label_value(value: str) -> str:
    """``value`` fitted to a label value (at most 63 characters, hashed when longer)."""
    if len(value) <= MAX_NAME:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{value[: MAX_NAME - 9].rstrip('-.')}-{digest}"


def managed_labels(component: str, labels: Mapping[str, str]) -> dict[str, str]:
    """The labels of every child the operator makes: managed-by, part-of, ``component``, and
    ``labels`` (each value fitted with ``label_value``)."""
    fitted = {key: label_value(value) for key, value in labels.items()}
    return {MANAGED_BY: OPERATOR, PART_OF: OPERATOR, COMPONENT: component, **fitted}
