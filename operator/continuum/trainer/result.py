"""The trainer's result: a short summary for the operator, in S3 and in the termination message.

The operator reads the pod's termination message (``/dev/termination-log``, at most 4 KiB)
when the Job ends, so both success and failure are summarised there as one JSON object::

    {"status": "Succeeded", "model": "iris", "version": 3, "uri": "s3://b/models/iris/3/",
     "sha256": "...", "metric": "accuracy", "metrics": {...}, "qualified": true, "reasons": [],
     "dataset": {"uri": "...", "fingerprint": "sha256:...", "rows": 150},
     "libraries": {"python": "3.12.3", "scikit-learn": "1.5.2", ...}}
    {"status": "Failed", "reason": "DatasetInvalid", "message": "dataset invalid: column ..."}

The failure shape, the progress lines and the writing of the message are every workload's
(``continuum.workload``); this module renders the trainer's summary within the 4 KiB.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_TERMINATION_BYTES = 4096


@dataclass(frozen=True)
class TrainingResult:
    model: str
    version: int
    uri: str
    sha256: str
    metric: str
    metrics: Mapping[str, float]
    qualified: bool
    reasons: tuple[str, ...]
    dataset: Mapping[str, Any]
    manifest: Mapping[str, Any] = field(repr=False, default_factory=dict)
    search: Mapping[str, Any] | None = None  # trials, failed, bestParams, bestScore

    def summary(self) -> dict[str, Any]:
        search = {"search": dict(self.search)} if self.search is not None else {}
        return search | {
            "status": "Succeeded",
            "model": self.model,
            "version": self.version,
            "uri": self.uri,
            "sha256": self.sha256,
            "metric": self.metric,
            "metrics": dict(self.metrics),
            "qualified": self.qualified,
            "reasons": list(self.reasons),
            "dataset": dict(self.dataset),
            # what the operator records in status.libraries (lineage: what to replay with)
            "libraries": dict(self.manifest.get("libraries") or {}),
        }


def termination_message(summary: Mapping[str, Any]) -> str:
    """``summary`` as compact JSON under 4 KiB, shedding the least useful parts first."""
    text = _compact(summary)
    if len(text.encode()) <= MAX_TERMINATION_BYTES:
        return text
    trimmed = dict(summary)
    metric = trimmed.get("metric")
    metrics = trimmed.get("metrics", {})
    trimmed["metrics"] = {metric: metrics[metric]} if metric in metrics else {}
    trimmed["reasons"] = [str(r)[:200] for r in trimmed.get("reasons", [])[:3]]
    trimmed["message"] = str(trimmed.get("message", ""))[:500] or None
    return _compact({k: v for k, v in trimmed.items() if v is not None})[:MAX_TERMINATION_BYTES]


def _compact(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
