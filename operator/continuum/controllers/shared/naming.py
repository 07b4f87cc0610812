"""Deterministic names and labels of the objects the operator creates."""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 63
MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "app.kubernetes.io/part-of"
COMPONENT = "app.kubernetes.io/component"
OPERATOR = "continuum"
TRAINING_JOB_LABEL = "continuum.dev/training-job"
MODEL_LABEL = "continuum.dev/model"
MANAGED_SELECTOR = f"{MANAGED_BY}={OPERATOR}"


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


def training_labels(training_job: str, model: str) -> dict[str, str]:
    """Labels of every object that belongs to one TrainingJob."""
    return {
        MANAGED_BY: OPERATOR,
        PART_OF: OPERATOR,
        COMPONENT: "training",
        TRAINING_JOB_LABEL: label_value(training_job),
        MODEL_LABEL: label_value(model),
    }
