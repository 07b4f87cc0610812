"""A namespace's default storage under the real operator and the real MinIO.

A TrainingJob and a ModelDeployment that omit spec.storage use the ConfigMap
``continuum-storage`` of their namespace (key ``storage``, a StorageSpec as YAML); their status
shows the storage in effect and its source. Before the ConfigMap exists the TrainingJob waits,
saying in its Reconciling condition what is missing; once created, the run proceeds.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.kit.cluster import object_store, wait_until
from tests.kit.datasets import dataset_csv
from tests.kit.kinds import (
    conditions,
    create_tj,
    finished,
    get_tj,
    model_deployment,
    objs,
    predict_in_cluster,
    serving,
    training_job,
)

pytestmark = pytest.mark.cluster

DATASET_KEY = "datasets/churn.csv"


def without_storage(body: dict[str, Any]) -> dict[str, Any]:
    body["spec"].pop("storage")
    return body


def test_objects_without_storage_use_the_namespace_default(
    api, namespace, s3, s3_bucket, s3_secret, operator
):
    object_store(s3, s3_bucket).put_bytes(DATASET_KEY, dataset_csv())
    dataset = f"s3://{s3_bucket}/{DATASET_KEY}"
    tj = without_storage(training_job("churn-1", dataset, s3, s3_bucket, s3_secret))
    create_tj(api, namespace, tj)

    def says_what_is_missing() -> str | None:
        message = conditions(get_tj(api, namespace, "churn-1")).get("Reconciling", {})
        text = str(message.get("message", ""))
        return text if "no spec.storage and no ConfigMap" in text else None

    text = wait_until("the TrainingJob to name the missing default", says_what_is_missing, 120)
    assert f"ConfigMap {namespace}/continuum-storage (key storage)" in text

    default = {"endpoint": s3.endpoint_url, "bucket": s3_bucket, "secretRef": {"name": s3_secret}}
    client.CoreV1Api(api).create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="continuum-storage"),
            data={"storage": yaml.safe_dump(default)},
        ),
    )
    done = finished(api, namespace, "churn-1", operator)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["storage"] == {**default, "region": "us-east-1", "pathStyle": True,
                                         "source": "ConfigMap/continuum-storage"}  # fmt: skip
    assert "storage" not in done["spec"]  # the operator never writes spec
    assert object_store(s3, s3_bucket).list_objects("models/churn/1/")

    md = without_storage(model_deployment(s3, s3_bucket, s3_secret))
    objs(api).create_namespaced_custom_object(
        "continuum.dev", "v1alpha1", namespace, "modeldeployments", md
    )
    served = serving(api, namespace, operator, 1)
    assert served["status"]["storage"]["source"] == "ConfigMap/continuum-storage"
    assert served["status"]["storage"]["bucket"] == s3_bucket
    assert predict_in_cluster(api, namespace, "churn")["predictions"]
