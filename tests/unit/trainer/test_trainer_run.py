"""run_training end to end against the in-memory store (cluster tests use real MinIO)."""

import json

import pytest
from tests.kit.memory_store import MemoryObjectStore

from continuum.errors import ConfigError, DatasetInvalid
from continuum.storage import list_versions, read_manifest
from continuum.trainer.config import TrainingConfig
from continuum.trainer.run import run_training


def quiet(*_args, **_kwargs):
    return None


def train(store, spec, **kwargs):
    return run_training(
        TrainingConfig.from_spec(spec, training_job="tj"), store, progress=quiet, **kwargs
    )


def test_a_run_writes_a_complete_version(store, spec):
    result = train(store, spec)
    assert (result.version, result.uri) == (1, "s3://data/models/churn/1/")
    keys = sorted(key for (_bucket, key) in store.objects if key.startswith("models/"))
    assert keys == [
        f"models/churn/1/{name}"
        for name in (
            "baseline/calibration.json",
            "baseline/reference.parquet",
            "baseline/stats.json",
            "claim.json",
            "manifest.json",
            "model.skops",
            "result.json",
        )
    ]
    assert json.loads(store.get_bytes("models/churn/1/result.json")) == result.summary()


def test_manifest_records_how_the_model_was_made(store, spec, monkeypatch):
    monkeypatch.setenv("CONTINUUM_IMAGE", "continuum:test")
    result = train(store, spec)
    manifest = read_manifest(store, "churn", result.version)
    assert manifest["sha256"] == result.sha256
    assert manifest["dataset"]["rows"] == 400
    assert manifest["dataset"]["fingerprint"] == result.dataset["fingerprint"]
    assert manifest["estimator"]["effectiveParams"] == {"C": 1.0, "random_state": 7}
    assert manifest["split"] == {
        "testSize": 0.25, "seed": 7, "stratify": True, "trainRows": 300, "testRows": 100
    }  # fmt: skip
    assert set(manifest["metrics"]) == {
        "accuracy",
        "f1",
        "f1_macro",
        "precision",
        "recall",
        "roc_auc",
    }
    assert manifest["evaluation"]["champion"] is None
    assert manifest["qualified"] is True
    assert manifest["image"] == "continuum:test"
    assert manifest["trainingJob"] == "tj"
    assert {"python", "scikit-learn", "numpy", "skops"} <= set(manifest["libraries"])
    assert [f["kind"] for f in manifest["features"]] == [
        "numeric",
        "numeric",
        "categorical",
        "numeric",
    ]


def test_baseline_stats_cover_every_feature(store, spec):
    train(store, spec)
    stats = json.loads(store.get_bytes("models/churn/1/baseline/stats.json"))
    assert stats["rows"] == 400
    assert set(stats["features"]) == {"x1", "x2", "color", "amount"}
    assert stats["features"]["x1"]["nullCount"] == 16
    assert len(stats["features"]["x2"]["histogram"]["counts"]) == 20
    assert set(stats["features"]["color"]["frequencies"]) == {"red", "green", "blue"}


def test_classifiers_store_their_calibration_regressors_none(store, spec):
    """Isotonic knots per class from the holdout (JSON arrays), read back by the monitor."""
    from continuum.monitor.estimation import parse_calibration  # noqa: PLC0415

    train(store, spec)
    document = json.loads(store.get_bytes("models/churn/1/baseline/calibration.json"))
    assert (document["method"], document["classes"], document["rows"]) == (
        "isotonic", ["no", "yes"], 100)  # fmt: skip
    (curve,) = document["curves"]  # binary: the positive class only
    assert curve["class"] == 1
    assert curve["x"] == sorted(curve["x"])
    assert all(0 <= y <= 1 for y in curve["y"])
    calibration = parse_calibration(document, "calibration.json")
    assert calibration.classes == ("no", "yes")
    spec |= {"model": "amount", "estimator": {"class": "Ridge"},
             "evaluation": {"metric": "rmse"}}  # fmt: skip
    spec["dataset"]["target"] = "amount"
    spec["dataset"]["features"] = ["x1", "x2", "color"]
    train(store, spec)
    assert not store.exists("models/amount/1/baseline/calibration.json")


def test_same_spec_and_data_give_identical_model_bytes_and_metrics(store, spec):
    first = train(store, spec)
    second = train(store, spec, champion_version=first.version)
    assert second.version == 2
    assert second.sha256 == first.sha256
    assert store.get_bytes("models/churn/1/model.skops") == store.get_bytes(
        "models/churn/2/model.skops"
    )
    assert second.metrics == first.metrics
    # An identical model does not beat its twin, so it is not qualified.
    assert not second.qualified
    assert "does not beat champion 1" in second.reasons[0]


