"""Label files as users' systems write them (pandas CSV, pyarrow Parquet, JSON lines): read,
checked, bad rows named by file and row, duplicates resolved by the documented rule."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from tests.kit.memory_store import MemoryObjectStore

from continuum.errors import ConfigError
from continuum.storage.labels import (
    COLUMNS,
    Labels,
    LabelSchema,
    empty_frame,
    parse_file,
    parse_files,
    read_labels,
    resolve_duplicates,
)
from continuum.storage.layout import labels_prefix

YES_NO = LabelSchema(("no", "yes"))
ZERO_ONE = LabelSchema((0, 1))
REGRESSION = LabelSchema(None)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow", index=False)
    return buffer.getvalue()


def jsonl_bytes(records: list[dict]) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


def parse(key: str, data: bytes, schema: LabelSchema = YES_NO) -> tuple[pd.DataFrame, Labels]:
    into = Labels(empty_frame())
    return parse_file(key, data, schema, into), into


def test_the_prefix_is_per_model_and_checked():
    assert labels_prefix("churn") == "labels/churn/"
    with pytest.raises(ConfigError, match="cannot be used in storage keys"):
        labels_prefix("../x")


def test_a_pandas_csv_with_every_column():
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "b", "7"],
            "row": [0, 0, 1, None],  # float column with NaN, as pandas writes it
            "label": ["yes", "no", "yes", "no"],
            "time": [
                "2026-12-01T10:00:00Z",
                "2026-12-01 11:00:00",
                None,
                "2026-12-02T00:00:00+02:00",
            ],
        }
    )
    got, into = parse("labels/churn/day1.csv", csv_bytes(frame))
    assert into.rejected == 0
    assert list(got.columns) == list(COLUMNS)
    assert got["id"].tolist() == ["a", "b", "b", "7"]
    assert got["row"].tolist() == [0, 0, 1, 0]  # empty row: 0
    assert got["row"].dtype == np.int64
    assert got["label"].tolist() == ["yes", "no", "yes", "no"]
    assert str(got["time"].dtype) == "datetime64[ns, UTC]"
    assert got["time"].iloc[1] == pd.Timestamp("2026-12-01T11:00:00Z")  # no zone: UTC
    assert pd.isna(got["time"].iloc[2])
    assert got["time"].iloc[3] == pd.Timestamp("2026-12-01T22:00:00Z")
    assert got["line"].tolist() == [1, 2, 3, 4]
    assert set(got["source"]) == {"labels/churn/day1.csv"}


def test_a_pyarrow_parquet_with_real_dtypes():
    """Nullable Int64 row, category label, string id, datetime time (naive and zoned)."""
    frame = pd.DataFrame(
        {
            "id": pd.array(["r1", "r2", "r3", None], dtype="string"),
            "row": pd.array([0, None, 2, 0], dtype="Int64"),
            "label": pd.Categorical(["yes", "no", "yes", "no"], categories=["no", "yes", "maybe"]),
            "time": pd.to_datetime(["2026-12-01", "2026-12-02", None, "2026-12-03"]),
        }
    )
    got, into = parse("labels/churn/p.parquet", parquet_bytes(frame))
    assert got["id"].tolist() == ["r1", "r2", "r3"]
    assert got["row"].tolist() == [0, 0, 2]
    assert got["time"].iloc[0] == pd.Timestamp("2026-12-01T00:00:00Z")
    assert into.rejected == 1
    assert into.problems == [
        "labels/churn/p.parquet row 4: id <NA> is not an id: ids are non-empty strings or integers"
    ]


def test_integer_classes_accept_every_spelling_of_them_and_name_the_rest():
    frame = pd.DataFrame({"id": [10, 11, 12, 13, 14], "label": [1.0, 0.0, 1.5, 2.0, np.nan]})
    got, into = parse("labels/m/x.parquet", parquet_bytes(frame), ZERO_ONE)
    assert got["id"].tolist() == ["10", "11"]  # integer ids: their digits
    assert got["label"].tolist() == [1, 0]
    assert into.rejected == 3
    assert into.problems[0] == (
        "labels/m/x.parquet row 3: label 1.5 is not a class of the model (classes: 0, 1)"
    )
    assert into.problems[1].startswith("labels/m/x.parquet row 4: label 2.0 is not a class")
    assert into.problems[2].startswith("labels/m/x.parquet row 5: label nan is not a class")
    csv, _ = parse("labels/m/x.csv", b"id,label\na,1\nb,0\n", ZERO_ONE)
    assert csv["label"].tolist() == [1, 0]


def test_boolean_classes_from_json_and_csv():
    schema = LabelSchema((False, True))
    lines = jsonl_bytes([{"id": "a", "label": True}, {"id": "b", "label": "false"}])
    got, into = parse("labels/m/x.jsonl", lines, schema)
    assert got["label"].tolist() == [True, False]
    assert into.rejected == 0


def test_json_lines_name_the_line_and_reject_wrong_types():
    data = (
        b'{"id": "a", "row": 1, "label": "yes", "time": "2026-12-01T00:00:00Z"}\n'
        b"\n"
        b'{"id": "b", "row": -1, "label": "yes"}\n'
        b'{"id": "c", "row": 1.5, "label": "yes"}\n'
        b'{"id": "d", "label": "maybe"}\n'
        b'{"id": true, "label": "no"}\n'
        b'{"id": "e", "label": "no", "time": "yesterday"}\n'
        b'{"id": "f", "label": "no", "time": 1733300000}\n'
        b'{"id": "g", "row": true, "label": "no"}\n'
    )
    got, into = parse("labels/churn/f.jsonl", data)
    assert got["id"].tolist() == ["a"]
    assert got["line"].tolist() == [1]
    assert into.rejected == 7
    where = [problem.split(":")[0] for problem in into.problems]
    assert where == [f"labels/churn/f.jsonl row {n}" for n in (3, 4, 5, 6, 7, 8, 9)]
    assert "row -1 is not a row index" in into.problems[0]
    assert "label 'maybe' is not a class of the model (classes: 'no', 'yes')" in into.problems[2]
    assert "id True is not an id" in into.problems[3]
    assert "time 'yesterday' is not a time: write ISO 8601" in into.problems[4]
    assert "time 1733300000 is not a time" in into.problems[5]
    assert "row True is not a row index" in into.problems[6]


def test_a_row_too_large_for_an_integer_is_rejected_without_a_cast_warning() -> None:
    """The fuzz test sent 1e300 as a row: the int64 cast warned (invalid value) and kept it."""
    data = b'{"id": "a", "row": 1e300, "label": "yes"}\n{"id": "b", "row": 3, "label": "no"}\n'
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got, into = parse("labels/churn/big.jsonl", data)
    assert got["row"].tolist() == [3]
    assert into.rejected == 1
    assert "row 1e+300 is not a row index" in into.problems[0]


def test_a_regressor_takes_finite_numbers_only():
    frame = pd.DataFrame({"id": ["a", "b", "c", "d"], "label": ["1.5", "inf", "x", "-2"]})
    got, into = parse("labels/amount/a.csv", csv_bytes(frame), REGRESSION)
    assert got["label"].tolist() == [1.5, -2.0]
    assert into.rejected == 2
    assert "label 'inf' is not a finite number (this model is a regressor)" in into.problems[0]


def test_unreadable_files_are_rejected_whole_and_named_never_raised():
    files = [
        ("labels/churn/a.parquet", b"not parquet at all"),
        ("labels/churn/b.jsonl", b'{"id": "a", "label": "yes"}\n{oops\n'),
        ("labels/churn/c.csv", csv_bytes(pd.DataFrame({"request": ["a"], "label": ["yes"]}))),
        ("labels/churn/d.csv", b""),
        ("labels/churn/e.csv", b"id,label\nz,yes\n"),
    ]
    labels = parse_files(files, YES_NO)
    assert labels.frame["id"].tolist() == ["z"]
    assert labels.rejected == 3
    assert labels.problems[0].startswith("labels/churn/a.parquet: not a readable Parquet file")
    assert labels.problems[1].startswith("labels/churn/b.jsonl: line 2 is not JSON (Expecting")
    assert labels.problems[1].endswith("); file skipped")
    assert labels.problems[2].startswith("labels/churn/c.csv: no column 'id': a label file needs")


def test_read_labels_reads_every_label_file_under_the_prefix_and_skips_the_rest():
    store = MemoryObjectStore("data")
    store.put_bytes("labels/churn/2026-12-01.csv", b"id,label\na,yes\n")
    store.put_bytes(
        "labels/churn/spark/part-0.parquet",
        parquet_bytes(pd.DataFrame({"id": ["b"], "label": ["no"]})),
    )
    store.put_bytes("labels/churn/spark/_SUCCESS", b"")
    store.put_bytes("labels/churn-2/other.csv", b"id,label\nx,yes\n")  # another model
    labels = read_labels(store, "churn", YES_NO)
    assert labels.files == ["labels/churn/2026-12-01.csv", "labels/churn/spark/part-0.parquet"]
    assert labels.skipped_files == ["labels/churn/spark/_SUCCESS"]
    assert labels.frame["id"].tolist() == ["a", "b"]
    assert labels.summary()["labels"] == 2


def test_only_the_first_problems_are_listed_all_are_counted():
    data = b"id,label\n" + b"".join(b"r%d,maybe\n" % i for i in range(50))
    _, into = parse("labels/churn/bad.csv", data)
    assert into.rejected == 50
    assert len(into.problems) == 20


def test_duplicates_latest_time_wins_then_last_file_then_last_row():
    files = [
        (
            "labels/churn/a.csv",
            b"id,row,label,time\n"
            b"x,0,no,2026-12-02T00:00:00Z\n"  # x: latest time wins
            b"y,0,no,\n"  # y: timed beats untimed
            b"z,0,no,\n"  # z: last file wins
            b"w,0,no,\n"  # w: last row of one file
            b"w,0,yes,\n",
        ),
        (
            "labels/churn/b.csv",
            b"id,row,label,time\n"
            b"x,0,yes,2026-12-01T00:00:00Z\n"
            b"y,0,yes,2026-11-01T00:00:00Z\n"
            b"z,0,yes,\n"
            b"x,1,no,\n",
        ),
    ]
    resolved = resolve_duplicates(parse_files(files, YES_NO).frame)
    won = {
        (i, r): label
        for i, r, label in resolved.frame[["id", "row", "label"]].itertuples(index=False)
    }
    assert won == {
        ("x", 0): "no",
        ("y", 0): "yes",
        ("z", 0): "yes",
        ("w", 0): "yes",
        ("x", 1): "no",
    }
    assert resolved.duplicates == 4
    assert resolved.conflicts == 4


def test_a_repeated_identical_label_is_a_duplicate_not_a_conflict():
    labels = parse_files([("labels/churn/a.csv", b"id,label\na,yes\na,yes\n")], YES_NO)
    resolved = resolve_duplicates(labels.frame)
    assert (len(resolved.frame), resolved.duplicates, resolved.conflicts) == (1, 1, 0)
    assert resolve_duplicates(empty_frame()).duplicates == 0
