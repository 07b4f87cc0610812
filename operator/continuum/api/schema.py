"""Turns pydantic JSON Schema into a structural OpenAPI v3 schema for a CRD.

pydantic emits `$defs`/`$ref`, `anyOf` with `null` for optional fields, `title`,
`additionalProperties: false`, `const` and numeric `exclusiveMinimum`; none of these belong in
a structural schema. This module inlines references, unwraps optionals, drops titles and nulls,
and maps free-form objects to `x-kubernetes-preserve-unknown-fields`.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]

_DROPPED = frozenset({"title", "$defs"})


def structural_schema(model: type[BaseModel]) -> Schema:
    """The structural OpenAPI v3 schema of `model`, with camelCase property names."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Schema] = raw.get("$defs", {})
    return _convert(raw, defs)


def _convert(node: Schema, defs: dict[str, Schema]) -> Schema:
    node = _resolve(node, defs)
    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED or (key == "default" and value is None):
            continue
        out[key] = _convert_child(key, value, defs)
    return _finish(out)


def _convert_child(key: str, value: Any, defs: dict[str, Schema]) -> Any:
    if key == "properties":
        return {name: _convert(sub, defs) for name, sub in value.items()}
    if key in ("items", "additionalProperties") and isinstance(value, dict):
        return _convert(value, defs)
    return copy.deepcopy(value)


def _resolve(node: Schema, defs: dict[str, Schema]) -> Schema:
    """Inline a `$ref` and unwrap `anyOf: [X, null]`, letting the outer keys win."""
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        outer = {k: v for k, v in node.items() if k != "$ref"}
        return _resolve(_merge(target, outer), defs)
    branches = node.get("anyOf", [])
    kept = [b for b in branches if b != {"type": "null"}]
    if len(kept) == 1 and len(branches) == 2:
        outer = {k: v for k, v in node.items() if k != "anyOf"}
        return _resolve(_merge(kept[0], outer), defs)
    return node


def _fractional_bounds_as_cel(out: Schema) -> None:
    """Bounds that are not whole numbers become one CEL rule with its own message.

    The API server's OpenAPI validator compares an integer value with a fractional bound
    truncated to an integer (Kubernetes 1.34: ``tests.pValue: 2`` against ``maximum: 0.5`` was
    answered "should be less than or equal to 0", and ``pValue: 0`` passed ``minimum: 1e-06``).
    A CEL rule compares numbers as numbers; its message states the bounds as they are.
    """
    bounds = [out.get("minimum"), out.get("maximum")]
    if out.get("type") != "number" or not any(
        isinstance(b, float) and not b.is_integer() for b in bounds
    ):
        return
    checks, words = [], []
    if bounds[0] is not None:
        above = out.pop("exclusiveMinimum", False) is True
        checks.append(f"self {'>' if above else '>='} {float(out.pop('minimum'))!r}")
        words.append(f"{'greater than' if above else 'at least'} {bounds[0]:g}")
    if bounds[1] is not None:
        below = out.pop("exclusiveMaximum", False) is True
        checks.append(f"self {'<' if below else '<='} {float(out.pop('maximum'))!r}")
        words.append(f"{'less than' if below else 'at most'} {bounds[1]:g}")
    rule = {"rule": " && ".join(checks), "message": f"must be {' and '.join(words)}"}
    out["x-kubernetes-validations"] = [*out.get("x-kubernetes-validations", []), rule]


def _merge(inner: Schema, outer: Schema) -> Schema:
    merged = dict(inner)
    for key, value in outer.items():
        if key == "x-kubernetes-validations":
            merged[key] = [*inner.get(key, []), *value]
        else:
            merged[key] = value
    return merged


def _finish(out: Schema) -> Schema:
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), int | float) and not isinstance(out[bound], bool):
            out[limit], out[bound] = out[bound], True  # OpenAPI v3.0: a flag on the bound
    _fractional_bounds_as_cel(out)
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if out.get("additionalProperties") is False:
        del out["additionalProperties"]
    if out.get("additionalProperties") is True:
        del out["additionalProperties"]
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    return out
