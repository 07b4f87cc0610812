"""``continuum lineage <model> [-n namespace]``: print a model's causal chain.

    drift report (DriftMonitor)  ->  TrainingJob  ->  model version  ->  ModelDeployment history

Each link is read from the objects themselves: a retraining TrainingJob names its monitor
(label ``continuum.dev/drift-monitor``) and report (annotation ``continuum.dev/report``); the
TrainingJob's status names the version it produced; a ModelDeployment's ``status.history``
names the versions it promoted or rolled back. ``format_lineage`` is pure; ``main`` reads the
objects through ``continuum.kube`` (kubeconfig or in-cluster credentials).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from continuum.api import GROUP, VERSION
from continuum.api.vocabulary import (
    DRIFT_MONITOR_LABEL,
    MODEL_DEPLOYMENTS,
    REASON_ANNOTATION,
    REPORT_ANNOTATION,
    TRAINING_JOBS,
)
from continuum.kube import Kube, KubeError


@dataclass(frozen=True)
class Served:
    """One ModelDeployment history record of a version."""

    deployment: str
    outcome: str
    time: str


@dataclass(frozen=True)
class Link:
    """One TrainingJob with its cause, its version and what serving did with it."""

    training_job: str
    created: str
    phase: str
    qualified: bool | None
    version: int | None
    metrics: Mapping[str, float]
    monitor: str | None = None
    report: str | None = None
    reason: str | None = None
    served: list[Served] = field(default_factory=list)


def build_lineage(
    model: str,
    trainingjobs: Iterable[Mapping[str, Any]],
    deployments: Iterable[Mapping[str, Any]],
) -> list[Link]:
    """The model's TrainingJobs, oldest first, each linked to its cause and its rollouts."""
    mds = [md for md in deployments if (md.get("spec") or {}).get("model") == model]
    links = [_link(tj, mds) for tj in trainingjobs if (tj.get("spec") or {}).get("model") == model]
    return sorted(links, key=lambda link: (link.version or 10**9, link.created, link.training_job))


def _link(tj: Mapping[str, Any], deployments: Sequence[Mapping[str, Any]]) -> Link:
    meta, status = tj.get("metadata") or {}, tj.get("status") or {}
    version = (status.get("model") or {}).get("version")
    return Link(
        training_job=str(meta.get("name")),
        created=str(meta.get("creationTimestamp") or ""),
        phase=str(status.get("phase") or "Pending"),
        qualified=status.get("qualified"),
        version=version if isinstance(version, int) else None,
        metrics=dict(status.get("metrics") or {}),
        monitor=(meta.get("labels") or {}).get(DRIFT_MONITOR_LABEL),
        report=(meta.get("annotations") or {}).get(REPORT_ANNOTATION),
        reason=(meta.get("annotations") or {}).get(REASON_ANNOTATION),
        served=_served(version, str(meta.get("name")), deployments),
    )


def _served(version: Any, name: str, deployments: Sequence[Mapping[str, Any]]) -> list[Served]:
    found = []
    for md in deployments:
        for record in (md.get("status") or {}).get("history") or []:
            same = record.get("version") == version and record.get("trainingJob") in {None, name}
            if version is not None and same:
                deployment = str((md.get("metadata") or {}).get("name"))
                found.append(
                    Served(deployment, str(record.get("outcome")), str(record.get("time")))
                )
    return found


def format_lineage(
    model: str, namespace: str, links: Sequence[Link], serving: Mapping[str, int | None]
) -> str:
    """The chain as text, one block per TrainingJob, then what each deployment serves."""
    lines = [f"model {model} in namespace {namespace}"]
    if not links:
        lines.append("  no TrainingJobs of this model")
    for link in links:
        lines += ["", *_block(link)]
    for deployment, version in sorted(serving.items()):
        now = f"version {version}" if version is not None else "nothing yet"
        lines.append(f"\nModelDeployment {deployment} serves {now}")
    return "\n".join(lines) + "\n"


def _block(link: Link) -> list[str]:
    lines = []
    if link.report is not None or link.monitor is not None:
        why = f" ({link.reason})" if link.reason else ""
        lines.append(f"drift report {link.report or '?'} (DriftMonitor {link.monitor}){why}")
        lines.append("  -> " + _training(link))
    else:
        lines.append(_training(link) + " (created directly)")
    if link.version is not None:
        lines.append(f"  -> version {link.version}")
    lines += [f"  -> ModelDeployment {s.deployment}: {s.outcome} {s.time}" for s in link.served]
    if link.version is not None and link.phase == "Succeeded" and not link.served:
        lines.append("  -> not served" + (" (not qualified)" if link.qualified is False else ""))
    return lines


def _training(link: Link) -> str:
    gate = {True: ", qualified", False: ", not qualified"}.get(link.qualified, "")  # type: ignore[arg-type]
    scores = ", ".join(f"{k}={v:.4g}" for k, v in sorted(link.metrics.items()))
    return f"TrainingJob {link.training_job} ({link.phase}{gate}{', ' + scores if scores else ''})"


def serving_versions(model: str, deployments: Iterable[Mapping[str, Any]]) -> dict[str, int | None]:
    """{ModelDeployment name: servingVersion} of the model's deployments."""
    return {
        str(md["metadata"]["name"]): (md.get("status") or {}).get("servingVersion")
        for md in deployments
        if (md.get("spec") or {}).get("model") == model
    }


async def read_objects(namespace: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The namespace's TrainingJobs and ModelDeployments."""
    kube = await Kube.connect()
    try:
        tjs = await kube.list_custom_objects(GROUP, VERSION, TRAINING_JOBS, namespace)
        mds = await kube.list_custom_objects(GROUP, VERSION, MODEL_DEPLOYMENTS, namespace)
    finally:
        await kube.close()
    return tjs, mds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="continuum lineage", description=__doc__)
    parser.add_argument("model", help="model name (TrainingJob spec.model)")
    parser.add_argument("-n", "--namespace", default="default", help="namespace (default: default)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        tjs, mds = asyncio.run(read_objects(args.namespace))
    except KubeError as exc:
        print(f"continuum lineage: {exc}", file=sys.stderr)
        return 1
    links = build_lineage(args.model, tjs, mds)
    print(format_lineage(args.model, args.namespace, links, serving_versions(args.model, mds)))
    return 0
