"""kopf handlers of ModelDeployment: thin glue between watch events, the pure builders
(``serving``, ``rollout``) and the Kubernetes gateway (``continuum.kube``).

One idempotent, level-based ``reconcile`` computes everything from the full observed state
(the ModelDeployment, the model's TrainingJobs, its Deployment) and runs on:

* create/resume and spec updates of a ModelDeployment;
* events of the Deployments we manage (server-side label selector): rollout progress,
  completion (promotion) and ProgressDeadlineExceeded (rollback);
* events of Succeeded, qualified TrainingJobs: the ModelDeployments of that model (found via
  an in-memory index) reconcile, so ``latestQualified`` promotes the new version.

Status is written first (merge patch guarded by ``resourceVersion``), then the children are
server-side applied: a failed version is remembered in status before the rollback is applied,
so it is never retried. No finalizers: children carry a controller owner reference.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import kopf
from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from continuum.api import GROUP, VERSION, ModelDeployment, TrainingJob, dump, load
from continuum.controllers import metrics
from continuum.controllers.naming import COMPONENT, MANAGED_BY, MANAGED_SELECTOR, OPERATOR
from continuum.controllers.ownership import (
    controlled_by_uid,
    controller_of,
    event_target,
    load_or_fail,
)
from continuum.controllers.rollout import Plan, plan
from continuum.controllers.serving import (
    SERVING,
    desired_deployment,
    desired_hpa,
    desired_service,
)
from continuum.controllers.settings import image_of, kube_of
from continuum.kube import Conflict, Kube

PLURAL = "modeldeployments"
KIND = "ModelDeployment"
TJ_PLURAL = "trainingjobs"
STATUS_ATTEMPTS = 5
INDEX = "md_by_model"

SERVING_VERSION = Gauge(
    "continuum_modeldeployment_serving_version",
    "Model version a ModelDeployment serves (absent until one is serving).",
    ["namespace", "name"],
    registry=metrics.REGISTRY,
)
ROLLOUTS = Counter(
    "continuum_rollouts_total",
    "Finished rollouts of model versions, by outcome (Promoted or RolledBack).",
    ["outcome"],
    registry=metrics.REGISTRY,
)

_locks: dict[tuple[str, str], asyncio.Lock] = {}


@kopf.on.startup(id="modeldeployment-startup")
def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    configure(settings)


def configure(settings: kopf.OperatorSettings) -> None:
    """Watch only the Deployments the operator manages (server-side label selector)."""
    settings.watching.label_selectors["apps", "deployments"] = MANAGED_SELECTOR


@kopf.index(GROUP, VERSION, PLURAL, id=INDEX)
async def md_by_model(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> Any:
    """ModelDeployment names by (namespace, model)."""
    return {(namespace, spec.get("model")): name}


@kopf.on.resume(GROUP, VERSION, PLURAL, id="modeldeployment")
@kopf.on.create(GROUP, VERSION, PLURAL, id="modeldeployment")
@kopf.on.update(GROUP, VERSION, PLURAL, id="modeldeployment", field="spec")
async def reconcile_handler(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    with metrics.counted(KIND, "reconcile"):
        await reconcile(kube_of(memo), image_of(memo), str(namespace), name)


@kopf.on.event(GROUP, VERSION, PLURAL, id="modeldeployment-serving")
def serving_event_handler(type: str | None, body: kopf.Body, **_: Any) -> None:
    meta = body.get("metadata", {})
    version = None if type == "DELETED" else body.get("status", {}).get("servingVersion")
    observe_serving(str(meta.get("namespace")), str(meta.get("name")), version)


def observe_serving(namespace: str, name: str, version: Any) -> None:
    """Export the serving version of one ModelDeployment (None: none, or it is gone)."""
    if isinstance(version, int):
        SERVING_VERSION.labels(namespace=namespace, name=name).set(version)
        return
    with suppress(KeyError):
        SERVING_VERSION.remove(namespace, name)


@kopf.on.event(
    "apps",
    "v1",
    "deployments",
    id="modeldeployment-deployment",
    labels={MANAGED_BY: OPERATOR, COMPONENT: SERVING},
)
async def deployment_event_handler(
    type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    owner = controller_owner(body)
    if owner is None:
        return  # a deleted Deployment is re-created by its owner's reconcile
    with metrics.counted(KIND, "deployment-event"):
        namespace = str(body["metadata"]["namespace"])
        await reconcile(kube_of(memo), image_of(memo), namespace, owner[0], uid=owner[1])


def _qualified_event(body: kopf.Body, **_: Any) -> bool:
    return qualified(body)


@kopf.on.event(GROUP, VERSION, TJ_PLURAL, id="modeldeployment-trainingjob", when=_qualified_event)
async def trainingjob_event_handler(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    index: kopf.Index[Any, str] = kwargs[INDEX]
    namespace = str(body["metadata"]["namespace"])
    names = sorted(set(index.get((namespace, body.get("spec", {}).get("model")), [])))
    with metrics.counted(KIND, "trainingjob-event"):
        for name in names:
            await reconcile(kube_of(memo), image_of(memo), namespace, name)


def qualified(body: Mapping[str, Any]) -> bool:
    """Whether a TrainingJob body has Succeeded with a qualified model."""
    status = body.get("status") or {}
    return status.get("phase") == "Succeeded" and status.get("qualified") is True


async def reconcile(
    kube: Kube, image: str, namespace: str, name: str, *, uid: str | None = None
) -> None:
    """Bring one ModelDeployment's children and status in line with the observed state."""
    async with _lock(namespace, name):
        for _attempt in range(STATUS_ATTEMPTS):
            body = await kube.read_custom_object(GROUP, VERSION, PLURAL, namespace, name)
            if body is None or _gone(body, uid):
                return  # deleted (or replaced): its children are garbage now
            if await _reconcile_once(kube, image, body):
                return
    raise kopf.TemporaryError("the ModelDeployment kept changing during reconcile", delay=1)


