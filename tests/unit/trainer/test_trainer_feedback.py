"""Training sets built from served traffic: the pure parts, and the snapshot on a memory store."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from tests.kit.memory_store import MemoryObjectStore
from tests.unit.trainer.conftest import make_frame

from continuum.api.trainingjob import Feedback
from continuum.errors import DatasetInvalid
from continuum.storage import read_manifest
from continuum.storage.inference_logs import write_batch
from continuum.storage.labels import write_feedback
from continuum.trainer import feedback as fb
from continuum.trainer.config import TrainingConfig
from continuum.trainer.run import run_training
from continuum.trainer.snapshot import build_snapshot

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(frame: pd.DataFrame) -> MemoryObjectStore:
    """The base dataset with the columns the model serves: x1, x2, color and the label."""
    store = MemoryObjectStore("data")
    base = frame.drop(columns="amount")
    store.put_bytes("sets/churn/part-0.csv", base.iloc[:200].to_csv(index=False).encode())
    store.put_bytes("sets/churn/part-1.csv", base.iloc[200:].to_csv(index=False).encode())
    return store


def quiet(*_args, **_kwargs):
    return None


def log_traffic(store, rows=120, *, model="churn", version=1, seed=1, hashed=(), dropped=()):
    """One logged request per row, answered a minute apart before NOW; labels for every one."""
    frame = make_frame(rows, seed=seed)
    logged, labels = [], []
    for i, record in enumerate(frame.to_dict("records")):
        features = {k: (None if k == "x1" and pd.isna(v) else v) for k, v in record.items()
                    if k in ("x1", "x2", "color") and k not in dropped}  # fmt: skip
        for name in hashed:
            features[name] = "hmac:" + "0" * 32
        ts = NOW - timedelta(minutes=i + 1)
        logged.append({"ts": ts.isoformat().replace("+00:00", "Z"), "request_id": f"r{i}",
                       "row": 0, "model": model, "version": version, "features": features,
                       "prediction": record["label"]})  # fmt: skip
        labels.append({"id": f"r{i}", "row": 0, "label": record["label"]})
    write_batch(store, model, version, logged, NOW - timedelta(seconds=1))
    write_feedback(store, model, labels, NOW - timedelta(seconds=1))
    return frame


def feedback_spec(spec, **feedback):
    spec["dataset"]["feedback"] = {"sinceSeconds": 86400, **feedback}
    return spec


def build(store, spec, now=NOW):
    config = TrainingConfig.from_spec(spec, training_job="tj")
    return build_snapshot(config, store, now=now, task="classification", progress=quiet)


# ---------------------------------------------------------------- pure parts


def test_the_window_ends_at_the_run_start_and_includes_both_ends():
    window = fb.window_of(Feedback(since_seconds=3600), NOW)
    assert (window.start, window.end) == (NOW - timedelta(hours=1), NOW)
    times = pd.Series(
        pd.to_datetime([NOW - timedelta(seconds=3601), window.start, NOW, NOW + timedelta(1)])
    )
    assert fb.in_window(times, window).tolist() == [False, True, True, False]
    assert window.to_json() == {"start": "2026-12-05T11:00:00.000000Z",
                                "end": "2026-12-05T12:00:00.000000Z"}  # fmt: skip


def test_feedback_bounds_and_defaults():
    assert Feedback().model_dump(by_alias=True) == {
        "model": None, "sinceSeconds": 2592000, "maxRows": 100000, "includeBase": True
    }  # fmt: skip
    with pytest.raises(ValueError, match="greater than or equal to 60"):
        Feedback(since_seconds=59)
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        Feedback(max_rows=0)


def joined_rows(order):
    ts = pd.to_datetime(["2026-12-05T10:00Z", "2026-12-05T11:00Z", "2026-12-05T11:00Z",
                         "2026-12-05T09:00Z"], utc=True)  # fmt: skip
    frame = pd.DataFrame({"ts": ts, "id": ["a", "c", "b", "d"], "row": [0, 0, 1, 0],
                          "label": [1, 2, 3, 4]})  # fmt: skip
    return frame.iloc[order].reset_index(drop=True)


def test_the_cap_keeps_the_newest_rows_in_one_order_whatever_the_input_order():
    kept, cut = fb.newest(joined_rows([0, 1, 2, 3]), 3)
    assert cut == 1
    assert kept[["id", "row"]].values.tolist() == [["a", 0], ["b", 1], ["c", 0]]
    again, _ = fb.newest(joined_rows([3, 2, 1, 0]), 3)
    pd.testing.assert_frame_equal(kept, again)
    everything, none_cut = fb.newest(joined_rows([2, 0, 3, 1]), 10)
    assert none_cut == 0
    assert everything["id"].tolist() == ["d", "a", "b", "c"]


def base_with_every_dtype() -> pd.DataFrame:
    """A base as pandas and pyarrow write it: category, Int64, string, bool, datetime, NaN."""
    frame = pd.DataFrame(
        {
            "plan": pd.Categorical(["basic", "pro"]),
            "seats": pd.array([1, None], dtype="Int64"),
            "region": pd.array(["eu", None], dtype="string"),
            "active": [True, False],
            "since": pd.to_datetime(["2026-01-01T00:00Z", "2026-02-01T00:00Z"], utc=True),
            "spend": [1.5, np.nan],
            "visits": np.array([3, 4], dtype=np.int64),
            "label": ["yes", "no"],
        }
    )
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return pd.read_parquet(io.BytesIO(buffer.getvalue()))


def test_the_union_keeps_the_base_dtypes_through_a_parquet_round_trip():
    base = base_with_every_dtype()
    fresh = pd.DataFrame(
        {
            "plan": ["enterprise", "basic"],
            "seats": [3, None],
            "region": [None, "us"],
            "active": [True, False],
            "since": ["2026-03-01T00:00:00Z", "2026-03-02T12:00:00Z"],
            "spend": [None, 2.25],
            "visits": [5, 6],
            "label": ["no", "yes"],
        },
        dtype=object,
    )
    union = fb.union_with_base(base, fresh)
    back = pd.read_parquet(io.BytesIO(fb.snapshot_bytes(union)))
    assert back.dtypes.astype(str).to_dict() == base.dtypes.astype(str).to_dict()
    assert str(back["seats"].dtype) == "Int64"
    assert str(back["plan"].dtype) == "category"
    assert str(back["active"].dtype) == "bool"
    assert str(back["spend"].dtype) == "float64"
    assert str(back["since"].dtype).startswith("datetime64")
    assert back["since"].dt.tz is not None
    assert list(back["plan"].cat.categories) == ["basic", "pro", "enterprise"]
    assert back["plan"].tolist() == ["basic", "pro", "enterprise", "basic"]
    assert back["seats"].isna().tolist() == [False, True, False, True]
    assert back["region"].tolist()[2:] == [pd.NA, "us"]
    assert back["spend"].isna().tolist() == [False, True, True, False]
    assert back["since"].iloc[3] == pd.Timestamp("2026-03-02T12:00:00Z")
    assert back["visits"].tolist() == [3, 4, 5, 6]


def test_a_missing_logged_value_makes_an_int_or_bool_base_column_nullable():
    base = pd.DataFrame({"n": np.array([1, 2]), "b": [True, False]})
    union = fb.union_with_base(
        base, pd.DataFrame({"n": [None, 3], "b": [True, None]}, dtype=object)
    )
    assert (str(union["n"].dtype), str(union["b"].dtype)) == ("Int64", "boolean")
    assert union["n"].isna().tolist() == [False, False, True, False]
    assert union["b"].isna().tolist() == [False, False, False, True]


def test_a_logged_value_of_another_type_fails_naming_the_column():
    base = pd.DataFrame({"n": np.array([1, 2])})
    with pytest.raises(DatasetInvalid, match=r"column .n.*.many.*int64"):
        fb.union_with_base(base, pd.DataFrame({"n": ["many"]}, dtype=object))


def test_columns_that_differ_between_base_and_log_fail_clearly():
    with pytest.raises(DatasetInvalid, match="has no column 'x3'"):
        fb.check_columns(["x1", "label"], ["x1", "x3"], "label", "s3://b/base/", [],
                         explicit=True)  # fmt: skip
    with pytest.raises(DatasetInvalid, match="logs features 'x9' that the base"):
        fb.check_columns(["x1", "label"], ["x1"], "label", "s3://b/base/", ["x1", "x9"],
                         explicit=False)  # fmt: skip
    fb.check_columns(["x1", "label"], ["x1"], "label", "s3://b/", ["x1", "x9"], explicit=True)


def test_label_classes_prefer_the_base_spelling():
    assert fb.label_classes(["1", "yes", None], [1, np.int64(0)]) == (0, 1, "yes")


# ---------------------------------------------------------------- the snapshot


def test_a_snapshot_unions_base_and_labelled_traffic_and_records_its_origin(store, spec):
    log_traffic(store)
    snapshot = build(store, feedback_spec(spec))
    assert snapshot.uri.startswith("s3://data/snapshots/churn/")
    assert snapshot.uri.endswith("/data.parquet")
    key = snapshot.uri.removeprefix("s3://data/")
    frame = pd.read_parquet(io.BytesIO(store.get_bytes(key)))
    assert len(frame) == 400 + 120
    assert list(frame.columns) == ["x1", "x2", "color", "label"]
    origin = snapshot.origin
    assert (origin["feedbackRows"], origin["baseRows"], origin["overCap"]) == (120, 400, 0)
    assert origin["base"]["uri"] == "s3://data/sets/churn/"
    assert origin["base"]["fingerprint"].startswith("sha256:")
    assert origin["join"]["matched"] == 120
    assert origin["existed"] is False


def test_the_same_inputs_give_the_same_key_and_one_changed_label_another(store, spec):
    log_traffic(store)
    spec = feedback_spec(spec, maxRows=50)
    first = build(store, spec)
    again = build(store, spec)
    assert again.uri == first.uri
    assert again.origin["existed"] is True
    write_feedback(store, "churn", [{"id": "r0", "row": 0, "label": "no",
                                     "time": "2026-12-05T11:59:59Z"}], NOW)  # fmt: skip
    changed = build(store, spec)
    assert make_frame(120, seed=1)["label"].iloc[0] == "yes"  # so the new label flips it
    assert changed.uri != first.uri


def test_the_cap_and_window_bound_the_feedback_rows(store, spec):
    log_traffic(store)
    assert build(store, feedback_spec(spec, maxRows=30)).origin["feedbackRows"] == 30
    assert build(store, feedback_spec(spec, sinceSeconds=600)).origin["feedbackRows"] == 10


def test_unknown_ids_and_other_models_labels_are_counted_not_fatal(store, spec):
    log_traffic(store)
    write_feedback(store, "churn", [{"id": "nobody", "row": 0, "label": "yes"}], NOW)
    write_feedback(store, "other", [{"id": "r1", "row": 0, "label": "yes"}], NOW)
    origin = build(store, feedback_spec(spec)).origin
    assert origin["join"]["unknownIds"] == 1
    assert origin["feedbackRows"] == 120


def test_every_version_logged_in_the_window_is_read(store, spec):
    log_traffic(store, 40, version=1, seed=1)
    frame = make_frame(40, seed=2)
    rows = [{"ts": (NOW - timedelta(seconds=5 + i)).isoformat(), "request_id": f"v2-{i}",
             "row": 0, "version": 2, "prediction": "no",
             "features": {"x1": None if pd.isna(r["x1"]) else r["x1"], "x2": r["x2"],
                          "color": r["color"]}}
            for i, r in enumerate(frame.to_dict("records"))]  # fmt: skip
    write_batch(store, "churn", 2, rows, NOW)
    labels = [{"id": f"v2-{i}", "label": r} for i, r in enumerate(frame["label"])]
    write_feedback(store, "churn", labels, NOW)
    assert build(store, feedback_spec(spec)).origin["feedbackRows"] == 80


def test_a_dropped_feature_fails_naming_it_and_the_setting(store, spec):
    log_traffic(store, dropped=("color",))
    with pytest.raises(DatasetInvalid, match=r"'color'.*spec\.inferenceLog\.drop"):
        build(store, feedback_spec(spec))


def test_a_hashed_feature_fails_unless_the_features_leave_it_out(store, spec):
    log_traffic(store, hashed=("color",))
    with pytest.raises(DatasetInvalid, match=r"'color'.*spec\.inferenceLog\.hash"):
        build(store, feedback_spec(spec))
    spec = feedback_spec(spec)
    spec["dataset"]["features"] = ["x1", "x2"]
    spec["preprocessing"] = {"categorical": {"columns": []}}
    snapshot = build(store, spec)
    frame = pd.read_parquet(io.BytesIO(store.get_bytes(snapshot.uri.removeprefix("s3://data/"))))
    assert list(frame.columns) == ["x1", "x2", "label"]
    assert len(frame) == 520


def test_no_labelled_rows_without_the_base_is_dataset_invalid(store, spec):
    with pytest.raises(DatasetInvalid, match=r"no labelled served rows.*includeBase is false"):
        build(store, feedback_spec(spec, includeBase=False))


def test_without_the_base_only_traffic_is_trained_on_and_the_base_is_not_read(store, spec):
    log_traffic(store)
    spec = feedback_spec(spec, includeBase=False)
    spec["dataset"]["uri"] = "s3://data/nothing-here/"
    snapshot = build(store, spec)
    assert (snapshot.feedback_rows, snapshot.base_rows) == (120, 0)
    assert snapshot.origin["base"] is None


# ---------------------------------------------------------------- the run and its replay


def test_a_feedback_run_replays_from_its_snapshot_with_the_same_fingerprint_and_model(store, spec):
    log_traffic(store)
    spec = feedback_spec(spec)
    spec["evaluation"]["mustBeat"] = "none"
    first = run_training(TrainingConfig.from_spec(spec, training_job="tj"), store,
                         progress=quiet, now=NOW)  # fmt: skip
    snapshot = first.dataset["snapshot"]
    assert (first.dataset["feedbackRows"], first.dataset["baseRows"]) == (120, 400)
    replay = dict(spec, dataset={"uri": snapshot, "format": "parquet", "target": "label"})
    second = run_training(TrainingConfig.from_spec(replay, training_job="tj2"), store,
                          progress=quiet)  # fmt: skip
    assert second.dataset["fingerprint"] == first.dataset["fingerprint"]
    assert second.sha256 == first.sha256
    manifest = read_manifest(store, "churn", first.version)
    assert manifest["dataset"]["uri"] == snapshot
    assert manifest["snapshot"]["window"]["end"] == "2026-12-05T12:00:00.000000Z"
    assert manifest["snapshot"]["base"]["uri"] == "s3://data/sets/churn/"
    assert json.loads(json.dumps(first.summary()))["libraries"]["scikit-learn"]
