"""Every client mistake gets a 4xx naming the problem; never a 5xx."""

from __future__ import annotations

import pytest
from tests.unit.server.conftest import serve, settings_for


def tensor(name: str, data: list, shape: list | None = None, datatype: str = "FP64") -> dict:
    return {"name": name, "shape": shape or [len(data)], "datatype": datatype, "data": data}


GOOD = [tensor("x1", [0.5]), tensor("x2", [1.0]), tensor("color", ["red"], datatype="BYTES")]


def replaced(index: int, new: dict) -> list[dict]:
    inputs = list(GOOD)
    inputs[index] = new
    return inputs


V2_BAD = [
    ("unknown feature", [*GOOD, tensor("age", [3.0])], 422, "unknown input(s) ['age']"),
    ("missing feature", GOOD[:2], 422, "missing feature(s) ['color']"),
    ("duplicate input", [*GOOD, GOOD[0]], 422, "'x1' is given more than once"),
    ("wrong shape 2-D", replaced(0, tensor("x1", [1.0, 2.0], [1, 2])), 422, "not [N] or [N, 1]"),
    ("shape vs data", replaced(0, tensor("x1", [1.0, 2.0], [3])), 422, "needs 3 values, got 2"),
    ("row counts differ", replaced(0, tensor("x1", [1.0, 2.0])), 422, "different numbers of rows"),
    ("negative dim", replaced(0, tensor("x1", [], [-1])), 422, "negative dimension"),
    ("no rows", [tensor(n, [], [0]) for n in ("x1", "x2", "color")], 422, "no rows"),
    ("non-numeric", replaced(0, tensor("x1", ["abc"], datatype="BYTES")), 422,
     "'x1' is numeric but got 'abc'"),
    ("strings as FP64", replaced(0, tensor("x1", ["abc"])), 422, "FP64 but holds strings"),
    ("float as INT64", replaced(0, tensor("x1", [1.5], datatype="INT64")), 422, "non-integer"),
    ("unsupported datatype", replaced(0, tensor("x1", [1.0], datatype="FP16")), 422,
     "datatype 'FP16' is not one of"),
    ("object value", replaced(0, tensor("x1", [{"a": 1}])), 422, "'x1' is numeric but got"),
    ("ragged data", replaced(0, tensor("x1", [[1.0], [2.0, 3.0]], [2])), 422,
     "not a regular array"),
    ("object as category", replaced(2, tensor("color", [{"a": 1}], [1], "BYTES")), 422,
     "needs a single value"),
    ("matrix too narrow", [tensor("input", [1.0, 2.0], [1, 2])], 422, "has 2 columns"),
    ("no data", [{"name": "x1", "shape": [1], "datatype": "FP64"}], 400, "has no data"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "inputs", "status", "message"), V2_BAD, ids=[c[0] for c in V2_BAD]
)
def test_v2_bad_inputs_name_the_problem(client, case, inputs, status, message):
    reply = client.post("/v2/models/churn/infer", json={"inputs": inputs})
    assert reply.status_code == status, reply.text
    assert message in reply.json()["error"]


BAD_BODIES = [
    ("malformed JSON", b'{"inputs": [', 400, "not valid JSON"),
    ("not an object", b"[1, 2]", 400, "not a valid InferenceRequest"),
    ("no inputs", b'{"inputs": []}', 400, "inputs"),
    ("shape not ints", b'{"inputs": [{"name": "x1", "shape": "a", "datatype": "FP64", '
     b'"data": [1]}]}', 400, "inputs.0.shape"),
    ("empty body", b"", 400, "not valid JSON"),
    ("infinite value", b'{"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", '
     b'"data": [1e999, 1, 2]}]}', 422, "infinite"),
    ("binary garbage", b"\xff\xfe\x00", 400, "not valid JSON"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "body", "status", "message"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES]
)
def test_v2_bad_bodies_are_4xx(client, case, body, status, message):
    reply = client.post("/v2/models/churn/infer", content=body)
    assert reply.status_code == status, reply.text
    assert message in reply.json()["error"]


BAD_OUTPUTS = {"inputs": GOOD, "outputs": [{"name": "decision_function"}]}


def test_unknown_requested_output_is_422(client):
    reply = client.post("/v2/models/churn/infer", json=BAD_OUTPUTS)
    assert reply.status_code == 422
    assert "unknown output(s) ['decision_function']" in reply.json()["error"]


V1_BAD = [
    ("unknown feature", [{"x1": 1, "x2": 2, "color": "red", "age": 3}], 422,
     "unknown feature(s) ['age']"),
    ("missing feature", [{"x1": 1, "x2": 2}], 422, "instance 0: missing feature(s) ['color']"),
    ("short array", [[1.0, 2.0]], 422, "instance 0 has 2 values"),
    ("non-numeric", [["abc", 2.0, "red"]], 422, "'x1' is numeric but got 'abc'"),
    ("mixed forms", [[1.0, 2.0, "red"], {"x1": 1, "x2": 2, "color": "red"}], 422, "mix"),
    ("scalar rows", [1, 2], 400, "instances.0"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "instances", "status", "message"), V1_BAD, ids=[c[0] for c in V1_BAD]
)
def test_v1_bad_instances_name_the_problem(client, case, instances, status, message):
    reply = client.post("/v1/models/churn:predict", json={"instances": instances})
    assert reply.status_code == status, reply.text
    assert message in reply.json()["error"]


def test_missing_value_is_accepted_only_where_imputed(client, strict):
    row = [{"x1": None, "x2": 1.0, "color": None}]
    assert client.post("/v1/models/churn:predict", json={"instances": row}).status_code == 200
    reply = strict.post("/v1/models/strict:predict", json={"instances": row})
    assert reply.status_code == 422
    assert "'x1': row 0 is missing a value" in reply.json()["error"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v2/models/other/infer", 404),
        ("/v2/models/churn/versions/2/infer", 404),
        ("/v1/models/other:predict", 404),
    ],
)
def test_unknown_model_or_version_is_404(client, path, status):
    reply = client.post(path, json={"inputs": GOOD, "instances": [[1, 2, "red"]]})
    assert reply.status_code == status
    assert (
        "this server serves churn/1" in reply.json()["error"] or "churn/1" in reply.json()["error"]
    )


def test_oversized_body_is_413_by_content_length(store):
    for client in serve(store, settings_for("churn", max_request_bytes=2048)):
        reply = client.post("/v2/models/churn/infer", content=b"x" * 5000)
        assert reply.status_code == 413
        assert "limit of 2048 bytes" in reply.json()["error"]


def test_oversized_streamed_body_is_413_without_content_length(store):
    def chunks():
        for _ in range(10):
            yield b"x" * 1000

    for client in serve(store, settings_for("churn", max_request_bytes=2048)):
        reply = client.post("/v2/models/churn/infer", content=chunks())
        assert reply.status_code == 413
