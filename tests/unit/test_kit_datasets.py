"""The dataset factory of the test kit: seeded, shaped as its callers rely on."""

from __future__ import annotations

import csv
import hashlib
import io

import numpy as np
import pandas as pd
import pytest

from tests.kit.datasets import (
    FEATURES,
    PLANS,
    RARE_PLAN,
    as_csv,
    churn_dataset,
    customers,
    dataset_csv,
    real_shaped_frame,
    real_shaped_parquet,
    two_class_rows,
)

# The cluster tier's training CSV before it moved into the kit: the figures the cluster tests
# assert (accuracy, row counts) were measured on exactly these bytes.
DATASET_CSV_SHA256 = "ee419737f084c9893fb5ada9c171bab9bf487cfa0171d8ee0a1b62c14c900f0e"


def test_the_training_csv_is_the_one_the_cluster_tests_were_measured_on() -> None:
    assert hashlib.sha256(dataset_csv()).hexdigest() == DATASET_CSV_SHA256


def test_the_training_csv_has_a_header_and_can_drop_a_column() -> None:
    rows = list(csv.DictReader(io.StringIO(dataset_csv(drop="label").decode())))
    assert len(rows) == 240
    assert list(rows[0]) == list(FEATURES)


def test_two_classes_alternate_and_stand_gap_apart() -> None:
    frame = pd.DataFrame(two_class_rows(2000, 1, gap=3.0))
    assert frame["label"].tolist()[:4] == ["no", "yes", "no", "yes"]
    means = frame.groupby("label")["sepal"].mean()
    assert means["yes"] - means["no"] == pytest.approx(3.0, abs=0.15)
    assert set(frame["colour"]) == {"red", "green", "blue"}


def test_shift_moves_every_numeric_feature_and_zero_gap_is_one_class() -> None:
    frame = pd.DataFrame(two_class_rows(4000, 2, shift=2.0, gap=0.0, decimals=None))
    for name in FEATURES[:3]:
        assert frame[name].mean() == pytest.approx(2.0, abs=0.1)
        assert frame.groupby("label")[name].mean().diff().abs().iloc[-1] < 0.15


def test_labels_colours_and_rounding_are_parameters() -> None:
    rows = two_class_rows(10, 3, colours="rgb", labels=(0, 1), decimals=1)
    assert {row["label"] for row in rows} == {0, 1}
    assert {row["colour"] for row in rows} <= {"r", "g", "b"}
    assert all(round(row["sepal"], 1) == row["sepal"] for row in rows)
    assert as_csv(rows).decode().splitlines()[0] == "sepal,petal,width,colour,label"


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data() -> None:
    assert two_class_rows(50, 4) == two_class_rows(50, 4)
    assert two_class_rows(50, 4) != two_class_rows(50, 5)
    pd.testing.assert_frame_equal(churn_dataset(100, 9), churn_dataset(100, 9))
    assert not churn_dataset(100, 9).equals(churn_dataset(100, 10))


def test_customers_shift_tenure_and_charges_in_standard_deviations() -> None:
    calm, moved = customers(5000, 1), customers(5000, 1, shift=1.0)
    assert calm["tenure"].mean() == pytest.approx(36, abs=1)
    assert moved["tenure"].mean() - calm["tenure"].mean() == pytest.approx(12, abs=1)
    assert moved["charges"].mean() - calm["charges"].mean() == pytest.approx(20, abs=1.5)
    assert set(calm["plan"]) == set(PLANS)


def test_a_training_export_has_whole_months_and_a_label_that_follows_the_score() -> None:
    frame = churn_dataset(4000, 1)
    assert frame["tenure"].between(0, 71).all()
    assert (frame["tenure"] == frame["tenure"].round()).all()
    churned = frame["churned"] == "yes"
    assert frame.loc[churned, "tenure"].mean() < frame.loc[~churned, "tenure"].mean()
    basic = frame["plan"] == "basic"
    assert churned[basic].mean() > churned[~basic].mean()


def test_customers_can_keep_drawing_from_a_generator() -> None:
    rng = np.random.default_rng(3)
    first, second = customers(10, rng), customers(10, rng)
    assert not first.equals(second)
    pd.testing.assert_frame_equal(first, customers(10, 3))


REAL_DTYPES = {
    "customer_id": "category",
    "plan": "category",
    "tenure": "Int64",
    "region": "string",
    "autopay": "boolean",
    "signed_up": "datetime64[us, UTC]",
    "charges": "float64",
}


def test_real_shaped_parquet_reads_back_with_every_dtype() -> None:
    back = pd.read_parquet(io.BytesIO(real_shaped_parquet(500, 1)))
    assert {name: str(back[name].dtype) for name in REAL_DTYPES} == REAL_DTYPES
    pd.testing.assert_frame_equal(back, real_shaped_frame(500, 1))


def test_real_shaped_columns_miss_values_and_hold_a_rare_and_an_id_like_category() -> None:
    frame = real_shaped_frame(4000, 2)
    for name in ("tenure", "region", "autopay", "signed_up", "charges"):
        assert 0.02 < frame[name].isna().mean() < 0.08, name
    assert np.isnan(frame["charges"].to_numpy()).any()
    assert 0 < (frame["plan"] == RARE_PLAN).mean() < 0.01
    assert frame["customer_id"].nunique() == len(frame)
    assert frame["customer_id"].notna().all()
    assert set(frame["churned"]) == {"yes", "no"}


def test_real_shaped_data_is_seeded() -> None:
    assert real_shaped_parquet(300, 5) == real_shaped_parquet(300, 5)
    assert not real_shaped_frame(300, 5).equals(real_shaped_frame(300, 6))
