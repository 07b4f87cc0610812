"""``continuum lineage <model> [-n namespace] [-o json]``: print a model's causal chain.

    trigger (drift, performance, schedule or manual)  ->  TrainingJob  ->  model version
        ->  ModelDeployment history

and, for every version, what it takes to replay its run: the dataset (the feedback snapshot,
else the dataset URI) and its fingerprint, the image and its digest, the library versions,
the estimator class and parameters (and the search's best ones), the split and search seeds.

Each link is read from the objects themselves: a retraining TrainingJob says why it exists
(annotations ``continuum.dev/trigger`` and ``continuum.dev/evidence``, a JSON object, written
by the DriftMonitor controller; older ones only name their monitor, label
``continuum.dev/drift-monitor``, and report, annotation ``continuum.dev/report``: shown as
drift); a TrainingJob without either was created by a user (``manual``). Evidence that is not a
JSON object is shown as written, never dropped. The TrainingJob's status names the version,
snapshot, image and libraries (TrainingJobs from before those fields show them as unknown); a
ModelDeployment's ``status.history`` names the versions it promoted or rolled back.
``build_lineage`` and the formatters are pure; ``-o json`` prints one stable document (sorted
keys, every field present, null when unknown) for scripts; ``main`` reads the objects through
``continuum.kube`` (kubeconfig or in-cluster credentials).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from continuum.api import GROUP, VERSION
from continuum.api.trainingjob import Split
from continuum.api.vocabulary import (
    DRIFT_MONITOR_LABEL,
    EVIDENCE_ANNOTATION,
    MODEL_DEPLOYMENTS,
    REASON_ANNOTATION,
    REPORT_ANNOTATION,
    TRAINING_JOBS,
    TRIGGER_ANNOTATION,
    TRIGGER_DRIFT,
)
from continuum.kube import Kube, KubeError


@dataclass(frozen=True)
class Served:
    """One ModelDeployment history record of a version."""

    deployment: str
    outcome: str
    time: str


MANUAL = "manual"  # the trigger of a TrainingJob a user created
DEFAULT_SPLIT_SEED = Split().seed  # what the API server filled in where a spec omits it


@dataclass(frozen=True)
class Trigger:
    """Why a run exists: one of RETRAIN_TRIGGERS or ``manual``, and its evidence (the JSON
    object, or the annotation's text as written when it is not one)."""

    kind: str
    evidence: Mapping[str, Any] | None = None
    raw: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "evidence": dict(self.evidence) if self.evidence else None,
                "evidenceRaw": self.raw}  # fmt: skip


@dataclass(frozen=True)
class Replay:
    """What a run was made from, to make it again."""

    dataset: str | None  # the snapshot trained on, else spec.dataset.uri
    snapshot: bool
    fingerprint: str | None
    feedback_rows: int | None
    base_rows: int | None
    image: str | None
    digest: str | None
    libraries: Mapping[str, str]
    estimator: str | None
    params: Mapping[str, Any]
    best_params: Mapping[str, Any] | None
    split_seed: int | None
    search_seed: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": {"uri": self.dataset, "snapshot": self.snapshot,
                        "fingerprint": self.fingerprint, "feedbackRows": self.feedback_rows,
                        "baseRows": self.base_rows},
            "image": {"name": self.image, "digest": self.digest},
            "libraries": dict(self.libraries),
            "estimator": {"class": self.estimator, "params": dict(self.params),
                          "searchBestParams": _copy(self.best_params)},
            "seeds": {"split": self.split_seed, "search": self.search_seed},
        }  # fmt: skip


def _copy(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return dict(value) if value is not None else None


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
    trigger: Trigger = field(default_factory=lambda: Trigger(MANUAL))
    replay: Replay | None = None

    def to_json(self) -> dict[str, Any]:
        served = [{"deployment": s.deployment, "outcome": s.outcome, "time": s.time}
                  for s in self.served]  # fmt: skip
        return {
            "trainingJob": self.training_job, "created": self.created, "phase": self.phase,
            "qualified": self.qualified, "version": self.version, "metrics": dict(self.metrics),
            "trigger": self.trigger.to_json() | {"monitor": self.monitor, "report": self.report,
                                                 "reason": self.reason},
            **(self.replay.to_json() if self.replay is not None else {}), "served": served,
        }  # fmt: skip


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
        trigger=trigger_of(meta),
        replay=replay_of(tj.get("spec") or {}, status),
    )


