"""Streamed training (issue 19): the chunked reader, the hash split, the bottom-k sample, the
single-pass fingerprint and facts, and partial_fit reproducible whatever the file layout.

Every dataset is real-shaped Parquet written by pandas/pyarrow (category with an ID-like and a
rare level, nullable Int64, string, nullable boolean, UTC datetime, float with NaN, ~5% missing
in each), cut into several objects and row groups.
"""

from __future__ import annotations

import copy
import io
import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from tests.kit.datasets import real_shaped_frame
from tests.kit.memory_store import MemoryObjectStore

from continuum.api import TrainingJobSpec
from continuum.controllers.trainingjob.status import dataset_fields
from continuum.errors import ConfigError, DatasetInvalid, DatasetTooLarge
from continuum.modelio import coerce_features, load_verified_model
from continuum.storage import list_dataset_objects, read_manifest
from continuum.trainer import stream
from continuum.trainer.config import TrainingConfig
from continuum.trainer.dataset import Downloads, choose_mode, load_dataset
from continuum.trainer.evaluation import evaluate
from continuum.trainer.run import run_training
from continuum.trainer.stream import BottomK, holdout_mask, iter_chunks, narrow, row_keys
from continuum.trainer.validation import DatasetFacts, as_labels, validate_dataset, validate_facts

ROWS = 6_000
FEATURES = ["plan", "tenure", "region", "autopay", "charges"]
SPEC = {
    "model": "churn",
    "dataset": {
        "uri": "s3://data/sets/churn/",
        "target": "churned",
        "format": "parquet",
        "mode": "stream",
        "features": FEATURES,
        "sampleRows": 1_500,
        "validation": {"maxNullFraction": 0.2},
    },
    "estimator": {"class": "SGDClassifier", "params": {}},
    "preprocessing": {"categorical": {"columns": ["plan", "region"]}},
    "split": {"testSize": 0.25, "seed": 11},
    "evaluation": {"metric": "roc_auc", "mustBeat": "current"},
    "storage": {"bucket": "data"},
}


def shaped(rows: int = ROWS, seed: int = 3) -> pd.DataFrame:
    """real_shaped_frame with a label that depends on the features (so metrics mean something)."""
    frame = real_shaped_frame(rows, seed)
    rng = np.random.default_rng(seed)
    signal = (frame["charges"].fillna(70) - 70) / 20 - frame["tenure"].astype(float).fillna(36) / 36
    signal += (frame["plan"] == "basic").astype(float) + rng.normal(scale=0.5, size=rows)
    frame["churned"] = np.where(signal > 0, "yes", "no")
    return frame


def parquet(frame: pd.DataFrame, row_group: int) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, engine="pyarrow", row_group_size=row_group)
    return buffer.getvalue()


def store_of(frame: pd.DataFrame, objects: int = 3, row_group: int = 700) -> MemoryObjectStore:
    store = MemoryObjectStore("data")
    bounds = np.linspace(0, len(frame), objects + 1).astype(int)
    for number, (low, high) in enumerate(itertools.pairwise(bounds)):
        data = parquet(frame.iloc[low:high], row_group)
        store.put_bytes(f"sets/churn/part-{number:02d}.parquet", data)
    return store


def spec_of(**dataset) -> dict:
    spec = copy.deepcopy(SPEC)
    spec["dataset"].update(dataset)
    return spec


def train(store, spec, *, champion=None, lines=None):
    def progress(event, **fields):
        if lines is not None:
            lines.append({"event": event, **fields})

    config = TrainingConfig.from_spec(spec, training_job="tj")
    return run_training(config, store, champion_version=champion, progress=progress)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    # 1,000-row chunks: a 6,000-row dataset spans several chunks, objects and row groups.
    monkeypatch.setattr(stream, "CHUNK_ROWS", 1_000)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return shaped()


def local_copies(store, tmp_path) -> tuple[Downloads, list[str]]:
    objects = list_dataset_objects(store, SPEC["dataset"]["uri"])
    downloads = Downloads(store, SPEC["dataset"]["uri"], objects, str(tmp_path))
    return downloads, [item.key for item in objects]


# ---------------------------------------------------------------------------- reader


