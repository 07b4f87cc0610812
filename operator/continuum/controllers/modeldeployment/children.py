"""Pure builders of a ModelDeployment's children: Deployment, Service and HPA, as plain dicts.

The Deployment runs ``continuum serve`` for one model version under the restricted Pod
Security Standard. Its rolling update surges one new pod and never takes an old one away
before the new one is ready (maxUnavailable 0), so the previous version keeps serving until
the new one answers its readiness probe. Credentials reach the pods only as ``secretKeyRef``s.
"""

from __future__ import annotations

from typing import Any

from continuum.api import API_VERSION, ModelDeployment, dump
from continuum.controllers.desired import CONTAINER_SECURITY, POD_SECURITY, TMP_VOLUME
from continuum.controllers.naming import (
    COMPONENT,
    MANAGED_BY,
    MODEL_LABEL,
    OPERATOR,
    PART_OF,
    label_value,
)
from continuum.controllers.storage_env import (
    storage_env,
    storage_volume_mounts,
    storage_volumes,
    var,
)

SERVER_CONTAINER = "server"
SERVER_NAME = "continuum-server"
PORT = 8080
PORT_NAME = "http"
SERVICE_PORT = 80
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
VERSION_LABEL = "continuum.dev/model-version"
DEPLOYMENT_LABEL = "continuum.dev/model-deployment"
SERVING = "serving"
DRAIN_SECONDS = 5
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"


def name_of(md: ModelDeployment) -> str:
    return str(md.metadata["name"])


def namespace_of(md: ModelDeployment) -> str:
    return str(md.metadata["namespace"])


def url_of(md: ModelDeployment) -> str:
    """The in-cluster URL of the model's OIP v2 endpoint, through the Service."""
    return f"http://{name_of(md)}.{namespace_of(md)}.svc.cluster.local/v2/models/{md.spec.model}"


def selector_labels(md: ModelDeployment) -> dict[str, str]:
    """The labels the Deployment and Service select pods by (every version matches)."""
    return {NAME_LABEL: SERVER_NAME, INSTANCE_LABEL: label_value(name_of(md))}


def serving_labels(md: ModelDeployment) -> dict[str, str]:
    """Labels of every object that belongs to one ModelDeployment."""
    return {
        **selector_labels(md),
        MANAGED_BY: OPERATOR,
        PART_OF: OPERATOR,
        COMPONENT: SERVING,
        DEPLOYMENT_LABEL: label_value(name_of(md)),
        MODEL_LABEL: label_value(md.spec.model),
    }


def owner_reference(md: ModelDeployment) -> dict[str, Any]:
    """A controller owner reference to ``md``: deleting it garbage-collects the child."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelDeployment",
        "name": name_of(md),
        "uid": str(md.metadata["uid"]),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(md: ModelDeployment) -> dict[str, Any]:
    return {
        "name": name_of(md),
        "namespace": namespace_of(md),
        "labels": serving_labels(md),
        "ownerReferences": [owner_reference(md)],
    }


def desired_deployment(md: ModelDeployment, version: int, image: str) -> dict[str, Any]:
    """The apps/v1 Deployment serving ``version`` of the model (named like ``md``)."""
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(md)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "progressDeadlineSeconds": md.spec.rollout_deadline_seconds,
        "revisionHistoryLimit": 5,
        "template": _template(md, version, image),
    }
    if md.spec.autoscaling is None:
        spec["replicas"] = md.spec.replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(md), "spec": spec}


def _template(md: ModelDeployment, version: int, image: str) -> dict[str, Any]:
    labels = {**serving_labels(md), VERSION_LABEL: str(version)}
    return {
        "metadata": {"labels": labels},
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": dict(POD_SECURITY),
            "containers": [_container(md, version, image)],
            "volumes": [{"name": TMP_VOLUME, "emptyDir": {}}, *storage_volumes(md.spec.storage)],
        },
    }


def _container(md: ModelDeployment, version: int, image: str) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": SERVER_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["continuum", "serve"],
        "env": server_env(md, version),
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": _probe(READY_PATH, period=2, failures=2),
        "livenessProbe": _probe(LIVE_PATH, period=10, failures=3),
        # keep answering while the endpoint removal reaches every node's proxy
        "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
        "securityContext": dict(CONTAINER_SECURITY),
        "volumeMounts": [
            {"name": TMP_VOLUME, "mountPath": "/tmp"},
            *storage_volume_mounts(md.spec.storage),
        ],
    }
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
        *storage_env(spec.storage),
        var("HOME", "/tmp"),
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
