"""Pure builders of a ModelDeployment's children: Deployment, Service and HPA, as plain dicts.

The Deployment runs ``continuum serve`` for one model version under the restricted Pod
Security Standard. Its rolling update surges one new pod and never takes an old one away
before the new one is ready (maxUnavailable 0), so the previous version keeps serving until
the new one answers its readiness probe. Credentials, and the inference log's HMAC key, reach
the pods only as ``secretKeyRef``s.
"""

from __future__ import annotations

from typing import Any

from continuum.api import ModelDeployment, dump
from continuum.api.vocabulary import (
    COMPONENT_SERVING,
    INSTANCE_LABEL,
    MODEL_DEPLOYMENT,
    MODEL_DEPLOYMENT_LABEL,
    MODEL_LABEL,
    MODEL_VERSION_LABEL,
    NAME_LABEL,
    ROLLOUT_STEP_LABEL,
)
from continuum.controllers.modeldeployment.progressive import Pods
from continuum.controllers.shared.naming import label_value, managed_labels
from continuum.controllers.shared.objects import owner_reference
from continuum.controllers.shared.pods import (
    log_policy_env,
    required,
    storage_env,
    var,
    workload_container,
    workload_pod,
)

SERVER_CONTAINER = "server"
SERVER_NAME = "continuum-server"
PORT = 8080
PORT_NAME = "http"
SERVICE_PORT = 80
DRAIN_SECONDS = 5
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"


def name_of(md: ModelDeployment) -> str:
    return md.metadata.name


def namespace_of(md: ModelDeployment) -> str:
    return md.metadata.namespace


def url_of(md: ModelDeployment) -> str:
    """The in-cluster URL of the model's OIP v2 endpoint, through the Service."""
    return f"http://{name_of(md)}.{namespace_of(md)}.svc.cluster.local/v2/models/{md.spec.model}"


def selector_labels(md: ModelDeployment) -> dict[str, str]:
    """The labels the Deployment and Service select pods by (every version matches)."""
    return {NAME_LABEL: SERVER_NAME, INSTANCE_LABEL: label_value(name_of(md))}


def serving_labels(md: ModelDeployment) -> dict[str, str]:
    """Labels of every object that belongs to one ModelDeployment."""
    own = {MODEL_DEPLOYMENT_LABEL: name_of(md), MODEL_LABEL: md.spec.model}
    return {**selector_labels(md), **managed_labels(COMPONENT_SERVING, own)}


def _metadata(md: ModelDeployment) -> dict[str, Any]:
    return {
        "name": name_of(md),
        "namespace": namespace_of(md),
        "labels": serving_labels(md),
        "ownerReferences": [owner_reference(MODEL_DEPLOYMENT, name_of(md), md.metadata.uid)],
    }


def desired_deployment(
    md: ModelDeployment, version: int, image: str, pods: Pods | None = None
) -> dict[str, Any]:
    """The apps/v1 Deployment serving ``version`` of the model (named like ``md``); with
    ``pods``, a progressive rollout's step: the candidate beside it (``rollout_env``)."""
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(md)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "progressDeadlineSeconds": md.spec.rollout_deadline_seconds,
        "revisionHistoryLimit": 5,
        "template": _template(md, version, image, pods),
    }
    if md.spec.autoscaling is None:
        spec["replicas"] = md.spec.replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(md), "spec": spec}


def _template(md: ModelDeployment, version: int, image: str, pods: Pods | None) -> dict[str, Any]:
    labels = {**serving_labels(md), MODEL_VERSION_LABEL: str(version)}
    if pods is not None:
        labels[ROLLOUT_STEP_LABEL] = pods.step_id
    return {
        "metadata": {"labels": labels},
        "spec": workload_pod(_container(md, version, image, pods), required(md.spec.storage)),
    }


def _container(md: ModelDeployment, version: int, image: str, pods: Pods | None) -> dict[str, Any]:
    env = [*server_env(md, version), *rollout_env(md, pods)]
    container = workload_container(
        SERVER_CONTAINER, image, "serve", env, required(md.spec.storage),
        ports=[{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        readinessProbe=_probe(READY_PATH, period=2, failures=2),
        livenessProbe=_probe(LIVE_PATH, period=10, failures=3),
        # keep answering while the endpoint removal reaches every node's proxy
        lifecycle={"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
    )  # fmt: skip
    if md.spec.resources is not None:
        container["resources"] = dump(md.spec.resources)
    return container


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": PORT_NAME},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 2,
    }


def server_env(md: ModelDeployment, version: int) -> list[dict[str, Any]]:
    """Environment of the model server: model, version, batching, inference log, storage."""
    spec, log = md.spec, md.spec.inference_log
    return [
        var("CONTINUUM_MODEL", spec.model),
        var("CONTINUUM_MODEL_VERSION", str(version)),
        var("CONTINUUM_PORT", str(PORT)),
        var("CONTINUUM_MAX_BATCH_SIZE", str(spec.batching.max_batch_size)),
        var("CONTINUUM_MAX_LATENCY_MS", str(spec.batching.max_latency_ms)),
        var("CONTINUUM_INFERENCE_LOG_ENABLED", str(log.enabled).lower()),
        var("CONTINUUM_INFERENCE_LOG_SAMPLE_RATE", repr(float(log.sample_rate))),
        var("CONTINUUM_INFERENCE_LOG_FLUSH_ROWS", str(log.flush_rows)),
        var("CONTINUUM_INFERENCE_LOG_FLUSH_SECONDS", str(log.flush_seconds)),
        *log_policy_env(log),
        *storage_env(required(spec.storage)),
        var("HOME", "/tmp"),
    ]


def rollout_env(md: ModelDeployment, pods: Pods | None) -> list[dict[str, Any]]:
    """The candidate, its weight and the step (read by the server's ``rollout_from_env``)."""
    if pods is None:
        return []
    tolerance = md.spec.rollout.analysis.regression_tolerance
    return [
        var("CONTINUUM_CANDIDATE_VERSION", str(pods.candidate)),
        var("CONTINUUM_CANDIDATE_WEIGHT", str(pods.weight)),
        var("CONTINUUM_ROLLOUT_STEP", pods.step_id),
        var("CONTINUUM_AGREEMENT_TOLERANCE", repr(float(tolerance))),
    ]


def desired_service(md: ModelDeployment) -> dict[str, Any]:
    """The ClusterIP Service in front of every ready server pod (port 80 -> http)."""
    port = {"name": PORT_NAME, "port": SERVICE_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(md),
        "spec": {"type": "ClusterIP", "selector": selector_labels(md), "ports": [port]},
    }


def desired_hpa(md: ModelDeployment) -> dict[str, Any] | None:
    """The autoscaling/v2 HPA of the Deployment, or None without ``spec.autoscaling``."""
    scaling = md.spec.autoscaling
    if scaling is None:
        return None
    cpu = {"type": "Utilization", "averageUtilization": scaling.target_cpu_utilization}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(md),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name_of(md)},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": cpu}}],
        },
    }
