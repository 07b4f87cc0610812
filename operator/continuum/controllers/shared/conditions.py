"""kstatus-compatible conditions (metav1.Condition shape), merged without losing history.

The condition types and reasons themselves are API vocabulary (``continuum.api.vocabulary``).

``lastTransitionTime`` changes only when a condition's status changes; a condition whose
status, reason and message are unchanged is kept as it was, so an unchanged status produces
an identical object (and no API write).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from continuum.api import Condition

Status = Literal["True", "False", "Unknown"]
MAX_MESSAGE = 32768


@dataclass(frozen=True)
class Want:
    """A condition the controller wants, before timestamps are decided."""

    type: str
    status: Status
    reason: str
    message: str = ""


def merge_conditions(
    old: Sequence[Condition], wanted: Iterable[Want], *, generation: int | None, now: datetime
) -> list[Condition]:
    """``wanted`` as Conditions, keeping each old ``lastTransitionTime`` whose status held.

    Old conditions of other types are kept (after the wanted ones), in their old order.
    """
    by_type = {c.type: c for c in old}
    merged = [_one(by_type.get(w.type), w, generation, now) for w in wanted]
    seen = {c.type for c in merged}
    return merged + [c for c in old if c.type not in seen]


def _one(old: Condition | None, want: Want, generation: int | None, now: datetime) -> Condition:
    message = want.message[:MAX_MESSAGE]
    held = old is not None and old.status == want.status
    since = old.last_transition_time if old is not None and held else now
    return Condition(
        type=want.type,
        status=want.status,
        reason=want.reason,
        message=message,
        observed_generation=generation,
        last_transition_time=since,
    )


def find(conditions: Sequence[Condition], type_: str) -> Condition | None:
    """The condition of ``type_``, if present."""
    return next((c for c in conditions if c.type == type_), None)
