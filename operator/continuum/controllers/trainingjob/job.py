"""The pure builder of a TrainingJob's one child, its batch Job, as a plain dict.

The TrainingJob's batch Job runs ``continuum train`` under the restricted Pod Security Standard.
Credentials reach the pod only as ``secretKeyRef``s to the Secret the spec names: the operator
never reads a Secret and never copies a credential into an object it writes.
"""

from __future__ import annotations

import json
from typing import Any

from continuum.api import TrainingJob, dump, dump_set
from continuum.api.vocabulary import (
    COMPONENT_TRAINING,
    MODEL_LABEL,
    TRAINING_JOB,
    TRAINING_JOB_LABEL,
)
from continuum.controllers.shared.naming import child_name, managed_labels
from continuum.controllers.shared.objects import owner_reference
from continuum.controllers.shared.pods import (
    required,
    storage_env,
    var,
    workload_container,
    workload_pod,
)

TRAINER_CONTAINER = "trainer"


def job_name(tj: TrainingJob) -> str:
    """The deterministic name of a TrainingJob's batch Job (the spec is immutable)."""
    return child_name(tj.metadata.name, "train")


def training_labels(training_job: str, model: str) -> dict[str, str]:
    """Labels of every object that belongs to one TrainingJob."""
    labels = {TRAINING_JOB_LABEL: training_job, MODEL_LABEL: model}
    return managed_labels(COMPONENT_TRAINING, labels)


def desired_job(
    tj: TrainingJob, *, image: str, champion_version: int | str | None = None
) -> dict[str, Any]:
    """The batch/v1 Job that trains ``tj``."""
    labels = training_labels(tj.metadata.name, tj.spec.model)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(tj),
            "namespace": tj.metadata.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(TRAINING_JOB, tj.metadata.name, tj.metadata.uid)],
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
    container = _container(tj, image, champion)
    return workload_pod(container, required(tj.spec.storage), restartPolicy="Never")


def _container(tj: TrainingJob, image: str, champion: int | str | None) -> dict[str, Any]:
    env = trainer_env(tj, image, champion)
    container = workload_container(
        TRAINER_CONTAINER, image, "train", env, required(tj.spec.storage),
        terminationMessagePolicy="FallbackToLogsOnError",
    )  # fmt: skip
    if tj.spec.resources is not None:
        container["resources"] = dump(tj.spec.resources)
    return container


def trainer_env(
    tj: TrainingJob, image: str, champion: int | str | None = None
) -> list[dict[str, Any]]:
    """Environment of the trainer: the spec as JSON, names, then S3 (credential references)."""
    env = [
        var("CONTINUUM_SPEC", json.dumps(dump_set(tj.spec), sort_keys=True, separators=(",", ":"))),
        var("CONTINUUM_TRAINING_JOB", tj.metadata.name),
        var("CONTINUUM_IMAGE", image),
        var("HOME", "/tmp"),
        var("JOBLIB_TEMP_FOLDER", "/tmp"),
    ]
    if champion is not None:
        env.append(var("CONTINUUM_CHAMPION_VERSION", str(champion)))
    return env + storage_env(required(tj.spec.storage))
