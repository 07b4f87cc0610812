"""ModelDeployment: serves one model, at a pinned version or the newest qualified one.

The operator runs the model server as a Deployment + Service, rolls out new versions and rolls
back a rollout that does not become ready in time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from continuum.api.common import (
    KEY,
    SET_LIST,
    ApiModel,
    ColumnSet,
    CustomObject,
    CustomObjectStatus,
    EffectiveStorage,
    ObjectName,
    ResourceRequirements,
    StorageSpec,
    cel,
    nested,
    validations,
)
from continuum.api.rollout import RolloutProgress, RolloutSpec, Signal

VERSION_MESSAGE = "version: set exactly one of pinned or policy"
AUTOSCALING_BOUNDS_MESSAGE = "autoscaling.minReplicas must not exceed autoscaling.maxReplicas"
REPLICAS_MESSAGE = "set replicas or autoscaling, not both (leave replicas at 1 with autoscaling)"
HASH_KEY_MESSAGE = (
    "inferenceLog.hash needs inferenceLog.hashKey: the Secret key holding the HMAC key"
)
DROP_AND_HASH_MESSAGE = "inferenceLog: a feature may be in drop or in hash, not in both"


class VersionSelector(ApiModel):
    """Which model version to serve: exactly one of pinned or policy."""

    model_config = ConfigDict(
        json_schema_extra=validations(cel("has(self.pinned) != has(self.policy)", VERSION_MESSAGE))
    )

    pinned: int | None = Field(None, ge=1, description="Serve exactly this version number.")
    policy: Literal["latestQualified"] | None = Field(
        None, description="latestQualified: serve the newest qualified version."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> VersionSelector:
        if (self.pinned is None) == (self.policy is None):
            raise ValueError(VERSION_MESSAGE)
        return self


class Autoscaling(ApiModel):
    """Horizontal autoscaling of the model server on CPU utilisation."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("self.minReplicas <= self.maxReplicas", AUTOSCALING_BOUNDS_MESSAGE)
        )
    )

    min_replicas: int = Field(1, ge=1, le=50, description="Fewest replicas.")
    max_replicas: int = Field(ge=1, le=50, description="Most replicas.")
    target_cpu_utilization: int = Field(
        80,
        alias="targetCPUUtilization",
        ge=1,
        le=100,
        description="Target average CPU utilisation, in percent of requests.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(AUTOSCALING_BOUNDS_MESSAGE)
        return self


class Batching(ApiModel):
    """Micro-batching of prediction requests in the model server."""

    max_batch_size: int = Field(32, ge=1, le=4096, description="Most rows per batch.")
    max_latency_ms: int = Field(
        5, ge=0, le=1000, description="Longest wait for a batch to fill, in milliseconds."
    )


class HashKeyRef(ApiModel):
    """One key of a Secret in the same namespace holding the inference log's HMAC key."""

    name: ObjectName = Field(description="Name of the Secret in the same namespace.")
    key: str = Field(
        min_length=1,
        max_length=253,
        pattern=KEY,
        description="Key of the Secret whose value is the HMAC key (at least 16 bytes).",
    )


class InferenceLog(ApiModel):
    """Logging of served rows and predictions to the object store, for drift monitoring.

    ``drop`` and ``hash`` keep personal data out of the log: a dropped feature is never
    written (nor checked for drift), a hashed one is written as a keyed HMAC-SHA256 of its
    value, so equal values stay equal and drift on it is still measured.
    """

    model_config = ConfigDict(
        json_schema_extra=validations(
            # has() first: the fields have no schema default, and a rule reading an absent
            # one fails ("no such key: hash"), refusing every ModelDeployment without them.
            cel("!has(self.hash) || size(self.hash) == 0 || has(self.hashKey)", HASH_KEY_MESSAGE),
            cel(
                "!has(self.hash) || !has(self.drop) || self.hash.all(f, !(f in self.drop))",
                DROP_AND_HASH_MESSAGE,
            ),
        )
    )

    enabled: bool = Field(True, description="Whether to log inference rows.")
    sample_rate: float = Field(1.0, ge=0, le=1, description="Fraction of rows logged.")
    flush_rows: int = Field(
        1000, ge=1, le=1_000_000, description="Write a log batch after this many rows."
    )
    flush_seconds: int = Field(
        60, ge=1, le=3600, description="Write a log batch at least this often, in seconds."
    )
    drop: ColumnSet = Field(
        default_factory=list,
        max_length=256,
        json_schema_extra=SET_LIST,
        description="Features never written to the log; the drift check leaves them out.",
    )
    hashed: ColumnSet = Field(
        default_factory=list,
        alias="hash",
        max_length=256,
        json_schema_extra=SET_LIST,
        description=(
            "Features written as hmac:<HMAC-SHA256 of the value, 128 bits, hex> with the key "
            "hashKey names; missing values stay null. Drift is tested on the hashes "
            "(as categories)."
        ),
    )
    hash_key: HashKeyRef | None = Field(
        None,
        description=(
            "Secret key holding the HMAC key of hash; it reaches the server and the drift "
            "check pods only as a secretKeyRef."
        ),
    )

    retention_days: int | None = Field(
        None,
        ge=1,
        le=3650,
        description=(
            "Delete logged rows, labels and drift reports of this model older than this many "
            "days (S3 LastModified); the drift check Job prunes before each check. Omit to "
            "keep them."
        ),
    )

    @model_validator(mode="after")
    def _hash_rules(self) -> InferenceLog:
        if self.hashed and self.hash_key is None:
            raise ValueError(HASH_KEY_MESSAGE)
        if set(self.hashed) & set(self.drop):
            raise ValueError(DROP_AND_HASH_MESSAGE)
        return self


class ModelDeploymentSpec(ApiModel):
    """Which model and version to serve, and how."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("!has(self.autoscaling) || self.replicas == 1", REPLICAS_MESSAGE)
        )
    )

    model: ObjectName = Field(description="Name of the model to serve (TrainingJob spec.model).")
    version: VersionSelector = nested(
        lambda: VersionSelector(policy="latestQualified"),
        "Version to serve; defaults to policy latestQualified.",
    )
    replicas: int = Field(1, ge=0, le=50, description="Fixed number of server replicas.")
    autoscaling: Autoscaling | None = Field(
        None, description="Autoscale instead of a fixed replica count."
    )
    batching: Batching = nested(Batching, "Request micro-batching.")
    inference_log: InferenceLog = nested(InferenceLog, "Inference logging for drift monitoring.")
    storage: StorageSpec | None = Field(
        None,
        description=(
            "Object store holding the model artefacts. Omit to use the namespace default: the "
            "ConfigMap continuum-storage, key storage (the same block as YAML)."
        ),
    )
    resources: ResourceRequirements | None = Field(
        None, description="CPU and memory of each server pod."
    )
    rollout_deadline_seconds: int = Field(
        300,
        ge=30,
        le=3600,
        description="Roll back a rollout that is not ready within this many seconds.",
    )
    rollout: RolloutSpec = nested(
        RolloutSpec, "How a new version replaces the serving one (default Immediate)."
    )

    @model_validator(mode="after")
    def _replicas_or_autoscaling(self) -> ModelDeploymentSpec:
        if self.autoscaling is not None and self.replicas != 1:
            raise ValueError(REPLICAS_MESSAGE)
        return self


class RolloutRecord(ApiModel):
    """One version change of the deployment."""

    version: int = Field(ge=1, description="The version rolled out.")
    training_job: str | None = Field(
        None, max_length=253, description="Name of the TrainingJob that produced the version."
    )
    time: datetime = Field(description="When the rollout finished.")
    outcome: Literal["Promoted", "RolledBack"] = Field(
        description="Promoted: the version became the serving one; RolledBack: it never did."
    )
    failed_signal: Signal | None = Field(
        None, description="RolledBack by the analysis: the signal that failed."
    )
    message: str | None = Field(None, max_length=1024, description="Why, in a sentence.")


class ModelDeploymentStatus(CustomObjectStatus):
    """Observed state of the deployment, written by the operator."""

    serving_version: int | None = Field(None, ge=1, description="Version now serving traffic.")
    previous_version: int | None = Field(
        None, ge=1, description="Version served before the current one."
    )
    url: str | None = Field(
        None, max_length=2048, description="In-cluster URL of the prediction endpoint."
    )
    ready_replicas: int | None = Field(None, ge=0, description="Server replicas ready.")
    storage: EffectiveStorage | None = Field(
        None, description="The storage the servers use (spec.storage or the namespace default)."
    )
    history: list[RolloutRecord] = Field(
        default_factory=list,
        max_length=20,
        description="Most recent rollouts, newest last (at most 20).",
    )
    rollout: RolloutProgress | None = Field(
        None, description="The progressive rollout under way, or the last one decided."
    )


class ModelDeployment(CustomObject):
    """A ModelDeployment serves one model at a pinned or the newest qualified version."""

    kind: Literal["ModelDeployment"] = Field("ModelDeployment", description="ModelDeployment")
    spec: ModelDeploymentSpec = Field(description="Desired serving.")
    status: ModelDeploymentStatus = Field(
        default_factory=ModelDeploymentStatus, description="Observed state."
    )
