"""The training Job: deterministic, owned, restricted, and free of secrets."""

from __future__ import annotations

import json
from typing import Any

from continuum.api import TrainingJob
from continuum.controllers.trainingjob.job import desired_job, job_name
from tests.unit.controllers.trainingjob.builders import SPEC, UID, training_job

IMAGE = "continuum:0.1.0"


def container(job: dict[str, Any]) -> dict[str, Any]:
    containers = job["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def env(job: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(job)["env"]}


def test_job_identity(tj: TrainingJob) -> None:
    job = desired_job(tj, image=IMAGE)
    assert job["apiVersion"] == "batch/v1"
    assert job["kind"] == "Job"
    assert job["metadata"]["name"] == "iris-1-train" == job_name(tj)
    assert job["metadata"]["namespace"] == "ml"
    assert job == desired_job(tj, image=IMAGE), "deterministic"


def test_long_training_job_names_fit() -> None:
    tj = training_job(name="n" * 200)
    job = desired_job(tj, image=IMAGE)
    assert len(job["metadata"]["name"]) <= 63
    assert all(len(v) <= 63 for v in job["metadata"]["labels"].values())


def test_labels_on_job_and_pod(tj: TrainingJob) -> None:
    job = desired_job(tj, image=IMAGE)
    want = {
        "app.kubernetes.io/managed-by": "continuum",
        "app.kubernetes.io/part-of": "continuum",
        "continuum.dev/training-job": "iris-1",
        "continuum.dev/model": "iris",
    }
    assert want.items() <= job["metadata"]["labels"].items()
    assert want.items() <= job["spec"]["template"]["metadata"]["labels"].items()


def test_owner_reference(tj: TrainingJob) -> None:
    job = desired_job(tj, image=IMAGE)
    assert job["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "continuum.dev/v1alpha1",
            "kind": "TrainingJob",
            "name": "iris-1",
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_job_spec_from_training_spec(tj: TrainingJob) -> None:
    spec = desired_job(tj, image=IMAGE)["spec"]
    assert spec["backoffLimit"] == 2
    assert spec["activeDeadlineSeconds"] == 900
    assert "ttlSecondsAfterFinished" not in spec
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_restricted_pod_security(tj: TrainingJob) -> None:
    job = desired_job(tj, image=IMAGE)
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(job)["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container(job)["volumeMounts"]
    assert not {"hostNetwork", "hostPID", "hostIPC"} & pod.keys()


def test_container(tj: TrainingJob) -> None:
    c = container(desired_job(tj, image=IMAGE))
    assert c["image"] == IMAGE
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["command"] == ["continuum", "train"]
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert c["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"memory": "1Gi"},
    }


def test_no_resources_when_unset() -> None:
    tj = training_job(resources=None)
    assert "resources" not in container(desired_job(tj, image=IMAGE))


def test_env_carries_spec_and_names(tj: TrainingJob) -> None:
    values = env(desired_job(tj, image=IMAGE))
    spec = json.loads(values["CONTINUUM_SPEC"])
    assert spec["model"] == "iris"
    assert spec["dataset"]["target"] == "species"
    assert spec["storage"]["bucket"] == SPEC["storage"]["bucket"]
    assert values["CONTINUUM_TRAINING_JOB"] == "iris-1"
    assert values["CONTINUUM_IMAGE"] == IMAGE
    assert values["AWS_REGION"] == "us-east-1"
    assert "CONTINUUM_CHAMPION_VERSION" not in values


def test_champion_is_passed_on(tj: TrainingJob) -> None:
    values = env(desired_job(tj, image=IMAGE, champion_version=2))
    assert values["CONTINUUM_CHAMPION_VERSION"] == "2"


def test_credentials_only_by_reference(tj: TrainingJob) -> None:
    values = env(desired_job(tj, image=IMAGE))
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert values[key] == {"secretKeyRef": {"name": "s3-credentials", "key": key}}


def test_no_credentials_without_secret_ref() -> None:
    storage = {"bucket": "continuum"}
    values = env(desired_job(training_job(storage=storage), image=IMAGE))
    assert "AWS_ACCESS_KEY_ID" not in values
    assert "AWS_SECRET_ACCESS_KEY" not in values
