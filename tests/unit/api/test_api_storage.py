"""spec.storage: path style, the CA bundle source and its rules, in pydantic and in the CRDs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from continuum.api import StorageSpec, crd_filename, crd_manifests
from continuum.api.common import CA_HTTPS_MESSAGE, CA_SOURCE_MESSAGE, SSE_KEY_MESSAGE

HTTPS = "https://s3.example.internal:9443"
SECRET_CA = {"secretKeyRef": {"name": "s3-ca", "key": "ca.crt"}}
CONFIG_MAP_CA = {"configMapKeyRef": {"name": "s3-ca", "key": "bundle.pem"}}


def storage(**fields: Any) -> StorageSpec:
    return StorageSpec.model_validate({"bucket": "continuum", **fields})


def test_path_style_is_the_default() -> None:
    assert storage().path_style is True
    assert storage(pathStyle=False).path_style is False


@pytest.mark.parametrize("source", [SECRET_CA, CONFIG_MAP_CA])
def test_ca_bundle_from_a_secret_or_a_config_map(source: dict[str, Any]) -> None:
    spec = storage(endpoint=HTTPS, caBundle=source)
    assert spec.ca_bundle is not None
    (ref,) = source.values()
    assert (spec.ca_bundle.selector.name, spec.ca_bundle.selector.key) == (ref["name"], ref["key"])


@pytest.mark.parametrize("source", [{}, {**SECRET_CA, **CONFIG_MAP_CA}])
def test_ca_bundle_needs_exactly_one_source(source: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=CA_SOURCE_MESSAGE):
        storage(endpoint=HTTPS, caBundle=source)


@pytest.mark.parametrize("endpoint", [None, "http://minio.minio.svc:9000"])
def test_ca_bundle_needs_an_https_endpoint(endpoint: str | None) -> None:
    fields = {"endpoint": endpoint} if endpoint else {}
    with pytest.raises(ValidationError) as refused:
        storage(caBundle=SECRET_CA, **fields)
    assert CA_HTTPS_MESSAGE in str(refused.value)
    assert "storage.caBundle" in CA_HTTPS_MESSAGE
    assert "storage.endpoint" in CA_HTTPS_MESSAGE


@pytest.mark.parametrize(
    "ref",
    [
        {"name": "s3-ca", "key": "ca/crt"},  # not a valid Secret/ConfigMap key
        {"name": "s3-ca", "key": ""},
        {"name": "s3-ca", "key": "k" * 254},
        {"name": "S3_CA", "key": "ca.crt"},  # not a DNS label
        {"name": "s3-ca"},
    ],
)
def test_key_selector_is_validated(ref: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        storage(endpoint=HTTPS, caBundle={"secretKeyRef": ref})


def _storage_schemas() -> list[tuple[str, dict[str, Any]]]:
    """Every spec.storage schema in the generated CRDs (incl. the DriftMonitor's template)."""
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(node: dict[str, Any], path: str) -> None:
        for name, sub in node.get("properties", {}).items():
            if name == "storage":
                found.append((path + ".storage", sub))
            walk(sub, f"{path}.{name}")

    for crd in crd_manifests():
        root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        walk(root, crd_filename(crd))
    return found


def test_every_storage_schema_carries_the_cel_rules() -> None:
    schemas = _storage_schemas()
    assert {where.split(".yaml.")[1] for where, _ in schemas} == {
        "spec.storage",  # TrainingJob, ModelDeployment
        "spec.retrain.template.storage",  # DriftMonitor
        "status.storage",  # the effective storage: TrainingJob, ModelDeployment
    }
    assert len(schemas) == 5
    for where, schema in schemas:
        rules = {r["rule"]: r["message"] for r in schema["x-kubernetes-validations"]}
        https = "!has(self.caBundle) || (has(self.endpoint) && self.endpoint.matches('^https://'))"
        assert rules[https] == CA_HTTPS_MESSAGE, where
        ca = schema["properties"]["caBundle"]
        (one,) = ca["x-kubernetes-validations"]
        assert one == {
            "rule": "has(self.secretKeyRef) != has(self.configMapKeyRef)",
            "message": CA_SOURCE_MESSAGE,
        }, where
        assert schema["properties"]["pathStyle"] == {
            "type": "boolean",
            "default": True,
            "description": schema["properties"]["pathStyle"]["description"],
        }
        key = ca["properties"]["secretKeyRef"]["properties"]["key"]
        assert (key["pattern"], key["maxLength"]) == ("^[-._a-zA-Z0-9]+$", 253)


def test_a_kms_key_needs_sse_kms() -> None:
    with pytest.raises(ValidationError, match=SSE_KEY_MESSAGE):
        storage(encryption={"type": "SSE-S3", "kmsKeyId": "k"})
    with pytest.raises(ValidationError, match="SSE-S3' or 'SSE-KMS'"):
        storage(encryption={"type": "AES256"})


def test_storage_is_optional_and_its_effective_value_names_the_source() -> None:
    """An object may omit spec.storage (the namespace default, controllers/shared/storage)."""
    for where, schema in _storage_schemas():
        if where.endswith("status.storage"):
            assert "source" in schema["required"], where
    for crd in crd_manifests():
        spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        assert "storage" not in spec.get("required", []), crd_filename(crd)


def test_every_storage_schema_carries_the_encryption_rule() -> None:
    for where, schema in _storage_schemas():
        (rule,) = schema["properties"]["encryption"]["x-kubernetes-validations"]
        assert rule["message"] == SSE_KEY_MESSAGE, where
