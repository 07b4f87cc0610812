"""The model server fuzzed from its own OpenAPI description (schemathesis): no 5xx, ever.

The app runs in-process (ASGI) with a real model loaded from the in-memory store. For every
operation in /openapi.json, schemathesis generates valid and invalid requests (path
parameters, query strings, headers and bodies that do and do not fit the schemas) with a fixed
seed and a bounded number of examples. Each one is sent as generated, and again with the model
name set to the served model so the inference code is reached and not only the 404 path. Any
answer of 500 or above fails; 503 too, because the model is loaded and the server is idle.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any, cast

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi
from tests.kit.memory_store import MemoryObjectStore
from tests.unit.server.conftest import copy_of, settings_for

from continuum.server.app import create_app

# Part of the reliability and security suite (`make test-reliability`).
pytestmark = pytest.mark.reliability

MAX_EXAMPLES = 50  # per operation and generation mode
BASE_URL = f"http://{asgi.HOST}"
# The description does not depend on the store or the model: build it at collection time.
SPEC = create_app(settings_for("churn"), MemoryObjectStore("data")).openapi()
SCHEMA = schemathesis.openapi.from_dict(SPEC, config=SchemathesisConfig.from_str("seed = 7"))
OPERATIONS = sorted(
    (path, method.upper(), "requestBody" in op)
    for path, item in SPEC["paths"].items()
    for method, op in item.items()
)
# Negative mode makes a request invalid against the description; where nothing can be invalid
# (no body, only free-form string parameters) hypothesis finds no example, so bodies only.
RUNS = [(path, method, GenerationMode.POSITIVE) for path, method, _ in OPERATIONS] + [
    (path, method, GenerationMode.NEGATIVE) for path, method, body in OPERATIONS if body
]


@pytest.fixture(scope="module")
def server(store: MemoryObjectStore) -> Iterator[Any]:
    """schemathesis's in-process client to the app, with churn/1 loaded."""
    yield from _serve(store)


@pytest.fixture
def own_server(store: MemoryObjectStore) -> Iterator[Any]:
    """A server of the test's own: ``case.call`` of schemathesis 4.32 runs and ends the app's
    lifespan itself, which stopped the shared server's batcher and left later requests hanging."""
    yield from _serve(store)


def _serve(store: MemoryObjectStore) -> Iterator[Any]:
    app = create_app(settings_for("churn"), copy_of(store))
    with asgi.get_client(cast(Any, app)) as client:
        deadline = time.monotonic() + 30
        while client.get(f"{BASE_URL}/v2/health/ready").status_code != 200:
            assert time.monotonic() < deadline, "the model did not load"
            time.sleep(0.02)
        yield client


def _send(case: Any, client: Any, seen: Counter[int]) -> None:
    response = case.call(base_url=BASE_URL, session=client)
    seen[response.status_code] += 1
    assert response.status_code < 500, (
        f"{response.status_code} {response.text[:500]}\n{case.as_curl_command(BASE_URL)}"
    )