def _gone(body: Mapping[str, Any], uid: str | None) -> bool:
    meta = body["metadata"]
    return bool(meta.get("deletionTimestamp")) or (uid is not None and meta.get("uid") != uid)


def _lock(namespace: str, name: str) -> asyncio.Lock:
    """One lock per ModelDeployment: its handlers never reconcile it concurrently."""
    return _locks.setdefault((namespace, name), asyncio.Lock())


async def _reconcile_once(kube: Kube, image: str, body: Mapping[str, Any]) -> bool:
    """Plan, write status, apply children; False when the object changed meanwhile."""
    md = load_model_deployment(body)
    namespace, name = str(md.metadata["namespace"]), str(md.metadata["name"])
    deployment = await kube.read_deployment(namespace, name)
    if deployment is not None and not owned_by(deployment, md):
        raise kopf.PermanentError(f"Deployment {namespace}/{name} belongs to another object")
    jobs = await training_jobs(kube, namespace)
    step = plan(md, jobs, deployment, now=datetime.now(UTC).replace(microsecond=0))
    if not await write_status(kube, body, md, step):
        return False
    await apply_children(kube, md, step.target, image)
    announce(body, md, step)
    return True


async def training_jobs(kube: Kube, namespace: str) -> list[TrainingJob]:
    """The namespace's TrainingJobs that parse (others cannot have produced a version)."""
    items = await kube.list_custom_objects(GROUP, VERSION, TJ_PLURAL, namespace)
    parsed = []
    for item in items:
        try:
            parsed.append(load(TrainingJob, item))
        except ValidationError:
            continue
    return parsed


async def write_status(
    kube: Kube, body: Mapping[str, Any], md: ModelDeployment, step: Plan
) -> bool:
    """Write the planned status unless unchanged; False on a resourceVersion conflict."""
    if dump(step.status) == dump(md.status):
        return True
    meta = body["metadata"]
    try:
        await kube.patch_status(
            GROUP, VERSION, PLURAL, meta["namespace"], meta["name"], status=dump(step.status),
            resource_version=meta.get("resourceVersion"),
        )  # fmt: skip
    except Conflict:
        return False
    return True


async def apply_children(kube: Kube, md: ModelDeployment, target: int | None, image: str) -> None:
    """Server-side apply the Service, the Deployment at ``target`` and the HPA (if any)."""
    await kube.apply(desired_service(md))
    if target is None:
        return
    await kube.apply(desired_deployment(md, target, image))
    hpa = desired_hpa(md)
    if hpa is not None:
        await kube.apply(hpa)


def announce(body: Mapping[str, Any], md: ModelDeployment, step: Plan) -> None:
    """Events and metrics for what the plan decided (after its status was written)."""
    target = _target(body)
    for event in step.events:
        post = kopf.info if event.type == "Normal" else kopf.warn
        post(target, reason=event.reason, message=event.message)
    for outcome in step.outcomes:
        ROLLOUTS.labels(outcome=outcome).inc()
    meta = md.metadata
    observe_serving(str(meta["namespace"]), str(meta["name"]), step.status.serving_version)


def load_model_deployment(body: Mapping[str, Any]) -> ModelDeployment:
    """Parse a ModelDeployment; one the API types reject is a permanent handler failure."""
    return load_or_fail(ModelDeployment, body)


def _target(body: Mapping[str, Any]) -> kopf.Body:
    """``body`` as the object an Event is about."""
    return event_target(body)


def controller_owner(child: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, uid) of the ModelDeployment that controls ``child``, if one does."""
    return controller_of(child, KIND)


def owned_by(child: Mapping[str, Any], md: ModelDeployment) -> bool:
    """Whether ``child`` is controlled by this very ModelDeployment (same uid)."""
    return controlled_by_uid(child, KIND, md.metadata.get("uid"))
