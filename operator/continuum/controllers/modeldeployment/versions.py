"""The qualified versions of each model, as the ModelDeployment controller plans from them.

Before, every reconcile of a ModelDeployment listed every TrainingJob of its namespace and
parsed them all, so reacting to one new version cost O(N) in requests, bytes and CPU: with
1,000 TrainingJobs in the namespace, one LIST of about 1,000 bodies per promotion, per retry
and per Deployment event. Now kopf keeps an index of the qualified ones, fed by the
TrainingJob watch it runs anyway (``handlers.qualified_by_model``): each TrainingJob event
updates its one entry, and a reconcile looks up its model's versions in O(1).

``index_entry`` is what the index stores for one TrainingJob: ``{(namespace, model): (version,
name)}`` when it Succeeded with a qualified model that has a version, else ``{}`` (kopf then
drops any entry the object had). ``versions_from`` turns the entries of one (namespace,
model) into ``{version: TrainingJob name}``, what ``rollout.plan`` takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from continuum.api import TrainingJob, load

ModelKey = tuple[str, str]  # (namespace, model)
Entry = tuple[int, str]  # (version, TrainingJob name)
# What the controller asks: the qualified {version: TrainingJob name} of (namespace, model).
Versions = Callable[[str, str], Mapping[int, str]]


def index_entry(body: Mapping[str, Any]) -> dict[ModelKey, Entry]:
    """The index entry of a TrainingJob body (see the module).

    The raw body is looked at first, so the events of running TrainingJobs (most of them)
    cost no parsing; a qualified one is parsed as the API types say, and one they reject is
    left out, as the namespace LIST it replaces left it out: it cannot have been trained by
    this operator (a status written by hand does not make a version).
    """
    status = body.get("status") or {}
    if status.get("phase") != "Succeeded" or status.get("qualified") is not True:
        return {}
    try:
        tj = load(TrainingJob, body)
    except ValidationError:
        return {}
    version = tj.status.model.version if tj.status.model is not None else None
    if version is None:
        return {}
    return {(tj.metadata.namespace, tj.spec.model): (version, tj.metadata.name)}


def versions_from(entries: Iterable[Entry]) -> dict[int, str]:
    """``{version: TrainingJob name}``. Two TrainingJobs never produce one version (the
    trainer claims each version write-once), but if the index ever held two, the name first
    in order wins, whatever order kopf keeps them in."""
    found: dict[int, str] = {}
    for version, name in sorted(entries):
        found.setdefault(version, name)
    return found
