import pytest

from continuum.errors import ConfigError
from continuum.trainer.config import TrainingConfig


def test_full_spec_is_read_from_camel_case(spec):
    spec["dataset"]["validation"] = {
        "minRows": 50,
        "maxNullFraction": 0.2,
        "allowNulls": ["x1"],
        "requiredClasses": ["yes", 1],
    }
    spec["evaluation"]["mustBeat"] = "none"
    spec["storage"] = {"endpoint": "http://minio:9000", "bucket": "b", "secretRef": {"name": "s3"}}
    config = TrainingConfig.from_spec(spec, training_job="tj-1")
    assert config.model == "churn"
    assert config.dataset.validation.min_rows == 50
    assert config.dataset.validation.allow_nulls == ("x1",)
    assert config.dataset.validation.required_classes == ("yes", "1")
    assert config.estimator.class_name == "LogisticRegression"
    assert config.categorical.columns == ("color",)
    assert (config.split.test_size, config.split.seed, config.split.stratify) == (0.25, 7, True)
    assert (config.evaluation.threshold, config.evaluation.must_beat) == (0.6, "none")
    assert config.storage.secret_name == "s3"
    assert config.training_job == "tj-1"


def test_defaults_match_the_crd(spec):
    del spec["split"], spec["preprocessing"]
    config = TrainingConfig.from_spec(spec)
    assert (config.split.test_size, config.split.seed) == (0.2, 42)
    assert (config.numeric.impute, config.numeric.scale) == ("mean", "standard")
    assert config.dataset.validation.max_null_fraction == 0.1
    assert config.dataset.features is None


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("model",), None, r"spec\.model is required"),
        (("dataset", "format"), "xlsx", r"spec\.dataset\.format must be one of csv, parquet"),
        (("split", "testSize"), 1.5, r"testSize must be a fraction"),
        (("split", "testSize"), 0.0, r"testSize must be between 0 and 1"),
        (("split", "seed"), True, r"spec\.split\.seed must be an integer"),
        (("evaluation", "threshold"), "high", r"threshold must be a number"),
        (("dataset", "features"), ["a", ""], r"features must be a list of column names"),
        (("estimator", "params"), [1], r"spec\.estimator\.params must be an object"),
    ],
)
def test_bad_fields_are_named(spec, path, value, message):
    target = spec
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    with pytest.raises(ConfigError, match=message):
        TrainingConfig.from_spec(spec)
