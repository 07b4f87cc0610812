import pytest
from sklearn.base import is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder

from continuum.api import CLASSIFIERS, REGRESSORS
from continuum.api.trainingjob import CategoricalPreprocessing, Estimator, NumericPreprocessing
from continuum.errors import ConfigError
from continuum.modelio import deserialize_verified, serialize_model, sha256_hex
from continuum.trainer.pipeline import (
    ESTIMATORS,
    build_estimator,
    build_pipeline,
    build_preprocessor,
    svc_probability_deprecation_silenced,
    task_of,
)
from continuum.trainer.validation import Feature

SCHEMA = [Feature("x1", "numeric", "float64"), Feature("color", "categorical", "str")]


def estimator_spec(name, params=None):
    return Estimator.model_validate({"class": name, "params": params or {}})


def test_the_allow_list_is_the_apis_and_scikit_learn_agrees_on_each_task():
    assert set(ESTIMATORS) == set(CLASSIFIERS) | set(REGRESSORS)
    for name, cls in ESTIMATORS.items():
        assert is_classifier(cls()) == (name in CLASSIFIERS), name


def test_unknown_param_is_named_with_the_valid_ones():
    with pytest.raises(
        ConfigError, match=r"no parameter\(s\) n_trees; valid parameters: .*n_estimators"
    ):
        build_estimator(estimator_spec("RandomForestClassifier", {"n_trees": 5}), seed=1)


@pytest.mark.parametrize(
    ("name", "params", "words"),
    [
        ("RandomForestClassifier", {"n_estimators": -1}, "n_estimators"),
        ("LogisticRegression", {"C": "strong"}, "'C' parameter"),
        ("Ridge", {"alpha": -1.0}, "alpha"),
    ],
)
def test_bad_param_values_fail_through_sklearns_own_validation(name, params, words):
    with pytest.raises(ConfigError, match=words):
        build_estimator(estimator_spec(name, params), seed=1)


def test_seed_becomes_random_state_unless_the_spec_sets_it():
    assert build_estimator(estimator_spec("DecisionTreeClassifier"), seed=5).random_state == 5
    chosen = estimator_spec("DecisionTreeClassifier", {"random_state": 9})
    assert build_estimator(chosen, seed=5).random_state == 9
    assert "random_state" not in build_estimator(estimator_spec("LinearRegression"), 5).get_params()


def test_svc_gets_probabilities_for_roc_auc():
    assert build_estimator(estimator_spec("SVC"), seed=1).probability is True


def test_task_follows_the_estimator():
    assert task_of(estimator_spec("GradientBoostingClassifier")) == "classification"
    assert task_of(estimator_spec("Lasso")) == "regression"


def test_preprocessor_follows_the_spec():
    pre = build_preprocessor(
        SCHEMA,
        NumericPreprocessing(impute="median", scale="minmax"),
        CategoricalPreprocessing(columns=["color"]),
    )
    assert isinstance(pre, ColumnTransformer)
    numeric, categorical = pre.transformers[0][1], pre.transformers[1][1]
    assert numeric.named_steps["impute"].strategy == "median"
    assert isinstance(numeric.named_steps["scale"], MinMaxScaler)
    encoder = categorical.named_steps["encode"]
    assert isinstance(encoder, OneHotEncoder)
    assert encoder.handle_unknown == "ignore"


def test_no_numeric_steps_means_passthrough():
    pre = build_preprocessor(
        SCHEMA, NumericPreprocessing(impute="none", scale="none"), CategoricalPreprocessing()
    )
    assert pre.transformers[0][1] == "passthrough"


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_every_allowed_estimator_trains_and_loads_with_our_trust_list(name, frame):
    """The skops allow-list in continuum.modelio must cover every allowed estimator."""
    params = {"max_iter": 3} if "HistGradient" in name else {}
    small_ensemble = "Forest" in name or "Trees" in name or name.startswith("Grad")
    params = {"n_estimators": 3} if small_ensemble else params
    estimator = build_estimator(estimator_spec(name, params), seed=0)
    pipeline = build_pipeline(estimator, SCHEMA, NumericPreprocessing(), CategoricalPreprocessing())
    target = frame["label"] if name in CLASSIFIERS else frame["amount"]
    features = frame[["x1", "color"]].astype({"color": object})
    with svc_probability_deprecation_silenced():
        pipeline.fit(features, target)
    data = serialize_model(pipeline)
    loaded = deserialize_verified(data, sha256_hex(data))
    assert (loaded.predict(features) == pipeline.predict(features)).all()
