"""The request decoder: its fast branch reads common bodies as the full branch does, or stands
aside."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.kit.memory_store import MemoryObjectStore
from tests.unit.server.conftest import copy_of, publish, serve, settings_for

from continuum.server.binary import HEADER_LENGTH, request_tensors
from continuum.server.decoding import (
    INFER,
    PREDICT,
    DecodedRequest,
    decode_request,
    fast_path,
    parse_body,
)
from continuum.server.errors import InputInvalid, ServingError
from continuum.server.inputs import rows_from_tensors
from continuum.server.model import CATEGORICAL, NUMERIC, FeatureSpec, ServedModel
from continuum.server.protocol import InferenceRequest

FEATURES = (FeatureSpec("a", NUMERIC, False), FeatureSpec("b", NUMERIC, True))
POSITIONS = {"a": 0, "b": 1}
# The demo's shape: numbers and a category (nullable: the trainer imputes it by default)
MIXED = (FeatureSpec("a", NUMERIC, False), FeatureSpec("plan", CATEGORICAL, True),
         FeatureSpec("b", NUMERIC, True))  # fmt: skip
MIXED_POSITIONS, PLAN = {"a": 0, "plan": 1, "b": 2}, frozenset({"plan"})


def tensor(name: str, data: list[Any], datatype: str = "FP64", shape: Any = None) -> dict[str, Any]:
    return {"name": name, "shape": [len(data)] if shape is None else shape,
            "datatype": datatype, "data": data}  # fmt: skip


def encoded(message: Any) -> bytes:
    return json.dumps(message).encode()


def full_path(
    body: bytes, features: tuple[FeatureSpec, ...] = FEATURES
) -> tuple[str | None, list[str] | None, dict[str, np.ndarray], int]:
    request = parse_body(InferenceRequest, body)
    rows = rows_from_tensors(request_tensors(request, b""), features)
    outputs = None if request.outputs is None else [output.name for output in request.outputs]
    return request.id, outputs, rows.columns, rows.n_rows


def assert_same_as_full_path(
    fast: DecodedRequest, body: bytes, features: tuple[FeatureSpec, ...] = FEATURES
) -> None:
    request_id, outputs, columns, n_rows = full_path(body, features)
    assert (fast.id, fast.outputs, fast.rows.n_rows) == (request_id, outputs, n_rows)
    assert list(fast.rows.columns) == list(columns)  # schema order
    kinds = {feature.name: feature.kind for feature in features}
    for name, column in columns.items():
        ours = fast.rows.columns[name]
        assert ours.dtype == column.dtype == (np.float64 if kinds[name] == NUMERIC else object)
        assert np.array_equal(ours, column)
        assert [type(value) for value in ours.tolist()] == [type(v) for v in column.tolist()]


def test_the_common_body_is_read_as_the_full_path_reads_it() -> None:
    body = encoded({
        "id": "r-1",
        "parameters": {"content_type": "pd"},
        "inputs": [tensor("b", [2.5, 3], "FP32", [2, 1]), tensor("a", [1, True])],
        "outputs": [{"name": "predict"}],
    })  # fmt: skip
    fast = fast_path(body, POSITIONS)
    assert fast is not None
    assert fast.rows.n_rows == 2
    assert fast.rows.columns["a"].tolist() == [1.0, 1.0]
    assert_same_as_full_path(fast, body)


@pytest.mark.parametrize(
    "message",
    [
        {"inputs": [tensor("a", [1.0]), tensor("b", ["2"])]},  # a string
        {"inputs": [tensor("a", [1.0]), tensor("b", [None])]},  # a missing value
        {"inputs": [tensor("a", [1.0]), tensor("b", [2.0], "INT64")]},  # needs integer checks
        {"inputs": [tensor("a", [1.0])]},  # a feature missing
        {"inputs": [tensor("a", [1.0]), tensor("a", [1.0])]},  # a feature twice
        {"inputs": [tensor("a", [1.0]), tensor("b", [1.0, 2.0])]},  # different row counts
        {"inputs": [tensor("a", [1.0]), tensor("b", [[2.0]])]},  # nested data
        {"inputs": [tensor("a", [1.0]), tensor("b", [2.0], shape=[1.0])]},  # float in shape
        {"inputs": [tensor("a", []), tensor("b", [])]},  # no rows
        {"inputs": [tensor("m", [1.0, 2.0], shape=[1, 2])]},  # the matrix form
        {"id": 7, "inputs": [tensor("a", [1.0]), tensor("b", [2.0])]},  # an id that is no str
        {"inputs": [tensor("a", [1e400]), tensor("b", [2.0])]},  # overflows to infinity
        {"inputs": [tensor("a", [1.0]), tensor("b", [2.0])], "outputs": [{"n": "predict"}]},
    ],
)
def test_anything_else_takes_the_full_path(message: dict[str, Any]) -> None:
    assert fast_path(encoded(message).replace(b"Infinity", b"1e400"), POSITIONS) is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [NaN]}]}',
        b'{"id": "\\ud800", "inputs": []}',  # a lone surrogate: the full parser refuses it
        b"\xff\xfe{}",  # not UTF-8
        b"[1, 2]",
        b"{",
        b"",
    ],
)
def test_bodies_the_full_parser_must_judge_are_left_to_it(body: bytes) -> None:
    assert fast_path(body, POSITIONS) is None


def test_a_category_as_a_bytes_tensor_of_strings_takes_the_fast_branch() -> None:
    message = {
        "parameters": {"content_type": "pd"},
        "inputs": [tensor("b", [2.5, 3.0]), tensor("plan", ["basic", "pré mium"], "BYTES"),
                   tensor("a", [1.0, 2.0], shape=[2, 1])],
        "outputs": [{"name": "predict"}],
    }  # fmt: skip
    body = json.dumps(message, ensure_ascii=False).encode()  # UTF-8, no \u escape
    fast = fast_path(body, MIXED_POSITIONS, PLAN)
    assert fast is not None
    assert fast.rows.columns["plan"].tolist() == ["basic", "pré mium"]
    assert_same_as_full_path(fast, body, MIXED)


@pytest.mark.parametrize(
    "plan",
    [
        tensor("plan", [None], "BYTES"),  # missing: the full branch checks it is imputed
        tensor("plan", [1], "BYTES"),  # a number: the full branch makes it "1"
        tensor("plan", [["basic"]], "BYTES"),  # nested
        tensor("plan", ["basic"]),  # FP64 holding a string
        tensor("plan", ["basic"], "INT64"),
        tensor("plan", ["basic"], "BYTES", shape=[1, 1, 1]),
        {"name": "plan", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 9}},
    ],
)
def test_a_category_of_any_other_form_takes_the_full_path(plan: dict[str, Any]) -> None:
    body = encoded({"inputs": [tensor("a", [1.0]), plan, tensor("b", [2.0])]})
    assert fast_path(body, MIXED_POSITIONS, PLAN) is None


def test_a_string_is_never_read_as_a_number_nor_a_number_as_a_category() -> None:
    numbers_as_plan = encoded({"inputs": [tensor("a", [1.0]), tensor("plan", [2.0]),
                                          tensor("b", [2.0])]})  # fmt: skip
    plan_as_number = encoded({"inputs": [tensor("a", ["x"], "BYTES"),
                                         tensor("plan", ["basic"], "BYTES"),
                                         tensor("b", [2.0])]})  # fmt: skip
    assert fast_path(numbers_as_plan, MIXED_POSITIONS, PLAN) is None
    assert fast_path(plan_as_number, MIXED_POSITIONS, PLAN) is None


# decode_request reads only the model's features and outputs: no pipeline is needed here.
MODEL = ServedModel("m", 1, "", None, FEATURES, ("no", "yes"), has_proba=True)


def test_one_entry_decodes_every_form_of_a_request_to_the_same_rows() -> None:
    common = encoded({"id": "r", "inputs": [tensor("a", [1.0, 2.0]), tensor("b", [3.0, 4.0])]})
    matrix = encoded({"id": "r", "inputs": [tensor("m", [1.0, 3.0, 2.0, 4.0], shape=[2, 2])]})
    header = encoded({"id": "r", "inputs": [
        {"name": name, "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}}
        for name in ("a", "b")
    ]})  # fmt: skip
    tail = np.array([1.0, 2.0, 3.0, 4.0]).tobytes()
    decoded = [
        decode_request(INFER, MODEL, common, {}),
        decode_request(INFER, MODEL, matrix, {}),
        decode_request(INFER, MODEL, header + tail, {HEADER_LENGTH: str(len(header))}),
        decode_request(PREDICT, MODEL, encoded({"instances": [[1.0, 3.0], [2.0, 4.0]]}), {}),
    ]
    assert [request.id for request in decoded] == ["r", "r", "r", None]
    for request in decoded:
        assert request.rows.n_rows == 2
        assert {k: v.tolist() for k, v in request.rows.columns.items()} == {
            "a": [1.0, 2.0], "b": [3.0, 4.0]
        }  # fmt: skip


def test_an_unknown_output_is_refused_whichever_branch_reads_the_body() -> None:
    outputs = [{"name": "predict"}, {"name": "nope"}]
    common = {"inputs": [tensor("a", [1.0]), tensor("b", [2.0])], "outputs": outputs}
    matrix = {"inputs": [tensor("m", [1.0, 2.0], shape=[1, 2])], "outputs": outputs}
    for message in (common, matrix):
        with pytest.raises(InputInvalid, match=r"unknown output\(s\) \['nope'\]"):
            decode_request(INFER, MODEL, encoded(message), {})


NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-10, max_value=10),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-5, max_value=5),
    st.booleans(),
)
ODD_VALUES = st.one_of(
    st.floats(), st.none(), st.text(max_size=3), st.lists(st.floats(allow_nan=False), max_size=2)
)


def _odd_value(body: dict[str, Any], value: Any) -> None:
    body["inputs"][0]["data"][0] = value


MUTATIONS: list[Any] = [
    _odd_value,
    lambda body, odd: body["inputs"][1].update(data=[odd]),
    lambda body, odd: body["inputs"][0].update(shape=[odd]),
    lambda body, odd: body["inputs"][1].update(datatype=odd),
    lambda body, odd: body["inputs"][0].update(name=odd),
    lambda body, odd: body["inputs"][1].update(parameters=odd),
    lambda body, odd: body["inputs"][0].update(parameters={"binary_data_size": odd}),
    lambda body, odd: body["inputs"].append(body["inputs"][0]),
    lambda body, odd: body["inputs"].pop(),
    lambda body, odd: body.update(id=odd),
    lambda body, odd: body.update(outputs=odd),
    lambda body, odd: body.update(outputs=[{"name": odd}]),
    lambda body, odd: body.update(parameters=odd),
]
ODD = st.one_of(ODD_VALUES, NUMBERS, st.sampled_from(["INT64", "BYTES", "FP32", "predict", "a"]))


@st.composite
def near_common_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Bodies of the common shape, half of them with one thing changed (to anything)."""
    n_rows = draw(st.integers(1, 3))
    names = draw(st.permutations(["a", "b"]))
    inputs = []
    for name in names:
        values = draw(st.lists(NUMBERS, min_size=n_rows, max_size=n_rows))
        shape = draw(st.sampled_from([[n_rows], [n_rows, 1]]))
        datatype = draw(st.sampled_from(["FP64", "FP32"]))
        inputs.append({"name": name, "shape": shape, "datatype": datatype, "data": values})
    body: dict[str, Any] = {"inputs": inputs}
    body.update(draw(st.sampled_from([{}, {"id": "r"}, {"outputs": [{"name": "predict"}]}])))
    if draw(st.booleans()):
        draw(st.sampled_from(MUTATIONS))(body, draw(ODD))
    return body


