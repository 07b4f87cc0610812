"""The index of qualified TrainingJobs: what one TrainingJob contributes, and the versions of
a model as the ModelDeployment controller plans from them."""

from __future__ import annotations

from typing import Any

import pytest

from continuum.controllers.modeldeployment.handlers import lookup
from continuum.controllers.modeldeployment.versions import index_entry, versions_from
from tests.unit.controllers.modeldeployment.builders import tj_body


def test_a_qualified_succeeded_training_job_is_indexed_by_namespace_and_model() -> None:
    assert index_entry(tj_body(3)) == {("ml", "iris"): (3, "iris-3")}
    assert index_entry(tj_body(9, model="other")) == {("ml", "other"): (9, "other-9")}


@pytest.mark.parametrize(
    "body",
    [
        tj_body(5, qualified=False),
        tj_body(6, phase="Failed"),
        tj_body(7, phase="Running"),
        {"metadata": {"namespace": "ml", "name": "new"}, "spec": {"model": "iris"}},
    ],
    ids=["not-qualified", "failed", "running", "no-status"],
)
def test_others_are_not_indexed(body: dict[str, Any]) -> None:
    assert index_entry(body) == {}, "an empty entry: kopf drops what the object had"


def test_a_training_job_the_api_types_reject_is_not_indexed() -> None:
    broken = tj_body(3)
    broken["spec"] = {"model": "iris"}  # no dataset, no estimator
    assert index_entry(broken) == {}
    no_version = tj_body(4)
    del no_version["status"]["model"]["version"]
    assert index_entry(no_version) == {}


def test_versions_map_to_their_training_job_and_duplicates_resolve_by_name() -> None:
    assert versions_from([(2, "iris-2"), (1, "iris-1")]) == {1: "iris-1", 2: "iris-2"}
    assert versions_from([(2, "b"), (2, "a")]) == {2: "a"}
    assert versions_from([]) == {}


def test_the_lookup_reads_the_index_by_namespace_and_model() -> None:
    index: dict[tuple[str, str], list[tuple[int, str]]] = {
        ("ml", "iris"): [(1, "iris-1"), (3, "iris-3")],
        ("other-ns", "iris"): [(7, "iris-7")],
    }
    versions = lookup(index)  # type: ignore[arg-type]  # a kopf Index is a Mapping of Stores
    assert versions("ml", "iris") == {1: "iris-1", 3: "iris-3"}
    assert versions("ml", "other") == {}
    assert versions("other-ns", "iris") == {7: "iris-7"}
