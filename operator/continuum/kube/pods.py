"""Pure helpers over pod objects (dicts as the API server returns them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PodTermination:
    """What a finished container left: its termination message and the image that ran, as
    the kubelet reports it (``image``; ``imageID``, which holds the content digest)."""

    message: str | None
    image: str | None = None
    image_id: str | None = None


def termination_message(pods: Iterable[Mapping[str, Any]], container: str) -> str | None:
    """The termination message of ``container`` in the pod that terminated last, if any."""
    found = termination_of(pods, container)
    return found.message if found is not None else None


def termination_of(pods: Iterable[Mapping[str, Any]], container: str) -> PodTermination | None:
    """``container``'s termination in the pod that terminated last, if any."""
    finished = [t for t in (_terminated(p, container) for p in pods) if t is not None]
    if not finished:
        return None
    status = max(finished, key=lambda s: str(s["state"]["terminated"].get("finishedAt") or ""))
    message = status["state"]["terminated"].get("message")
    return PodTermination(
        str(message) if message else None, _text(status.get("image")), _text(status.get("imageID"))
    )


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None


def _terminated(pod: Mapping[str, Any], container: str) -> Mapping[str, Any] | None:
    """The container's status, if its state is terminated."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for status in statuses:
        if status.get("name") == container:
            terminated = (status.get("state") or {}).get("terminated")
            return status if isinstance(terminated, Mapping) else None
    return None
