import numpy as np
import pytest
from tests.kit.datasets import real_shaped_frame

from continuum.errors import DatasetInvalid
from continuum.trainer.config import TrainingConfig
from continuum.trainer.validation import identifier_warnings, validate_dataset


def config_of(spec, **validation):
    spec["dataset"]["validation"] = validation
    return TrainingConfig.from_spec(spec).spec


def test_valid_dataset_yields_the_feature_schema(spec, frame):
    schema = validate_dataset(frame.drop(columns="amount"), config_of(spec), "classification")
    assert [(f.name, f.kind) for f in schema] == [
        ("x1", "numeric"),
        ("x2", "numeric"),
        ("color", "categorical"),
    ]
    assert schema[2].categories == ("blue", "green", "red")


def test_missing_target_is_named(spec, frame):
    with pytest.raises(DatasetInvalid, match="column 'label': not found in the dataset"):
        validate_dataset(frame.drop(columns="label"), config_of(spec), "classification")


def test_missing_declared_feature_is_named(spec, frame):
    spec["dataset"]["features"] = ["x1", "ghost", "color"]
    with pytest.raises(DatasetInvalid, match="column 'ghost': not found") as info:
        validate_dataset(frame, config_of(spec), "classification")
    assert info.value.column == "ghost"


def test_text_in_a_numeric_feature_says_how_to_fix(spec, frame):
    frame["x2"] = frame["x2"].astype(str)
    with pytest.raises(DatasetInvalid, match=r"column 'x2': not numeric.*categorical\.columns"):
        validate_dataset(frame, config_of(spec), "classification")


def test_too_many_nulls_names_the_column_and_the_limit(spec, frame):
    frame.loc[::2, "x2"] = np.nan
    with pytest.raises(DatasetInvalid, match=r"column 'x2': 50\.0% of values are empty.*0\.1"):
        validate_dataset(frame, config_of(spec), "classification")


def test_allow_nulls_exempts_a_column_but_not_an_empty_one(spec, frame):
    frame.loc[::2, "x2"] = np.nan
    validate_dataset(frame, config_of(spec, allowNulls=["x2"]), "classification")
    frame["x2"] = np.nan
    with pytest.raises(DatasetInvalid, match="column 'x2': every value is empty"):
        validate_dataset(frame, config_of(spec, allowNulls=["x2"]), "classification")


def test_too_few_rows(spec, frame):
    with pytest.raises(DatasetInvalid, match=r"400 rows, fewer than validation\.minRows=1000"):
        validate_dataset(frame, config_of(spec, minRows=1000), "classification")


def test_null_target_values_are_refused(spec, frame):
    frame.loc[3, "label"] = None
    with pytest.raises(DatasetInvalid, match="column 'label': target has 1 empty value"):
        validate_dataset(frame, config_of(spec), "classification")


def test_a_single_class_is_refused(spec, frame):
    frame["label"] = "yes"
    with pytest.raises(DatasetInvalid, match="column 'label': only one class"):
        validate_dataset(frame, config_of(spec), "classification")


def test_required_classes_must_be_present(spec, frame):
    with pytest.raises(DatasetInvalid, match=r"required class\(es\) \['maybe'\] absent"):
        validate_dataset(frame, config_of(spec, requiredClasses=["yes", "maybe"]), "classification")


def test_a_class_too_rare_to_stratify(spec, frame):
    frame.loc[0, "label"] = "unique"
    with pytest.raises(DatasetInvalid, match=r"\['unique'\] have fewer than 2 rows"):
        validate_dataset(frame, config_of(spec), "classification")


def test_regression_target_must_be_numeric(spec, frame):
    spec["dataset"]["target"] = "color"
    spec["preprocessing"] = {}
    with pytest.raises(DatasetInvalid, match="column 'color': regression target must be numeric"):
        validate_dataset(frame, config_of(spec), "regression")


def test_a_declared_categorical_that_looks_like_an_identifier_is_warned_about(spec):
    # real_shaped_frame: customer_id has one level per row, plan four levels, region four
    frame = real_shaped_frame(400, seed=1).rename(columns={"churned": "label"})
    spec["dataset"]["features"] = ["customer_id", "plan", "region", "charges"]
    spec["preprocessing"]["categorical"]["columns"] = ["customer_id", "plan", "region"]
    config = config_of(spec, maxNullFraction=0.2)
    schema = validate_dataset(frame, config, "classification")
    warnings = identifier_warnings(frame, schema)
    assert len(warnings) == 1
    assert warnings[0].startswith("customer_id: 400 distinct values in 400 rows (100%")
    assert "dataset.features" in warnings[0]


def test_few_distinct_values_in_a_small_table_are_not_an_identifier(spec, frame):
    small = frame.iloc[:10].assign(color=[f"c{i}" for i in range(10)])
    schema = validate_dataset(small, config_of(spec, minRows=5), "classification")
    assert identifier_warnings(small, schema) == []
