"""TrainingJob end to end on the real cluster: operator, trainer Job, MinIO, status, Events.

The operator runs as a subprocess (`continuum operator --namespace <test namespace>`) under a
ServiceAccount bound to deploy/rbac/clusterrole.yaml, so these tests also prove that RBAC is
enough. Trainer Jobs run the project image in a namespace that enforces the restricted Pod
Security Standard.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest
from kubernetes import client

from tests.kit.cluster import S3Settings, event_reasons, s3_client, upload, wait_until
from tests.kit.datasets import dataset_csv
from tests.kit.kinds import (
    GROUP,
    TRAININGJOBS,
    VERSION,
    Ctx,
    conditions,
    create_tj,
    training_job,
)


def test_training_jobs_succeed_with_increasing_versions(ctx: Ctx) -> None:
    api, namespace, s3 = ctx.api, ctx.namespace, ctx.s3
    ctx.start_training("churn-1")
    first = ctx.finished("churn-1")
    status = first["status"]
    assert status["phase"] == "Succeeded", status
    assert status["model"]["version"] == 1
    assert len(status["model"]["sha256"]) == 64
    assert status["model"]["uri"].startswith(f"s3://{ctx.bucket}/models/churn/1")
    assert status["metrics"]["accuracy"] >= 0.6
    assert status["qualified"] is True
    assert status["dataset"]["rows"] == 240
    assert status["jobName"] == "churn-1-train"
    assert status["observedGeneration"] == first["metadata"]["generation"]
    cond = conditions(first)
    assert cond["Ready"]["status"] == "True"
    assert cond["Succeeded"]["status"] == "True"
    assert cond["Stalled"]["status"] == "False"
    assert cond["Reconciling"]["status"] == "False"
    assert cond["Qualified"]["status"] == "True"
    keys = s3_client(s3).list_objects_v2(Bucket=ctx.bucket, Prefix="models/churn/1/")
    assert keys.get("KeyCount", 0) > 0

    job = client.BatchV1Api(api).read_namespaced_job("churn-1-train", namespace)
    owner = job.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("TrainingJob", "churn-1", True)
    assert job.metadata.labels["app.kubernetes.io/managed-by"] == "continuum"
    wait_until(
        "Events of churn-1",
        lambda: (
            {"JobCreated", "Succeeded", "Qualified"}
            <= set(event_reasons(api, namespace, "churn-1"))
        ),
        30,
    )

    ctx.start_training("churn-2")
    second = ctx.finished("churn-2")
    assert second["status"]["phase"] == "Succeeded", second["status"]
    assert second["status"]["model"]["version"] == 2
    jobs = client.BatchV1Api(api).list_namespaced_job(namespace).items
    assert sorted(j.metadata.name for j in jobs) == ["churn-1-train", "churn-2-train"]


def test_missing_target_column_fails_naming_it(ctx: Ctx) -> None:
    api, namespace, s3 = ctx.api, ctx.namespace, ctx.s3
    data = upload(s3, ctx.bucket, "datasets/broken.csv", dataset_csv(drop="label"))
    create_tj(api, namespace, training_job("broken", data, s3, ctx.bucket, ctx.secret))
    tj = ctx.finished("broken")
    status = tj["status"]
    assert status["phase"] == "Failed", status
    assert "label" in status["message"]
    stalled = conditions(tj)["Stalled"]
    assert stalled["status"] == "True"
    assert stalled["reason"] == "DatasetInvalid"
    assert "label" in stalled["message"]
    assert conditions(tj)["Ready"]["status"] == "False"
    assert "model" not in status
    secret = client.CoreV1Api(api).read_namespaced_secret(ctx.secret, namespace)
    assert secret.data  # the credentials exist, and are nowhere in the status
    plain = str(tj)
    for value in secret.data.values():
        assert value not in plain
    assert s3.secret_key not in plain


def test_spec_is_immutable(
    api: client.ApiClient,
    namespace: str,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
    crds: None,
) -> None:
    body = training_job("frozen", f"s3://{s3_bucket}/none.csv", s3, s3_bucket, s3_secret)
    create_tj(api, namespace, body)
    objs = client.CustomObjectsApi(api)
    with pytest.raises(client.ApiException) as rejected:
        objs.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, TRAININGJOBS, "frozen", {"spec": {"backoffLimit": 3}}
        )
    assert rejected.value.status == 422
    assert "immutable" in str(rejected.value.body)


def test_deleting_the_training_job_collects_its_job(ctx: Ctx) -> None:
    api, namespace = ctx.api, ctx.namespace
    ctx.start_training("gone")
    batch = client.BatchV1Api(api)
    names: Callable[[], list[str]] = lambda: [  # noqa: E731
        j.metadata.name for j in batch.list_namespaced_job(namespace).items
    ]
    wait_until("the training Job", lambda: names() == ["gone-train"], 60)
    client.CustomObjectsApi(api).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, TRAININGJOBS, "gone"
    )
    wait_until("the Job to be garbage-collected", lambda: names() == [], 120)


def test_restarted_operator_keeps_exactly_one_job(ctx: Ctx) -> None:
    api, namespace = ctx.api, ctx.namespace
    ctx.start_training("restart")
    batch = client.BatchV1Api(api)
    wait_until(
        "the training Job",
        lambda: batch.list_namespaced_job(namespace).items,
        60,
    )
    ctx.op.stop(signal.SIGKILL)
    ctx.op.start()
    tj = ctx.finished("restart")
    assert tj["status"]["phase"] == "Succeeded", tj["status"]
    assert conditions(tj)["Ready"]["status"] == "True"
    assert [j.metadata.name for j in batch.list_namespaced_job(namespace).items] == [
        "restart-train"
    ]
