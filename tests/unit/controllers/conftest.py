"""Builders of TrainingJob bodies, Jobs and trainer summaries for controller unit tests."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from continuum.api import TrainingJob, load

SPEC: dict[str, Any] = {
    "model": "iris",
    "dataset": {"uri": "s3://data/iris.csv", "target": "species"},
    "estimator": {"class": "RandomForestClassifier", "params": {"n_estimators": 50}},
    "evaluation": {"metric": "accuracy", "threshold": 0.8},
    "storage": {
        "endpoint": "http://minio.minio.svc:9000",
        "bucket": "continuum",
        "secretRef": {"name": "s3-credentials"},
    },
    "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
    "backoffLimit": 2,
    "activeDeadlineSeconds": 900,
}
UID = "6f1c1f0e-0000-4000-8000-000000000001"

SUCCESS: dict[str, Any] = {
    "status": "Succeeded",
    "model": "iris",
    "version": 3,
    "uri": "s3://continuum/models/iris/3/",
    "sha256": "a" * 64,
    "metric": "accuracy",
    "metrics": {"accuracy": 0.9667, "f1_macro": 0.96},
    "qualified": True,
    "reasons": [],
    "dataset": {"uri": "s3://data/iris.csv", "fingerprint": "sha256:abc", "rows": 150},
}
FAILURE: dict[str, Any] = {
    "status": "Failed",
    "reason": "DatasetInvalid",
    "message": "dataset invalid: column 'species': target column is missing",
}


def body(name: str = "iris-1", status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    """A TrainingJob as the API server returns it."""
    return {
        "apiVersion": "continuum.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {
            "name": name,
            "namespace": "ml",
            "uid": UID,
            "generation": 1,
            "resourceVersion": "100",
        },
        "spec": {**copy.deepcopy(SPEC), **spec},
        "status": status or {},
    }


def training_job(**kwargs: Any) -> TrainingJob:
    return load(TrainingJob, body(**kwargs))


def job(*conditions: str, ready: int = 0, name: str = "iris-1-train") -> dict[str, Any]:
    """A batch Job with the given True conditions (Complete / Failed ...)."""
    status: dict[str, Any] = {"startTime": "2026-01-01T10:00:00Z", "ready": ready}
    if ready:
        status["active"] = ready
    status["conditions"] = [
        {
            "type": c,
            "status": "True",
            "reason": "BackoffLimitExceeded" if c == "Failed" else "",
            "message": "Job has reached the specified backoff limit" if c == "Failed" else "",
            "lastTransitionTime": "2026-01-01T10:01:00Z",
        }
        for c in conditions
    ]
    if "Complete" in conditions:
        status["completionTime"] = "2026-01-01T10:01:30Z"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": "ml",
            "uid": "job-uid",
            "ownerReferences": [
                {
                    "apiVersion": "continuum.dev/v1alpha1",
                    "kind": "TrainingJob",
                    "name": "iris-1",
                    "uid": UID,
                    "controller": True,
                }
            ],
        },
        "status": status,
    }


def message(summary: dict[str, Any]) -> str:
    return json.dumps(summary)


@pytest.fixture
def tj() -> TrainingJob:
    return training_job()
