"""The generated CRDs are current, structural, bounded, documented and self-consistent."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from continuum.api import crd_filename, crd_manifests
from continuum.api.crdgen import main, render, stale

Schema = dict[str, Any]
ROOT = Path(__file__).resolve().parents[3]
CRD_DIR = ROOT / "crds"
CRDS = {crd_filename(crd): crd for crd in crd_manifests()}
FREE_FORM = {
    "spec.estimator.params", "spec.retrain.template.estimator.params",
    # issue 19: a search space's values and the best trial's params are estimator params too
    "spec.search.space", "spec.retrain.template.search.space", "status.search.bestParams",
}  # fmt: skip
FORBIDDEN_KEYS = {
    "$ref", "$defs", "definitions", "dependencies", "patternProperties", "readOnly",
    "writeOnly", "uniqueItems", "const", "oneOf", "allOf", "not", "title", "nullable",
}  # fmt: skip
INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def nodes(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every schema node with its dotted path ([] marks list items, {} map values)."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(sub, f"{path}.{name}".lstrip("."))
    if isinstance(schema.get("items"), dict):
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


def root(crd: dict[str, Any]) -> Schema:
    schema: Schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


STANDARD = {"apiVersion", "kind", "metadata"}


def problems(check: Callable[[str, Schema], Iterator[str]]) -> list[str]:
    """Every problem `check` finds in any CRD node (root apiVersion, kind, metadata skipped)."""
    return [
        f"{name}: {path or '<root>'}: {problem}"
        for name, crd in sorted(CRDS.items())
        for path, node in nodes(root(crd))
        if path not in STANDARD
        for problem in check(path, node)
    ]


def test_committed_crds_are_current() -> None:
    assert stale(CRD_DIR) == [], "run `make manifests`"
    assert sorted(p.name for p in CRD_DIR.glob("*.yaml")) == sorted(render())


def test_check_mode_names_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--out", str(tmp_path), "--check"]) == 0
    target = tmp_path / "continuum.dev_trainingjobs.yaml"
    target.write_text(target.read_text() + "# edited\n")
    assert main(["--out", str(tmp_path), "--check"]) == 1
    assert "continuum.dev_trainingjobs.yaml" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(CRDS))
def test_file_is_small_and_parses(name: str) -> None:
    text = (CRD_DIR / name).read_text()
    assert len(text.encode()) < 128 * 1024
    assert yaml.safe_load(text) == CRDS[name]


@pytest.mark.parametrize("name", sorted(CRDS))
def test_crd_metadata(name: str) -> None:
    spec = CRDS[name]["spec"]
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["categories"] == ["continuum"]
    assert spec["names"]["shortNames"][0] in {"tj", "md", "dm"}
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["served"]
    assert version["storage"]
    assert version["subresources"] == {"status": {}}
    assert CRDS[name]["metadata"]["name"] == f"{spec['names']['plural']}.continuum.dev"


def _structural(path: str, node: Schema) -> Iterator[str]:
    if FORBIDDEN_KEYS & node.keys():
        yield f"forbidden keys {sorted(FORBIDDEN_KEYS & node.keys())}"
    if node.get("x-kubernetes-int-or-string"):
        if node.get("anyOf") != INT_OR_STRING or "type" in node:
            yield "int-or-string must be exactly anyOf [integer, string] without type"
        return
    if "anyOf" in node:
        yield "anyOf outside int-or-string"
    if node.get("type") not in {"object", "array", "string", "integer", "number", "boolean"}:
        yield f"bad or missing type {node.get('type')!r}"
    if "properties" in node and "additionalProperties" in node:
        yield "both properties and additionalProperties"
    if node.get("additionalProperties") is False:
        yield "additionalProperties: false"
    for flag in ("exclusiveMinimum", "exclusiveMaximum"):
        if flag in node and node[flag] is not True:
            yield f"{flag} must be the OpenAPI v3.0 boolean flag"


def test_schemas_are_structural() -> None:
    assert problems(_structural) == []


def _open_objects(path: str, node: Schema) -> Iterator[str]:
    if node.get("type") != "object":
        return
    is_open = "properties" not in node and "additionalProperties" not in node
    preserves = node.get("x-kubernetes-preserve-unknown-fields", False)
    if is_open != (path in FREE_FORM) or preserves != (path in FREE_FORM):
        yield "only the allow-listed free-form maps may be open (preserve-unknown-fields)"


def test_no_open_objects_but_free_form_maps() -> None:
    assert problems(_open_objects) == []


def _undocumented(path: str, node: Schema) -> Iterator[str]:
    for name, sub in node.get("properties", {}).items():
        if not (path == "" and name == "metadata") and not sub.get("description", "").strip():
            yield f"property {name} has no description"


def test_every_property_is_documented() -> None:
    assert problems(_undocumented) == []


def _unbounded(path: str, node: Schema) -> Iterator[str]:
    kind = node.get("type")
    bounded_string = {"maxLength", "enum"} & node.keys() or node.get("format") == "date-time"
    if kind == "string" and not bounded_string:
        yield "string without maxLength or enum"
    if kind == "array" and "maxItems" not in node:
        yield "array without maxItems"
    if kind == "object" and "properties" not in node and "maxProperties" not in node:
        yield "map without maxProperties"


def test_everything_is_bounded() -> None:
    assert problems(_unbounded) == []


def _list_maps(path: str, node: Schema) -> Iterator[str]:
    if node.get("x-kubernetes-list-type") == "map":
        missing = set(node["x-kubernetes-list-map-keys"]) - set(node["items"].get("required", []))
        if missing:
            yield f"list-map keys not required: {sorted(missing)}"


def test_list_map_keys_are_required() -> None:
    assert problems(_list_maps) == []


def _object_defaults(path: str, node: Schema) -> Iterator[str]:
    if node.get("type") == "object" and "default" in node:
        default = node["default"]
        if not set(node.get("required", [])) <= default.keys():
            yield "default lacks required fields"
        if not default.keys() <= node["properties"].keys():
            yield "default has unknown fields"


def test_object_defaults_fit() -> None:
    assert problems(_object_defaults) == []


def _resolve(schema: Schema, fields: list[str]) -> bool:
    for name in fields:
        if name not in schema.get("properties", {}):
            return False
        schema = schema["properties"][name]
    return True


def _cel_fields(path: str, node: Schema) -> Iterator[str]:
    for rule in node.get("x-kubernetes-validations", []):
        if not rule.get("message") or "\n" in rule["message"]:
            yield f"rule {rule['rule']!r} needs a one-line message"
        for ref in re.findall(r"\b(?:self|oldSelf)((?:\.[A-Za-z_]\w*)+)", rule["rule"]):
            fields = [f for f in ref.lstrip(".").split(".") if f not in {"all", "size", "matches"}]
            if path == "" and fields[:2] == ["metadata", "name"]:
                continue
            if not _resolve(node, fields):
                yield f"rule {rule['rule']!r}: {ref} is not in the schema"


def test_cel_rules_reference_existing_fields() -> None:
    assert problems(_cel_fields) == []


@pytest.mark.parametrize("name", sorted(CRDS))
def test_printer_columns_resolve(name: str) -> None:
    schema = root(CRDS[name])
    for column in CRDS[name]["spec"]["versions"][0]["additionalPrinterColumns"]:
        json_path = column["jsonPath"]
        if json_path.startswith(".metadata") or "conditions[" in json_path:
            continue
        assert _resolve(schema, json_path.lstrip(".").split(".")), json_path


def test_training_job_spec_is_immutable_but_template_is_not() -> None:
    tj = root(CRDS["continuum.dev_trainingjobs.yaml"])["properties"]["spec"]
    rules = [r["rule"] for r in tj["x-kubernetes-validations"]]
    assert "self == oldSelf" in rules
    message = next(r for r in tj["x-kubernetes-validations"] if r["rule"] == "self == oldSelf")
    assert message["message"] == "spec is immutable: create a new TrainingJob to retrain"
    dm = root(CRDS["continuum.dev_driftmonitors.yaml"])["properties"]["spec"]
    template = dm["properties"]["retrain"]["properties"]["template"]
    assert "oldSelf" not in yaml.safe_dump(template)
    assert template["properties"].keys() == tj["properties"].keys()


@pytest.mark.parametrize(
    ("name", "columns"),
    [
        ("continuum.dev_trainingjobs.yaml", ["Model", "Version", "Phase", "Qualified", "Age"]),
        ("continuum.dev_modeldeployments.yaml", ["Model", "Serving", "Ready", "Available", "Age"]),
        (
            "continuum.dev_driftmonitors.yaml",
            ["Deployment", "Drift", "Performance", "Realised", "Last check", "Age"],
        ),
    ],
)
def test_default_printer_columns(name: str, columns: list[str]) -> None:
    printed = CRDS[name]["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in printed if not c.get("priority")] == columns


def _node(crd_name: str, path: str) -> Schema:
    crd = next(crd for name, crd in CRDS.items() if crd_name in name)
    return dict(nodes(root(crd)))[path]


def test_no_fractional_bound_is_left_to_the_openapi_validator() -> None:
    # issue 14 defect 7: it truncates a fractional bound when the value is an integer
    # (tests.pValue: 2 was answered "should be less than or equal to 0"); a CEL rule
    # with its own message checks such bounds instead.
    def fractional(path: str, node: Schema) -> Iterator[str]:
        for key in ("minimum", "maximum"):
            value = node.get(key)
            if isinstance(value, float) and not value.is_integer():
                yield f"{key} {value} is fractional"

    assert problems(fractional) == []
    p_value = _node("driftmonitors", "spec.tests.pValue")
    assert p_value["x-kubernetes-validations"] == [
        {"rule": "self > 0.0 && self <= 0.5", "message": "must be greater than 0 and at most 0.5"}
    ]
    assert "exclusiveMinimum" not in p_value
    test_size = _node("trainingjobs", "spec.split.testSize")
    assert test_size["x-kubernetes-validations"][0]["message"] == (
        "must be at least 0.05 and at most 0.5"
    )


@pytest.mark.parametrize(
    "path",
    ["spec.dataset.features", "spec.dataset.validation.allowNulls",
     "spec.dataset.validation.requiredClasses", "spec.preprocessing.categorical.columns"],
)  # fmt: skip
def test_set_like_lists_say_so(path: str) -> None:
    assert _node("trainingjobs", path)["x-kubernetes-list-type"] == "set"
