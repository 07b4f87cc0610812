"""A streak of failed reconciles, shown on the object itself (the work queue's ``Reporter``).

The operator's log and ``continuum_reconcile_errors_total`` say that reconciles fail; a user
looking at one object with ``kubectl describe`` or ``kubectl wait`` should see it too, without
an Event per retry. So after ``FAILING_AFTER`` failures in a row (``shared.queue``) the object
gets ``Reconciling=True`` with reason ``ReconcileFailing`` and the last error as its message
(rewritten only when the error's text changes) and one Warning Event; the first success after
the streak posts a Normal ``ReconcileRecovered`` Event and, if the kind's own status did not
already replace the condition, removes it.

Both are best effort: the API server that made the reconcile fail may refuse these writes too.
A refused write is logged at debug level and the next failure or success tries again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from continuum.api import GROUP, VERSION
from continuum.api.vocabulary import RECONCILE_FAILING, RECONCILE_RECOVERED, RECONCILING
from continuum.controllers.shared.conditions import MAX_MESSAGE
from continuum.controllers.shared.objects import Body, Event, Ref, gone, post
from continuum.kube import Kube, KubeError

log = logging.getLogger(__name__)


@dataclass
class StatusReporter:
    """Shows the failure streak of ``ref`` on the object (see the module)."""

    kube: Kube
    ref: Ref
    announced: bool = False  # the Warning Event of this streak was posted
    _gone: bool = False  # the last read found no such object (nothing left to clear)

    async def failing(self, error: Exception) -> None:
        message = failing_message(error)
        body = await self._read()
        if body is None:
            return
        conditions = list_conditions(body)
        if not _shows(conditions, message):
            await self._write(body, with_failing(conditions, message, now=_now()))
        if not self.announced:
            post(body, [Event("Warning", RECONCILE_FAILING, message)])
            self.announced = True

    async def recovered(self) -> bool:
        """Clear the streak from the object; False when the API refused the read or the write
        (the queue then tries again: a ``ReconcileFailing`` left behind by a refused write
        stayed on a converged ModelDeployment in the API fault test)."""
        body = await self._read()
        if body is None:
            return self._gone
        conditions = list_conditions(body)
        if any(_is_failing(c) for c in conditions):
            settled = [_settled(c) if _is_failing(c) else c for c in conditions]
            if not await self._write(body, settled):
                return False
        post(body, [Event("Normal", RECONCILE_RECOVERED, "reconciling works again")])
        return True

    async def _read(self) -> Body | None:
        self._gone = False
        try:
            body = await self.kube.read_custom_object(GROUP, VERSION, *self.ref.where)
        except KubeError as exc:
            log.debug("%s %s: cannot read it to show its failures: %s", *self._who(), exc)
            return None
        self._gone = body is None or gone(body, self.ref.uid)
        return None if self._gone else body

    async def _write(self, body: Body, conditions: list[dict[str, Any]]) -> bool:
        meta = body["metadata"]
        try:
            await self.kube.patch_status(
                GROUP, VERSION, self.ref.plural, self.ref.namespace, self.ref.name,
                status={"conditions": conditions}, resource_version=meta.get("resourceVersion"),
            )  # fmt: skip
        except KubeError as exc:
            log.debug("%s %s: cannot show its failures: %s", *self._who(), exc)
            return False
        return True

    def _who(self) -> tuple[str, str]:
        return self.ref.kind, f"{self.ref.namespace}/{self.ref.name}"


def failing_message(error: Exception) -> str:
    """The condition's message: the last error, and that it is being retried."""
    text = str(error) or type(error).__name__
    return f"reconciling keeps failing, retried with backoff; last error: {text}"[:MAX_MESSAGE]


def list_conditions(body: Body) -> list[dict[str, Any]]:
    """The object's ``status.conditions`` as plain dicts (none: an empty list)."""
    status = body.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    return [dict(c) for c in conditions or [] if isinstance(c, dict)]


def with_failing(
    conditions: list[dict[str, Any]], message: str, *, now: datetime
) -> list[dict[str, Any]]:
    """``conditions`` with ``Reconciling`` replaced by the failing one (same place, or first).

    ``lastTransitionTime`` is kept when ``Reconciling`` was already True, as everywhere else.
    """
    old = next((c for c in conditions if c.get("type") == RECONCILING), None)
    held = old is not None and old.get("status") == "True" and "lastTransitionTime" in old
    since = old["lastTransitionTime"] if old is not None and held else _stamp(now)
    new = {
        "type": RECONCILING,
        "status": "True",
        "reason": RECONCILE_FAILING,
        "message": message,
        "lastTransitionTime": since,
    }
    if old is not None and "observedGeneration" in old:
        new["observedGeneration"] = old["observedGeneration"]
    if old is None:
        return [new, *conditions]
    return [new if c is old else c for c in conditions]


def _settled(failing: dict[str, Any]) -> dict[str, Any]:
    """What replaces the failing condition: ``Reconciling=False``, not nothing. A TrainingJob
    that finished during the streak is never written again by its controller, and removing
    the condition left it without ``Reconciling`` at all (the API fault test, bulk-03)."""
    settled = {
        "type": RECONCILING,
        "status": "False",
        "reason": RECONCILE_RECOVERED,
        "message": "reconciling works again",
        "lastTransitionTime": _stamp(_now()),
    }
    if "observedGeneration" in failing:
        settled["observedGeneration"] = failing["observedGeneration"]
    return settled


def _shows(conditions: list[dict[str, Any]], message: str) -> bool:
    return any(_is_failing(c) and c.get("message") == message for c in conditions)


def _is_failing(condition: dict[str, Any]) -> bool:
    return condition.get("type") == RECONCILING and condition.get("reason") == RECONCILE_FAILING


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> datetime:
    return datetime.now(UTC)
