"""spec.storage reaches the trainer, server and monitor pods alike, secrets only by reference."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from continuum.api import StorageSpec
from continuum.controllers.driftmonitor.checks import desired_check_job
from continuum.controllers.modeldeployment.children import desired_deployment
from continuum.controllers.shared import pods
from continuum.controllers.trainingjob.job import desired_job
from continuum.storage import S3Settings
from continuum.storage import settings as s3_settings
from tests.unit.controllers.driftmonitor.builders import drift_monitor
from tests.unit.controllers.modeldeployment.builders import model_deployment
from tests.unit.controllers.trainingjob.builders import training_job

IMAGE = "continuum:0.1.0"
HTTPS = "https://s3.example.internal:9443"
SECRET_CA = {"secretKeyRef": {"name": "s3-ca", "key": "ca.crt"}}
CONFIG_MAP_CA = {"configMapKeyRef": {"name": "corp-ca", "key": "bundle.pem"}}
STORAGE: dict[str, Any] = {
    "endpoint": HTTPS,
    "bucket": "continuum",
    "region": "eu-west-1",
    "pathStyle": False,
    "caBundle": SECRET_CA,
    "secretRef": {"name": "s3-credentials"},
}
SLOT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def spec(**fields: Any) -> StorageSpec:
    return StorageSpec.model_validate({**STORAGE, **fields})


def test_env_in_order_with_credentials_by_reference() -> None:
    assert pods.storage_env(spec()) == [
        {"name": "CONTINUUM_S3_BUCKET", "value": "continuum"},
        {"name": "AWS_REGION", "value": "eu-west-1"},
        {"name": "CONTINUUM_S3_ENDPOINT", "value": HTTPS},
        {"name": "CONTINUUM_S3_PATH_STYLE", "value": "false"},
        {"name": "AWS_CA_BUNDLE", "value": "/etc/continuum/s3-ca/ca-bundle.pem"},
        *(
            {"name": k, "valueFrom": {"secretKeyRef": {"name": "s3-credentials", "key": k}}}
            for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        ),
    ]


def test_minimal_storage_has_path_style_and_nothing_else() -> None:
    minimal = StorageSpec.model_validate({"bucket": "continuum"})
    env = {e["name"]: e["value"] for e in pods.storage_env(minimal)}
    assert env == {
        "CONTINUUM_S3_BUCKET": "continuum",
        "AWS_REGION": "us-east-1",
        "CONTINUUM_S3_PATH_STYLE": "true",
    }
    assert pods.storage_volumes(minimal) == []
    assert pods.storage_volume_mounts(minimal) == []


def test_ca_bundle_from_a_secret_projects_only_that_key() -> None:
    assert pods.storage_volumes(spec()) == [
        {
            "name": "s3-ca-bundle",
            "secret": {
                "secretName": "s3-ca",
                "items": [{"key": "ca.crt", "path": "ca-bundle.pem"}],
            },
        }
    ]
    assert pods.storage_volume_mounts(spec()) == [
        {"name": "s3-ca-bundle", "mountPath": "/etc/continuum/s3-ca", "readOnly": True}
    ]


def test_ca_bundle_from_a_config_map_projects_only_that_key() -> None:
    (volume,) = pods.storage_volumes(spec(caBundle=CONFIG_MAP_CA))
    assert volume == {
        "name": "s3-ca-bundle",
        "configMap": {"name": "corp-ca", "items": [{"key": "bundle.pem", "path": "ca-bundle.pem"}]},
    }


def test_variable_names_are_the_ones_the_workloads_read() -> None:
    written = [pods.ENV_BUCKET, pods.ENV_ENDPOINT, pods.ENV_REGION, pods.ENV_PATH_STYLE,
               pods.ENV_CA_BUNDLE, pods.ACCESS_KEY, pods.SECRET_KEY]  # fmt: skip
    read = [s3_settings.ENV_BUCKET, s3_settings.ENV_ENDPOINTS[0], s3_settings.ENV_REGIONS[0],
            s3_settings.ENV_PATH_STYLE, s3_settings.ENV_CA_BUNDLE, s3_settings.ENV_ACCESS_KEY,
            s3_settings.ENV_SECRET_KEY]  # fmt: skip
    assert written == read


def test_env_parses_back_into_the_workloads_settings() -> None:
    resolved = {e["name"]: e.get("value", "from-secret") for e in pods.storage_env(spec())}
    settings = S3Settings.from_env(resolved)
    assert settings.bucket == "continuum"
    assert settings.endpoint_url == HTTPS
    assert settings.region == "eu-west-1"
    assert settings.path_style is False
    assert settings.ca_bundle == pods.CA_BUNDLE_PATH


def _pods(storage: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The pod specs of the trainer Job, the server Deployment and the monitor Job."""
    tj = training_job(storage=storage)
    md = model_deployment(storage=storage)
    check = desired_check_job(drift_monitor(), md, 3, SLOT, IMAGE)
    return {
        "trainer": desired_job(tj, image=IMAGE)["spec"]["template"]["spec"],
        "server": desired_deployment(md, 3, IMAGE)["spec"]["template"]["spec"],
        "monitor": check["spec"]["template"]["spec"],
    }


