"""Champion and candidate in one server (issue 18): routing by weight, shadow scoring, the
champion's fallback, the counters of GET /v2/rollout, and a candidate that is never loaded
unverified. The real app on real models trained by the trainer (tests/unit/server/conftest)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from tests.kit.memory_store import MemoryObjectStore
from tests.unit.server.conftest import copy_of, make_frame, publish, settings_for, spec, wait_loaded
from tests.unit.server.test_server_app import per_feature_inputs

from continuum.errors import ConfigError
from continuum.server.app import create_app
from continuum.server.model import Prediction, ServedModel, load_served_model
from continuum.server.rollout import (
    LATENCY_BOUNDS,
    Recent,
    RolloutSettings,
    agreeing_rows,
    check_pair,
    rollout_from_env,
    routes_to_candidate,
)
from continuum.storage import ObjectStore

ROWS = make_frame(rows=5, seed=11)[["x1", "x2", "color"]]
GOOD, FLIPPED, FAILING, STRICT = 2, 3, 4, 5


@pytest.fixture(scope="module")
def versions(store: MemoryObjectStore) -> MemoryObjectStore:
    """churn/1 the champion; churn/2 the same training again (agrees); churn/3 trained on
    inverted labels (disagrees on nearly every row); churn/4 a copy of 2 (made to fail)."""
    copy = copy_of(store)
    frame = make_frame()
    flipped = frame.assign(label=np.where(frame["label"] == "yes", "no", "yes"))
    copy.put_bytes("sets/flipped/part-0.csv", flipped.to_csv(index=False).encode())
    churn = spec("churn", "LogisticRegression", "label", "accuracy")
    assert publish(copy, churn) == GOOD
    inverted = {**churn, "dataset": {**churn["dataset"], "uri": "s3://data/sets/flipped/"}}
    assert publish(copy, inverted) == FLIPPED
    assert publish(copy, churn) == FAILING
    assert (
        publish(
            copy,
            {**churn, "preprocessing": {**churn["preprocessing"], "numeric": {"impute": "none"}}},
        )
        == STRICT
    )
    return copy


@dataclasses.dataclass(frozen=True)
class FailsOnRed(ServedModel):
    """A candidate whose pipeline cannot score one category (as an unhandled new level)."""

    def predict(self, columns: dict[str, np.ndarray]) -> Prediction:
        if (columns["color"] == "red").any():
            raise ValueError("unknown category 'red'")
        return super().predict(columns)


def loader(store: ObjectStore, name: str, version: int) -> ServedModel:
    model = load_served_model(store, name, version)
    if version != FAILING:
        return model
    return FailsOnRed(**{f.name: getattr(model, f.name) for f in dataclasses.fields(model)})


def serving(
    store: MemoryObjectStore, candidate: int | None, weight: int = 0
) -> Iterator[TestClient]:
    rollout = RolloutSettings(candidate=candidate, weight=weight, step=f"v{candidate}-step0")
    app = create_app(settings_for("churn"), copy_of(store), loader=loader, rollout=rollout)
    with TestClient(app) as client:
        wait_loaded(client)
        yield client


def infer(client: TestClient, request_id: str, rows: Any = ROWS) -> tuple[str, str, list[Any]]:
    body = {"id": request_id, "inputs": per_feature_inputs(rows)}
    reply = client.post("/v2/models/churn/infer", json=body)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    labels = next(o["data"] for o in answer["outputs"] if o["name"] == "predict")
    return answer["model_version"], reply.headers["x-model-version"], labels


def counters(client: TestClient, compared: int) -> dict[str, Any]:
    """GET /v2/rollout once ``compared`` copies have been scored (they run after answering)."""
    deadline = time.monotonic() + 10
    while True:
        reply = client.get("/v2/rollout")
        assert reply.status_code == 200, reply.text
        found: dict[str, Any] = reply.json()
        done = found["compared"]["requests"] + found["candidate"]["errors"]
        if done >= compared or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


# ---------------------------------------------------------------- pure parts


def test_routing_is_deterministic_by_request_id_and_follows_the_weight() -> None:
    ids = [f"req-{i}" for i in range(20_000)]
    share = sum(routes_to_candidate(i, 10) for i in ids) / len(ids)
    assert 0.09 < share < 0.11
    assert [routes_to_candidate(i, 10) for i in ids[:50]] == [
        routes_to_candidate(i, 10) for i in ids[:50]
    ]
    assert not any(routes_to_candidate(i, 0) for i in ids[:100])
    assert all(routes_to_candidate(i, 100) for i in ids[:100])
    tenth = {i for i in ids if routes_to_candidate(i, 10)}
    half = {i for i in ids if routes_to_candidate(i, 50)}
    assert tenth <= half, "a request the candidate answered at 10% it still answers at 50%"


def test_settings_from_the_environment() -> None:
    assert rollout_from_env({}) == RolloutSettings()
    env = {
        "CONTINUUM_CANDIDATE_VERSION": "3",
        "CONTINUUM_CANDIDATE_WEIGHT": "10",
        "CONTINUUM_ROLLOUT_STEP": "v3-step1",
        "CONTINUUM_AGREEMENT_TOLERANCE": "0.1",
    }
    assert rollout_from_env(env) == RolloutSettings(3, 10, "v3-step1", 0.1)
    with pytest.raises(ConfigError, match=r"CONTINUUM_CANDIDATE_WEIGHT = '150'.*0 and 100"):
        rollout_from_env({**env, "CONTINUUM_CANDIDATE_WEIGHT": "150"})
    with pytest.raises(ConfigError, match="CONTINUUM_CANDIDATE_VERSION = 'x'"):
        rollout_from_env({"CONTINUUM_CANDIDATE_VERSION": "x"})


def test_agreement_of_labels_and_of_values() -> None:
    assert agreeing_rows(np.array(["a", "b", "c"]), np.array(["a", "x", "c"]),
                         classifier=True, tolerance=0.0) == 2  # fmt: skip
    values = np.array([100.0, 0.0, -10.0])
    close = np.array([104.0, 0.0, -11.0])
    assert agreeing_rows(values, close, classifier=False, tolerance=0.05) == 2
    assert agreeing_rows(values, close, classifier=False, tolerance=0.1) == 3


# ---------------------------------------------------------------- the server


def test_shadow_answers_with_the_champion_and_compares_every_request(
    versions: MemoryObjectStore,
) -> None:
    for client in serving(versions, GOOD, weight=0):
        answers = {infer(client, f"r{i}")[:2] for i in range(40)}
        assert answers == {("1", "1")}, "in shadow the candidate never answers"
        found = counters(client, compared=40)
    assert found["step"] == "v2-step0"
    assert found["latencyBounds"] == list(LATENCY_BOUNDS)
    assert (found["champion"]["answered"], found["candidate"]["answered"]) == (40, 0)
    assert found["candidate"]["scored"] == 40
    assert found["compared"] == {"requests": 40, "rows": 200, "agreed": 200, "skipped": 0}
    assert found["champion"]["labels"] == found["candidate"]["labels"]
    assert sum(found["candidate"]["latency"]) == 40


def test_a_disagreeing_candidate_is_counted_in_shadow(versions: MemoryObjectStore) -> None:
    for client in serving(versions, FLIPPED, weight=0):
        for i in range(20):
            infer(client, f"r{i}")
        found = counters(client, compared=20)
    assert found["compared"]["rows"] == 100
    assert found["compared"]["agreed"] < 20


def test_canary_routes_by_request_id_and_says_who_answered(versions: MemoryObjectStore) -> None:
    for client in serving(versions, FLIPPED, weight=50):
        for i in range(30):
            body_version, header, _ = infer(client, f"id-{i}")
            expected = str(FLIPPED) if routes_to_candidate(f"id-{i}", 50) else "1"
            assert (body_version, header) == (expected, expected)
        found = counters(client, compared=30)
    routed = sum(routes_to_candidate(f"id-{i}", 50) for i in range(30))
    assert found["candidate"]["answered"] == routed
    assert found["champion"]["answered"] == 30 - routed
    assert found["champion"]["scored"] == found["candidate"]["scored"] == 30


def test_a_failing_candidate_costs_no_client_request(versions: MemoryObjectStore) -> None:
    red = ROWS.assign(color="red")
    for client in serving(versions, FAILING, weight=100):
        assert infer(client, "red-1", red)[:2] == ("1", "1"), "the champion answers instead"
        assert infer(client, "blue-1", ROWS.assign(color="blue"))[:2] == ("4", "4")
        found = counters(client, compared=1)
    assert found["candidate"]["errors"] == 1
    assert found["candidate"]["answered"] == 1
    assert found["champion"]["answered"] == 1


def test_a_missing_value_the_candidate_does_not_impute_is_its_error(
    versions: MemoryObjectStore,
) -> None:
    """The champion imputes x1, version 5 does not: its pipeline would answer NaN
    probabilities for such a row; the server counts the candidate's error instead and the
    champion answers."""
    gap = per_feature_inputs(ROWS)
    gap[0] = {**gap[0], "data": [None, *gap[0]["data"][1:]]}
    for client in serving(versions, STRICT, weight=100):
        reply = client.post("/v2/models/churn/infer", json={"id": "gap", "inputs": gap})
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-model-version"] == "1"
        assert infer(client, "full")[:2] == ("5", "5")
        found = counters(client, compared=1)
    assert found["candidate"]["errors"] == 1
    assert found["candidate"]["answered"] == 1


def test_a_tampered_candidate_is_never_loaded_and_the_pod_stays_unready(
    versions: MemoryObjectStore,
) -> None:
    damaged = copy_of(versions)
    key = ("data", f"models/churn/{GOOD}/model.skops")
    data = bytearray(damaged.objects[key])
    data[len(data) // 2] ^= 0xFF
    damaged.objects[key] = bytes(data)
    for client in serving(damaged, GOOD):
        ready = client.get("/v2/health/ready")
        assert ready.status_code == 503
        reason = ready.json()["reason"]
        assert "beside candidate churn/2" in reason
        assert "sha256" in reason
        assert client.get("/v2/rollout").status_code == 404
        reply = client.post("/v2/models/churn/infer", json={"inputs": per_feature_inputs(ROWS)})
        assert reply.status_code == 503


def test_without_a_candidate_there_is_no_rollout(client: TestClient) -> None:
    reply = client.get("/v2/rollout")
    assert reply.status_code == 404
    assert reply.json() == {"error": "no rollout: this server serves churn/1 alone"}
    answer = client.post("/v2/models/churn/infer", json={"inputs": per_feature_inputs(ROWS)})
    assert answer.headers["x-model-version"] == "1"


def test_a_candidate_reading_a_feature_as_another_kind_is_refused(
    versions: MemoryObjectStore,
) -> None:
    champion = load_served_model(versions, "churn", 1)
    features = tuple(
        dataclasses.replace(f, kind="numeric") if f.name == "color" else f
        for f in champion.features
    )
    other = dataclasses.replace(champion, version=9, features=features)
    assert check_pair(champion, champion) is None
    assert check_pair(champion, other) == (
        "candidate churn/9 reads features as another kind than the champion: "
        "color (categorical vs numeric)"
    )


def test_labels_posted_during_a_rollout_score_both_versions_on_the_same_rows(
    versions: MemoryObjectStore,
) -> None:
    """In shadow the champion answers; the labels posted are its answers, so the champion is
    right on every labelled row and the candidate trained on inverted labels mostly wrong."""
    for client in serving(versions, FLIPPED, weight=0):
        answers = {f"q{i}": infer(client, f"q{i}")[2] for i in range(8)}
        counters(client, compared=8)
        labels = [
            {"id": rid, "row": row, "label": label}
            for rid, answered in answers.items()
            for row, label in enumerate(answered)
        ]
        extra = [
            labels[0],
            {"id": "never-seen", "label": "yes"},
            {"id": "q0", "row": 9, "label": "no"},
        ]
        reply = client.post("/v2/models/churn/feedback", json={"labels": labels + extra})
        assert reply.status_code == 200, reply.text
        found = client.get("/v2/rollout").json()["realised"]
    assert found["metric"] == "accuracy"
    assert found["rows"] == 40, "8 requests of 5 rows, each labelled once"
    assert found["champion"] == 40.0
    assert found["candidate"] < 8
    assert (found["repeated"], found["unmatched"]) == (1, 2), "a repeat; an unknown id and row"


def test_the_recent_answers_are_bounded() -> None:
    recent = Recent(capacity=3)
    for i in range(5):
        recent.remember(f"r{i}", np.array(["a"]), np.array(["b"]))
    assert len(recent) == 3
    assert recent.get("r1") is None
    assert recent.get("r4") is not None