@pytest.mark.parametrize(
    ("path", "method", "mode"), RUNS, ids=[f"{m} {p} {g.value}" for p, m, g in RUNS]
)
def test_no_request_makes_the_server_fail(
    server: Any, path: str, method: str, mode: GenerationMode
) -> None:
    seen: Counter[int] = Counter()

    @given(case=SCHEMA[path][method].as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        _send(case, server, seen)
        if "name" in (case.path_parameters or {}):
            # Again for the served model, so the inference code runs, not only the 404 path.
            case.path_parameters["name"] = "churn"
            if "version" in case.path_parameters:
                case.path_parameters["version"] = "1"
            _send(case, server, seen)

    fuzz()
    print(
        f"{method} {path} {mode.value}: {sum(seen.values())} requests, {dict(sorted(seen.items()))}"
    )
    assert seen


def test_the_fuzzer_reaches_the_inference_operations() -> None:
    """The description the fuzzer reads lists the inference endpoints with their bodies."""
    assert {
        ("/v2/models/{name}/infer", "POST", True),
        ("/v2/models/{name}/versions/{version}/infer", "POST", True),
        ("/v1/models/{name}:predict", "POST", True),
        ("/v2/health/ready", "GET", False),
    } <= set(OPERATIONS)
    infer = SPEC["paths"]["/v2/models/{name}/infer"]["post"]
    assert infer["requestBody"]["content"]["application/json"]["schema"]


# The description's schemas leave tensor names, shapes and values free, so the generic fuzzer
# rarely names the model's real features. Here requests have the served model's feature names
# (x1, x2, color) or the all-features tensor, with any shape, datatype and values.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3), max_leaves=12)
TENSORS = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["x1", "x2", "color", "input", "x3"]),
        "shape": st.lists(st.integers(min_value=-2, max_value=6), max_size=3),
        "datatype": st.sampled_from(["FP64", "FP32", "INT64", "INT32", "BYTES", "BOOL", "FP16"]),
        "data": st.lists(VALUES, max_size=8),
    },
    optional={"parameters": st.dictionaries(st.text(max_size=12), SCALARS, max_size=2)},
)
DATATYPES = st.sampled_from(["FP64", "FP32", "INT64", "INT32", "BYTES"])


def _features(rows: int) -> st.SearchStrategy[list[dict[str, Any]]]:
    """The model's three features, each [rows] long, with any datatype and scalar values."""
    return st.tuples(
        *(
            st.fixed_dictionaries(
                {
                    "name": st.just(name),
                    "shape": st.just([rows]),
                    "datatype": DATATYPES,
                    "data": st.lists(SCALARS, min_size=rows, max_size=rows),
                }
            )
            for name in ("x1", "x2", "color")
        )
    ).map(list)


INFER = st.fixed_dictionaries(
    {"inputs": st.one_of(st.lists(TENSORS, max_size=4), st.integers(1, 4).flatmap(_features))},
    optional={
        "id": st.text(max_size=8),
        "outputs": st.lists(
            st.fixed_dictionaries({"name": st.sampled_from(["predict", "predict_proba", "x"])}),
            max_size=3,
        ),
    },
)
INSTANCES = st.fixed_dictionaries(
    {
        "instances": st.lists(
            st.one_of(
                st.lists(VALUES, max_size=4),
                st.dictionaries(st.sampled_from(["x1", "x2", "color", "y"]), VALUES, max_size=4),
                SCALARS,
            ),
            max_size=5,
        )
    }
)


JSON = {"content-type": "application/json"}
MODEL_SHAPED_PATHS = (
    "/v2/models/churn/infer",
    "/v2/models/churn/versions/1/infer",
    "/v1/models/churn:predict",
)


def test_model_shaped_requests_never_make_the_server_fail_and_reach_the_model(
    own_server: Any,
) -> None:
    """Any mix of the model's feature names, shapes, datatypes and values: 200, 400 or 422,
    and enough of them get past validation into predict (not only into error answers)."""
    statuses: Counter[int] = Counter()

    @settings(max_examples=200, derandomize=True, deadline=None, database=None)
    @given(infer=INFER, predict=INSTANCES)
    def send(infer: dict[str, Any], predict: dict[str, Any]) -> None:
        for path in MODEL_SHAPED_PATHS:
            body = predict if path.startswith("/v1/") else infer
            # json.dumps writes NaN and Infinity as bare tokens, which strict parsers refuse.
            data = json.dumps(body).encode()
            response = own_server.post(f"{BASE_URL}{path}", data=data, headers=JSON)
            assert response.status_code in {200, 400, 422}, (path, body, response.text[:500])
            statuses[response.status_code] += 1

    send()
    print(f"model-shaped requests: {dict(sorted(statuses.items()))}")
    assert statuses[200] >= 20
    assert statuses[400] + statuses[422] >= 20
