"""The effective storage of an object: its own ``spec.storage``, or its namespace's default.

Every TrainingJob, ModelDeployment and DriftMonitor retrain template used to repeat one
``storage`` block. Now an object may omit it; the operator then reads the ConfigMap
``continuum-storage`` of the object's namespace, key ``storage``: a StorageSpec as YAML (or
JSON), checked with the same API types as ``spec.storage``. The object's status shows the
storage in effect and where it came from (``status.storage.source``: ``spec`` or
``ConfigMap/continuum-storage``).

A TrainingJob's storage is decided once: the first status write records it, and every later
reconcile (the manifest read) reuses that record, so editing the ConfigMap never moves a run
that has started. A ModelDeployment follows the ConfigMap at its next reconcile (a changed
default is a new rollout of the same version), as it follows its own spec.
"""

from __future__ import annotations

from typing import TypeVar

import kopf
import yaml
from pydantic import BaseModel, ValidationError

from continuum.api import EffectiveStorage, StorageSpec
from continuum.api.common import first_error
from continuum.kube import Kube

CONFIG_MAP = "continuum-storage"
KEY = "storage"
FROM_SPEC = "spec"
FROM_CONFIG_MAP = f"ConfigMap/{CONFIG_MAP}"
RETRY_SECONDS = 10

Spec = TypeVar("Spec", bound=BaseModel)


def parse_default(namespace: str, text: str | None) -> StorageSpec:
    """The namespace default from the ConfigMap's text; an error says what to fix."""
    where = f"ConfigMap {namespace}/{CONFIG_MAP} (key {KEY})"
    if text is None:
        raise kopf.TemporaryError(
            f"no spec.storage and no {where}: set spec.storage or create the ConfigMap with "
            "a storage block (docs/api.md, 'Namespace default storage')",
            delay=RETRY_SECONDS,
        )
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise kopf.TemporaryError(f"{where} is not YAML: {exc}", delay=RETRY_SECONDS) from exc
    try:
        return StorageSpec.model_validate(document)
    except ValidationError as exc:
        message = f"{where} is not a valid storage block: {first_error(exc)}"
        raise kopf.TemporaryError(message, delay=RETRY_SECONDS) from exc


def effective(storage: StorageSpec, source: str) -> EffectiveStorage:
    return EffectiveStorage.model_validate({**storage.model_dump(), "source": source})


async def resolve(
    kube: Kube, namespace: str, own: StorageSpec | None, recorded: EffectiveStorage | None = None
) -> EffectiveStorage:
    """``own`` (the spec's), else ``recorded`` (status), else the namespace default."""
    if own is not None:
        return effective(own, FROM_SPEC)
    if recorded is not None:
        return recorded
    text = await kube.read_config_map_key(namespace, CONFIG_MAP, KEY)
    return effective(parse_default(namespace, text), FROM_CONFIG_MAP)


def with_storage(spec: Spec, storage: StorageSpec) -> Spec:
    """``spec`` with ``storage`` filled in (the children and workloads read it there)."""
    return spec.model_copy(update={"storage": plain(storage)})


def plain(storage: StorageSpec) -> StorageSpec:
    """A StorageSpec without the ``source`` of an EffectiveStorage."""
    data = storage.model_dump(exclude={"source"})
    return StorageSpec.model_validate(data)
