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
    kinds = sorted(yaml.safe_load(path.read_text())["kind"] for path in manifests())
    assert kinds == sorted(KINDS)


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
