"""The documented limits of the model server (docs/server-limits.md): concurrency and size."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.kit.memory_store import MemoryObjectStore
from tests.unit.server.conftest import copy_of, serve, settings_for
from tests.unit.server.test_server_app import ROWS, per_feature_inputs

from continuum.server.app import create_app
from continuum.server.model import ServedModel, load_served_model
from continuum.storage import ObjectStore

# Part of the reliability and security suite (`make test-reliability`).
pytestmark = pytest.mark.reliability

BODY = {"inputs": per_feature_inputs(ROWS)}


class Gated:
    """A pipeline whose predictions wait until the test opens the gate."""

    def __init__(self, pipeline: Any, gate: threading.Event) -> None:
        self.pipeline, self.gate = pipeline, gate

    def predict(self, frame: Any) -> Any:
        assert self.gate.wait(30)
        return self.pipeline.predict(frame)

    def predict_proba(self, frame: Any) -> Any:
        return self.pipeline.predict_proba(frame)


def in_flight(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("continuum_server_in_flight_requests{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no in-flight gauge")


def test_past_the_concurrency_limit_inference_is_503_and_health_still_answers(
    store: MemoryObjectStore,
) -> None:
    gate = threading.Event()

    def loader(store: ObjectStore, name: str, version: int) -> ServedModel:
        model = load_served_model(store, name, version)
        return dataclasses.replace(model, pipeline=Gated(model.pipeline, gate))

    settings = settings_for("churn", max_concurrent_requests=2)
    with (
        TestClient(create_app(settings, copy_of(store), loader=loader)) as client,
        ThreadPoolExecutor(2) as pool,
    ):
        _wait_ready(client)
        held = [pool.submit(client.post, "/v2/models/churn/infer", json=BODY) for _ in range(2)]
        deadline = time.monotonic() + 10
        while in_flight(client) < 2:
            assert time.monotonic() < deadline, "the two requests never got in flight"
            time.sleep(0.01)

        busy = client.post("/v2/models/churn/infer", json=BODY)
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"] == "server busy: more than 2 requests in flight; retry later"
        v1 = client.post("/v1/models/churn:predict", json={"instances": [[0.1, 0.2, "red"]]})
        assert v1.status_code == 503, v1.text
        assert client.get("/v2/health/live").status_code == 200
        assert client.get("/v2/health/ready").status_code == 200

        gate.set()
        assert [f.result(timeout=30).status_code for f in held] == [200, 200]
        assert in_flight(client) == 0
        assert client.post("/v2/models/churn/infer", json=BODY).status_code == 200


def test_default_limits_are_the_documented_ones() -> None:
    settings = settings_for("churn")
    assert settings.max_request_bytes == 1024 * 1024
    assert settings.max_concurrent_requests == 1024
    assert settings.inference_log.buffer_rows == 10_000


def test_a_body_one_byte_over_the_limit_is_413_and_at_the_limit_is_read(
    store: MemoryObjectStore,
) -> None:
    for client in serve(copy_of(store), settings_for("churn", max_request_bytes=4096)):
        padding = b" " * 4096
        over = client.post(
            "/v2/models/churn/infer",
            content=padding + b"x",
            headers={"content-type": "application/json"},
        )
        assert over.status_code == 413, over.text
        assert "exceeds the limit of 4096 bytes (--max-request-bytes)" in over.json()["error"]
        at = client.post(
            "/v2/models/churn/infer", content=padding, headers={"content-type": "application/json"}
        )
        assert at.status_code == 400, at.text  # read in full, then refused as not JSON


def _wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 30
    while client.get("/v2/health/ready").status_code != 200:
        assert time.monotonic() < deadline, "the model did not load"
        time.sleep(0.02)
