import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from tests.kit.memory_store import MemoryObjectStore

from continuum.api.trainingjob import Estimator
from continuum.errors import DigestMismatch, IntegrityError, ManifestInvalid
from continuum.modelio import (
    coerce_features,
    deserialize_verified,
    load_verified_model,
    serialize_model,
    sha256_hex,
)
from continuum.trainer.pipeline import build_estimator


def fitted_forest(frame, seed=0):
    spec = {"class": "RandomForestClassifier", "params": {"n_estimators": 5}}
    model = build_estimator(Estimator.model_validate(spec), seed)
    return model.fit(frame[["x2"]], frame["label"])


def test_serialization_is_byte_deterministic(frame):
    # skops alone is not (array names and __id__ come from id(), zip entries carry the time).
    first = serialize_model(fitted_forest(frame))
    _garbage = [object() for _ in range(1000)]  # shift memory addresses between the two runs
    assert serialize_model(fitted_forest(frame)) == first


def test_bytes_with_another_digest_are_never_loaded(frame):
    data = serialize_model(fitted_forest(frame))
    with pytest.raises(DigestMismatch, match="does not match the manifest"):
        deserialize_verified(data + b"x", sha256_hex(data))


def double(values):
    return values * 2


def test_types_outside_the_allow_list_are_refused():
    # A function from an arbitrary module is exactly what a hostile file would smuggle in.
    untrusted = Pipeline([("f", FunctionTransformer(double))])
    data = serialize_model(untrusted.fit(np.ones((2, 1))))
    with pytest.raises(IntegrityError, match="could not be loaded safely"):
        deserialize_verified(data, sha256_hex(data))


def put_version(store, data, sha):
    manifest = {"model": "m", "version": 1, "sha256": sha, "qualified": True, "metrics": {}}
    store.put_json("models/m/1/manifest.json", manifest)
    store.put_bytes("models/m/1/model.skops", data)


def test_load_verified_model_checks_the_manifest_digest(frame):
    store = MemoryObjectStore()
    data = serialize_model(fitted_forest(frame))
    put_version(store, data, sha256_hex(data))
    loaded = load_verified_model(store, "m", 1)
    assert loaded.manifest["version"] == 1
    assert list(loaded.pipeline.predict(frame[["x2"]].head(3))) == list(
        fitted_forest(frame).predict(frame[["x2"]].head(3))
    )


def test_tampered_model_file_is_refused(frame):
    store = MemoryObjectStore()
    data = serialize_model(fitted_forest(frame))
    put_version(store, data, sha256_hex(b"something else"))
    with pytest.raises(DigestMismatch):
        load_verified_model(store, "m", 1)


def test_manifest_without_a_real_digest_is_refused(frame):
    store = MemoryObjectStore()
    put_version(store, b"", "not-a-digest")
    with pytest.raises(ManifestInvalid, match="no valid sha256"):
        load_verified_model(store, "m", 1)


def test_coerce_features_gives_training_dtypes():
    schema = [
        {"name": "n", "kind": "numeric"},
        {"name": "c", "kind": "categorical"},
    ]
    frame = pd.DataFrame({"c": [1, None, "a"], "n": ["1.5", None, 3], "extra": [0, 0, 0]})
    coerced = coerce_features(frame, schema)
    assert list(coerced.columns) == ["n", "c"]
    assert coerced["n"].dtype == "float64"
    assert coerced["c"].tolist()[0] == "1"
    assert coerced["c"].isna().tolist() == [False, True, False]
