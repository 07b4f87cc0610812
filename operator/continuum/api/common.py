"""Shared building blocks of the continuum.dev/v1alpha1 API: base model, names, conditions.

Every model here is a pydantic v2 model whose Python attributes are snake_case and whose JSON
(and CRD) field names are camelCase. Field descriptions become the CRD descriptions that
`kubectl explain` shows, so every field must have one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Final, Literal, TypeVar, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

GROUP = "continuum.dev"
VERSION = "v1alpha1"
API_VERSION: Final = "continuum.dev/v1alpha1"

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
CONDITION_TYPE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

M = TypeVar("M", bound=BaseModel)


class ApiModel(BaseModel):
    """Base of every API model: camelCase aliases, by-name population, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="forbid",
        allow_inf_nan=False,
    )


class ObjectMeta(ApiModel):
    """The part of a custom resource's ``metadata`` the operator reads, typed; every other
    field the API server sets is kept as it came (the CRD leaves ``metadata`` to the API
    server: it is not part of the generated schema)."""

    model_config = ConfigDict(extra="allow")

    name: str = ""
    namespace: str = ""
    uid: str = ""
    generation: int | None = None
    resource_version: str | None = None
    deletion_timestamp: str | None = None
    creation_timestamp: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


def _quantity_to_str(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _check_quantity(value: str) -> str:
    if not re.match(QUANTITY, value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 1Gi)")
    return value


Quantity = Annotated[
    str,
    BeforeValidator(_quantity_to_str),
    AfterValidator(_check_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A Kubernetes resource quantity (`500m`, `2`, `1Gi`); integers are accepted and kept as text."""

ObjectName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
"""A DNS-1123 label: the name of a model, Secret or object referenced by name."""

ColumnName = Annotated[str, Field(min_length=1, max_length=128)]
"""A dataset column name."""

Label = Annotated[str, Field(min_length=1, max_length=128)]
"""A class label of a classification target, as text."""


# A list whose items are a set: the API server refuses a repeated item ("Duplicate value").
SET_LIST: Final[dict[str, JsonValue]] = {"x-kubernetes-list-type": "set"}


def no_duplicates(values: list[str] | None) -> list[str] | None:
    """The Python side of SET_LIST: a repeated item is refused, as the API server does."""
    seen: set[str] = set()
    for index, value in enumerate(values or []):
        if value in seen:
            raise ValueError(f"[{index}]: duplicate value {value!r}: each name may appear once")
        seen.add(value)
    return values


ColumnSet = Annotated[list[ColumnName], AfterValidator(no_duplicates)]
"""Column names that form a set (with ``json_schema_extra=SET_LIST`` on the field)."""

LabelSet = Annotated[list[Label], AfterValidator(no_duplicates)]
"""Class labels that form a set (with ``json_schema_extra=SET_LIST`` on the field)."""


def cel(rule: str, message: str) -> dict[str, str]:
    """One `x-kubernetes-validations` entry."""
    return {"rule": rule, "message": message}


def validations(*rules: dict[str, str]) -> dict[str, JsonValue]:
    """A `json_schema_extra` that adds CEL rules to a model's schema."""
    return {"x-kubernetes-validations": cast("list[JsonValue]", list(rules))}


class SecretRef(ApiModel):
    """A reference to a Secret in the same namespace."""

    name: ObjectName = Field(description="Name of the Secret in the same namespace.")


KEY = r"^[-._a-zA-Z0-9]+$"
CA_SOURCE_MESSAGE = "storage.caBundle: set exactly one of secretKeyRef or configMapKeyRef"
CA_HTTPS_MESSAGE = (
    "storage.caBundle needs an https:// storage.endpoint: the CA bundle is only used to "
    "verify the endpoint's TLS certificate"
)


class KeySelector(ApiModel):
    """One key of a Secret or ConfigMap in the same namespace."""

    name: ObjectName = Field(description="Name of the Secret or ConfigMap in the same namespace.")
    key: str = Field(
        min_length=1, max_length=253, pattern=KEY, description="Key that holds the PEM bundle."
    )


class CaBundleSource(ApiModel):
    """Where the pods find the CA bundle: exactly one of a Secret key or a ConfigMap key."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("has(self.secretKeyRef) != has(self.configMapKeyRef)", CA_SOURCE_MESSAGE)
        )
    )

    secret_key_ref: KeySelector | None = Field(
        None, description="A key of a Secret holding the PEM bundle."
    )
    config_map_key_ref: KeySelector | None = Field(
        None, description="A key of a ConfigMap holding the PEM bundle."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> CaBundleSource:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError(CA_SOURCE_MESSAGE)
        return self

    @property
    def selector(self) -> KeySelector:
        """The one key selector that is set."""
        chosen = self.secret_key_ref or self.config_map_key_ref
        if chosen is None:  # only a model built without validation gets here
            raise ValueError(CA_SOURCE_MESSAGE)
        return chosen


SSE_KEY_MESSAGE = "storage.encryption.kmsKeyId is only for type SSE-KMS"


class Encryption(ApiModel):
    """Server-side encryption the S3 server applies to every object Continuum writes."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("self.type == 'SSE-KMS' || !has(self.kmsKeyId)", SSE_KEY_MESSAGE)
        )
    )

    type: Literal["SSE-S3", "SSE-KMS"] = Field(
        description=(
            "SSE-S3: keys the S3 server manages (AES256); SSE-KMS: a key of the server's KMS "
            "(aws:kms). MinIO needs a KMS configured for either (e.g. MINIO_KMS_SECRET_KEY)."
        )
    )
    kms_key_id: str | None = Field(
        None,
        min_length=1,
        max_length=2048,
        description=(
            "SSE-KMS key id or ARN (AWS), or key name (MinIO's KMS); omit for the server's "
            "default key."
        ),
    )

    @model_validator(mode="after")
    def _key_only_for_kms(self) -> Encryption:
        if self.kms_key_id is not None and self.type != "SSE-KMS":
            raise ValueError(SSE_KEY_MESSAGE)
        return self


class StorageSpec(ApiModel):
    """Where artefacts live: an S3-compatible object store (AWS S3 or MinIO).

    Declared once per object; the operator passes it to the trainer, server and monitor pods
    the same way (environment, Secret references, a read-only CA bundle mount).
    """

    # CEL and pydantic say the same: a CA bundle without TLS is a mistake, not a no-op.
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.caBundle) || (has(self.endpoint) && self.endpoint.matches('^https://'))",
                CA_HTTPS_MESSAGE,
            )
        )
    )

    endpoint: str | None = Field(
        None,
        max_length=2048,
        pattern=r"^https?://\S+$",
        description="S3 endpoint URL, e.g. http://minio.minio.svc:9000. Omit for AWS S3.",
    )
    bucket: str = Field(
        min_length=3,
        max_length=63,
        pattern=BUCKET,
        description="Bucket that holds models/, inference-logs/ and reports/.",
    )
    region: str = Field("us-east-1", min_length=1, max_length=64, description="S3 region name.")
    path_style: bool = Field(
        True,
        description=(
            "Path-style URLs (endpoint/bucket/key), which MinIO and most self-hosted S3 need; "
            "false for virtual-hosted style (bucket.endpoint/key, AWS S3)."
        ),
    )
    ca_bundle: CaBundleSource | None = Field(
        None,
        description=(
            "CA certificate bundle (PEM) to trust for an https endpoint with a self-signed or "
            "private CA, from a Secret or ConfigMap key; it replaces the default trust store."
        ),
    )
    secret_ref: SecretRef | None = Field(
        None,
        description=(
            "Secret with the keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. "
            "Omit to use the pod's ambient credentials."
        ),
    )
    encryption: Encryption | None = Field(
        None,
        description=(
            "Server-side encryption requested on every object the trainer, the model server "
            "and the drift check write (models, baselines, logs, labels, reports). Omit for "
            "the bucket's default."
        ),
    )

    @model_validator(mode="after")
    def _ca_bundle_needs_https(self) -> StorageSpec:
        if self.ca_bundle is not None and not (self.endpoint or "").startswith("https://"):
            raise ValueError(CA_HTTPS_MESSAGE)
        return self


