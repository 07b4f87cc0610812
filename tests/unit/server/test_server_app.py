"""The server in-process against a real model in an in-memory store."""

from __future__ import annotations

import json
import logging
import struct

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from tests.unit.server.conftest import copy_of, make_frame, serve, settings_for

from continuum.modelio import coerce_features, load_verified_model
from continuum.server.compiled.estimators import ENTRIES
from continuum.storage import read_manifest
from continuum.storage.inference_logs import list_batches, read_batch

ROWS = make_frame(rows=7, seed=3)[["x1", "x2", "color"]]


def per_feature_inputs(frame: pd.DataFrame) -> list[dict]:
    return [
        {"name": "x1", "shape": [len(frame)], "datatype": "FP64", "data": frame["x1"].tolist()},
        {"name": "x2", "shape": [len(frame), 1], "datatype": "FP32",
         "data": frame["x2"].astype("float32").tolist()},
        {"name": "color", "shape": [len(frame)], "datatype": "BYTES",
         "data": frame["color"].tolist()},
    ]  # fmt: skip


def local_prediction(store, model: str, frame: pd.DataFrame):
    loaded = load_verified_model(store, model, 1)
    features = coerce_features(frame, read_manifest(store, model, 1)["features"])
    return loaded.pipeline, features


def output(reply: dict, name: str) -> dict:
    return next(item for item in reply["outputs"] if item["name"] == name)


