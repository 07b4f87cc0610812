"""Pure builders of the children the operator creates: plain dicts, ready for the API server.

The TrainingJob's batch Job runs ``continuum train`` under the restricted Pod Security Standard.
Credentials reach the pod only as ``secretKeyRef``s to the Secret the spec names: the operator
never reads a Secret and never copies a credential into an object it writes.
"""

from __future__ import annotations

import json
from typing import Any

from continuum.api import API_VERSION, TrainingJob, dump
from continuum.controllers.naming import child_name, training_labels
from continuum.controllers.storage_env import (
    storage_env,
    storage_volume_mounts,
    storage_volumes,
    var,
)

TRAINER_CONTAINER = "trainer"
RUN_AS = 10001
TMP_VOLUME = "tmp"

POD_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS,
    "runAsGroup": RUN_AS,
    "fsGroup": RUN_AS,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}


def job_name(tj: TrainingJob) -> str:
    """The deterministic name of a TrainingJob's batch Job (the spec is immutable)."""
    return child_name(_name(tj), "train")


def owner_reference(tj: TrainingJob) -> dict[str, Any]:
    """A controller owner reference to ``tj``: deleting it garbage-collects the child."""
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "name": _name(tj),
        "uid": str(tj.metadata["uid"]),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def desired_job(
    tj: TrainingJob, *, image: str, champion_version: int | str | None = None
) -> dict[str, Any]:
    """The batch/v1 Job that trains ``tj``."""
    labels = training_labels(_name(tj), tj.spec.model)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(tj),
            "namespace": tj.metadata["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(tj)],
        },
        "spec": {
            "backoffLimit": tj.spec.backoff_limit,
            "activeDeadlineSeconds": tj.spec.active_deadline_seconds,
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": _pod_spec(tj, image, champion_version),
            },
        },
    }


def _pod_spec(tj: TrainingJob, image: str, champion: int | str | None) -> dict[str, Any]:
    return {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": dict(POD_SECURITY),
        "containers": [_container(tj, image, champion)],
        "volumes": [{"name": TMP_VOLUME, "emptyDir": {}}, *storage_volumes(tj.spec.storage)],
    }


def _container(tj: TrainingJob, image: str, champion: int | str | None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": TRAINER_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["continuum", "train"],
        "env": trainer_env(tj, image, champion),
        "securityContext": dict(CONTAINER_SECURITY),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": TMP_VOLUME, "mountPath": "/tmp"},
            *storage_volume_mounts(tj.spec.storage),
        ],
    }
    if tj.spec.resources is not None:
        container["resources"] = dump(tj.spec.resources)
    return container


def trainer_env(
    tj: TrainingJob, image: str, champion: int | str | None = None
) -> list[dict[str, Any]]:
    """Environment of the trainer: the spec as JSON, names, then S3 (credential references)."""
    env = [
        var("CONTINUUM_SPEC", json.dumps(dump(tj.spec), sort_keys=True, separators=(",", ":"))),
        var("CONTINUUM_TRAINING_JOB", _name(tj)),
        var("CONTINUUM_IMAGE", image),
        var("HOME", "/tmp"),
        var("JOBLIB_TEMP_FOLDER", "/tmp"),
    ]
    if champion is not None:
        env.append(var("CONTINUUM_CHAMPION_VERSION", str(champion)))
    return env + storage_env(tj.spec.storage)


def _name(tj: TrainingJob) -> str:
    return str(tj.metadata["name"])