def fast_branch_agrees_with_full_path(
    message: Any, features: tuple[FeatureSpec, ...] = FEATURES
) -> bool:
    """Whether the fast branch accepted the body (failing the test if it read it differently)."""
    body = encoded(message)
    positions = {feature.name: i for i, feature in enumerate(features)}
    categorical = frozenset(f.name for f in features if f.kind == CATEGORICAL)
    fast = fast_path(body, positions, categorical)
    if fast is None:
        return False
    try:
        assert_same_as_full_path(fast, body, features)
    except ServingError as exc:
        pytest.fail(f"fast branch accepted a body the full path refuses: {exc.message}\n{body!r}")
    return True


def test_whatever_the_fast_branch_accepts_the_full_path_reads_the_same() -> None:
    accepted: list[bool] = []

    @settings(max_examples=400, deadline=None, derandomize=True, database=None)
    @given(message=near_common_bodies())
    def check(message: Any) -> None:
        accepted.append(fast_branch_agrees_with_full_path(message))

    check()
    # Not vacuous: some bodies were accepted, and some left to the full path.
    assert 0.1 < sum(accepted) / len(accepted) < 0.9, f"{sum(accepted)} of {len(accepted)}"


CATEGORIES = st.one_of(st.sampled_from(["basic", "premium", ""]), st.text(max_size=4))