def test_v2_predictions_equal_the_locally_loaded_model(client, store):
    reply = client.post(
        "/v2/models/churn/infer", json={"id": "r-1", "inputs": per_feature_inputs(ROWS)}
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("churn", "1", "r-1")
    pipeline, features = local_prediction(
        store, "churn", ROWS.assign(x2=ROWS["x2"].astype("float32"))
    )
    assert output(body, "predict")["data"] == pipeline.predict(features).tolist()
    proba = output(body, "predict_proba")
    assert proba["shape"] == [7, 2]
    assert proba["parameters"]["classes"] == ["no", "yes"]
    np.testing.assert_allclose(np.reshape(proba["data"], (7, 2)), pipeline.predict_proba(features))


def test_v2_matrix_input_in_schema_order_and_versioned_path(client, store):
    matrix = ROWS.to_numpy(dtype=object).tolist()
    inputs = [{"name": "input", "shape": [7, 3], "datatype": "BYTES", "data": matrix}]
    reply = client.post("/v2/models/churn/versions/1/infer", json={"inputs": inputs,
                        "outputs": [{"name": "predict"}]})  # fmt: skip
    assert reply.status_code == 200, reply.text
    pipeline, features = local_prediction(store, "churn", ROWS)
    assert [o["name"] for o in reply.json()["outputs"]] == ["predict"]
    assert reply.json()["outputs"][0]["data"] == pipeline.predict(features).tolist()


def test_v1_predict_by_name_and_by_order(client, store):
    records = ROWS.to_dict(orient="records")
    by_name = client.post("/v1/models/churn:predict", json={"instances": records}).json()
    by_order = client.post(
        "/v1/models/churn:predict", json={"instances": ROWS.to_numpy(dtype=object).tolist()}
    ).json()
    pipeline, features = local_prediction(store, "churn", ROWS)
    assert by_name["predictions"] == by_order["predictions"] == pipeline.predict(features).tolist()
    assert by_name["classes"] == ["no", "yes"]
    np.testing.assert_allclose(by_name["probabilities"], pipeline.predict_proba(features))


def test_regressor_returns_fp64_values_and_no_probabilities(regressor, store):
    reply = regressor.post("/v2/models/amount/infer", json={"inputs": per_feature_inputs(ROWS)})
    body = reply.json()
    assert [o["name"] for o in body["outputs"]] == ["predict"]
    assert output(body, "predict")["datatype"] == "FP64"
    metrics = regressor.get("/metrics").text
    assert 'continuum_server_prediction_value_count{model="amount",version="1"} 7.0' in metrics


def binary_request(frame: pd.DataFrame) -> tuple[bytes, int]:
    """What tritonclient sends with binary_data=True: JSON header, then raw tensors."""
    x1 = frame["x1"].to_numpy(np.float64).tobytes()
    x2 = frame["x2"].to_numpy(np.float32).tobytes()
    color = b"".join(struct.pack("<I", len(s)) + s.encode() for s in frame["color"])
    header = {"inputs": [
        {"name": "x1", "shape": [len(frame)], "datatype": "FP64",
         "parameters": {"binary_data_size": len(x1)}},
        {"name": "x2", "shape": [len(frame)], "datatype": "FP32",
         "parameters": {"binary_data_size": len(x2)}},
        {"name": "color", "shape": [len(frame)], "datatype": "BYTES",
         "parameters": {"binary_data_size": len(color)}},
    ]}  # fmt: skip
    encoded = json.dumps(header).encode()
    return encoded + x1 + x2 + color, len(encoded)


def test_binary_tensor_extension(client, store):
    body, header_length = binary_request(ROWS)
    reply = client.post(
        "/v2/models/churn/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(header_length)},
    )
    assert reply.status_code == 200, reply.text
    pipeline, features = local_prediction(
        store, "churn", ROWS.assign(x2=ROWS["x2"].astype("float32"))
    )
    assert output(reply.json(), "predict")["data"] == pipeline.predict(features).tolist()


def test_binary_tensor_with_wrong_sizes_is_a_client_error(client):
    body, header_length = binary_request(ROWS)
    reply = client.post(
        "/v2/models/churn/infer",
        content=body[:-3],
        headers={"Inference-Header-Content-Length": str(header_length)},
    )
    assert 400 <= reply.status_code < 500
    reply = client.post(
        "/v2/models/churn/infer", content=body, headers={"Inference-Header-Content-Length": "x"}
    )
    assert reply.status_code == 400


def test_health_metadata_and_readiness(client):
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2/models/churn/ready").status_code == 200
    assert client.get("/v2/models/churn/versions/1/ready").status_code == 200
    assert client.get("/v2/models/churn/versions/9/ready").status_code == 404
    assert client.get("/v2").json()["extensions"] == ["binary_tensor_data"]
    meta = client.get("/v2/models/churn").json()
    assert [i["name"] for i in meta["inputs"]] == ["x1", "x2", "color"]
    assert meta["parameters"]["sha256"] == read_manifest_sha(client)
    assert client.get("/v1/models/churn").json() == {"name": "churn", "ready": True}


def read_manifest_sha(client) -> str:
    return client.app.state.server.model.sha256


def test_metrics_after_requests(client):
    client.post("/v2/models/churn/infer", json={"inputs": per_feature_inputs(ROWS)})
    client.post("/v2/models/churn/infer", json={"inputs": []})
    text = client.get("/metrics").text
    labels = 'endpoint="infer",model="churn",status="200",version="1"'
    assert f"continuum_server_requests_total{{{labels}}} 1.0" in text
    assert 'status="400"' in text
    assert f"continuum_server_request_duration_seconds_count{{{labels}}} 1.0" in text
    assert 'continuum_server_batch_rows_count{model="churn",version="1"} 1.0' in text
    assert "continuum_server_predictions_total{" in text
    assert 'continuum_server_model_info{model="churn",sha256="' in text
    assert 'continuum_server_model_ready{model="churn",version="1"} 1.0' in text
    assert 'continuum_server_in_flight_requests{model="churn",version="1"} 0.0' in text
    assert "continuum_server_inference_log_dropped_rows_total" in text


def test_how_the_model_is_scored_is_in_its_metadata_metrics_and_log(store, caplog):
    caplog.set_level(logging.INFO, logger="continuum.server.state")
    for client in serve(copy_of(store), settings_for("churn")):
        scoring = client.get("/v2/models/churn").json()["parameters"]["scoring"]
        assert scoring["path"] == "compiled"
        assert scoring["entry"] == "LogisticRegression (formula)"
        assert scoring["exactness"] == "bit-identical"
        assert scoring["classes_covered"] == "2/2"
        assert scoring["probe_rows"] > 250
        rows = scoring["probe_rows"]
        assert scoring["reason"] == f"bit-identical to scikit-learn on {rows} probe rows"
        text = client.get("/metrics").text
        assert (
            'continuum_server_model_scoring{entry="LogisticRegression (formula)",'
            'exactness="bit-identical",model="churn",path="compiled",'
            f'reason="{scoring["reason"]}",version="1"}} 1.0'
        ) in text
        assert_served_exactly(client, store)
    assert any(
        "model churn/1 is scored by the compiled path: LogisticRegression (formula), "
        "bit-identical to scikit-learn on" in record.getMessage()
        for record in caplog.records
    )


def test_a_model_the_compiler_refuses_is_served_by_scikit_learn_saying_why(
    store, caplog, monkeypatch
):
    monkeypatch.delitem(ENTRIES, LogisticRegression)  # as for a class without an entry
    caplog.set_level(logging.INFO, logger="continuum.server.state")
    reason = "not compiled: no compiled entry for LogisticRegression"
    for client in serve(copy_of(store), settings_for("churn")):
        scoring = client.get("/v2/models/churn").json()["parameters"]["scoring"]
        assert (scoring["path"], scoring["reason"]) == ("scikit-learn", reason)
        text = client.get("/metrics").text
        assert f'path="scikit-learn",reason="{reason}",version="1"}} 1.0' in text
        assert_served_exactly(client, store)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        r.getMessage() == f"model churn/1 is scored by scikit-learn's own steps (slower): {reason}"
        for r in warnings
    )


