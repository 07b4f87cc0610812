"""The model server's Deployment, Service and HPA: deterministic, owned, restricted, no secrets."""

from __future__ import annotations

from typing import Any

import pytest

from continuum.controllers.modeldeployment.children import (
    desired_deployment,
    desired_hpa,
    desired_service,
    url_of,
)
from continuum.errors import ConfigError
from continuum.server.settings import parse_settings
from tests.unit.controllers.modeldeployment.builders import MD_SPEC, MD_UID, model_deployment

IMAGE = "continuum:0.1.0"


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def env(deployment: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(deployment)["env"]}


def test_deployment_identity_and_ownership() -> None:
    md = model_deployment()
    dep = desired_deployment(md, 3, IMAGE)
    assert (dep["apiVersion"], dep["kind"]) == ("apps/v1", "Deployment")
    assert dep["metadata"]["name"] == "iris"
    assert dep["metadata"]["namespace"] == "ml"
    owner = dep["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "ModelDeployment"
    assert owner["uid"] == MD_UID
    assert owner["controller"] is True
    assert dep == desired_deployment(md, 3, IMAGE), "deterministic"
    assert dep["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "continuum"


def test_template_labels_carry_the_version_selector_does_not() -> None:
    dep = desired_deployment(model_deployment(), 3, IMAGE)
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "continuum-server"
    assert labels["app.kubernetes.io/instance"] == "iris"
    assert labels["continuum.dev/model"] == "iris"
    assert labels["continuum.dev/model-version"] == "3"
    selector = dep["spec"]["selector"]["matchLabels"]
    assert "continuum.dev/model-version" not in selector
    assert selector.items() <= labels.items()


def test_rolling_update_keeps_the_old_version_serving() -> None:
    dep = desired_deployment(model_deployment(), 3, IMAGE)
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert dep["spec"]["progressDeadlineSeconds"] == 60
    assert dep["spec"]["replicas"] == 2


def test_pod_passes_the_restricted_profile() -> None:
    dep = desired_deployment(model_deployment(), 3, IMAGE)
    pod = dep["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    sec = pod["securityContext"]
    assert sec["runAsNonRoot"] is True
    assert sec["runAsUser"] == 10001
    assert sec["seccompProfile"] == {"type": "RuntimeDefault"}
    c = container(dep)
    csec = c["securityContext"]
    assert csec["allowPrivilegeEscalation"] is False
    assert csec["capabilities"] == {"drop": ["ALL"]}
    assert csec["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    assert not pod.get("hostNetwork")
    assert not pod.get("hostPID")


def test_server_container() -> None:
    c = container(desired_deployment(model_deployment(), 3, IMAGE))
    assert c["image"] == IMAGE
    assert c["command"] == ["continuum", "serve"]
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert c["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert c["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"memory": "512Mi"},
    }


def test_env_from_spec_with_secret_references_only() -> None:
    variables = env(desired_deployment(model_deployment(), 3, IMAGE))
    assert variables["CONTINUUM_MODEL"] == "iris"
    assert variables["CONTINUUM_MODEL_VERSION"] == "3"
    assert variables["CONTINUUM_PORT"] == "8080"
    assert variables["CONTINUUM_MAX_BATCH_SIZE"] == "64"
    assert variables["CONTINUUM_MAX_LATENCY_MS"] == "3"
    assert variables["CONTINUUM_INFERENCE_LOG_ENABLED"] == "true"
    assert variables["CONTINUUM_INFERENCE_LOG_SAMPLE_RATE"] == "0.5"
    assert variables["CONTINUUM_INFERENCE_LOG_FLUSH_ROWS"] == "100"
    assert variables["CONTINUUM_INFERENCE_LOG_FLUSH_SECONDS"] == "30"
    assert variables["CONTINUUM_S3_BUCKET"] == "continuum"
    assert variables["CONTINUUM_S3_ENDPOINT"] == "http://minio.minio.svc:9000"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert variables[key] == {"secretKeyRef": {"name": "s3-credentials", "key": key}}


def test_env_parses_as_server_settings() -> None:
    variables = env(desired_deployment(model_deployment(), 3, IMAGE))
    plain = {k: v for k, v in variables.items() if isinstance(v, str)}
    settings = parse_settings([], plain)
    assert (settings.model, settings.version, settings.port) == ("iris", 3, 8080)
    assert settings.max_batch_size == 64
    assert settings.inference_log.sample_rate == 0.5
    assert settings.s3.bucket == "continuum"
    assert settings.s3.endpoint_url == "http://minio.minio.svc:9000"


def test_inference_log_policy_reaches_the_server_and_its_key_only_as_a_secret_ref() -> None:
    log = {**MD_SPEC["inferenceLog"], "drop": ["email"], "hash": ["plan"],
           "hashKey": {"name": "log-key", "key": "hmac"}}  # fmt: skip
    variables = env(desired_deployment(model_deployment(inferenceLog=log), 3, IMAGE))
    assert variables["CONTINUUM_INFERENCE_LOG_DROP"] == '["email"]'
    assert variables["CONTINUUM_INFERENCE_LOG_HASH"] == '["plan"]'
    key_ref = {"secretKeyRef": {"name": "log-key", "key": "hmac"}}
    assert variables["CONTINUUM_INFERENCE_LOG_HASH_KEY"] == key_ref
    plain = {k: v for k, v in variables.items() if isinstance(v, str)}
    with pytest.raises(ConfigError, match="no HMAC key"):
        parse_settings([], plain)  # the kubelet fills the key; without it the server refuses
    plain["CONTINUUM_INFERENCE_LOG_HASH_KEY"] = "0123456789abcdef0123"
    policy = parse_settings([], plain).inference_log.policy
    assert (policy.drop, policy.hashed) == ({"email"}, {"plan"})


def test_no_policy_no_policy_variables() -> None:
    variables = env(desired_deployment(model_deployment(), 3, IMAGE))
    assert not [name for name in variables if name.endswith(("_DROP", "_HASH", "_HASH_KEY"))]


def test_no_endpoint_no_secret() -> None:
    md = model_deployment(storage={"bucket": "continuum"})
    variables = env(desired_deployment(md, 1, IMAGE))
    assert "CONTINUUM_S3_ENDPOINT" not in variables
    assert "AWS_ACCESS_KEY_ID" not in variables


def test_service_and_url() -> None:
    md = model_deployment()
    svc = desired_service(md)
    assert svc["metadata"]["name"] == "iris"
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    dep = desired_deployment(md, 1, IMAGE)
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert url_of(md) == "http://iris.ml.svc.cluster.local/v2/models/iris"


def test_hpa_only_with_autoscaling() -> None:
    assert desired_hpa(model_deployment()) is None
    md = model_deployment(
        replicas=1, autoscaling={"minReplicas": 2, "maxReplicas": 5, "targetCPUUtilization": 70}
    )
    hpa = desired_hpa(md)
    assert hpa is not None
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "iris",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    target = hpa["spec"]["metrics"][0]["resource"]["target"]
    assert target == {"type": "Utilization", "averageUtilization": 70}
    assert "replicas" not in desired_deployment(md, 1, IMAGE)["spec"], "the HPA owns replicas"


@pytest.mark.parametrize("name", ["m" * 63, "a-b"])
def test_labels_fit(name: str) -> None:
    dep = desired_deployment(model_deployment(name=name), 1, IMAGE)
    assert all(len(v) <= 63 for v in dep["metadata"]["labels"].values())
