"""The real tritonclient HTTP client against the server under uvicorn on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.http as triton
import uvicorn
from tests.unit.server.conftest import copy_of, make_frame, settings_for

from continuum.modelio import coerce_features, load_verified_model
from continuum.server.app import create_app
from continuum.storage import read_manifest

ROWS = make_frame(rows=5, seed=9)[["x1", "x2", "color"]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def url(store) -> Iterator[str]:
    port = free_port()
    app = create_app(settings_for("churn"), copy_of(store))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    ready = triton.InferenceServerClient(f"127.0.0.1:{port}")
    while not ready.is_model_ready("churn") and time.monotonic() < deadline:
        time.sleep(0.05)  # the model loads in the background after startup
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


def inputs(binary: bool) -> list[triton.InferInput]:
    x1 = triton.InferInput("x1", [5], "FP64")
    x1.set_data_from_numpy(ROWS["x1"].to_numpy(np.float64), binary_data=binary)
    x2 = triton.InferInput("x2", [5, 1], "FP32")
    x2.set_data_from_numpy(ROWS["x2"].to_numpy(np.float32).reshape(5, 1), binary_data=binary)
    color = triton.InferInput("color", [5], "BYTES")
    color.set_data_from_numpy(ROWS["color"].to_numpy(dtype=object), binary_data=binary)
    return [x1, x2, color]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_infers_like_the_local_model(url, store, binary):
    client = triton.InferenceServerClient(url)
    deadline = time.monotonic() + 30
    while not client.is_model_ready("churn") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.get_model_metadata("churn")["name"] == "churn"
    result = client.infer("churn", inputs(binary), request_id="t-1")
    local = load_verified_model(store, "churn", 1).pipeline
    frame = coerce_features(ROWS.assign(x2=ROWS["x2"].astype("float32")),
                            read_manifest(store, "churn", 1)["features"])  # fmt: skip
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("predict")]
    assert labels == local.predict(frame).tolist()
    np.testing.assert_allclose(result.as_numpy("predict_proba"), local.predict_proba(frame))
    assert result.get_response()["id"] == "t-1"


def test_tritonclient_sees_client_errors_as_exceptions(url):
    client = triton.InferenceServerClient(url)
    bad = triton.InferInput("age", [1], "FP64")
    bad.set_data_from_numpy(np.array([1.0]))
    with pytest.raises(triton.InferenceServerException, match="unknown input"):
        client.infer("churn", [bad])
