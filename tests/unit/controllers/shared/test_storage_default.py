"""The effective storage: spec, then the status record, then the namespace's ConfigMap."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest

from continuum.api import StorageSpec, TrainingJob, load
from continuum.controllers.shared.pods import required
from continuum.controllers.shared.storage import (
    CONFIG_MAP,
    FROM_CONFIG_MAP,
    FROM_SPEC,
    KEY,
    effective,
    parse_default,
    resolve,
    with_storage,
)
from tests.unit.controllers.trainingjob.builders import SPEC as TJ_SPEC

DEFAULT_YAML = """
endpoint: http://minio.minio.svc:9000
bucket: team-models
secretRef: {name: s3-credentials}
encryption: {type: SSE-S3}
"""


class ConfigMaps:
    """The one Kube call resolve makes, answering from a dict; counts the reads."""

    def __init__(self, data: dict[tuple[str, str, str], str]) -> None:
        self.data, self.reads = data, 0

    async def read_config_map_key(self, namespace: str, name: str, key: str) -> str | None:
        self.reads += 1
        return self.data.get((namespace, name, key))


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_the_spec_wins_and_no_config_map_is_read() -> None:
    own = StorageSpec(bucket="own-bucket")
    kube = ConfigMaps({("ml", CONFIG_MAP, KEY): DEFAULT_YAML})
    got = run(resolve(kube, "ml", own))  # type: ignore[arg-type]
    assert (got.bucket, got.source, kube.reads) == ("own-bucket", FROM_SPEC, 0)


def test_the_namespace_default_fills_an_omitted_storage() -> None:
    kube = ConfigMaps({("ml", CONFIG_MAP, KEY): DEFAULT_YAML})
    got = run(resolve(kube, "ml", None))  # type: ignore[arg-type]
    assert got.source == FROM_CONFIG_MAP
    assert got.bucket == "team-models"
    assert got.secret_ref is not None
    assert got.encryption is not None
    assert got.encryption.type == "SSE-S3"


def test_a_recorded_storage_is_reused_without_reading_the_config_map() -> None:
    recorded = effective(StorageSpec(bucket="when-it-started"), FROM_CONFIG_MAP)
    kube = ConfigMaps({("ml", CONFIG_MAP, KEY): DEFAULT_YAML})
    assert run(resolve(kube, "ml", None, recorded)).bucket == "when-it-started"  # type: ignore[arg-type]
    assert kube.reads == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "no spec.storage and no ConfigMap ml/continuum-storage \\(key storage\\)"),
        ("bucket: [unclosed", "is not YAML"),
        ("endpoint: ftp://x\nbucket: b", "not a valid storage block: endpoint: String should"),
        ("{}", "not a valid storage block: bucket: Field required"),
    ],
)
def test_a_missing_or_bad_default_says_what_to_fix_and_is_retried(
    text: str | None, message: str
) -> None:
    with pytest.raises(kopf.TemporaryError, match=message):
        parse_default("ml", text)


def test_the_filled_spec_builds_pods_and_keeps_no_source() -> None:
    tj = load(TrainingJob, {"metadata": {"name": "t"}, "spec": {**TJ_SPEC, "storage": None}})
    with pytest.raises(ValueError, match="not resolved"):
        required(tj.spec.storage)
    storage = effective(parse_default("ml", DEFAULT_YAML), FROM_CONFIG_MAP)
    filled = with_storage(tj.spec, storage)
    assert type(required(filled.storage)) is StorageSpec
    assert required(filled.storage).bucket == "team-models"
