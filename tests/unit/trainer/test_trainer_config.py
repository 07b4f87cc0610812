"""The trainer reads its spec with the API model: the operator's JSON in, the same spec out."""

import json

import pytest

from continuum.api import TrainingJob, TrainingJobSpec, dump, dump_set, load
from continuum.api.trainingjob import METRIC_MESSAGE, TARGET_MESSAGE
from continuum.errors import ConfigError
from continuum.trainer.cli import train
from continuum.trainer.config import DEFAULT_MAX_DATASET_BYTES, TrainingConfig


def test_full_spec_is_read_from_camel_case(spec):
    spec["dataset"]["validation"] = {
        "minRows": 50,
        "maxNullFraction": 0.2,
        "allowNulls": ["x1"],
        "requiredClasses": ["yes", "1"],
    }
    spec["evaluation"]["mustBeat"] = "none"
    spec["storage"] = {"endpoint": "http://minio", "bucket": "art", "secretRef": {"name": "s3"}}
    config = TrainingConfig.from_spec(spec, training_job="tj-1")
    assert config.spec.model == "churn"
    validation = config.spec.dataset.validation
    assert (validation.min_rows, validation.max_null_fraction) == (50, 0.2)
    assert (validation.allow_nulls, validation.required_classes) == (["x1"], ["yes", "1"])
    assert config.spec.estimator.class_ == "LogisticRegression"
    assert config.spec.preprocessing.categorical.columns == ["color"]
    split = config.spec.split
    assert (split.test_size, split.seed, split.stratify) == (0.25, 7, True)
    assert (config.spec.evaluation.threshold, config.spec.evaluation.must_beat) == (0.6, "none")
    assert config.spec.storage.secret_ref is not None
    assert config.spec.storage.secret_ref.name == "s3"
    assert (config.training_job, config.max_dataset_bytes) == ("tj-1", DEFAULT_MAX_DATASET_BYTES)


def test_defaults_are_the_api_models(spec):
    del spec["split"], spec["preprocessing"]
    config = TrainingConfig.from_spec(spec)
    assert (config.spec.split.test_size, config.spec.split.seed) == (0.2, 42)
    numeric = config.spec.preprocessing.numeric
    assert (numeric.impute, numeric.scale) == ("mean", "standard")
    assert config.spec.dataset.validation.max_null_fraction == 0.1
    assert config.spec.dataset.features is None
    assert config.spec == TrainingJobSpec.model_validate(spec)


def test_the_spec_the_operator_passes_reads_back_as_the_same_spec(spec):
    """The Job's CONTINUUM_SPEC is dump_set(tj.spec) as JSON (the fields off their defaults);
    the trainer must read back exactly the spec the API server stored."""
    resource = load(TrainingJob, {"metadata": {"name": "tj"}, "spec": spec})
    stored = load(TrainingJob, {"metadata": {"name": "tj"}, "spec": dump(resource.spec)}).spec
    passed = json.loads(json.dumps(dump_set(stored), sort_keys=True, separators=(",", ":")))
    assert "passes" not in passed["dataset"]  # a default an older trainer does not know
    assert TrainingConfig.from_spec(passed).spec == resource.spec


def with_value(spec, path, value):
    target = spec
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return spec


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("model",), None, r"spec\.model is required"),
        (
            ("dataset", "format"),
            "xlsx",
            r"spec\.dataset\.format: Input should be 'csv' or 'parquet', got 'xlsx'",
        ),
        (("split", "testSize"), 1.5, r"spec\.split\.testSize: .*less than or equal to 0\.5"),
        (("split", "testSize"), 0.0, r"spec\.split\.testSize: .*greater than or equal to 0\.05"),
        (("split", "seed"), True, r"spec\.split\.seed: Input should be a valid integer, got True"),
        (("split", "seed"), "7", r"spec\.split\.seed: Input should be a valid integer, got '7'"),
        (("evaluation", "threshold"), "high", r"spec\.evaluation\.threshold: .*number, got 'high'"),
        (("dataset", "features"), ["a", ""], r"spec\.dataset\.features\.1: .*at least 1 char"),
        (("estimator", "params"), [1], r"spec\.estimator\.params: .*valid dictionary, got \[1\]"),
        (("estimator", "class"), "XGBClassifier", r"spec\.estimator\.class: .*'SVC'.*got 'XGB"),
        (("split", "seeds"), 3, r"spec\.split\.seeds: Extra inputs are not permitted"),
    ],
)
def test_bad_fields_are_named(spec, path, value, message):
    with pytest.raises(ConfigError, match=message) as info:
        TrainingConfig.from_spec(with_value(spec, path, value))
    assert str(info.value).startswith("the TrainingJob spec is invalid: spec.")


def test_a_spec_without_storage_reads_but_the_trainer_refuses_to_start(spec):
    """spec.storage is optional (the namespace's ConfigMap default); the operator fills it in."""
    del spec["storage"]
    assert TrainingConfig.from_spec(spec).spec.storage is None
    env = {"CONTINUUM_SPEC": json.dumps(spec)}
    with pytest.raises(ConfigError, match=r"spec\.storage is not set in CONTINUUM_SPEC"):
        train(None, None, env)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dataset": {"uri": "s3://data/d/", "target": "label", "features": ["x1", "label"]}},
         TARGET_MESSAGE),
        ({"evaluation": {"metric": "rmse"}}, METRIC_MESSAGE),
    ],
)  # fmt: skip
def test_the_api_models_cross_field_rules_apply(spec, change, message):
    with pytest.raises(ConfigError) as info:
        TrainingConfig.from_spec(spec | change)
    assert str(info.value) == f"the TrainingJob spec is invalid: spec: {message}"


def test_every_problem_is_listed_with_long_values_shortened(spec):
    spec["dataset"]["format"] = "x" * 500
    del spec["model"]
    with pytest.raises(ConfigError) as info:
        TrainingConfig.from_spec(spec)
    message = str(info.value)
    assert "spec.model is required; spec.dataset.format: " in message
    assert len(message) < 250
