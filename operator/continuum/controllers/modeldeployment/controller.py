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

**Children are applied when there is something to apply** (``Applied``): their manifests
changed since this process last applied them, or the Deployment read is not the one that
apply answered (another ``metadata.generation``: somebody changed its spec, or it is gone), or
the trigger is a create, resume or spec change of the ModelDeployment, or the periodic resync
(``REAPPLY``), which also restores a Service or HPA somebody deleted, within one period. Every
reconcile applied the Service and the Deployment before: under the API fault test a
ModelDeployment's reconcile was 5 calls (read it, read the Deployment, patch status, apply
twice), each failing at the proxy's rates, for each of its Deployment's status changes during a
rollout; one with nothing to change is now 2 (the two reads).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
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
from continuum.controllers.modeldeployment.evidence import read_counters
from continuum.controllers.modeldeployment.progressive import Pods, deciding
from continuum.controllers.modeldeployment.rollout import Evidence, Plan, plan
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
from continuum.controllers.shared.queue import Backoff, WorkQueue
from continuum.controllers.shared.resync import TRIGGER as RESYNC
from continuum.controllers.shared.storage import resolve, with_storage
from continuum.controllers.shared.streaks import StatusReporter
from continuum.kube import Kube

Key = tuple[str, str]  # (namespace, name)
# One reconcile at a time per ModelDeployment, every failure retried (see shared/queue.py).
queue: WorkQueue[Key] = WorkQueue(MODEL_DEPLOYMENT)
# Triggers that apply the children even when nothing seems to have changed (see the module).
REAPPLY = frozenset({"reconcile", RESYNC})
# A progressive rollout's step reads the servers' counters this often (issue 18): each look
# is a pod LIST and one pod-proxy GET per ready server pod.
POLL = Backoff(first=5.0, cap=5.0, jitter=0.1)


@dataclass(frozen=True)
class Applied:
    """The children this process last applied for one ModelDeployment: their manifests'
    digest and the ``metadata.generation`` of the Deployment that apply answered."""

    digest: str
    generation: int | None


_applied: dict[Key, Applied] = {}


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
    reapply = trigger in REAPPLY
    once = functools.partial(_reconcile_once, kube, image, versions, reapply=reapply)
    reporter = StatusReporter(kube, ref)
    return await converge_through(queue, kube, ref, once, trigger=trigger, reporter=reporter)


async def reconcile(kube: Kube, image: str, versions: Versions, ref: Ref) -> None:
    """Bring one ModelDeployment's children and status in line with the observed state."""
    await converge(kube, ref, functools.partial(_reconcile_once, kube, image, versions))


async def _reconcile_once(
    kube: Kube, image: str, versions: Versions, body: Body, *, reapply: bool = True
) -> bool:
    """Observe, plan, write status, apply children; False when the object changed meanwhile."""
    md = load_model_deployment(body)
    namespace, name = md.metadata.namespace, md.metadata.name
    storage = await resolve(kube, namespace, md.spec.storage)
    md = md.model_copy(update={"spec": with_storage(md.spec, storage)})
    deployment = await kube.read_deployment(namespace, name)
    if deployment is not None and not owned_by(deployment, md):
        raise kopf.PermanentError(f"Deployment {namespace}/{name} belongs to another object")
    qualified = versions(namespace, md.spec.model)
    evidence = await observe_rollout(kube, md)
    now = datetime.now(UTC).replace(microsecond=0)
    step = plan(md, qualified, deployment, now=now, evidence=evidence)
    step = replace(step, status=step.status.model_copy(update={"storage": storage}))
    if not await write_status(kube, MODEL_DEPLOYMENTS, body, step.status, md.status):
        return False
    announce(body, md, step)  # decided once the status is written: a failed apply that is
    # retried must not lose the Event (the retry sees the decision already recorded)
    await apply_children(kube, md, step.target, image, live=deployment, reapply=reapply,
                         pods=step.pods)  # fmt: skip
    poll_rollout(kube, image, versions, md, step)
    return True


async def observe_rollout(kube: Kube, md: ModelDeployment) -> Evidence | None:
    """The servers' counters of the current step, while a progressive rollout decides."""
    progress = md.status.rollout
    if not deciding(progress) or md.spec.rollout.strategy == "Immediate":
        return None
    assert progress is not None
    counters, problem = await read_counters(kube, md, progress)
    return Evidence(counters, problem)


def poll_rollout(
    kube: Kube, image: str, versions: Versions, md: ModelDeployment, step: Plan
) -> None:
    """While a step gathers evidence, reconcile again every ``POLL`` (the servers' counters
    change without any event); settle once it is decided."""
    key = (md.metadata.namespace, md.metadata.name)
    if not step.deciding:
        if deciding(md.status.rollout):
            queue.settle(key)
        return
    ref = Ref(MODEL_DEPLOYMENT, MODEL_DEPLOYMENTS, *key, md.metadata.uid)

    async def again() -> None:
        await reconcile(kube, image, versions, ref)

    queue.requeue(key, again, POLL)


async def apply_children(
    kube: Kube,
    md: ModelDeployment,
    target: int | None,
    image: str,
    *,
    live: Mapping[str, Any] | None = None,
    reapply: bool = True,
    pods: Pods | None = None,
) -> bool:
    """Server-side apply the Service, the Deployment at ``target`` (with ``pods``: the
    candidate beside it) and the HPA (if any), unless this process applied the same
    manifests last and the ``live`` Deployment is the one it got back (``reapply`` applies
    anyway). True when they were applied."""
    manifests = desired_children(md, target, image, pods)
    key = (md.metadata.namespace, md.metadata.name)
    digest = digest_of(manifests)
    gone = target is not None and live is None  # the Deployment to run is not there
    if not reapply and not gone and _applied.get(key) == Applied(digest, generation_of(live)):
        return False
    generation = None
    for manifest in manifests:
        answer = await kube.apply(manifest)
        if manifest["kind"] == "Deployment":
            generation = generation_of(answer)
    _applied[key] = Applied(digest, generation)
    return True


def desired_children(
    md: ModelDeployment, target: int | None, image: str, pods: Pods | None = None
) -> list[dict[str, Any]]:
    """The Service, and with a version to run the Deployment and the HPA (if any), in order."""
    if target is None:
        return [desired_service(md)]
    hpa = desired_hpa(md)
    deployment = desired_deployment(md, target, image, pods)
    return [desired_service(md), deployment, *([hpa] if hpa else [])]


def digest_of(manifests: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(manifests, sort_keys=True).encode()).hexdigest()


def generation_of(obj: Mapping[str, Any] | None) -> int | None:
    generation = (obj or {}).get("metadata", {}).get("generation")
    return generation if isinstance(generation, int) else None


def forget(key: Key) -> None:
    """The ModelDeployment is gone: drop what was applied for it."""
    _applied.pop(key, None)


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
