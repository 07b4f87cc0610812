"""The trainer's result: a short summary for the operator, in S3 and in the termination message.

The operator reads the pod's termination message (``/dev/termination-log``, at most 4 KiB)
when the Job ends, so both success and failure are summarised there as one JSON object::

    {"status": "Succeeded", "model": "iris", "version": 3, "uri": "s3://b/models/iris/3/",
     "sha256": "...", "metric": "accuracy", "metrics": {...}, "qualified": true, "reasons": [],
     "dataset": {"uri": "...", "fingerprint": "sha256:...", "rows": 150}}
    {"status": "Failed", "reason": "DatasetInvalid", "message": "dataset invalid: column ..."}
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

DEFAULT_TERMINATION_LOG = "/dev/termination-log"
ENV_TERMINATION_LOG = "CONTINUUM_TERMINATION_LOG"
MAX_TERMINATION_BYTES = 4096
MAX_MESSAGE_CHARS = 1500


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

    def summary(self) -> dict[str, Any]:
        return {
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
        }


def failure_summary(error: BaseException) -> dict[str, Any]:
    message = str(error) or type(error).__name__
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 3] + "..."
    return {"status": "Failed", "reason": type(error).__name__, "message": message}


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


def write_termination_message(summary: Mapping[str, Any], path: str | None = None) -> bool:
    """Write the message if the path is writable (it is only inside a pod); report success."""
    target = Path(path or os.environ.get(ENV_TERMINATION_LOG) or DEFAULT_TERMINATION_LOG)
    try:
        target.write_text(termination_message(summary), encoding="utf-8")
    except OSError:
        return False
    return True


def emit(event: str, stream: TextIO | None = None, **fields: Any) -> None:
    """One JSON line of progress on stdout: the Job's log reads as a machine-parsable trail."""
    line = _compact({"event": event, **fields})
    print(line, file=stream or sys.stdout, flush=True)


def _compact(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