def trigger_of(meta: Mapping[str, Any]) -> Trigger:
    """The run's trigger from its annotations (module doc): manual when there is none."""
    annotations = meta.get("annotations") or {}
    kind = annotations.get(TRIGGER_ANNOTATION)
    legacy = DRIFT_MONITOR_LABEL in (meta.get("labels") or {}) or REPORT_ANNOTATION in annotations
    if not isinstance(kind, str) or not kind:
        kind = TRIGGER_DRIFT if legacy else MANUAL
    text = annotations.get(EVIDENCE_ANNOTATION)
    if not isinstance(text, str):
        return Trigger(kind)
    try:
        evidence = json.loads(text)
    except ValueError:
        return Trigger(kind, raw=text)
    return Trigger(kind, evidence) if isinstance(evidence, dict) else Trigger(kind, raw=text)


def replay_of(spec: Mapping[str, Any], status: Mapping[str, Any]) -> Replay:
    """What the run was made from, from its spec and (when it finished) its status."""
    dataset, summary = spec.get("dataset") or {}, status.get("dataset") or {}
    estimator, search = spec.get("estimator") or {}, spec.get("search")
    image, snapshot = status.get("image") or {}, summary.get("snapshot")
    best = (status.get("search") or {}).get("bestParams") if search else None
    return Replay(
        dataset=snapshot or dataset.get("uri"), snapshot=snapshot is not None,
        fingerprint=summary.get("fingerprint"), feedback_rows=summary.get("feedbackRows"),
        base_rows=summary.get("baseRows"), image=image.get("name"), digest=image.get("digest"),
        libraries=dict(status.get("libraries") or {}), estimator=estimator.get("class"),
        params=dict(estimator.get("params") or {}), best_params=best,
        split_seed=(spec.get("split") or {}).get("seed", DEFAULT_SPLIT_SEED),
        search_seed=search.get("seed", 0) if isinstance(search, Mapping) else None,
    )  # fmt: skip


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
    lines.append("     trigger: " + _trigger(link.trigger))
    if link.replay is not None:
        lines += ["     " + line for line in _replay(link.replay)]
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


def _trigger(trigger: Trigger) -> str:
    if trigger.raw is not None:
        return f"{trigger.kind}, evidence (not a JSON object): {trigger.raw}"
    if not trigger.evidence:
        return trigger.kind
    return f"{trigger.kind}, evidence: {_compact(trigger.evidence)}"


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)


def _replay(replay: Replay) -> list[str]:
    """The lines saying what the run was made from; '?' where the status does not say."""
    kind = "snapshot" if replay.snapshot else "dataset"
    counts = ""
    if replay.feedback_rows is not None:
        counts = f", {replay.feedback_rows} feedback + {replay.base_rows or 0} base rows"
    image = replay.image or "?"
    libraries = ", ".join(f"{k} {v}" for k, v in sorted(replay.libraries.items())) or "?"
    best = f", search best {_compact(replay.best_params)}" if replay.best_params else ""
    seeds = f"split seed {replay.split_seed}"
    if replay.search_seed is not None:
        seeds += f", search seed {replay.search_seed}"
    return [
        f"{kind}: {replay.dataset or '?'} (fingerprint {replay.fingerprint or '?'}{counts})",
        f"image: {image}" + (f" ({replay.digest})" if replay.digest else " (digest ?)"),
        f"libraries: {libraries}",
        f"estimator: {replay.estimator or '?'} {_compact(dict(replay.params))}{best}; {seeds}",
    ]


def lineage_document(
    model: str, namespace: str, links: Sequence[Link], serving: Mapping[str, int | None]
) -> dict[str, Any]:
    """The ``-o json`` document: the model, every TrainingJob oldest first, what serves."""
    return {"model": model, "namespace": namespace,
            "versions": [link.to_json() for link in links], "serving": dict(serving)}  # fmt: skip


def format_json(
    model: str, namespace: str, links: Sequence[Link], serving: Mapping[str, int | None]
) -> str:
    document = lineage_document(model, namespace, links, serving)
    return json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"


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
    parser.add_argument(
        "-o", "--output", choices=("text", "json"), default="text",
        help="text (default) or json: one stable machine-readable document",
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        tjs, mds = asyncio.run(read_objects(args.namespace))
    except KubeError as exc:
        print(f"continuum lineage: {exc}", file=sys.stderr)
        return 1
    links = build_lineage(args.model, tjs, mds)
    render = format_json if args.output == "json" else format_lineage
    print(render(args.model, args.namespace, links, serving_versions(args.model, mds)), end="")
    return 0
