"""Builders of TrainingJob bodies, Jobs, trainer summaries and manifests for controller unit
tests."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from continuum.api import TrainingJob, load
from continuum.controllers.trainingjob.manifest import Kind, ManifestRead

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
MANIFEST_URI = "s3://continuum/models/iris/3/manifest.json"
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


def manifest_of(
    summary: Mapping[str, Any] | None = None,
    *,
    training_job: str | None = "iris-1",
    champion: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest the trainer stored with a success ``summary`` (``SUCCESS`` by default),
    shaped as ``continuum.trainer.manifest.build_manifest`` makes it."""
    summary = SUCCESS if summary is None else summary
    metrics = dict(summary["metrics"])
    return {
        "schemaVersion": 1,
        "model": summary["model"],
        "version": summary["version"],
        "uri": summary["uri"],
        "modelFile": "model.skops",
        "format": "skops",
        "sha256": summary["sha256"],
        "createdAt": "2026-01-01T10:01:20+00:00",
        "trainingJob": training_job,
        "dataset": {**summary["dataset"], "objects": 1},
        "task": "classification",
        "metrics": metrics,
        "qualified": summary["qualified"],
        "evaluation": {
            "metric": summary["metric"],
            "value": metrics[summary["metric"]],
            "threshold": 0.8,
            "mustBeat": "current",
            "champion": None if champion is None else dict(champion),
            "reasons": list(summary["reasons"]),
        },
    }


def manifest_read(
    manifest: Mapping[str, Any] | None = None,
    *,
    kind: Kind = "read",
    problem: str = "",
    needs_change: bool = False,
) -> ManifestRead:
    """A ``ManifestRead`` of ``MANIFEST_URI``: the manifest of ``SUCCESS`` unless told."""
    if kind == "read" and manifest is None:
        manifest = manifest_of()
    found = None if manifest is None else dict(manifest)
    return ManifestRead(MANIFEST_URI, kind, found, problem, needs_change)


def unreadable(problem: str = "S3 is unavailable", *, needs_change: bool = False) -> ManifestRead:
    """The read of a manifest that could not be fetched."""
    return manifest_read(kind="unreadable", problem=problem, needs_change=needs_change)