def test_must_beat_none_ignores_the_champion(store, spec):
    first = train(store, spec)
    spec["evaluation"]["mustBeat"] = "none"
    assert train(store, spec, champion_version=first.version).qualified


def test_threshold_failure_is_not_qualified_but_still_published(store, spec):
    spec["evaluation"]["threshold"] = 0.999
    result = train(store, spec)
    assert not result.qualified
    assert "below the threshold 0.999" in result.reasons[0]
    assert list_versions(store, "churn") == [1]


def test_regression_run(store, spec):
    spec["dataset"]["target"] = "amount"
    spec["dataset"]["features"] = ["x1", "x2", "color"]
    spec["estimator"] = {"class": "Ridge", "params": {"alpha": 0.5}}
    spec["evaluation"] = {"metric": "rmse", "threshold": 1.0}
    result = train(store, spec)
    assert set(result.metrics) == {"r2", "rmse", "mae"}
    assert result.qualified


def test_config_errors_come_before_any_version_is_claimed(store, spec):
    spec["estimator"]["params"] = {"C": -1.0}  # a rule of scikit-learn's, not of the API's
    with pytest.raises(ConfigError, match=r"estimator LogisticRegression: .*'C' parameter"):
        train(store, spec)
    assert list_versions(store, "churn") == []
    assert not any(key.startswith("models/") for (_bucket, key) in store.objects)


def test_invalid_data_claims_no_version(store, spec):
    spec["dataset"]["features"] = ["x1", "missing_col"]
    spec["preprocessing"] = {}
    with pytest.raises(DatasetInvalid, match="column 'missing_col'"):
        train(store, spec)
    assert list_versions(store, "churn") == []


def test_progress_is_reported_as_events(store, spec):
    events = []
    run_training(TrainingConfig.from_spec(spec), store, progress=lambda e, **f: events.append(e))
    assert events == [
        "config_checked",
        "dataset_loaded",
        "evaluated",
        "version_claimed",
        "published",
    ]


def test_an_identifier_like_categorical_is_warned_about_in_the_manifest(store, spec, frame):
    tickets = frame.assign(ticket=[f"T{i:05d}" for i in range(len(frame))])
    store.put_bytes("sets/tickets/part-0.csv", tickets.to_csv(index=False).encode())
    spec["dataset"]["uri"] = "s3://data/sets/tickets/"
    spec["dataset"]["features"] = ["x1", "x2", "color", "ticket"]
    spec["preprocessing"]["categorical"]["columns"] = ["color", "ticket"]
    manifest = read_manifest(store, "churn", train(store, spec).version)
    assert len(manifest["warnings"]) == 1
    assert manifest["warnings"][0].startswith("ticket: 400 distinct values in 400 rows")
    assert "looks like an identifier" in manifest["warnings"][0]


def test_a_plain_dataset_has_no_data_warnings(store, spec):
    assert read_manifest(store, "churn", train(store, spec).version)["warnings"] == []


def parquet_store(frame):
    store = MemoryObjectStore("data")
    store.put_bytes("sets/churn/part-0.parquet", frame.to_parquet(index=False))
    return store


def published(store):
    files = ("model.skops", "baseline/reference.parquet", "baseline/stats.json")
    return {f: store.get_bytes(f"models/churn/1/{f}") for f in files}


def test_category_columns_train_the_model_their_text_columns_train(spec, frame):
    # The category path converts once per category (continuum.distinct); its result must be
    # the text path's, byte for byte, down to the stratified split.
    spec["dataset"]["format"] = "parquet"
    text_store, category_store = (
        parquet_store(frame),
        parquet_store(frame.astype({"color": "category", "label": "category"})),
    )
    text, category = train(text_store, spec), train(category_store, spec)
    assert category.metrics == text.metrics
    assert [(f["name"], f["kind"], f["categories"]) for f in category.manifest["features"]] == [
        (f["name"], f["kind"], f["categories"]) for f in text.manifest["features"]
    ]  # the dtypes differ: "category" and "str"
    assert category.manifest["split"] == text.manifest["split"]
    assert published(category_store)["model.skops"] == published(text_store)["model.skops"]
    assert (
        published(category_store)["baseline/stats.json"]
        == (published(text_store)["baseline/stats.json"])
    )
