"""Per-category conversions against the row-by-row ones they replace (issue 19).

The "row by row" functions below are the trainer's code before the change, kept here as the
reference: every helper must give exactly their result on data shaped like real datasets.
"""

import io

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from continuum.distinct import per_category, present_values, sorted_text_codes, text_counts
from continuum.modelio import coerce_features
from continuum.trainer.validation import CLASSIFICATION, as_labels

ROWS = 300


def row_by_row_strings(series):
    # modelio._as_category_strings before issue 19
    def missing(value):
        return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA

    values = [str(v) if not missing(v) else np.nan for v in series.tolist()]
    return pd.Series(values, index=series.index, dtype=object)


def row_by_row_labels(target):
    return target.astype(str).astype(object)


def row_by_row_counts(series):
    return {str(k): int(v) for k, v in series.dropna().astype(str).value_counts().items()}


def columns():
    """Columns as real datasets bring them: each dtype, with nulls, plus its category form."""
    rng = np.random.default_rng(3)
    text = rng.choice(["red", "green", "blue", "é-accent", "Zed"], ROWS).astype(object)
    text[::17] = None
    floats = np.round(rng.normal(size=ROWS), 1)
    floats[::13] = np.nan
    floats[5] = -0.0
    whole = pd.array(rng.integers(0, 6, ROWS), dtype="Int64")
    whole[::11] = pd.NA
    days = pd.Series(pd.to_datetime("2026-01-01") + pd.to_timedelta(rng.integers(0, 4, ROWS), "D"))
    days[::19] = pd.NaT
    plain = {
        "text_object": pd.Series(text, dtype=object),
        "text_string": pd.Series(text, dtype="string"),
        "text_str": pd.Series(text, dtype="str"),
        "float_nan": pd.Series(floats),
        "int_nullable": pd.Series(whole),
        "int": pd.Series(rng.integers(0, 4, ROWS)),
        "bool": pd.Series(rng.random(ROWS) > 0.5),
        "datetime": days,
    }
    found = dict(plain)
    for name, series in plain.items():
        found[f"{name}_category"] = series.astype("category")
    # An int category with NaN (astype(str) writes its values as "0.0"), categories never
    # used, and a category column of a Parquet round trip.
    found["int_category_nan"] = pd.Series(
        pd.Categorical(rng.integers(0, 3, ROWS), categories=[0, 1, 2])
    ).where(rng.random(ROWS) > 0.1)
    found["category_unused"] = pd.Series(
        pd.Categorical(text, categories=["blue", "green", "red", "unused", "é-accent", "Zed"])
    )
    frame = pd.DataFrame({"c": pd.Categorical(text)})
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    found["category_parquet"] = pd.read_parquet(io.BytesIO(buffer.getvalue()))["c"]
    return found


COLUMNS = columns()
CATEGORICAL = [name for name in COLUMNS if "category" in name]


def shuffled_index(series):
    """As after a split: rows in a random order under their original labels."""
    order = np.random.default_rng(1).permutation(len(series))
    return series.iloc[order].rename("col")


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_feature_strings_equal_row_by_row(name):
    series = shuffled_index(COLUMNS[name])
    expected = row_by_row_strings(series)
    got = coerce_features(series.to_frame(), [{"name": "col", "kind": "categorical"}])["col"]
    assert got.dtype == object
    pd.testing.assert_series_equal(got, expected, check_names=False)
    assert list(got.index) == list(series.index)


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_labels_equal_row_by_row(name):
    series = shuffled_index(COLUMNS[name])
    pd.testing.assert_series_equal(as_labels(series, CLASSIFICATION), row_by_row_labels(series))


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_text_counts_equal_value_counts(name):
    series = COLUMNS[name]
    counted = {}
    for label, rows in text_counts(series):
        counted[label] = counted.get(label, 0) + rows
    assert counted == row_by_row_counts(series)


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_present_values_have_the_same_distinct_text(name):
    series = COLUMNS[name]
    expected = set(series.dropna().astype(str).unique())
    assert set(present_values(series).astype(str).unique()) == expected


def test_present_values_leave_out_unused_categories():
    assert set(present_values(COLUMNS["category_unused"])) == {
        "blue", "green", "red", "é-accent", "Zed"
    }  # fmt: skip


@pytest.mark.parametrize("name", CATEGORICAL)
def test_rows_share_one_object_per_category(name):
    strings = per_category(COLUMNS[name], row_by_row_strings)
    texts = {id(v) for v in strings.dropna()}
    assert len(texts) == strings.dropna().nunique()


def test_per_category_refuses_a_conversion_that_is_not_elementwise():
    with pytest.raises(ValueError, match="elementwise"):
        per_category(COLUMNS["text_object_category"], lambda s: s.dropna())


def test_per_category_of_an_empty_column():
    empty = pd.Series(pd.Categorical([], categories=["a"]))
    assert per_category(empty, row_by_row_strings).tolist() == []


@pytest.mark.parametrize("classes", [2, 3, 7])
@pytest.mark.parametrize("dtype", ["category", "str", "object"])
def test_stratifying_on_codes_draws_the_same_rows(classes, dtype):
    rng = np.random.default_rng(classes)
    names = np.array(["yes", "no", "Maybe", "é", "z", "10", "9"][:classes], dtype=object)
    labels = pd.Series(names[rng.integers(0, classes, 2000)]).astype(dtype)
    text = labels.astype(str)
    rows = np.arange(len(labels))
    before = train_test_split(rows, test_size=0.2, random_state=7, stratify=text)
    after = train_test_split(rows, test_size=0.2, random_state=7,
                             stratify=sorted_text_codes(text))  # fmt: skip
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)


def test_sorted_text_codes_follow_the_sorted_labels():
    codes = sorted_text_codes(pd.Series(["b", "a", "é", "B", "a"], dtype="str"))
    assert codes.tolist() == [2, 1, 3, 0, 1]


def test_sorted_text_codes_refuse_missing_labels():
    with pytest.raises(ValueError, match="without nulls"):
        sorted_text_codes(pd.Series(["a", None], dtype="str"))