def test_chunks_are_fixed_global_rows_with_the_files_dtypes(frame, tmp_path):
    downloads, keys = local_copies(store_of(frame, objects=3, row_group=700), tmp_path)
    columns = ["churned", *FEATURES]
    chunks = list(iter_chunks(downloads, keys, columns, rows=1_000))
    assert [(c.start, c.rows) for c in chunks] == [(i * 1_000, 1_000) for i in range(6)]
    read = pd.concat([chunk.frame() for chunk in chunks])
    assert list(read.columns) == columns  # only the columns asked for (no signed_up, no id)
    assert list(read.index) == list(range(ROWS))
    expected = frame[columns]
    assert {c: str(t) for c, t in read.dtypes.items()} == {
        "churned": "str", "plan": "category", "tenure": "Int64", "region": "string",
        "autopay": "boolean", "charges": "float64",
    }  # fmt: skip
    for column in columns:
        assert read[column].astype(object).equals(expected[column].astype(object)), column


def test_a_chunk_ends_where_asked_not_at_row_group_or_object_edges(frame, tmp_path):
    downloads, keys = local_copies(store_of(frame, objects=2, row_group=333), tmp_path)
    sizes = [c.rows for c in iter_chunks(downloads, keys, ["charges"], rows=2_500)]
    assert sizes == [2_500, 2_500, 1_000]


def test_an_object_without_a_needed_column_is_named(frame, tmp_path):
    store = store_of(frame, objects=2)
    store.put_bytes("sets/churn/part-01.parquet", parquet(frame.drop(columns="plan"), 500))
    downloads, keys = local_copies(store, tmp_path)
    with pytest.raises(DatasetInvalid, match=r"part-01.parquet lacks column\(s\) \['plan'\]"):
        list(iter_chunks(downloads, keys, ["plan"]))


def test_a_csv_object_read_as_parquet_says_so(frame, tmp_path):
    store = MemoryObjectStore("data")
    store.put_bytes("sets/churn/a.csv", frame.to_csv(index=False).encode())
    downloads, keys = local_copies(store, tmp_path)
    with pytest.raises(DatasetInvalid, match=r"a\.csv is not valid parquet"):
        list(iter_chunks(downloads, keys, ["plan"]))


# ---------------------------------------------------------------------------- split, sample


def test_the_holdout_is_the_same_rows_whatever_the_chunking():
    whole = holdout_mask(0, 100_000, 11, 0.2)
    pieces = np.concatenate([holdout_mask(s, 7_919, 11, 0.2) for s in range(0, 100_000, 7_919)])
    assert np.array_equal(whole, pieces[:100_000])
    assert 0.195 < whole.mean() < 0.205
    assert not np.array_equal(whole, holdout_mask(0, 100_000, 12, 0.2))  # the seed matters


def test_row_keys_of_the_salts_are_independent():
    split, sample = row_keys(0, 50_000, 1, 1), row_keys(0, 50_000, 1, 2)
    assert abs(np.corrcoef(split.astype(float), sample.astype(float))[0, 1]) < 0.02


def offer_in_chunks(sampler: BottomK, keys: np.ndarray, size: int, order: list[int]) -> None:
    table = pa.table({"i": np.arange(len(keys))})
    starts = list(range(0, len(keys), size))
    for position in order:
        low = starts[position]
        index = np.arange(low, min(low + size, len(keys)))
        sampler.offer(keys[index], index, table.slice(low, len(index)))


def test_bottom_k_is_the_smallest_keys_whatever_the_chunks_and_their_order():
    keys = row_keys(0, 20_000, 5, stream.SAMPLE_SALT)
    expected = np.sort(np.argsort(keys, kind="stable")[:1_000])
    for size, order in ((1_000, list(range(20))), (3_001, [6, 0, 5, 1, 4, 2, 3]), (20_000, [0])):
        sampler = BottomK(1_000)
        offer_in_chunks(sampler, keys, size, order)
        index, table = sampler.result()
        assert np.array_equal(index, expected)
        assert table is not None
        assert table.column("i").to_pylist() == expected.tolist()


def test_bottom_k_is_a_uniform_sample_and_smaller_than_asked_when_rows_are_few():
    keys = row_keys(0, 100_000, 9, stream.SAMPLE_SALT)
    sampler = BottomK(5_000)
    offer_in_chunks(sampler, keys, 4_096, list(range(25)))
    index, _ = sampler.result()
    assert len(index) == 5_000
    assert abs(index.mean() - 50_000) < 1_500  # 3.5 standard errors of a uniform mean
    few = BottomK(5_000)
    offer_in_chunks(few, keys[:300], 100, [0, 1, 2])
    assert len(few.result()[0]) == 300


