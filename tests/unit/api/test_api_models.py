"""The API models accept valid custom resources and reject invalid ones, like the API server."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from continuum.api import (
    DriftMonitor,
    ModelDeployment,
    ModelDeploymentSpec,
    TrainingJob,
    TrainingJobSpec,
    TrainingJobStatus,
    dump,
    load,
)

STORAGE = {"endpoint": "http://minio.minio.svc:9000", "bucket": "continuum"}
TJ_SPEC: dict[str, Any] = {
    "model": "iris",
    "dataset": {"uri": "s3://data/iris.csv", "target": "species"},
    "estimator": {"class": "RandomForestClassifier", "params": {"n_estimators": 50}},
    "evaluation": {"metric": "accuracy", "threshold": 0.8},
    "storage": STORAGE,
}


def tj_spec(**changes: Any) -> dict[str, Any]:
    """A valid TrainingJob spec with top-level keys replaced."""
    return {**copy.deepcopy(TJ_SPEC), **changes}


def test_training_job_defaults() -> None:
    spec = TrainingJobSpec.model_validate(TJ_SPEC)
    assert spec.split.test_size == 0.2
    assert spec.split.seed == 42
    assert spec.dataset.format == "csv"
    assert spec.dataset.validation.min_rows == 10
    assert spec.evaluation.must_beat == "current"
    assert spec.backoff_limit == 1
    assert spec.active_deadline_seconds == 3600
    assert spec.estimator.class_ == "RandomForestClassifier"


def test_dump_uses_camel_case_and_round_trips() -> None:
    spec = TrainingJobSpec.model_validate(TJ_SPEC)
    body = dump(spec)
    assert body["estimator"]["class"] == "RandomForestClassifier"
    assert body["split"]["testSize"] == 0.2
    assert "resources" not in body
    assert TrainingJobSpec.model_validate(body) == spec


def test_populate_by_name() -> None:
    spec = TrainingJobSpec.model_validate(tj_spec(backoff_limit=3))
    assert spec.backoff_limit == 3


def test_load_full_body() -> None:
    body = {
        "apiVersion": "continuum.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "iris-1", "namespace": "ml", "generation": 1},
        "spec": TJ_SPEC,
        "status": {"phase": "Succeeded", "model": {"version": 3}, "metrics": {"accuracy": 0.9}},
    }
    tj = load(TrainingJob, body)
    assert (tj.metadata.name, tj.metadata.namespace, tj.metadata.generation) == ("iris-1", "ml", 1)
    assert tj.metadata.uid == "", "absent fields are empty, typed"
    assert tj.status.model is not None
    assert tj.status.model.version == 3


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"model": "Iris_Model"}, "pattern"),
        ({"model": "x" * 64}, "at most 63"),
        ({"dataset": {"uri": "https://x/y.csv", "target": "y"}}, "pattern"),
        ({"dataset": {"uri": "s3://data/x", "target": "y", "format": "json"}}, "csv"),
        ({"estimator": {"class": "MLPClassifier"}}, "LogisticRegression"),
        ({"split": {"testSize": 0.9}}, "less than or equal"),
        ({"backoffLimit": 11}, "less than or equal"),
        ({"activeDeadlineSeconds": 10}, "greater than or equal"),
        ({"evaluation": {"metric": "rmse"}}, "need a regressor"),
        ({"estimator": {"class": "Ridge"}}, "need a regressor"),
        ({"dataset": {"uri": "s3://data/x", "target": "y", "features": ["a", "y"]}}, "target"),
        (
            {
                "preprocessing": {"categorical": {"columns": ["zz"]}},
                "dataset": {"uri": "s3://data/x", "target": "y", "features": ["a"]},
            },
            "categorical",
        ),
        ({"unknownField": 1}, "Extra inputs"),
        ({"estimator": {"class": "SVC", "params": {str(i): i for i in range(65)}}}, "at most 64"),
    ],
)
def test_training_job_rejects(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        TrainingJobSpec.model_validate(tj_spec(**changes))


def test_required_classes_need_classification() -> None:
    dataset = {"uri": "s3://data/x", "target": "y", "validation": {"requiredClasses": ["a"]}}
    regression = {"estimator": {"class": "Ridge"}, "evaluation": {"metric": "r2"}}
    TrainingJobSpec.model_validate(tj_spec(dataset=dataset))
    with pytest.raises(ValidationError, match="classification metric"):
        TrainingJobSpec.model_validate(tj_spec(dataset=dataset, **regression))


def test_regressor_with_regression_metric() -> None:
    spec = tj_spec(
        estimator={"class": "Ridge", "params": {"alpha": 0.5}}, evaluation={"metric": "rmse"}
    )
    assert TrainingJobSpec.model_validate(spec).estimator.is_regressor


def test_resources_quantities() -> None:
    resources = {"requests": {"cpu": 1, "memory": "512Mi"}, "limits": {"cpu": "500m"}}
    spec = TrainingJobSpec.model_validate(tj_spec(resources=resources))
    assert spec.resources is not None
    assert spec.resources.requests is not None
    assert spec.resources.requests.cpu == "1"
    with pytest.raises(ValidationError, match="quantity"):
        TrainingJobSpec.model_validate(tj_spec(resources={"limits": {"memory": "lots"}}))


def test_status_conditions_shape() -> None:
    condition = {
        "type": "Ready",
        "status": "True",
        "reason": "ModelRecorded",
        "lastTransitionTime": "2025-01-01T00:00:00Z",
    }
    status = TrainingJobStatus.model_validate({"conditions": [condition]})
    assert dump(status)["conditions"][0]["lastTransitionTime"] == "2025-01-01T00:00:00Z"
    with pytest.raises(ValidationError):
        TrainingJobStatus.model_validate({"conditions": [{**condition, "status": "Yes"}]})
    with pytest.raises(ValidationError):
        TrainingJobStatus.model_validate({"conditions": [{**condition, "reason": "not ok"}]})
    with pytest.raises(ValidationError):
        TrainingJobStatus.model_validate({"metrics": {"accuracy": float("nan")}})


MD_SPEC: dict[str, Any] = {"model": "iris", "storage": STORAGE}


def test_model_deployment_defaults() -> None:
    spec = ModelDeploymentSpec.model_validate(MD_SPEC)
    assert spec.version.policy == "latestQualified"
    assert spec.version.pinned is None
    assert spec.replicas == 1
    assert spec.batching.max_batch_size == 32
    assert spec.batching.max_latency_ms == 5
    assert spec.inference_log.enabled
    assert spec.inference_log.sample_rate == 1.0
    assert spec.rollout_deadline_seconds == 300


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"version": {"pinned": 2, "policy": "latestQualified"}}, "exactly one"),
        ({"version": {}}, "exactly one"),
        ({"version": {"policy": "newest"}}, "latestQualified"),
        ({"replicas": 51}, "less than or equal"),
        ({"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}, "must not exceed"),
        ({"autoscaling": {"maxReplicas": 3}, "replicas": 3}, "not both"),
        ({"inferenceLog": {"sampleRate": 1.5}}, "less than or equal"),
    ],
)
def test_model_deployment_rejects(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        ModelDeploymentSpec.model_validate({**MD_SPEC, **changes})


def test_model_deployment_pinned_and_autoscaling() -> None:
    spec = ModelDeploymentSpec.model_validate(
        {**MD_SPEC, "version": {"pinned": 4}, "autoscaling": {"maxReplicas": 4}}
    )
    assert spec.version.pinned == 4
    assert spec.autoscaling is not None
    assert spec.autoscaling.min_replicas == 1
    md = ModelDeployment(spec=spec)
    assert dump(md)["apiVersion"] == "continuum.dev/v1alpha1"


DM_SPEC: dict[str, Any] = {"deployment": "iris", "retrain": {"template": TJ_SPEC}}


def test_drift_monitor_defaults() -> None:
    dm = load(DriftMonitor, {"metadata": {"name": "iris"}, "spec": DM_SPEC})
    spec = dm.spec
    assert spec.schedule.interval_seconds == 3600
    assert spec.window.min_samples == 200
    assert spec.tests.correction == "holm"
    assert spec.tests.p_value == 0.05
    assert spec.consecutive_checks == 2
    assert spec.retrain is not None
    assert spec.retrain.enabled
    assert spec.retrain.template is not None
    assert spec.retrain.template.model == "iris"
    assert spec.retrain.cooldown_seconds == 3600


def test_drift_monitor_may_retrain_without_a_template() -> None:
    """The served version's TrainingJob spec is used then (controllers/driftmonitor/retrain)."""
    dm = load(DriftMonitor, {"spec": {**DM_SPEC, "retrain": {"enabled": True}}})
    assert dm.spec.retrain is not None
    assert dm.spec.retrain.template is None


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"schedule": {"intervalSeconds": 10}}, "greater than or equal"),
        ({"window": {"maxRows": 100, "minSamples": 200}}, "must not exceed"),
        (
            {"performance": {"maxRows": 1000, "minLabels": 2000}},
            "performance.minLabels must not exceed performance.maxRows",
        ),
        ({"tests": {"correction": "fdr"}}, "holm"),
        ({"retrain": {"template": {**TJ_SPEC, "evaluation": {"metric": "mae"}}}}, "regressor"),
    ],
)
def test_drift_monitor_rejects(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        load(DriftMonitor, {"spec": {**DM_SPEC, **changes}})


def test_drift_monitor_status_aliases() -> None:
    status = {
        "reportURI": "s3://continuum/reports/iris/2025/",
        "drift": {
            "datasetDrift": True,
            "share": 0.5,
            "features": [{"name": "a", "test": "ks", "pValue": 0.01, "drifted": True}],
        },
        "consecutiveDrifts": 2,
    }
    dm = load(DriftMonitor, {"spec": DM_SPEC, "status": status})
    assert dm.status.report_uri == status["reportURI"]
    assert dump(dm.status)["reportURI"] == status["reportURI"]


def test_metadata_is_typed_and_keeps_what_the_api_server_adds() -> None:
    when = "2026-01-01T00:00:00Z"
    meta = {"name": "a", "namespace": "ml", "uid": "u-1", "resourceVersion": "42",
            "deletionTimestamp": when, "labels": {"k": "v"},
            "managedFields": [{"manager": "kubectl"}], "creationTimestamp": when}  # fmt: skip
    tj = load(TrainingJob, {"metadata": meta, "spec": TJ_SPEC})
    assert tj.metadata.resource_version == "42"
    assert tj.metadata.deletion_timestamp == when
    assert tj.metadata.labels == {"k": "v"}
    assert dump(tj.metadata)["managedFields"] == [{"manager": "kubectl"}], "nothing is dropped"


@pytest.mark.parametrize(
    ("field", "value"),
    [(("dataset", "features"), ["tenure", "plan", "tenure"]),
     (("preprocessing", "categorical", "columns"), ["plan", "plan"])],
)  # fmt: skip
def test_a_repeated_name_in_a_set_like_list_is_refused_as_the_api_server_does(field, value):
    spec = {
        "model": "churn",
        "dataset": {"uri": "s3://data/churn.csv", "target": "churned",
                    "features": ["tenure", "plan"]},
        "estimator": {"class": "LogisticRegression"},
        "preprocessing": {"categorical": {"columns": ["plan"]}},
        "evaluation": {"metric": "accuracy"},
        "storage": {"bucket": "models"},
    }  # fmt: skip
    node = spec
    for key in field[:-1]:
        node = node[key]
    node[field[-1]] = value
    with pytest.raises(ValueError, match="duplicate value"):
        TrainingJobSpec.model_validate(spec)
