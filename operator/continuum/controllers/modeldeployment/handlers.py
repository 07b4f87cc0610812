"""kopf's triggers of the ModelDeployment controller; each runs the one reconcile through the
controller's work queue (serialised per ModelDeployment, retried when it fails).

* ``modeldeployment``: a ModelDeployment created, resumed or its spec updated → that one;
* ``modeldeployment-deployment``: a managed Deployment changed (rollout progress, completion,
  progress deadline; server-side label selector) → its owner;
* ``modeldeployment-trainingjob``: a TrainingJob Succeeded with a qualified model → the
  ModelDeployments of its model (found through the ``md_by_model`` index);
* ``qualified_by_model``, a kopf index of the qualified TrainingJobs by (namespace, model):
  ``{version: name}`` is what every reconcile plans from (``versions``), kept up to date by the
  TrainingJob watch instead of a LIST of the namespace's TrainingJobs per reconcile;
* ``modeldeployment-serving``: any ModelDeployment event → the serving-version gauge, which
  ModelDeployments the periodic resync covers, and a nudge of its queue (a retry waiting long
  runs now);
* the resync (``shared.resync``, ``--resync-seconds``): every ModelDeployment once per period.
"""

from __future__ import annotations

from typing import Any

import kopf

from continuum.api import GROUP, VERSION
from continuum.api.vocabulary import (
    COMPONENT,
    COMPONENT_SERVING,
    MANAGED_BY,
    MODEL_DEPLOYMENT,
    MODEL_DEPLOYMENTS,
    OPERATOR,
    TRAINING_JOBS,
)
from continuum.controllers.lifecycle import image_of, kube_of, resync_with
from continuum.controllers.modeldeployment import controller, metrics
from continuum.controllers.modeldeployment.controller import Key, queue
from continuum.controllers.modeldeployment.versions import (
    Entry,
    ModelKey,
    Versions,
    index_entry,
    versions_from,
)
from continuum.controllers.shared import resync as resyncs

INDEX = "md_by_model"
QUALIFIED = "qualified_by_model"
# Every ModelDeployment, reconciled again once per --resync-seconds.
resync: resyncs.Resync[Key] = resyncs.Resync(MODEL_DEPLOYMENT, queue)


@kopf.index(GROUP, VERSION, MODEL_DEPLOYMENTS, id=INDEX)
async def md_by_model(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> Any:
    """ModelDeployment names by (namespace, model)."""
    return {(namespace, spec.get("model")): name}


@kopf.index(GROUP, VERSION, TRAINING_JOBS, id=QUALIFIED)
async def qualified_by_model(body: kopf.Body, **_: Any) -> dict[ModelKey, Entry]:
    """Qualified TrainingJobs by (namespace, model): (version, name) each (see ``versions``)."""
    return index_entry(body)


@kopf.on.startup(id="modeldeployment-versions")
async def keep_versions(memo: kopf.Memo, **kwargs: Any) -> None:
    """Every reconcile (a handler's, a retry, the resync) looks versions up in the index kopf
    hands the handlers (the same live object from startup on, filled by the watch; kopf runs
    no resource handler before the first listing is indexed)."""
    memo[QUALIFIED] = lookup(kwargs[QUALIFIED])


def lookup(index: kopf.Index[ModelKey, Entry]) -> Versions:
    """The qualified ``{version: name}`` of (namespace, model), from ``index``."""

    def versions(namespace: str, model: str) -> dict[int, str]:
        return versions_from(index.get((namespace, model), ()))

    return versions


def versions_of(memo: kopf.Memo) -> Versions:
    found = memo.get(QUALIFIED)
    if found is None:
        raise kopf.TemporaryError("the index of qualified TrainingJobs is not ready yet", delay=1)
    return found  # type: ignore[no-any-return]


@kopf.on.resume(GROUP, VERSION, MODEL_DEPLOYMENTS, id="modeldeployment")
@kopf.on.create(GROUP, VERSION, MODEL_DEPLOYMENTS, id="modeldeployment")
@kopf.on.update(GROUP, VERSION, MODEL_DEPLOYMENTS, id="modeldeployment", field="spec")
async def reconcile_handler(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    kube, image, versions = kube_of(memo), image_of(memo), versions_of(memo)
    await controller.run(kube, image, versions, str(namespace), name, trigger="reconcile")


# async: kopf runs a sync handler in its thread pool, and the nudge needs the event loop
@kopf.on.event(GROUP, VERSION, MODEL_DEPLOYMENTS, id="modeldeployment-serving")
async def serving_event_handler(type: str | None, body: kopf.Body, **_: Any) -> None:
    meta = body.get("metadata", {})
    version = None if type == "DELETED" else body.get("status", {}).get("servingVersion")
    key = (str(meta.get("namespace")), str(meta.get("name")))
    metrics.observe_serving(*key, version)
    if type == "DELETED":
        resync.forget(key)
        controller.forget(key)
    else:
        resync.track(key)
        queue.nudge(key)  # news of the object: a long retry wait runs now


async def resync_one(memo: kopf.Memo, key: Key) -> None:
    """The resync of one ModelDeployment: its full reconcile, through the queue."""
    kube, image, versions = kube_of(memo), image_of(memo), versions_of(memo)
    await controller.run(kube, image, versions, *key, trigger=resyncs.TRIGGER)


resync_with(resync, resync_one)


@kopf.on.event(
    "apps",
    "v1",
    "deployments",
    id="modeldeployment-deployment",
    labels={MANAGED_BY: OPERATOR, COMPONENT: COMPONENT_SERVING},
)
async def deployment_event_handler(
    type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    owner = controller.controller_owner(body)
    if owner is None:
        return  # a deleted Deployment is re-created by its owner's reconcile
    kube, image, versions = kube_of(memo), image_of(memo), versions_of(memo)
    namespace = str(body["metadata"]["namespace"])
    await controller.run(
        kube, image, versions, namespace, owner[0], uid=owner[1], trigger="deployment-event"
    )


def _qualified_event(body: kopf.Body, **_: Any) -> bool:
    return controller.qualified(body)


@kopf.on.event(
    GROUP, VERSION, TRAINING_JOBS, id="modeldeployment-trainingjob", when=_qualified_event
)
async def trainingjob_event_handler(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    index: kopf.Index[Any, str] = kwargs[INDEX]
    namespace = str(body["metadata"]["namespace"])
    names = sorted(set(index.get((namespace, body.get("spec", {}).get("model")), [])))
    kube, image, versions = kube_of(memo), image_of(memo), versions_of(memo)
    for name in names:
        await controller.run(kube, image, versions, namespace, name, trigger="trainingjob-event")