class EffectiveStorage(StorageSpec):
    """The storage an object uses, in its status: its own spec.storage or the namespace's
    default (ConfigMap continuum-storage), and which."""

    source: str = Field(
        max_length=128,
        description="spec, or ConfigMap/continuum-storage (the namespace default).",
    )


class ResourceList(ApiModel):
    """Amounts of CPU and memory."""

    cpu: Quantity | None = Field(None, description="CPU, e.g. 500m or 2.")
    memory: Quantity | None = Field(None, description="Memory, e.g. 512Mi or 2Gi.")


class ResourceRequirements(ApiModel):
    """Compute resources of the generated pods' main container."""

    requests: ResourceList | None = Field(None, description="Minimum resources requested.")
    limits: ResourceList | None = Field(None, description="Maximum resources allowed.")


class Condition(ApiModel):
    """One aspect of the object's current state, in the metav1.Condition shape."""

    type: str = Field(
        max_length=316, pattern=CONDITION_TYPE, description="Condition type, e.g. Ready."
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(
        None, ge=0, description="metadata.generation the condition was set from."
    )
    last_transition_time: datetime = Field(
        description="Last time the condition's status changed (RFC 3339)."
    )
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON,
        description="CamelCase machine-readable reason of the last transition.",
    )
    message: str = Field(
        "", max_length=32768, description="Human-readable details of the last transition."
    )


