"""Pure helpers over pod objects (dicts as the API server returns them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def termination_message(pods: Iterable[Mapping[str, Any]], container: str) -> str | None:
    """The termination message of ``container`` in the pod that terminated last, if any."""
    finished = [t for t in (_terminated(p, container) for p in pods) if t is not None]
    if not finished:
        return None
    latest = max(finished, key=lambda t: str(t.get("finishedAt") or ""))
    message = latest.get("message")
    return str(message) if message else None


def _terminated(pod: Mapping[str, Any], container: str) -> Mapping[str, Any] | None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for status in statuses:
        if status.get("name") == container:
            terminated = (status.get("state") or {}).get("terminated")
            return terminated if isinstance(terminated, Mapping) else None
    return None