def test_narrowing_is_lossless_and_smaller():
    table = pa.table({
        "small": pa.array([1, -5, 100, None], pa.int64()),
        "wide": pa.array([1, 2**40, 3, 4], pa.int64()),
        "text": pa.array(["red", "blue", "red", None]),
        "number": pa.array([0.1, float("nan"), 2.5, None]),
    })  # fmt: skip
    narrowed = narrow(table)
    assert [str(f.type) for f in narrowed.schema] == [
        "int8", "int64", "dictionary<values=string, indices=int32, ordered=0>", "double"
    ]  # fmt: skip
    for name in table.column_names:  # the same values once cast back (pandas: NaN equals NaN)
        back = narrowed.column(name).cast(table.schema.field(name).type)
        assert back.to_pandas().equals(table[name].to_pandas()), name
    assert narrowed.nbytes < table.nbytes


# ---------------------------------------------------------------------------- single pass


def test_streamed_fingerprint_and_schema_equal_the_in_memory_ones(frame, tmp_path):
    store = store_of(frame)
    spec = TrainingJobSpec.model_validate(SPEC)
    whole = load_dataset(store, spec.dataset.model_copy(update={"mode": "memory"}), max_bytes=10**9)
    downloads, keys = local_copies(store, tmp_path)
    facts = DatasetFacts(list(frame.columns))
    for chunk in iter_chunks(downloads, keys, ["churned", *FEATURES]):
        facts.add(chunk.frame(), spec, "classification")
    assert downloads.fingerprint() == whole.fingerprint
    in_memory = DatasetFacts.of_frame(whole.frame, spec, "classification")
    assert facts.rows == in_memory.rows == ROWS
    assert facts.classes == in_memory.classes
    assert {n: f.nulls for n, f in facts.facts.items()} == {
        n: in_memory.facts[n].nulls for n in facts.facts
    }
    assert validate_facts(facts, spec, "classification") == validate_dataset(
        whole.frame, spec, "classification"
    )


def test_a_streamed_null_target_fails_with_the_in_memory_message(frame):
    broken = frame.copy()
    broken.loc[4_321, "churned"] = None
    with pytest.raises(DatasetInvalid, match="column 'churned': target has 1 empty value"):
        train(store_of(broken), spec_of())


# ---------------------------------------------------------------------------- training


def test_partial_fit_is_reproducible_and_independent_of_the_file_layout(frame):
    one = train(store_of(frame, objects=1, row_group=1_000), spec_of())
    again = train(store_of(frame, objects=1, row_group=1_000), spec_of())
    other_layout = train(store_of(frame, objects=4, row_group=333), spec_of())
    assert one.sha256 == again.sha256 == other_layout.sha256
    assert one.dataset["fingerprint"] != other_layout.dataset["fingerprint"]  # other bytes
    assert one.metrics == other_layout.metrics
    assert train(store_of(frame), spec_of(passes=2)).sha256 != one.sha256


def test_partial_fit_uses_every_training_row_and_says_so(frame):
    store, lines = store_of(frame), []
    result = train(store, spec_of(passes=2), lines=lines)
    manifest = read_manifest(store, "churn", result.version)
    test = holdout_mask(0, ROWS, 11, 0.25)
    assert manifest["training"] == {
        "method": "partial_fit", "passes": 2, "trainRows": int((~test).sum()),
        "preprocessingSampleRows": 1_500,
    }  # fmt: skip
    assert manifest["split"] == {
        "testSize": 0.25, "seed": 11, "stratify": False, "method": "hash",
        "trainRows": int((~test).sum()), "testRows": int(test.sum()),
    }  # fmt: skip
    assert manifest["dataset"]["mode"] == "stream"
    assert "sampledRows" not in manifest["dataset"]
    phases = [(line["phase"], line["rows"]) for line in lines if line["event"] == "rows_read"]
    assert phases == [
        ("scan", ROWS), ("fit pass 1/2", ROWS), ("fit pass 2/2", ROWS), ("evaluate", ROWS)
    ]  # fmt: skip
    loaded = load_verified_model(store, "churn", result.version)
    assert loaded.pipeline.named_steps["estimator"].classes_.tolist() == ["no", "yes"]


def test_streamed_metrics_are_scikit_learns_on_the_whole_holdout(frame):
    store = store_of(frame)
    result = train(store, spec_of())
    loaded = load_verified_model(store, "churn", result.version)
    holdout = frame[holdout_mask(0, ROWS, 11, 0.25)]
    features = coerce_features(holdout, loaded.manifest["features"])
    expected = evaluate(
        loaded.pipeline, features, as_labels(holdout["churned"], "classification"),
        "classification",
    )  # fmt: skip
    assert result.metrics == expected
    assert result.metrics["roc_auc"] > 0.8


