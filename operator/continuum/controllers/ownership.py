"""Shared by the three reconcilers: parsing our objects, and who controls a child.

A child belongs to one of our objects when its controller owner reference names that kind in
our API group; the uid then tells whether it is *this* object or an earlier one of that name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

import kopf
from pydantic import BaseModel, ValidationError

from continuum.api import GROUP, load

Model = TypeVar("Model", bound=BaseModel)


def load_or_fail(model: type[Model], body: Mapping[str, Any]) -> Model:
    """Parse ``body``; an object the API types reject is a permanent handler failure."""
    try:
        return load(model, body)
    except ValidationError as exc:
        problem = exc.errors()[0].get("msg")
        raise kopf.PermanentError(f"invalid {model.__name__}: {problem}") from exc


def event_target(body: Mapping[str, Any]) -> kopf.Body:
    """``body`` as the object an Event is about."""
    return kopf.Body(cast("kopf.RawBody", dict(body)))


def controller_of(child: Mapping[str, Any], kind: str) -> tuple[str, str] | None:
    """(name, uid) of the object of ``kind`` that controls ``child``, if one does."""
    for ref in child.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("controller") and _in_our_group(ref):
            return str(ref["name"]), str(ref["uid"])
    return None


def controlled_by_uid(child: Mapping[str, Any], kind: str, uid: Any) -> bool:
    """Whether ``child`` is controlled by the object of ``kind`` with this very ``uid``."""
    owner = controller_of(child, kind)
    return owner is not None and owner[1] == uid


def _in_our_group(ref: Mapping[str, Any]) -> bool:
    api_version = ref.get("apiVersion")
    return isinstance(api_version, str) and api_version.split("/")[0] == GROUP
