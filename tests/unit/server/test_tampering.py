"""Tampered, truncated or swapped model files and manifests: the server refuses to serve them.

Each case damages one published version in a private copy of the in-memory store, then starts
the real app on it. The server must stay live, answer not ready with a reason that says what is
wrong, refuse inference with 503, and never load the damaged bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, cast

import pytest
from tests.kit.memory_store import MemoryObjectStore
from tests.unit.server.conftest import copy_of, serve, settings_for
from tests.unit.server.test_server_app import ROWS, per_feature_inputs

# Part of the reliability and security suite (`make test-reliability`).
pytestmark = pytest.mark.reliability

MODEL = ("data", "models/churn/1/model.skops")
MANIFEST = ("data", "models/churn/1/manifest.json")
Tamper = Callable[[MemoryObjectStore], None]


def _model(store: MemoryObjectStore) -> bytes:
    return store.objects[MODEL]


def _manifest(store: MemoryObjectStore) -> dict[str, Any]:
    return dict(json.loads(store.objects[MANIFEST]))


def _set_manifest(store: MemoryObjectStore, **fields: object) -> None:
    manifest = _manifest(store)
    manifest.update(fields)
    store.objects[MANIFEST] = json.dumps(manifest).encode()


def truncate_model(store: MemoryObjectStore) -> None:
    store.objects[MODEL] = _model(store)[: len(_model(store)) // 2]


def truncate_model_by_one_byte(store: MemoryObjectStore) -> None:
    store.objects[MODEL] = _model(store)[:-1]


def empty_model(store: MemoryObjectStore) -> None:
    store.objects[MODEL] = b""


def truncate_model_and_rewrite_digest(store: MemoryObjectStore) -> None:
    """A consistent forgery: the manifest's sha256 is recomputed over the truncated bytes."""
    truncate_model(store)
    _set_manifest(store, sha256=hashlib.sha256(_model(store)).hexdigest())


def swap_in_another_model(store: MemoryObjectStore) -> None:
    """A valid model file of another model (the regressor amount/1) in churn/1's place."""
    store.objects[MODEL] = store.objects[("data", "models/amount/1/model.skops")]


def change_manifest_digest(store: MemoryObjectStore) -> None:
    _set_manifest(store, sha256="0" * 64)


def short_manifest_digest(store: MemoryObjectStore) -> None:
    _set_manifest(store, sha256="abc123")


def drop_manifest_digest(store: MemoryObjectStore) -> None:
    manifest = _manifest(store)
    del manifest["sha256"]
    store.objects[MANIFEST] = json.dumps(manifest).encode()


def drop_feature_schema(store: MemoryObjectStore) -> None:
    _set_manifest(store, features=[])


def manifest_of_another_version(store: MemoryObjectStore) -> None:
    _set_manifest(store, version=2)


def manifest_not_an_object(store: MemoryObjectStore) -> None:
    store.objects[MANIFEST] = b'["not", "a", "manifest"]'


def truncate_manifest(store: MemoryObjectStore) -> None:
    store.objects[MANIFEST] = store.objects[MANIFEST][:40]


CASES: list[tuple[str, Tamper, str]] = [
    ("model truncated to half", truncate_model, "does not match the manifest"),
    ("model one byte short", truncate_model_by_one_byte, "does not match the manifest"),
    ("model file empty", empty_model, "does not match the manifest"),
    ("truncated, digest forged", truncate_model_and_rewrite_digest, "could not be loaded safely"),
    ("another model's file", swap_in_another_model, "does not match the manifest"),
    ("manifest digest changed", change_manifest_digest, "does not match the manifest's 0000"),
    ("manifest digest too short", short_manifest_digest, "has no valid sha256"),
    ("manifest without digest", drop_manifest_digest, "lacks sha256"),
    ("manifest without features", drop_feature_schema, "no feature schema"),
    ("manifest of another version", manifest_of_another_version, "describes churn/2"),
    ("manifest not an object", manifest_not_an_object, "is not a JSON object"),
    ("manifest truncated", truncate_manifest, "manifest.json) is not JSON"),
]


@pytest.mark.parametrize(("tamper", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_damaged_version_is_refused_and_the_server_stays_live(
    store: MemoryObjectStore, tamper: Tamper, reason: str
) -> None:
    damaged = copy_of(store)
    tamper(damaged)
    for client in serve(damaged, settings_for("churn")):
        assert client.get("/v2/health/live").status_code == 200
        ready = client.get("/v2/health/ready")
        assert ready.status_code == 503
        assert ready.json()["reason"].startswith("refusing to serve model churn/1: ")
        assert reason in ready.json()["reason"]
        assert cast(Any, client.app).state.server.model is None
        reply = client.post("/v2/models/churn/infer", json={"inputs": per_feature_inputs(ROWS)})
        assert reply.status_code == 503, reply.text
        assert "refusing to serve model churn/1" in reply.json()["error"]
        v1 = client.post("/v1/models/churn:predict", json={"instances": [[0.1, 0.2, "red"]]})
        assert v1.status_code == 503, v1.text
        assert client.get("/v2/models/churn/ready").status_code == 503


def test_the_untouched_copy_still_serves(store: MemoryObjectStore) -> None:
    """The cases above fail because of the damage: the same store undamaged serves."""
    for client in serve(copy_of(store), settings_for("churn")):
        assert client.get("/v2/health/ready").status_code == 200
        reply = client.post("/v2/models/churn/infer", json={"inputs": per_feature_inputs(ROWS)})
        assert reply.status_code == 200, reply.text


def test_damage_to_one_version_leaves_another_serving(store: MemoryObjectStore) -> None:
    """Versions are separate folders: damaging amount/1 does not touch churn/1."""
    damaged = copy_of(store)
    damaged.objects[("data", "models/amount/1/model.skops")] = b"garbage"
    for client in serve(damaged, settings_for("churn")):
        assert client.get("/v2/health/ready").status_code == 200
