"""What every workload pod gets, trainer, server and monitor alike: the restricted Pod Security
Standard, a writable ``/tmp`` on an otherwise read-only root, and one way to reach S3.

``spec.storage`` is declared once per object and reaches all three kinds of pod the same way:
plain variables for the bucket, region, endpoint and addressing style, ``secretKeyRef``s for
the credentials, and the CA bundle as a read-only volume projecting only the one key the spec
names, with ``AWS_CA_BUNDLE`` pointing at it. The operator never reads the Secret or ConfigMap
itself: the kubelet resolves the references, so no credential or certificate passes through
the operator or lands in an object it writes.

The variable names are the ones :class:`continuum.storage.S3Settings` reads; they are repeated
here because the operator process must not import the storage layer (it would load boto3).
"""

from __future__ import annotations

import json
from typing import Any

from continuum.api import InferenceLog, StorageSpec

RUN_AS = 10001
TMP_VOLUME = "tmp"
TMP_MOUNT = {"name": TMP_VOLUME, "mountPath": "/tmp"}
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

ENV_BUCKET = "CONTINUUM_S3_BUCKET"
ENV_REGION = "AWS_REGION"
ENV_ENDPOINT = "CONTINUUM_S3_ENDPOINT"
ENV_PATH_STYLE = "CONTINUUM_S3_PATH_STYLE"
ENV_CA_BUNDLE = "AWS_CA_BUNDLE"
ENV_SSE = "CONTINUUM_S3_SSE"
ENV_SSE_KMS_KEY_ID = "CONTINUUM_S3_SSE_KMS_KEY_ID"
ACCESS_KEY = "AWS_ACCESS_KEY_ID"
SECRET_KEY = "AWS_SECRET_ACCESS_KEY"

# continuum.storage.privacy's names: what the inference log drops and hashes, and the HMAC key
ENV_LOG_DROP = "CONTINUUM_INFERENCE_LOG_DROP"
ENV_LOG_HASH = "CONTINUUM_INFERENCE_LOG_HASH"
ENV_LOG_HASH_KEY = "CONTINUUM_INFERENCE_LOG_HASH_KEY"

CA_VOLUME = "s3-ca-bundle"
CA_MOUNT_DIR = "/etc/continuum/s3-ca"
# A fixed file name whatever the source key is called: the path never depends on user input,
# and the bundle is always at the same place in every pod.
CA_FILE = "ca-bundle.pem"
CA_BUNDLE_PATH = f"{CA_MOUNT_DIR}/{CA_FILE}"


def workload_container(
    name: str, image: str, command: str, env: list[dict[str, Any]], storage: StorageSpec,
    **extra: Any,
) -> dict[str, Any]:  # fmt: skip
    """A container running ``continuum <command>`` from the project image: restricted security
    context, ``/tmp`` on the pod's scratch volume, the S3 CA bundle when the spec names one."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["continuum", command],
        "env": env,
        "securityContext": dict(CONTAINER_SECURITY),
        "volumeMounts": [
            {"name": TMP_VOLUME, "mountPath": "/tmp"},
            *storage_volume_mounts(storage),
        ],
        **extra,
    }


def workload_pod(container: dict[str, Any], storage: StorageSpec, **extra: Any) -> dict[str, Any]:
    """The pod spec around ``container``: restricted Pod Security, no service-account token, no
    service links, a scratch ``/tmp`` volume and the CA bundle volume when the spec names one."""
    return {
        **extra,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": dict(POD_SECURITY),
        "containers": [container],
        "volumes": [{"name": TMP_VOLUME, "emptyDir": {}}, *storage_volumes(storage)],
    }


def storage_env(storage: StorageSpec) -> list[dict[str, Any]]:
    """The S3 variables of a workload container, credentials only as Secret references."""
    env = [var(ENV_BUCKET, storage.bucket), var(ENV_REGION, storage.region)]
    if storage.endpoint is not None:
        env.append(var(ENV_ENDPOINT, storage.endpoint))
    env.append(var(ENV_PATH_STYLE, str(storage.path_style).lower()))
    if storage.ca_bundle is not None:
        env.append(var(ENV_CA_BUNDLE, CA_BUNDLE_PATH))
    if storage.encryption is not None:
        env.append(var(ENV_SSE, storage.encryption.type))
        if storage.encryption.kms_key_id is not None:
            env.append(var(ENV_SSE_KMS_KEY_ID, storage.encryption.kms_key_id))
    if storage.secret_ref is not None:
        secret = storage.secret_ref.name
        env += [secret_var(ACCESS_KEY, secret), secret_var(SECRET_KEY, secret)]
    return env


def log_policy_env(log: InferenceLog) -> list[dict[str, Any]]:
    """What the inference log drops and hashes (JSON name lists) and the HMAC key, only as a
    ``secretKeyRef``: the model server applies the policy, the drift check reads by it."""
    env = []
    if log.drop:
        env.append(var(ENV_LOG_DROP, json.dumps(sorted(log.drop))))
    if log.hashed:
        env.append(var(ENV_LOG_HASH, json.dumps(sorted(log.hashed))))
    if log.hashed and log.hash_key is not None:
        ref = {"name": log.hash_key.name, "key": log.hash_key.key}
        env.append({"name": ENV_LOG_HASH_KEY, "valueFrom": {"secretKeyRef": ref}})
    return env


def required(storage: StorageSpec | None) -> StorageSpec:
    """The storage of a spec the controller resolved (``controllers.shared.storage``: its own
    or the namespace default) before building its pods."""
    if storage is None:
        raise ValueError("spec.storage is not resolved: controllers.shared.storage fills it in")
    return storage


def storage_volumes(storage: StorageSpec) -> list[dict[str, Any]]:
    """The pod volume holding the CA bundle (none without ``caBundle``)."""
    source = storage.ca_bundle
    if source is None:
        return []
    selector = source.selector
    items = [{"key": selector.key, "path": CA_FILE}]
    if source.secret_key_ref is not None:
        return [{"name": CA_VOLUME, "secret": {"secretName": selector.name, "items": items}}]
    return [{"name": CA_VOLUME, "configMap": {"name": selector.name, "items": items}}]


def storage_volume_mounts(storage: StorageSpec) -> list[dict[str, Any]]:
    """The container's read-only mount of the CA bundle volume (none without ``caBundle``)."""
    if storage.ca_bundle is None:
        return []
    return [{"name": CA_VOLUME, "mountPath": CA_MOUNT_DIR, "readOnly": True}]


def var(name: str, value: str) -> dict[str, Any]:
    """A plain environment variable."""
    return {"name": name, "value": value}


def secret_var(key: str, secret: str) -> dict[str, Any]:
    """A variable the kubelet fills from key ``key`` of Secret ``secret``."""
    return {"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def parse_summary(text: str | None) -> dict[str, Any] | None:
    """A workload's JSON summary from its termination message (trainer and monitor write one,
    always with a ``status`` key); None when the message is absent or not one."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "status" in value else None