class CustomObjectStatus(ApiModel):
    """Base of each kind's status: its conditions and the generation they were set from.

    A kind's status adds its own fields after these two, in Python and in the CRD.
    """

    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description="Current state, as metav1.Condition entries keyed by type.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    observed_generation: int | None = Field(
        None, ge=0, description="The metadata.generation the operator last acted on."
    )


class CustomObject(ApiModel):
    """Base of the three kinds: apiVersion, kind and the typed metadata.

    Each kind narrows ``kind`` to its own name (a field a subclass redeclares keeps its place,
    so the fields stay in the order apiVersion, kind, metadata) and adds its spec and status.
    """

    api_version: Literal["continuum.dev/v1alpha1"] = Field(
        API_VERSION, description="continuum.dev/v1alpha1"
    )
    kind: str = Field(description="The kind's name.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Object metadata.")


def nested(factory: Callable[[], BaseModel], description: str) -> Any:
    """A field holding a sub-object that defaults to `factory()`, in Python and in the CRD.

    The CRD default is the fully filled object, not `{}`: the API server checks an object
    default against the CEL rules before it applies the nested defaults.
    """
    default = dump(factory())
    return Field(
        default_factory=factory, description=description, json_schema_extra={"default": default}
    )


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def load(model: type[M], data: Mapping[str, Any]) -> M:
    """Validate a (possibly kopf-wrapped) mapping, e.g. a CR body or its spec, into `model`."""
    return model.model_validate(_plain(data))


def dump(obj: BaseModel) -> dict[str, Any]:
    """Serialise a model to a JSON-ready dict with camelCase keys and no null fields."""
    return obj.model_dump(mode="json", by_alias=True, exclude_none=True)


def dump_set(obj: BaseModel) -> dict[str, Any]:
    """Like :func:`dump`, without the fields that hold their API default: what a workload pod
    is handed (the trainer's ``CONTINUUM_SPEC``, a check's ``CONTINUUM_MONITOR_SPEC``).

    The API server writes every schema default into the stored object, so a full dump names
    each field this release added. During an upgrade the operator runs ahead of the workload
    image (tests/cluster/test_upgrade.py), and the previous trainer refused a retraining's spec
    for ``dataset.passes`` and ``dataset.sampleRows`` it had never heard of, both at their
    defaults. Left out, they mean the same to this release's workloads (they read the defaults
    back) and nothing to an older one, which fails only on a new feature actually used.
    """
    return obj.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)


def first_error(exc: ValidationError) -> str:
    """The first problem pydantic found, as ``<dotted.path>: <message>`` (the message alone at
    the top level): one line for a status message, an Event or an error."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error.get("loc", ()))
    return f"{where}: {error['msg']}" if where else str(error["msg"])