def assert_served_exactly(client, store) -> None:
    """The served labels and probabilities are scikit-learn's to the last bit (JSON floats
    round-trip exactly)."""
    rows = make_frame(rows=40, seed=8)[["x1", "x2", "color"]]
    rows.loc[::4, "x1"] = None  # imputed
    rows.loc[1::6, "color"] = "never-seen"
    inputs = [
        {"name": "x1", "shape": [40], "datatype": "FP64", "data": rows["x1"].tolist()},
        {"name": "x2", "shape": [40], "datatype": "FP64", "data": rows["x2"].tolist()},
        {"name": "color", "shape": [40], "datatype": "BYTES", "data": rows["color"].tolist()},
    ]
    inputs[0]["data"] = [None if np.isnan(v) else v for v in inputs[0]["data"]]
    reply = client.post("/v2/models/churn/infer", json={"inputs": inputs})
    assert reply.status_code == 200, reply.text
    pipeline, features = local_prediction(store, "churn", rows)
    assert output(reply.json(), "predict")["data"] == pipeline.predict(features).tolist()
    proba = np.reshape(output(reply.json(), "predict_proba")["data"], (40, 2))
    assert np.array_equal(proba, pipeline.predict_proba(features))


def test_tampered_model_is_refused_but_live(store):
    tampered = copy_of(store)
    key = ("data", "models/churn/1/model.skops")
    data = bytearray(tampered.objects[key])
    data[-1] ^= 0xFF
    tampered.objects[key] = bytes(data)
    for client in serve(tampered, settings_for("churn")):
        assert client.get("/v2/health/live").status_code == 200
        ready = client.get("/v2/health/ready")
        assert ready.status_code == 503
        assert "does not match the manifest" in ready.json()["reason"]
        reply = client.post("/v2/models/churn/infer", json={"inputs": per_feature_inputs(ROWS)})
        assert reply.status_code == 503
        assert "refusing to serve model churn/1" in reply.json()["error"]
        assert client.get("/v2/models/churn").status_code == 503


def test_missing_version_is_refused(store):
    for client in serve(store, settings_for("churn", version=5)):
        assert client.get("/v2/health/ready").status_code == 503
        assert "no manifest" in client.get("/v2/health/ready").json()["reason"]


def test_scikit_learn_minor_mismatch_is_refused(store):
    other = copy_of(store)
    key = ("data", "models/churn/1/manifest.json")
    manifest = json.loads(other.objects[key])
    manifest["libraries"]["scikit-learn"] = "0.24.2"
    other.objects[key] = json.dumps(manifest).encode()
    for client in serve(other, settings_for("churn")):
        reason = client.get("/v2/health/ready").json()["reason"]
        assert "trained with scikit-learn 0.24.2" in reason


