"""The columnar (pyarrow) decoding of log batches gives exactly the frame the json path gives,
on batches shaped as servers write them and on the odd ones that send it to the json path."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from tests.kit.memory_store import MemoryObjectStore

from continuum.errors import StorageError
from continuum.storage.ground_truth import (
    decode_predictions,
    predictions_frame,
    raw_predictions_frame,
    read_predictions,
)
from continuum.storage.inference_logs import decode_rows, encode_rows, write_batch


def row(i: int, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ts": f"2026-12-05T12:00:{i % 60:02d}.{i:06d}Z",
        "request_id": f"req-{i // 2}",
        "row": i % 2,
        "model": "churn",
        "version": 3,
        "features": {"tenure": float(i), "plan": ["basic", "plus", None][i % 3], "n": i},
        "prediction": ["no", "yes"][i % 2],
        "proba": [0.25, 0.75],
    }
    return base | extra


def same(data: bytes, features: tuple[str, ...] = ("plan", "tenure", "n", "absent")) -> None:
    fast = decode_predictions(data, features)
    slow = raw_predictions_frame(decode_rows(data), features)
    pd.testing.assert_frame_equal(fast, slow)


def test_a_batch_as_the_server_writes_it() -> None:
    same(encode_rows(row(i) for i in range(50)))
    same(encode_rows(row(i) for i in range(50)), ())


def test_old_rows_nulls_and_missing_fields() -> None:
    rows = [row(0), row(1), row(2), row(3), row(4), row(5)]
    del rows[0]["row"]  # logged before row indices
    rows[1]["features"] = None
    rows[2]["proba"] = None
    del rows[3]["proba"]  # a regressor, or a classifier without probabilities
    rows[4]["features"] = {"plan": None}
    del rows[5]["features"]
    same(encode_rows(rows))


def test_numeric_predictions_and_a_regressor() -> None:
    same(encode_rows(row(i, prediction=i % 2) for i in range(10)))
    same(encode_rows(row(i, prediction=i * 0.5, proba=None) for i in range(10)))


def test_blank_lines_and_unicode() -> None:
    lines = [json.dumps(row(i, request_id=f"zähler-{i}")) for i in range(6)]
    same(("\n".join(lines[:3]) + "\n\n   \n" + "\n".join(lines[3:]) + "\n").encode())


@pytest.mark.parametrize(
    "odd",
    [
        {"prediction": "yes"},  # a string prediction among numbers
        {"request_id": 17},  # an id that is a number
        {"features": {"plan": 3, "tenure": "long", "n": "many"}},  # feature types changed
        {"row": "one"},
        {"proba": "high"},
    ],
)
def test_an_odd_row_takes_the_json_path_and_gives_the_same(odd: dict[str, Any]) -> None:
    rows = [row(i, prediction=i % 2) for i in range(8)]
    rows[5] |= odd
    same(encode_rows(rows))


def test_an_empty_batch() -> None:
    same(b"")
    same(b"\n\n")


def test_a_line_that_is_not_json_is_named() -> None:
    data = encode_rows([row(0)]) + b"{not json\n"
    with pytest.raises(StorageError, match="s3://b/k is not JSON lines"):
        decode_predictions(data, (), "s3://b/k")


def test_the_reader_infers_legacy_rows_across_batches() -> None:
    store = MemoryObjectStore()
    first, second = row(0, request_id="alone"), row(1, request_id="pair")
    del first["row"], second["row"]
    write_batch(store, "churn", 3, [first, second], pd.Timestamp("2026-12-05T12:00Z"))
    write_batch(store, "churn", 3, [row(2, request_id="pair")], pd.Timestamp("2026-12-05T13:00Z"))
    got = read_predictions(store, "churn", 3)
    rows = [first, second, row(2, request_id="pair")]
    pd.testing.assert_frame_equal(got, predictions_frame(rows))
    assert got["row"].tolist() == [0, pd.NA, 0]


def test_a_server_batch_is_decoded_by_pyarrow_not_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """The speed (module doc of decode_predictions) holds only if the fast path is taken."""
    from continuum.storage import ground_truth  # noqa: PLC0415 (patched here only)

    def refuse(data: bytes, where: str = "") -> list[dict[str, Any]]:
        raise AssertionError("the json path decoded a batch the server wrote")

    monkeypatch.setattr(ground_truth, "decode_rows", refuse)
    rows = [row(i) for i in range(20)]
    del rows[3]["row"], rows[4]["proba"]
    rows[5]["features"] = None
    got = decode_predictions(encode_rows(rows), ("plan",))
    assert got["plan"].fillna("-").tolist()[:6] == ["basic", "plus", "-", "basic", "plus", "-"]
