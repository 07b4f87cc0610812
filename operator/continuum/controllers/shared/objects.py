"""What every controller does with its own objects: parse them, read them fresh until a status
write sticks, write status only when it changed, post Events, and tell whose a child is.

Each kind's controller supplies only its "observe → plan → apply" step (``once`` below); the
read-compare-write loop around it is here, so that every kind handles a concurrent change the
same way: a status write carries the ``resourceVersion`` it was computed from, a 409 means the
object changed meanwhile, and the step runs again on a fresh read (at most
``STATUS_ATTEMPTS`` times, then the reconcile fails and the work queue retries it later).

A child belongs to one of our objects when its controller owner reference names that kind in
our API group; the uid then tells whether it is *this* object or an earlier one of that name.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import kopf
from pydantic import BaseModel, ValidationError

from continuum.api import API_VERSION, GROUP, VERSION, dump, load
from continuum.controllers.shared import kopf_events
from continuum.controllers.shared.queue import Reporter, WorkQueue
from continuum.kube import Kube, ResourceConflict

Model = TypeVar("Model", bound=BaseModel)
Body = Mapping[str, Any]
STATUS_ATTEMPTS = 5
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post about the object being reconciled."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Ref:
    """One of our objects: kind and plural, namespace and name, and the uid when known."""

    kind: str
    plural: str
    namespace: str
    name: str
    uid: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def where(self) -> tuple[str, str, str]:
        """(plural, namespace, name): where the API serves it."""
        return (self.plural, self.namespace, self.name)


async def converge(
    kube: Kube, ref: Ref, once: Callable[[Body], Awaitable[bool]], *, observed: Body | None = None
) -> Body | None:
    """Run ``once`` on fresh reads of ``ref`` until it returns True; the body it succeeded on.

    ``observed`` (the object as a watch event just delivered it) stands in for the first read.
    None when the object is gone, being deleted or replaced (another uid): its children are
    garbage then, and nothing is left to do.
    """
    body = observed
    for _attempt in range(STATUS_ATTEMPTS):
        if body is None:
            body = await kube.read_custom_object(
                GROUP, VERSION, ref.plural, ref.namespace, ref.name
            )
        if body is None or gone(body, ref.uid):
            return None
        if await once(body):
            return body
        body = None  # it changed meanwhile: read it again
    raise kopf.TemporaryError(f"the {ref.kind} kept changing while its status was written")


async def converge_through(
    queue: WorkQueue[tuple[str, str]],
    kube: Kube,
    ref: Ref,
    once: Callable[[Body], Awaitable[bool]],
    *,
    trigger: str,
    reporter: Reporter | None = None,
) -> bool:
    """``converge`` on ``ref`` through ``queue``; a retry converges whatever object has the
    name by then (``ref`` without its uid). True when it succeeded now, or was folded into a
    converge of the same ``ref`` already waiting to run (``WorkQueue.run``'s ``coalesce``)."""

    async def work() -> None:
        await converge(kube, ref, once)

    async def again() -> None:
        await converge(kube, Ref(ref.kind, ref.plural, ref.namespace, ref.name), once)

    return await queue.run(
        ref.key, work, again=again, trigger=trigger, reporter=reporter, coalesce=ref
    )


def gone(body: Body, uid: str | None) -> bool:
    """Whether ``body`` is being deleted, or is not the object of ``uid`` (when given)."""
    meta = body["metadata"]
    return bool(meta.get("deletionTimestamp")) or (uid is not None and meta.get("uid") != uid)


async def write_status(
    kube: Kube,
    plural: str,
    body: Body,
    new: BaseModel,
    old: BaseModel,
    *,
    turn: Callable[[], Awaitable[None]] | None = None,
) -> bool:
    """Write ``new`` unless it equals ``old``; False when the object changed meanwhile.

    The write is a JSON merge patch from the status as read (``body``) to ``new``, so a field
    ``new`` no longer has is removed (sent as null) rather than left behind by the merge: a
    check with too few rows once kept the previous check's ``drift.datasetDrift: true``.
    ``turn``, when given, is awaited just before an actual write (see ``pacing``).
    """
    status = dump(new)
    if status == dump(old):
        return True
    if turn is not None:
        await turn()
    meta = body["metadata"]
    patch = merge_patch(body.get("status") or {}, status)
    try:
        await kube.patch_status(
            GROUP, VERSION, plural, meta["namespace"], meta["name"], status=patch,
            resource_version=meta.get("resourceVersion"),
        )  # fmt: skip
    except ResourceConflict:
        return False
    return True


def merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch that turns ``old`` into ``new``: objects recurse, a key only
    ``old`` has becomes null (removed), anything else that differs is replaced (lists whole)."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return new
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old or old[key] != value:
            patch[key] = merge_patch(old.get(key), value) if key in old else value
    return patch


def post(body: Body, events: Iterable[Event]) -> None:
    """Post ``events`` about ``body`` (kopf queues them; posting never blocks the reconcile).

    From a task of ours kopf's queue is bound first (``kopf_events``); before kopf has
    processed any object there is none, and the Events are logged instead of failing the
    reconcile whose status is already written."""
    target = kopf.Body(cast("kopf.RawBody", dict(body)))
    for event in events:
        poster = kopf.info if event.type == "Normal" else kopf.warn
        try:
            poster(target, reason=event.reason, message=event.message)
        except LookupError:  # a task kopf did not bind its Event queue in
            if not kopf_events.bind():
                _not_posted(body, event)
                continue
            poster(target, reason=event.reason, message=event.message)


def _not_posted(body: Body, event: Event) -> None:
    meta = body.get("metadata", {})
    logger.warning(
        "Event not posted (kopf's event queue is not up yet) about %s/%s: %s %s",
        meta.get("namespace"), meta.get("name"), event.reason, event.message,
    )  # fmt: skip


def load_or_fail(model: type[Model], body: Body) -> Model:
    """Parse ``body``; an object the API types reject is a permanent failure (not retried)."""
    try:
        return load(model, body)
    except ValidationError as exc:
        problem = exc.errors()[0].get("msg")
        raise kopf.PermanentError(f"invalid {model.__name__}: {problem}") from exc


def load_valid(model: type[Model], items: Iterable[Body]) -> list[Model]:
    """The ``items`` that parse as ``model`` (others cannot have produced anything we use)."""
    parsed = []
    for item in items:
        try:
            parsed.append(load(model, item))
        except ValidationError:
            continue
    return parsed


def owner_reference(kind: str, name: str, uid: str) -> dict[str, Any]:
    """A controller owner reference: deleting the owner garbage-collects the child."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_of(child: Body, kind: str) -> tuple[str, str] | None:
    """(name, uid) of the object of ``kind`` that controls ``child``, if one does."""
    for ref in child.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("controller") and _in_our_group(ref):
            return str(ref["name"]), str(ref["uid"])
    return None


def controlled_by_uid(child: Body, kind: str, uid: Any) -> bool:
    """Whether ``child`` is controlled by the object of ``kind`` with this very ``uid``."""
    owner = controller_of(child, kind)
    return owner is not None and owner[1] == uid


def name_of(obj: Body) -> str:
    """``metadata.name`` of any object ('' when absent)."""
    return str(obj.get("metadata", {}).get("name", ""))


def _in_our_group(ref: Mapping[str, Any]) -> bool:
    api_version = ref.get("apiVersion")
    return isinstance(api_version, str) and api_version.split("/")[0] == GROUP
