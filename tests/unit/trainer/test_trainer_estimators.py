"""Every estimator of the allow-list, end to end on real-shaped Parquet: trained, saved
pickle-free, loaded by the model server's own loader and scored, and reproducible byte for byte.
"""

import copy

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
from tests.kit.datasets import real_shaped_frame
from tests.kit.memory_store import MemoryObjectStore

from continuum.api import CLASSIFIERS, REGRESSORS
from continuum.api.trainingjob import Estimator
from continuum.errors import ConfigError
from continuum.modelio import coerce_features, load_verified_model
from continuum.server.model import load_served_model
from continuum.trainer.config import TrainingConfig
from continuum.trainer.pipeline import build_estimator
from continuum.trainer.run import run_training

CATEGORICAL = ["customer_id", "plan", "region"]
NUMERIC = ["tenure", "autopay", "charges"]
# Small ensembles keep the test quick; the params are validated like any user's.
SMALL = {
    "RandomForestClassifier": {"n_estimators": 5},
    "RandomForestRegressor": {"n_estimators": 5},
    "ExtraTreesClassifier": {"n_estimators": 5},
    "ExtraTreesRegressor": {"n_estimators": 5},
    "GradientBoostingClassifier": {"n_estimators": 5},
    "GradientBoostingRegressor": {"n_estimators": 5},
    "HistGradientBoostingClassifier": {"max_iter": 10},
    "HistGradientBoostingRegressor": {"max_iter": 10},
}


def quiet(*_args, **_kwargs):
    return None


def frame(rows=600):
    data = real_shaped_frame(rows, seed=3)
    rng = np.random.default_rng(3)
    # A learnable label and a regression target without nulls, on top of the real dtypes.
    signal = data["charges"].fillna(70).to_numpy() / 20 + (data["plan"] == "basic").to_numpy()
    data["churned"] = np.where(signal + rng.normal(0, 0.5, rows) > 4.0, "yes", "no")
    data["spend"] = 3 * signal + rng.normal(0, 0.2, rows)
    return data


def spec_for(name, **params):
    regression = name in REGRESSORS
    return {
        "model": "m",
        "dataset": {
            "uri": "s3://data/sets/m.parquet",
            "format": "parquet",
            "target": "spend" if regression else "churned",
            "features": CATEGORICAL + NUMERIC,
        },
        "estimator": {"class": name, "params": {**SMALL.get(name, {}), **params}},
        "preprocessing": {"categorical": {"columns": CATEGORICAL}},
        "split": {"seed": 11},
        "evaluation": {"metric": "r2" if regression else "accuracy", "mustBeat": "none"},
        "storage": {"bucket": "data"},
    }


def store_with(data):
    store = MemoryObjectStore("data")
    store.put_bytes("sets/m.parquet", data.to_parquet(index=False))
    return store


def train(store, spec):
    config = TrainingConfig.from_spec(copy.deepcopy(spec), training_job="tj")
    return run_training(config, store, progress=quiet)


@pytest.fixture(scope="module")
def data():
    return frame()


NAMES = sorted(CLASSIFIERS + REGRESSORS)


@pytest.mark.parametrize("name", NAMES)
def test_each_estimator_is_served_and_reproducible_byte_for_byte(name, data):
    spec = spec_for(name)
    first_store, second_store = store_with(data), store_with(data)
    first, second = train(first_store, spec), train(second_store, spec)
    assert first.sha256 == second.sha256, "same spec, data and seed must give the same bytes"
    assert first.metrics == second.metrics
    model_file = "models/m/1/model.skops"
    assert first_store.get_bytes(model_file) == second_store.get_bytes(model_file)

    served = load_served_model(first_store, "m", 1)  # the server's loader: digest, allow-list
    assert served.scoring.compiled, served.scoring.reason  # the fast path, verified at load
    rows = data.head(50)
    features = coerce_features(rows, first.manifest["features"])
    labels, proba = served.scorer({c: features[c].to_numpy() for c in features.columns})
    pipeline = load_verified_model(first_store, "m", 1).pipeline
    assert (np.asarray(labels) == pipeline.predict(features)).all()
    if name in CLASSIFIERS:
        assert proba is not None
        np.testing.assert_array_equal(proba, pipeline.predict_proba(features))


