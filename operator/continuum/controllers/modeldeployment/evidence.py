"""The servers' counters of a progressive rollout's current step, read through the pod proxy.

The ready server pods of the step (label ``continuum.dev/rollout-step``: a pod of another
step, still terminating or not yet replaced, is not asked) each answer ``GET /v2/rollout``
through the API server's pod proxy (RBAC ``pods/proxy get``); their counters are summed
(``analysis.merge``). A pod that does not answer is left out and named in the problem
returned: the step then waits on fewer requests, it never fails on a read error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from continuum.api import ModelDeployment, RolloutProgress
from continuum.api.vocabulary import ROLLOUT_STEP_LABEL
from continuum.controllers.modeldeployment.analysis import (
    Counters,
    EvidenceInvalid,
    counters_from,
    merge,
)
from continuum.controllers.modeldeployment.children import PORT, selector_labels
from continuum.controllers.modeldeployment.progressive import step_id
from continuum.kube import Kube, KubeError

log = logging.getLogger(__name__)
ROLLOUT_PATH = "/v2/rollout"


async def read_counters(
    kube: Kube, md: ModelDeployment, progress: RolloutProgress
) -> tuple[Counters | None, str | None]:
    """The summed counters of the step's ready pods (None: none answered), and what went
    wrong reading any of them (None: nothing)."""
    step = step_id(progress.candidate, progress.step)
    namespace = md.metadata.namespace
    labels = {**selector_labels(md), ROLLOUT_STEP_LABEL: step}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    try:
        pods = [p for p in await kube.list_pods(namespace, selector) if ready(p)]
    except KubeError as exc:
        return None, f"listing the server pods failed: {exc.message}"
    parts: list[Counters] = []
    problems: list[str] = []
    for pod in pods:
        name = str(pod["metadata"]["name"])
        found = await _read_one(kube, namespace, name, step)
        if isinstance(found, str):
            problems.append(found)
        else:
            parts.append(found)
    if not pods:
        problems.append(f"no ready server pod of step {step} yet")
    return _sum(parts, problems), "; ".join(problems) or None


def _sum(parts: list[Counters], problems: list[str]) -> Counters | None:
    try:
        return merge(parts)
    except EvidenceInvalid as exc:
        problems.append(str(exc))
        return None


async def _read_one(kube: Kube, namespace: str, pod: str, step: str) -> Counters | str:
    try:
        answer = await kube.get_pod_proxy(namespace, pod, PORT, ROLLOUT_PATH)
    except KubeError as exc:
        return f"pod {pod}: {exc.message}"
    if answer is None:
        return f"pod {pod} has no rollout (404 on {ROLLOUT_PATH})"
    try:
        counters = counters_from(answer)
    except EvidenceInvalid as exc:
        return f"pod {pod}: {exc}"
    if counters.step != step:
        return f"pod {pod} counts for step {counters.step}, not {step}"
    return counters


def ready(pod: Mapping[str, Any]) -> bool:
    """A running pod whose Ready condition is True and that is not being deleted."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
