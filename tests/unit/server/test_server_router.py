"""The router: one way to each answer, and FastAPI's answers kept on the inference paths."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Match
from tests.kit.memory_store import MemoryObjectStore
from tests.unit.server.conftest import copy_of, settings_for, wait_loaded
from tests.unit.server.test_server_app import ROWS, per_feature_inputs

from continuum.server.app import create_app
from continuum.server.router import INFERENCE_ROUTES, find_route

BODY = {"inputs": per_feature_inputs(ROWS)}
PATHS = ["/v2/models/churn/infer", "/v2/models/churn/versions/1/infer", "/v1/models/churn:predict"]


@pytest.mark.parametrize(
    ("path", "found"),
    [
        ("/v2/models/churn/infer", ("infer", {"name": "churn"})),
        ("/v2/models/churn/versions/1/infer", ("infer", {"name": "churn", "version": "1"})),
        ("/v1/models/churn:predict", ("predict", {"name": "churn"})),
        ("/v2/models//infer", None),  # a parameter is one non-empty segment, as in FastAPI
        ("/v2/models/a/b/infer", None),
        ("/v2/models/churn/infer/", None),
        ("/v2/models/churn", None),
    ],
)
def test_inference_paths_are_found_with_their_parameters(path: str, found: object) -> None:
    assert find_route(path) == found


def test_fastapi_has_no_route_to_an_inference_answer(client: TestClient) -> None:
    """Each answer has one way in: no FastAPI route takes a POST to an inference path."""
    for route in INFERENCE_ROUTES:
        path = route.path.format(name="churn", version="1")
        scope = {"type": "http", "method": "POST", "path": path, "root_path": ""}
        assert all(r.matches(scope)[0] is not Match.FULL for r in client.app.router.routes), path


def test_the_openapi_description_still_lists_every_inference_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for route in INFERENCE_ROUTES:
        assert set(paths[route.path]) == {"post"}, route.path


def test_another_method_on_an_inference_path_is_405(client: TestClient) -> None:
    for method in ("GET", "PUT", "DELETE"):
        reply = client.request(method, "/v2/models/churn/infer")
        assert reply.status_code == 405, (method, reply.text)
        assert reply.headers["allow"] == "POST"
        assert reply.json() == {"detail": "Method Not Allowed"}


def test_a_get_on_the_v1_predict_path_is_the_status_of_a_model_of_that_name(
    client: TestClient,
) -> None:
    reply = client.get("/v1/models/churn:predict")
    assert reply.status_code == 404
    assert "model 'churn:predict' is not served here" in reply.json()["error"]


@pytest.mark.parametrize("path", PATHS)
def test_a_trailing_slash_redirects_to_the_inference_path(client: TestClient, path: str) -> None:
    reply = client.post(f"{path}/?x=1", json=BODY, follow_redirects=False)
    assert reply.status_code == 307
    assert reply.headers["location"] == f"http://testserver{path}?x=1"


def test_every_inference_path_answers_under_a_root_path(store: MemoryObjectStore) -> None:
    """Behind a proxy that mounts the server at /serving (ASGI root_path), as FastAPI routes."""
    app = create_app(settings_for("churn"), copy_of(store))
    with TestClient(app, root_path="/serving") as client:
        wait_loaded(client)
        for path in PATHS:
            body = {"instances": ROWS.to_numpy(dtype=object).tolist()} if "v1" in path else BODY
            reply = client.post(f"/serving{path}", json=body)
            assert reply.status_code == 200, (path, reply.text)
        assert client.get("/serving/v2/models/churn/ready").status_code == 200