def test_hist_gradient_boosting_splits_categories_natively(data):
    store = store_with(data)
    result = train(store, spec_for("HistGradientBoostingClassifier"))
    assert result.manifest["preprocessing"]["categorical"]["encode"] == "native"
    pipeline = load_verified_model(store, "m", 1).pipeline
    encoder = pipeline.named_steps["preprocess"].named_transformers_["categorical"]["encode"]
    assert isinstance(encoder, OrdinalEncoder)
    estimator = pipeline.named_steps["estimator"]
    assert estimator.is_categorical_.tolist() == [False] * 3 + [True] * 3
    # The ID-like column (480 levels in the training rows) is capped at max_bins codes.
    assert len(encoder.categories_[0]) == 480
    coded = pipeline.named_steps["preprocess"].transform(
        coerce_features(data, result.manifest["features"])
    )
    assert np.nanmax(coded[:, 3]) <= 254

    unseen = data.head(3).copy()
    unseen["plan"] = pd.Categorical(["never-seen"] * 3)
    features = coerce_features(unseen, result.manifest["features"])
    assert len(pipeline.predict_proba(features)) == 3  # an unknown category is "missing"


def test_onehot_can_still_be_asked_for_and_is_dense_for_hist_gradient_boosting(data):
    spec = spec_for("HistGradientBoostingRegressor")
    spec["preprocessing"]["categorical"]["encode"] = "onehot"
    spec["dataset"]["features"] = ["plan", "region", *NUMERIC]
    spec["preprocessing"]["categorical"]["columns"] = ["plan", "region"]
    store = store_with(data)
    result = train(store, spec)
    assert result.manifest["preprocessing"]["categorical"]["encode"] == "onehot"
    pipeline = load_verified_model(store, "m", 1).pipeline
    encoder = pipeline.named_steps["preprocess"].named_transformers_["categorical"]["encode"]
    assert isinstance(encoder, OneHotEncoder)


def test_native_encoding_needs_an_estimator_that_has_it():
    spec = spec_for("RandomForestClassifier")
    spec["preprocessing"]["categorical"]["encode"] = "native"
    with pytest.raises(ConfigError, match="encode native needs an estimator with native"):
        TrainingConfig.from_spec(spec)


def test_early_stopping_and_iterations_are_recorded():
    spec = spec_for("HistGradientBoostingRegressor", max_iter=300, learning_rate=0.5)
    spec["estimator"]["params"]["early_stopping"] = True
    result = train(store_with(frame(3000)), spec)
    fitted = result.manifest["estimator"]["fitted"]
    assert fitted["threads"] >= 1
    assert 1 <= fitted["iterations"] < 300


def estimator(name, params):
    return build_estimator(Estimator.model_validate({"class": name, "params": params}), seed=1)


def test_sgd_classifier_defaults_to_a_probabilistic_loss():
    assert estimator("SGDClassifier", {}).loss == "log_loss"
    assert estimator("SGDClassifier", {"loss": "modified_huber"}).loss == "modified_huber"


def test_sgd_classifier_without_probabilities_is_refused_naming_the_parameter():
    with pytest.raises(ConfigError, match=r"parameter loss='hinge' gives no predict_proba"):
        estimator("SGDClassifier", {"loss": "hinge"})


def test_categorical_features_is_the_trainers_to_set():
    with pytest.raises(ConfigError, match="parameter categorical_features is set by the trainer"):
        estimator("HistGradientBoostingClassifier", {"categorical_features": [0]})


@pytest.mark.parametrize(
    ("name", "params", "words"),
    [
        ("HistGradientBoostingClassifier", {"max_bins": 300}, "'max_bins' parameter"),
        ("HistGradientBoostingRegressor", {"early_stopping": "sometimes"}, "early_stopping"),
        ("ExtraTreesClassifier", {"n_estimators": 0}, "n_estimators"),
        ("SGDRegressor", {"penalty": "l3"}, "penalty"),
        ("ElasticNet", {"l1_ratio": 2.0}, "l1_ratio"),
        ("GaussianNB", {"var_smoothing": -1.0}, "var_smoothing"),
        ("KNeighborsRegressor", {"n_neighbors": 0}, "n_neighbors"),
    ],
)
def test_new_estimators_params_are_judged_by_scikit_learn(name, params, words):
    with pytest.raises(ConfigError, match=words):
        estimator(name, params)
