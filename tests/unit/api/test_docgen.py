"""The generated CRD reference is current and documents every field, column and CEL rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from continuum.api import crd_manifests
from continuum.api.docgen import field_paths, main, render

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = ROOT / "docs" / "crd-reference.md"
CRDS = {crd["spec"]["names"]["kind"]: crd for crd in crd_manifests()}


def schema(kind: str) -> dict[str, Any]:
    root: dict[str, Any] = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return root


def section(kind: str) -> str:
    """The reference text of one kind, up to the next kind's heading."""
    text = render()
    start = text.index(f"\n## {kind}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_committed_reference_is_current() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render(), "run `make manifests`"


def test_output_is_deterministic() -> None:
    assert render() == render()


def test_check_mode_names_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "docs" / "crd-reference.md"
    assert main(["--out", str(out), "--check"]) == 1
    assert main(["--out", str(out)]) == 0
    assert main(["--out", str(out), "--check"]) == 0
    out.write_text(out.read_text(encoding="utf-8") + "edited\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["--out", str(out), "--check"]) == 1
    assert str(out) in capsys.readouterr().err


@pytest.mark.parametrize("kind", sorted(CRDS))
@pytest.mark.parametrize("part", ["spec", "status"])
def test_every_field_path_is_documented(kind: str, part: str) -> None:
    paths = list(field_paths(schema(kind)["properties"][part], part))
    assert paths, f"{kind} has no {part} fields"
    text = section(kind)
    missing = [path for path in paths if f"| `{path}` |" not in text]
    assert missing == []


def test_spec_paths_cover_nested_levels() -> None:
    paths = set(field_paths(schema("TrainingJob")["properties"]["spec"], "spec"))
    assert {"spec.dataset.uri", "spec.dataset.validation.minRows", "spec.estimator.class"} <= paths
    status = set(field_paths(schema("TrainingJob")["properties"]["status"], "status"))
    assert "status.conditions[].reason" in status


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_short_names_columns_and_rules_are_listed(kind: str) -> None:
    crd, text = CRDS[kind], section(kind)
    for short in crd["spec"]["names"]["shortNames"]:
        assert f"`{short}`" in text
    for column in crd["spec"]["versions"][0]["additionalPrinterColumns"]:
        assert f"| {column['name']} | {column['type']} | `{column['jsonPath']}` |" in text
    for rule in _rules(schema(kind)):
        assert f"`{rule['rule'].replace('|', chr(92) + '|')}`" in text
        assert rule["message"] in text


def test_table_cells_escape_pipes() -> None:
    table_rows = [line for line in render().splitlines() if line.startswith("| `")]
    assert any("\\|\\|" in row for row in table_rows)  # CEL `||` survives as one cell
    assert all(" || " not in row for row in table_rows)


def _rules(node: dict[str, Any]) -> list[dict[str, str]]:
    rules: list[dict[str, str]] = list(node.get("x-kubernetes-validations", []))
    for sub in node.get("properties", {}).values():
        rules.extend(_rules(sub))
    if isinstance(node.get("items"), dict):
        rules.extend(_rules(node["items"]))
    return rules
