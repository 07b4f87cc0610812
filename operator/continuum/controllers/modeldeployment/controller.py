"""The ModelDeployment controller: one level-based reconcile from the full observed state.

Observe the ModelDeployment, its Deployment and the model's qualified versions (kopf's index
of qualified TrainingJobs, ``versions``: no LIST of the namespace's TrainingJobs); plan the
version to run and the status (``rollout.plan``, pure); apply: status first (a merge patch
guarded by ``resourceVersion``, re-planned on a fresh read after a conflict), then the children
by server-side apply (``children``), then Events and metrics. Writing status first means a
failed version is remembered before its rollback is applied, so it is never tried again.

Every trigger (``handlers``) runs the same reconcile through the work queue, which serialises
it per ModelDeployment and retries it when it fails. No finalizers: children carry a
controller owner reference.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from continuum.api import ModelDeployment
from continuum.api.vocabulary import MODEL_DEPLOYMENT, MODEL_DEPLOYMENTS
from continuum.controllers.modeldeployment import metrics
from continuum.controllers.modeldeployment.children import (
    desired_deployment,
    desired_hpa,
    desired_service,
)
from continuum.controllers.modeldeployment.rollout import Plan, plan
from continuum.controllers.modeldeployment.versions import Versions
from continuum.controllers.shared.objects import (
    Body,
    Ref,
    controlled_by_uid,
    controller_of,
    converge,
    converge_through,
    load_or_fail,
    post,
    write_status,
)
from continuum.controllers.shared.queue import WorkQueue
from continuum.controllers.shared.streaks import StatusReporter
from continuum.kube import Kube

Key = tuple[str, str]  # (namespace, name)
# One reconcile at a time per ModelDeployment, every failure retried (see shared/queue.py).
queue: WorkQueue[Key] = WorkQueue(MODEL_DEPLOYMENT)


async def run(
    kube: Kube,
    image: str,
    versions: Versions,
    namespace: str,
    name: str,
    *,
    uid: str | None = None,
    trigger: str,
) -> bool:
    """Reconcile one ModelDeployment through the queue (True: it succeeded now)."""
    ref = Ref(MODEL_DEPLOYMENT, MODEL_DEPLOYMENTS, namespace, name, uid)
    once = functools.partial(_reconcile_once, kube, image, versions)
    reporter = StatusReporter(kube, ref)
    return await converge_through(queue, kube, ref, once, trigger=trigger, reporter=reporter)


async def reconcile(kube: Kube, image: str, versions: Versions, ref: Ref) -> None:
    """Bring one ModelDeployment's children and status in line with the observed state."""
    await converge(kube, ref, functools.partial(_reconcile_once, kube, image, versions))


async def _reconcile_once(kube: Kube, image: str, versions: Versions, body: Body) -> bool:
    """Observe, plan, write status, apply children; False when the object changed meanwhile."""
    md = load_model_deployment(body)
    namespace, name = md.metadata.namespace, md.metadata.name
    deployment = await kube.read_deployment(namespace, name)
    if deployment is not None and not owned_by(deployment, md):
        raise kopf.PermanentError(f"Deployment {namespace}/{name} belongs to another object")
    qualified = versions(namespace, md.spec.model)
    step = plan(md, qualified, deployment, now=datetime.now(UTC).replace(microsecond=0))
    if not await write_status(kube, MODEL_DEPLOYMENTS, body, step.status, md.status):
        return False
    await apply_children(kube, md, step.target, image)
    announce(body, md, step)
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


def announce(body: Body, md: ModelDeployment, step: Plan) -> None:
    """Events and metrics for what the plan decided (after its status was written)."""
    post(body, step.events)
    for outcome in step.outcomes:
        metrics.ROLLOUTS.labels(outcome=outcome).inc()
    meta = md.metadata
    metrics.observe_serving(meta.namespace, meta.name, step.status.serving_version)


def qualified(body: Mapping[str, Any]) -> bool:
    """Whether a TrainingJob body has Succeeded with a qualified model."""
    status = body.get("status") or {}
    return status.get("phase") == "Succeeded" and status.get("qualified") is True


def load_model_deployment(body: Body) -> ModelDeployment:
    """Parse a ModelDeployment; one the API types reject is a permanent failure."""
    return load_or_fail(ModelDeployment, body)


def controller_owner(child: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, uid) of the ModelDeployment that controls ``child``, if one does."""
    return controller_of(child, MODEL_DEPLOYMENT)


def owned_by(child: Mapping[str, Any], md: ModelDeployment) -> bool:
    """Whether ``child`` is controlled by this very ModelDeployment (same uid)."""
    return controlled_by_uid(child, MODEL_DEPLOYMENT, md.metadata.uid)
