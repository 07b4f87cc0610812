"""``continuum rollout <deployment> status|promote|abort|pause|resume [-n namespace]``.

The manual controls of a progressive rollout (issue 18), for a person at a terminal:

* ``status``  prints ``status.rollout``: candidate, step, weight, each signal with its
  threshold, the verdict and why;
* ``promote`` annotates the ModelDeployment ``continuum.dev/rollout-action:
  promote-<candidate>``: the operator promotes that candidate at its next look (every 5 s
  during a rollout);
* ``abort``   the same with ``abort-<candidate>``: rolled back, never retried;
* ``pause`` / ``resume`` set ``spec.rollout.paused`` (a failing signal still rolls back).

The annotation names the candidate read from ``status.rollout`` at that moment, so a command
meant for one candidate never acts on a later one. ``describe`` is pure; ``main`` talks to
the API server through ``continuum.kube`` (kubeconfig or in-cluster credentials).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from continuum.api import GROUP, VERSION
from continuum.api.vocabulary import (
    MODEL_DEPLOYMENTS,
    ROLLOUT_ABORT,
    ROLLOUT_ACTION_ANNOTATION,
    ROLLOUT_PROMOTE,
)
from continuum.errors import ContinuumError
from continuum.kube import Kube, KubeError

ACTIONS = ("status", "promote", "abort", "pause", "resume")
DECIDED = {"Promote", "RollBack"}


class RolloutActionRefused(ContinuumError):  # noqa: N818 -- an outcome, named like the errors
    """The command cannot act on this ModelDeployment; the message says why."""


def describe(md: Mapping[str, Any]) -> str:
    """``status.rollout`` as a few lines of text."""
    name = md.get("metadata", {}).get("name", "?")
    rollout = (md.get("status") or {}).get("rollout")
    if not rollout:
        serving = (md.get("status") or {}).get("servingVersion")
        return f"ModelDeployment {name}: no progressive rollout (serving version {serving})\n"
    lines = [
        f"ModelDeployment {name}: version {rollout['candidate']} beside version "
        f"{rollout['champion']}, step {rollout['step'] + 1}/{rollout['steps']} "
        f"({rollout['stepName']}, candidate answers {rollout['weight']}%) since "
        f"{rollout['stepStartedAt']}",
        f"  verdict {rollout.get('verdict')}: {rollout.get('message', '')}",
        f"  requests {rollout.get('requests', 0)}, compared rows {rollout.get('compared', 0)}",
    ]
    for item in rollout.get("evidence") or []:
        value = item.get("value")
        shown = "n/a" if value is None else f"{value:g}"
        judged = {True: "pass", False: "FAIL"}.get(item.get("passed"), "not judged yet")
        lines.append(f"  {item['signal']:21} {shown:>10}  threshold {item['threshold']:g}  "
                     f"{judged}")  # fmt: skip
    return "\n".join(lines) + "\n"


def patch_for(action: str, md: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch an action writes (RolloutActionRefused when it cannot apply)."""
    if action in {"pause", "resume"}:
        return {"spec": {"rollout": {"paused": action == "pause"}}}
    rollout = (md.get("status") or {}).get("rollout") or {}
    name = md.get("metadata", {}).get("name", "?")
    if not rollout or rollout.get("verdict") in DECIDED:
        raise RolloutActionRefused(
            f"ModelDeployment {name} has no progressive rollout under way "
            f"(status.rollout verdict: {rollout.get('verdict', 'none')}); nothing to {action}"
        )
    verb = ROLLOUT_PROMOTE if action == "promote" else ROLLOUT_ABORT
    value = f"{verb}-{rollout['candidate']}"
    return {"metadata": {"annotations": {ROLLOUT_ACTION_ANNOTATION: value}}}


async def run(name: str, namespace: str, action: str) -> str:
    kube = await Kube.connect()
    try:
        md = await kube.read_custom_object(GROUP, VERSION, MODEL_DEPLOYMENTS, namespace, name)
        if md is None:
            raise RolloutActionRefused(f"ModelDeployment {namespace}/{name} not found")
        if action == "status":
            return describe(md)
        patch = patch_for(action, md)
        await kube.patch_custom_object(
            GROUP, VERSION, MODEL_DEPLOYMENTS, namespace, name, patch=patch
        )
        return f"ModelDeployment {namespace}/{name}: {action} requested ({patch})\n"
    finally:
        await kube.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="continuum rollout", description=__doc__)
    parser.add_argument("deployment", help="ModelDeployment name")
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("-n", "--namespace", default="default", help="namespace (default: default)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        print(asyncio.run(run(args.deployment, args.namespace, args.action)), end="")
    except (KubeError, RolloutActionRefused) as exc:
        print(f"continuum rollout: {exc}", file=sys.stderr)
        return 1
    return 0
