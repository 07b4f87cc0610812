"""CustomResourceDefinitions of the three kinds, built from the pydantic models.

`crd_manifests()` returns one apiextensions.k8s.io/v1 CRD dict per kind; `crdgen` writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from continuum.api.common import GROUP, VERSION, cel
from continuum.api.driftmonitor import DriftMonitor, DriftMonitorSpec, DriftMonitorStatus
from continuum.api.modeldeployment import (
    ModelDeployment,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
)
from continuum.api.schema import Schema, structural_schema
from continuum.api.trainingjob import (
    IMMUTABLE_SPEC_MESSAGE,
    TrainingJob,
    TrainingJobSpec,
    TrainingJobStatus,
)
from continuum.api.vocabulary import AVAILABLE, DRIFT_MONITORS, MODEL_DEPLOYMENTS, TRAINING_JOBS

CATEGORY = "continuum"
NAME_LENGTH_MESSAGE = "metadata.name must be at most 63 characters (it names child objects)"
NAME_DNS1035_MESSAGE = (
    "metadata.name must be a DNS-1035 label (lower-case letters, digits and '-', starting "
    "with a letter), because it names a Service"
)


@dataclass(frozen=True)
class Kind:
    """Everything that differs between the three CRDs."""

    resource: type[BaseModel]
    spec: type[BaseModel]
    status: type[BaseModel]
    plural: str
    short_name: str
    columns: list[dict[str, Any]]
    spec_rules: list[dict[str, str]] = field(default_factory=list)
    root_rules: list[dict[str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The kind name, e.g. TrainingJob."""
        return self.resource.__name__

    @property
    def crd_name(self) -> str:
        """The CRD's metadata.name, e.g. trainingjobs.continuum.dev."""
        return f"{self.plural}.{GROUP}"


def _column(name: str, path: str, type_: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "jsonPath": path, **extra}


def _condition(type_: str) -> str:
    return f'.status.conditions[?(@.type=="{type_}")].status'


_AGE = _column("Age", ".metadata.creationTimestamp", "date")
_NAME_63 = cel("self.metadata.name.size() <= 63", NAME_LENGTH_MESSAGE)

KINDS: tuple[Kind, ...] = (
    Kind(
        TrainingJob,
        TrainingJobSpec,
        TrainingJobStatus,
        TRAINING_JOBS,
        "tj",
        columns=[
            _column("Model", ".spec.model"),
            _column("Version", ".status.model.version", "integer"),
            _column("Phase", ".status.phase"),
            _column("Qualified", ".status.qualified", "boolean"),
            _column("Metric", ".spec.evaluation.metric", priority=1),
            _column("Job", ".status.jobName", priority=1),
            _AGE,
        ],
        spec_rules=[cel("self == oldSelf", IMMUTABLE_SPEC_MESSAGE)],
        root_rules=[_NAME_63],
    ),
    Kind(
        ModelDeployment,
        ModelDeploymentSpec,
        ModelDeploymentStatus,
        MODEL_DEPLOYMENTS,
        "md",
        columns=[
            _column("Model", ".spec.model"),
            _column("Serving", ".status.servingVersion", "integer"),
            _column("Ready", ".status.readyReplicas", "integer"),
            _column("Available", _condition(AVAILABLE)),
            _column("URL", ".status.url", priority=1),
            _AGE,
        ],
        root_rules=[
            _NAME_63,
            cel("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')", NAME_DNS1035_MESSAGE),
        ],
    ),
    Kind(
        DriftMonitor,
        DriftMonitorSpec,
        DriftMonitorStatus,
        DRIFT_MONITORS,
        "dm",
        columns=[
            _column("Deployment", ".spec.deployment"),
            _column("Drift", ".status.drift.datasetDrift", "boolean"),
            _column("Performance", ".status.performance.verdict"),
            _column("Realised", ".status.performance.realised.value", "number"),
            _column("Last check", ".status.lastCheckTime", "date"),
            _column("Share", ".status.drift.share", "number", priority=1),
            _AGE,
        ],
        root_rules=[_NAME_63],
    ),
)


def _part(kind: Kind, part: str, model: type[BaseModel], rules: list[dict[str, str]]) -> Schema:
    schema = structural_schema(model)
    schema["description"] = kind.resource.model_fields[part].description
    if rules:
        schema["x-kubernetes-validations"] = [*schema.get("x-kubernetes-validations", []), *rules]
    return schema


def root_schema(kind: Kind) -> Schema:
    """The openAPIV3Schema of one kind."""
    return {
        "type": "object",
        "description": kind.resource.__doc__,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of the object."},
            "kind": {"type": "string", "description": "Kind of the object."},
            "metadata": {"type": "object"},
            "spec": _part(kind, "spec", kind.spec, kind.spec_rules),
            "status": _part(kind, "status", kind.status, []),
        },
        "x-kubernetes-validations": kind.root_rules,
    }


def _names(kind: Kind) -> dict[str, Any]:
    return {
        "kind": kind.name,
        "listKind": f"{kind.name}List",
        "plural": kind.plural,
        "singular": kind.name.lower(),
        "shortNames": [kind.short_name],
        "categories": [CATEGORY],
    }


def crd_manifest(kind: Kind) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    version = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "subresources": {"status": {}},
        "additionalPrinterColumns": kind.columns,
        "schema": {"openAPIV3Schema": root_schema(kind)},
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": _names(kind),
            "versions": [version],
        },
    }


def crd_manifests() -> list[dict[str, Any]]:
    """The CRDs of all kinds, in a stable order."""
    return [crd_manifest(kind) for kind in KINDS]


def crd_filename(crd: dict[str, Any]) -> str:
    """The file name of a CRD, e.g. continuum.dev_trainingjobs.yaml."""
    return f"{crd['spec']['group']}_{crd['spec']['names']['plural']}.yaml"