@st.composite
def near_common_mixed_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Bodies of numbers and a category, half of them with one thing changed (to anything)."""
    n_rows = draw(st.integers(1, 3))
    inputs = []
    for feature in draw(st.permutations(list(MIXED))):
        numeric = feature.kind == NUMERIC
        values = draw(st.lists(NUMBERS if numeric else CATEGORIES, min_size=n_rows,
                               max_size=n_rows))  # fmt: skip
        shape = draw(st.sampled_from([[n_rows], [n_rows, 1]]))
        datatype = draw(st.sampled_from(["FP64", "FP32"])) if numeric else "BYTES"
        inputs.append({"name": feature.name, "shape": shape, "datatype": datatype,
                       "data": values})  # fmt: skip
    body: dict[str, Any] = {"inputs": inputs, "parameters": {"content_type": "pd"}}
    if draw(st.booleans()):
        draw(st.sampled_from(MUTATIONS))(body, draw(ODD))
    return body


def test_whatever_the_fast_branch_accepts_with_a_category_the_full_path_reads_the_same() -> None:
    accepted: list[bool] = []

    @settings(max_examples=400, deadline=None, derandomize=True, database=None)
    @given(message=near_common_mixed_bodies())
    def check(message: Any) -> None:
        accepted.append(fast_branch_agrees_with_full_path(message, MIXED))

    check()
    assert 0.1 < sum(accepted) / len(accepted) < 0.9, f"{sum(accepted)} of {len(accepted)}"


# ------------------------------------------------------------------ served end to end


@pytest.fixture(scope="module")
def numeric(store: MemoryObjectStore) -> TestClient:
    """A model whose features are all numeric (x1, x2): its requests take the fast branch."""
    private = copy_of(store)
    publish(private, {
        "model": "numeric",
        "dataset": {"uri": "s3://data/sets/churn/", "target": "label", "features": ["x1", "x2"]},
        "estimator": {"class": "LogisticRegression", "params": {}},
        "preprocessing": {"numeric": {"impute": "none", "scale": "none"}},
        "split": {"testSize": 0.25, "seed": 7},
        "evaluation": {"metric": "accuracy", "threshold": 0.0},
        "storage": {"bucket": "data"},
    })  # fmt: skip
    yield from serve(private, settings_for("numeric"))


def test_fast_branch_and_full_path_requests_get_the_same_answers(numeric: TestClient) -> None:
    model = numeric.app.state.server.model  # type: ignore[attr-defined]
    assert model.positions == {"x1": 0, "x2": 1}
    assert model.categorical_names == frozenset()
    x1, x2 = [0.5, -1.25, 2.0], [1.5, 0.25, -3.0]
    common = {"id": "q", "inputs": [tensor("x2", x2), tensor("x1", x1)]}
    matrix = {"id": "q", "inputs": [tensor("input", [v for row in zip(x1, x2, strict=True)
                                                     for v in row], shape=[3, 2])]}  # fmt: skip
    answers = [numeric.post("/v2/models/numeric/infer", json=body) for body in (common, matrix)]
    assert [answer.status_code for answer in answers] == [200, 200]
    assert answers[0].json() == answers[1].json()
    expected = model.pipeline.predict(pd.DataFrame({"x1": x1, "x2": x2}))
    predict = next(o for o in answers[0].json()["outputs"] if o["name"] == "predict")
    assert predict["data"] == expected.tolist()


def test_a_fast_branch_body_asking_for_an_unknown_output_is_422(numeric: TestClient) -> None:
    body = {"inputs": [tensor("x1", [1.0]), tensor("x2", [2.0])], "outputs": [{"name": "nope"}]}
    answer = numeric.post("/v2/models/numeric/infer", json=body)
    assert answer.status_code == 422
    assert "unknown output(s) ['nope']" in answer.json()["error"]
