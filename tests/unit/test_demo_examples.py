"""examples/*.yaml (the manifests `make demo` applies and users copy) are valid API objects.

They must parse as the API models, agree with each other (one model, one bucket, the monitor's
retraining template = the TrainingJob's spec), and fit the dataset hack/demo/loop.py generates.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from continuum.api import (
    DriftMonitor,
    ModelDeployment,
    TrainingJob,
    TrainingJobSpec,
    dump,
    load,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
KINDS: dict[str, Any] = {
    "TrainingJob": TrainingJob,
    "ModelDeployment": ModelDeployment,
    "DriftMonitor": DriftMonitor,
}


def manifests() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


def read(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((EXAMPLES / name).read_text()))


def demo_loop() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_loop", REPO / "hack/demo/loop.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_three_kinds_have_an_example() -> None:
    kinds = {yaml.safe_load(path.read_text())["kind"] for path in manifests()}
    assert kinds == set(KINDS)


@pytest.mark.parametrize("path", manifests(), ids=lambda p: p.name)
def test_example_validates_against_the_api_model(path: Path) -> None:
    docs = list(yaml.safe_load_all(path.read_text()))
    assert len(docs) == 1
    body = docs[0]
    assert body["apiVersion"] == "continuum.dev/v1alpha1"
    assert "namespace" not in body["metadata"]  # applied with -n, copied anywhere
    obj = load(KINDS[body["kind"]], body)
    assert dump(obj)["spec"]  # round-trips
    assert path.read_text().startswith("#")  # commented for the reader


def test_examples_agree_with_each_other() -> None:
    tj = load(TrainingJob, read("trainingjob.yaml"))
    md = load(ModelDeployment, read("modeldeployment.yaml"))
    dm = load(DriftMonitor, read("driftmonitor.yaml"))
    assert md.spec.model == tj.spec.model
    assert md.spec.version.policy == "latestQualified"
    assert md.spec.inference_log.enabled
    assert dm.spec.deployment == md.metadata.name
    assert dm.spec.retrain is not None
    assert dm.spec.retrain.enabled
    template = dm.spec.retrain.template
    assert isinstance(template, TrainingJobSpec)
    assert dump(template) == dump(tj.spec)
    assert dump(md.spec.storage) == dump(tj.spec.storage)
    assert dm.spec.window.min_samples <= dm.spec.window.max_rows


def test_the_outcomes_monitor_retrains_on_labelled_traffic_only() -> None:
    """examples/driftmonitor-outcomes.yaml: the second act of the demo. It watches the same
    deployment, acts on realised performance only, and its template differs from the
    TrainingJob's in the estimator and the feedback data alone."""
    tj = load(TrainingJob, read("trainingjob.yaml"))
    dm = load(DriftMonitor, read("driftmonitor-outcomes.yaml"))
    drift = load(DriftMonitor, read("driftmonitor.yaml"))
    assert dm.spec.deployment == drift.spec.deployment
    assert dm.metadata.name != drift.metadata.name
    assert dm.spec.performance is not None
    assert dm.spec.retrain is not None
    assert dm.spec.retrain.triggers.drift is False
    assert dm.spec.performance_trigger() == "realised"
    template = dm.spec.retrain.template
    assert isinstance(template, TrainingJobSpec)
    feedback = template.dataset.feedback
    assert feedback is not None
    assert feedback.include_base is False
    assert feedback.since_seconds >= dm.spec.performance.window_seconds
    mine, theirs = dump(template), dump(tj.spec)
    for body in (mine, theirs):
        body.pop("estimator")
        body["dataset"].pop("feedback", None)
    assert mine == theirs


def test_the_demo_labels_flip_one_plan_and_keep_the_inputs() -> None:
    """The second act's concept drift: the outcomes of NEW_CONCEPT customers flip, nobody
    else's; the traffic is drawn like version 2's training data (half shifted)."""
    loop = demo_loop()
    rows = loop.like_v2(300, seed=23)
    assert len(rows) == 300
    flipped = [row for row in rows if loop.new_truth(row) != row[loop.TARGET]]
    assert flipped
    assert {row["plan"] for row in flipped} == {loop.NEW_CONCEPT}
    assert len(flipped) == sum(row["plan"] == loop.NEW_CONCEPT for row in rows)
    spend = sorted(row["monthly_charges"] for row in rows)
    assert spend[len(spend) // 4] < loop.NUMERIC["monthly_charges"][0] + 15  # unshifted half
    assert spend[3 * len(spend) // 4] > loop.NUMERIC["monthly_charges"][0] + 30  # shifted half


def test_the_demo_dataset_fits_the_examples() -> None:
    loop = demo_loop()
    tj = load(TrainingJob, read("trainingjob.yaml"))
    rows = loop.customers(40, seed=7, shift=0)
    assert rows == loop.customers(40, seed=7, shift=0)  # seeded: every run the same data
    header = loop.as_csv(rows).decode().splitlines()[0].split(",")
    assert tj.spec.dataset.target in header
    assert tj.spec.preprocessing.categorical.columns is not None
    assert set(tj.spec.preprocessing.categorical.columns) <= set(header)
    assert {row[tj.spec.dataset.target] for row in rows} == {"yes", "no"}
    assert tj.spec.dataset.uri == f"s3://{loop.bucket()}/datasets/churn/"
    dm = load(DriftMonitor, read("driftmonitor.yaml"))
    assert dm.spec.window.min_samples <= loop.TRAFFIC_ROWS


def test_the_demo_shift_moves_every_numeric_feature() -> None:
    loop = demo_loop()
    normal = loop.customers(400, seed=1, shift=0)
    shifted = loop.customers(400, seed=1, shift=loop.SHIFT)
    for name, (_mean, sd) in loop.NUMERIC.items():
        before = sum(row[name] for row in normal) / len(normal)
        after = sum(row[name] for row in shifted) / len(shifted)
        assert after - before == pytest.approx(loop.SHIFT * sd, rel=0.01)