def test_inference_log_is_written_on_shutdown(store):
    logs = copy_of(store)
    for client in serve(logs, settings_for("churn")):
        client.post(
            "/v2/models/churn/infer", json={"id": "req-9", "inputs": per_feature_inputs(ROWS)}
        )
    (key,) = list_batches(logs, "churn", 1)
    assert key.startswith("inference-logs/churn/1/")
    assert key.endswith(".jsonl")
    rows = read_batch(logs, key)
    assert len(rows) == 7
    first = rows[0]
    keys = {"ts", "request_id", "row", "model", "version", "features", "prediction", "proba"}
    assert set(first) == keys
    assert (first["request_id"], first["model"], first["version"]) == ("req-9", "churn", 1)
    assert [row["row"] for row in rows] == list(range(7))
    assert all(row["request_id"] == "req-9" for row in rows)
    expected = ROWS.iloc[0]
    assert first["features"] == {
        "x1": expected["x1"],
        "x2": pytest.approx(expected["x2"], 1e-6),
        "color": expected["color"],
    }
    assert first["prediction"] in {"yes", "no"}
    assert len(first["proba"]) == 2


def test_openapi_describes_request_and_response_bodies(client):
    spec = client.get("/openapi.json").json()
    infer = spec["paths"]["/v2/models/{name}/infer"]["post"]
    ref = infer["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/InferenceRequest"
    schemas = spec["components"]["schemas"]
    assert {"InferenceRequest", "RequestInput", "InferenceResponse", "PredictRequest"} <= set(
        schemas
    )
    assert "422" in infer["responses"]
    assert "413" in infer["responses"]
    assert "/v1/models/{name}:predict" in spec["paths"]


def logged_ids(store) -> list[tuple[str, int]]:
    keys = list_batches(store, "churn", 1)
    return [(row["request_id"], row["row"]) for key in keys for row in read_batch(store, key)]


def test_every_prediction_has_an_identity_echoed_and_logged(store):
    """Body id, else x-request-id header, else a new one: in the answer and in the log."""
    logs = copy_of(store)
    body = {"inputs": per_feature_inputs(ROWS.iloc[:2])}
    with_both = {"id": "body-1", **body}
    for client in serve(logs, settings_for("churn")):
        by_body = client.post("/v2/models/churn/infer", json=with_both,
                              headers={"x-request-id": "header-1"})  # fmt: skip
        by_header = client.post("/v2/models/churn/infer", json=body,
                                headers={"x-request-id": "header-2"})  # fmt: skip
        made = client.post("/v2/models/churn/infer", json=body)
        v1 = client.post("/v1/models/churn:predict", json={"instances": [[0.1, 0.2, "red"]]},
                         headers={"x-request-id": "v1-1"})  # fmt: skip
        v1_made = client.post("/v1/models/churn:predict", json={"instances": [[0.1, 0.2, "red"]]})
    assert (by_body.json()["id"], by_body.headers["x-request-id"]) == ("body-1", "body-1")
    assert (by_header.json()["id"], by_header.headers["x-request-id"]) == ("header-2", "header-2")
    generated = made.json()["id"]
    assert len(generated) == 32
    assert int(generated, 16) >= 0
    assert made.headers["x-request-id"] == generated
    assert v1.headers["x-request-id"] == "v1-1"
    assert "id" not in v1.json()
    v1_generated = v1_made.headers["x-request-id"]
    assert len(v1_generated) == 32
    assert v1_generated != generated
    assert logged_ids(logs) == [
        ("body-1", 0), ("body-1", 1), ("header-2", 0), ("header-2", 1),
        (generated, 0), (generated, 1), ("v1-1", 0), (v1_generated, 0),
    ]  # fmt: skip


def test_an_id_unfit_for_a_header_is_answered_in_the_body_only(client):
    body = {"id": "line\nbreak é", "inputs": per_feature_inputs(ROWS.iloc[:1])}
    reply = client.post("/v2/models/churn/infer", json=body)
    assert reply.status_code == 200
    assert reply.json()["id"] == "line\nbreak é"
    assert "x-request-id" not in reply.headers


def test_an_error_answer_carries_the_clients_request_id(client):
    reply = client.post("/v2/models/churn/infer", content=b"{not json",
                        headers={"x-request-id": "bad-1"})  # fmt: skip
    assert reply.status_code == 400
    assert reply.headers["x-request-id"] == "bad-1"
    assert "x-request-id" not in client.post("/v2/models/churn/infer", content=b"{").headers