def _storage_part(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod["containers"]
    names = {e["name"] for e in pods.storage_env(spec())} | {"CONTINUUM_S3_ENDPOINT"}
    return {
        "env": [e for e in container["env"] if e["name"] in names],
        "mounts": [m for m in container["volumeMounts"] if m["name"] == pods.CA_VOLUME],
        "volumes": [v for v in pod["volumes"] if v["name"] == pods.CA_VOLUME],
    }


@pytest.mark.parametrize("ca", [SECRET_CA, CONFIG_MAP_CA])
def test_trainer_server_and_monitor_get_storage_the_same_way(ca: dict[str, Any]) -> None:
    storage = {**STORAGE, "caBundle": ca}
    parts = {name: _storage_part(pod) for name, pod in _pods(storage).items()}
    expected = {
        "env": pods.storage_env(spec(caBundle=ca)),
        "mounts": pods.storage_volume_mounts(spec(caBundle=ca)),
        "volumes": pods.storage_volumes(spec(caBundle=ca)),
    }
    assert parts == {"trainer": expected, "server": expected, "monitor": expected}
    assert len(expected["volumes"]) == len(expected["mounts"]) == 1


def test_pods_stay_restricted_with_the_bundle() -> None:
    for name, pod in _pods(STORAGE).items():
        (container,) = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert all(m.get("readOnly") for m in container["volumeMounts"] if m["name"] != "tmp")
        for volume in pod["volumes"]:  # only the volume types the restricted profile allows
            assert set(volume) - {"name"} <= {"emptyDir", "secret", "configMap"}, name


def test_no_ca_volume_without_ca_bundle() -> None:
    storage = {k: v for k, v in STORAGE.items() if k != "caBundle"}
    for name, pod in _pods(storage).items():
        assert [v["name"] for v in pod["volumes"]] == ["tmp"], name
        (container,) = pod["containers"]
        assert "AWS_CA_BUNDLE" not in {e["name"] for e in container["env"]}, name


@pytest.mark.parametrize(
    ("encryption", "args"),
    [
        ({"type": "SSE-S3"}, {"ServerSideEncryption": "AES256"}),
        ({"type": "SSE-KMS"}, {"ServerSideEncryption": "aws:kms"}),
        (
            {"type": "SSE-KMS", "kmsKeyId": "arn:aws:kms:eu-west-1:1:key/abc"},
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "arn:aws:kms:eu-west-1:1:key/abc"},
        ),
    ],
)
def test_encryption_reaches_every_put_as_the_s3_arguments(
    encryption: dict[str, Any], args: dict[str, str]
) -> None:
    encrypted = StorageSpec.model_validate({"bucket": "continuum", "encryption": encryption})
    env = {e["name"]: e["value"] for e in pods.storage_env(encrypted)}
    assert S3Settings.from_env(env).encryption_args() == args