def test_the_champion_is_scored_on_the_same_streamed_holdout(frame):
    store = store_of(frame)
    first = train(store, spec_of())
    second = train(store, spec_of(passes=3), champion=first.version)
    champion = second.manifest["evaluation"]["champion"]
    assert champion == {"version": 1, "metrics": first.metrics, "error": None}


@pytest.mark.parametrize("estimator", ["RandomForestClassifier", "HistGradientBoostingClassifier"])
def test_other_estimators_fit_a_seeded_sample_reported_in_manifest_and_status(frame, estimator):
    spec = spec_of()
    spec["estimator"] = {"class": estimator, "params": {"max_depth": 4}}
    store = store_of(frame)
    result = train(store, spec)
    manifest = read_manifest(store, "churn", result.version)
    train_rows = int((~holdout_mask(0, ROWS, 11, 0.25)).sum())
    assert manifest["training"] == {
        "method": "sample", "sampleRows": 1_500, "sampledRows": 1_500, "trainRows": train_rows
    }  # fmt: skip
    assert result.dataset == {
        "uri": SPEC["dataset"]["uri"], "fingerprint": result.dataset["fingerprint"],
        "rows": ROWS, "mode": "stream", "sampledRows": 1_500,
    }  # fmt: skip
    assert dataset_fields(result.summary()["dataset"]) == {
        "fingerprint": result.dataset["fingerprint"], "rows": ROWS, "mode": "stream",
        "sampledRows": 1_500,
    }  # fmt: skip
    assert train(store_of(frame, objects=2, row_group=512), spec).sha256 == result.sha256


def test_the_baseline_is_a_seeded_sample_of_every_row(frame):
    store = store_of(frame)
    result = train(store, spec_of())
    reference = pd.read_parquet(
        io.BytesIO(store.get_bytes(f"models/churn/{result.version}/baseline/reference.parquet"))
    )
    assert list(reference.columns) == [*FEATURES, "churned"]
    keys = row_keys(0, ROWS, 11, stream.BASELINE_SALT)
    chosen = np.sort(np.argsort(keys, kind="stable")[:5_000])  # the 5,000-row cap
    expected = frame.iloc[chosen][[*FEATURES, "churned"]].reset_index(drop=True)
    assert len(reference) == 5_000
    for column in reference.columns:
        assert reference[column].astype(object).equals(expected[column].astype(object)), column


def test_sgd_regressor_streams_too(frame):
    spec = spec_of()
    spec["dataset"]["target"], spec["dataset"]["features"] = "charges", ["plan", "tenure"]
    spec["dataset"]["validation"] = {"maxNullFraction": 0.2}
    regression = frame.dropna(subset=["charges"]).reset_index(drop=True)
    spec["estimator"] = {"class": "SGDRegressor", "params": {}}
    spec["evaluation"] = {"metric": "rmse", "mustBeat": "none"}
    spec["preprocessing"] = {"categorical": {"columns": ["plan"]}}
    result = train(store_of(regression), spec)
    assert set(result.metrics) == {"r2", "rmse", "mae"}
    assert train(store_of(regression, objects=1), spec).sha256 == result.sha256


# ---------------------------------------------------------------------------- mode


def test_auto_streams_parquet_over_the_limit_and_refuses_csv_over_it(frame):
    store = store_of(frame)
    spec = TrainingJobSpec.model_validate(spec_of(mode="auto"))
    objects = list_dataset_objects(store, spec.dataset.uri)
    size = sum(item.size for item in objects)
    assert choose_mode(spec.dataset, objects, size) == "memory"
    assert choose_mode(spec.dataset, objects, size - 1) == "stream"
    memory = spec.dataset.model_copy(update={"mode": "memory"})
    with pytest.raises(DatasetTooLarge, match=r"set spec\.dataset\.mode to stream"):
        choose_mode(memory, objects, size - 1)
    as_csv = spec.dataset.model_copy(update={"format": "csv"})
    with pytest.raises(DatasetTooLarge, match="store it as Parquet"):
        choose_mode(as_csv, objects, size - 1)


def test_stream_mode_needs_parquet():
    with pytest.raises(ConfigError, match=r"dataset\.mode stream needs dataset\.format parquet"):
        TrainingConfig.from_spec(spec_of(format="csv"))


def test_an_in_memory_run_records_its_mode(frame):
    store = store_of(frame)
    result = train(store, spec_of(mode="memory"))
    assert result.dataset["mode"] == "memory"
    assert "sampledRows" not in result.dataset
    assert "training" not in result.manifest
