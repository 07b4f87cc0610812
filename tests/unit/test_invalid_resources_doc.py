"""docs/invalid-resources.md is rendered from the cluster test's table and must not go stale."""

from __future__ import annotations

from tests.cluster.test_invalid_resources import CASES, render
from tests.kit import REPO

DOC = REPO / "docs/invalid-resources.md"


def test_invalid_resources_doc_is_rendered_from_the_test_table() -> None:
    assert DOC.read_text() == render(), (
        "docs/invalid-resources.md is stale: run "
        "`python -m tests.cluster.test_invalid_resources > docs/invalid-resources.md`"
    )


def test_every_case_is_a_row() -> None:
    rows = [line for line in DOC.read_text().splitlines() if line.startswith("| ")]
    assert len(rows) == len(CASES) + 1  # and the header


def test_api_reference_links_the_full_table() -> None:
    assert "invalid-resources.md" in (REPO / "docs/api.md").read_text()
