"""Builders of ModelDeployment bodies, TrainingJobs and Deployments for controller unit tests."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from continuum.api import ModelDeployment, load
from tests.unit.controllers.trainingjob.builders import SPEC as TJ_SPEC

MD_UID = "7a2d0c1e-0000-4000-8000-000000000002"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
MD_SPEC: dict[str, Any] = {
    "model": "iris",
    "version": {"policy": "latestQualified"},
    "replicas": 2,
    "batching": {"maxBatchSize": 64, "maxLatencyMs": 3},
    "inferenceLog": {"enabled": True, "sampleRate": 0.5, "flushRows": 100, "flushSeconds": 30},
    "storage": {
        "endpoint": "http://minio.minio.svc:9000",
        "bucket": "continuum",
        "secretRef": {"name": "s3-credentials"},
    },
    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
    "rolloutDeadlineSeconds": 60,
}


def md_body(
    name: str = "iris", status: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    """A ModelDeployment as the API server returns it."""
    return {
        "apiVersion": "continuum.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {
            "name": name,
            "namespace": "ml",
            "uid": MD_UID,
            "generation": 1,
            "resourceVersion": "200",
        },
        "spec": {**copy.deepcopy(MD_SPEC), **spec},
        "status": status or {},
    }


def model_deployment(**kwargs: Any) -> ModelDeployment:
    return load(ModelDeployment, md_body(**kwargs))


def tj_body(
    version: int, *, qualified: bool = True, phase: str = "Succeeded", model: str = "iris"
) -> dict[str, Any]:
    """A finished TrainingJob that produced ``version`` of ``model``."""
    status: dict[str, Any] = {"phase": phase}
    if phase == "Succeeded":
        status["model"] = {"version": version, "uri": f"s3://continuum/models/{model}/{version}/"}
        status["qualified"] = qualified
    return {
        "apiVersion": "continuum.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": f"{model}-{version}", "namespace": "ml", "uid": f"tj-{version}"},
        "spec": {**copy.deepcopy(TJ_SPEC), "model": model},
        "status": status,
    }


def deployment(
    version: int,
    state: str = "Complete",
    *,
    replicas: int = 2,
    generation: int = 3,
    observed: int | None = None,
) -> dict[str, Any]:
    """A Deployment at ``version`` whose rollout is Complete, Progressing or Failed."""
    ready = replicas if state == "Complete" else 0
    progressing = {
        "Complete": ("True", "NewReplicaSetAvailable"),
        "Progressing": ("True", "ReplicaSetUpdated"),
        "Failed": ("False", "ProgressDeadlineExceeded"),
    }[state]
    old = 0 if state == "Complete" else replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "iris",
            "namespace": "ml",
            "generation": generation,
            "ownerReferences": [
                {
                    "apiVersion": "continuum.dev/v1alpha1",
                    "kind": "ModelDeployment",
                    "name": "iris",
                    "uid": MD_UID,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "replicas": replicas,
            "template": {"metadata": {"labels": {"continuum.dev/model-version": str(version)}}},
        },
        "status": {
            "observedGeneration": generation if observed is None else observed,
            "replicas": replicas + (1 if state != "Complete" else 0),
            "updatedReplicas": replicas if state == "Complete" else 1,
            "readyReplicas": ready or old,
            "availableReplicas": ready or old,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {
                    "type": "Progressing",
                    "status": progressing[0],
                    "reason": progressing[1],
                    "message": f'ReplicaSet "iris-{version}" {progressing[1]}',
                },
            ],
        },
    }
