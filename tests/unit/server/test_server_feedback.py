"""The feedback endpoint: labels posted, checked against the served model, buffered and
written to labels/<model>/feedback/ with the inference log's machinery; joinable."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from tests.kit.memory_store import MemoryObjectStore
from tests.unit.server.conftest import copy_of, make_frame, serve, settings_for

from continuum.errors import StorageError
from continuum.server.errors import ServerUnavailable
from continuum.server.feedback import FeedbackWriter
from continuum.server.metrics import ServerMetrics
from continuum.server.model import NUMERIC, FeatureSpec, ServedModel
from continuum.server.settings import InferenceLogSettings
from continuum.storage.ground_truth import join_labels, read_predictions
from continuum.storage.labels import LabelSchema, list_label_files, read_labels

ROWS = make_frame(rows=3, seed=5)[["x1", "x2", "color"]]
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def infer_body(request_id: str) -> dict:
    return {
        "id": request_id,
        "inputs": [
            {"name": "x1", "shape": [3], "datatype": "FP64", "data": ROWS["x1"].tolist()},
            {"name": "x2", "shape": [3], "datatype": "FP64", "data": ROWS["x2"].tolist()},
            {"name": "color", "shape": [3], "datatype": "BYTES", "data": ROWS["color"].tolist()},
        ],
    }


def counter(client, name: str, **labels) -> float:
    text = client.get("/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"continuum_server_{name}{{") and want in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_posted_labels_are_checked_kept_written_and_join_the_logged_predictions(store):
    logs = copy_of(store)
    labels = [
        {"id": "req-1", "row": 0, "label": "yes"},
        {"id": "req-1", "row": 2, "label": "no", "time": "2026-12-04T10:00:00Z"},
        {"id": "req-1", "row": 1, "label": "maybe"},
        {"id": "req-1", "row": "one", "label": "no"},
        "not an object",
    ]
    for client in serve(logs, settings_for("churn")):
        assert client.post("/v2/models/churn/infer", json=infer_body("req-1")).status_code == 200
        reply = client.post("/v2/models/churn/feedback", json={"labels": labels})
        single = client.post("/v2/models/churn/versions/1/feedback",
                             json={"id": "req-1", "row": 1, "label": "yes"})  # fmt: skip
        accepted = counter(client, "feedback_labels_total", outcome="accepted")
        rejected = counter(client, "feedback_labels_total", outcome="rejected")
    assert reply.status_code == 200
    assert reply.json() == {
        "accepted": 2,
        "rejected": 3,
        "problems": [
            "labels[2]: label 'maybe' is not a class of the model (classes: 'no', 'yes')",
            "labels[3]: row 'one' is not a row index: rows are integers 0, 1, 2, ... "
            "(empty means 0)",
            "labels[4]: not a JSON object",
        ],
    }
    assert single.json() == {"accepted": 1, "rejected": 0, "problems": []}
    assert (accepted, rejected) == (3.0, 3.0)
    files, _ = list_label_files(logs, "churn")
    assert len(files) == 1  # written at shutdown, one batch
    assert files[0].startswith("labels/churn/feedback/")
    written = read_labels(logs, "churn", LabelSchema(("no", "yes")))
    assert written.rejected == 0
    assert written.frame[["id", "row", "label"]].values.tolist() == [
        ["req-1", 0, "yes"], ["req-1", 2, "no"], ["req-1", 1, "yes"],
    ]  # fmt: skip
    assert written.frame["time"].iloc[1] == datetime(2026, 12, 4, 10, tzinfo=UTC)
    assert written.frame["time"].notna().all()  # no time given: the time it was received
    predictions = read_predictions(logs, "churn", 1)
    joined = join_labels(predictions, written.frame, now=datetime.now(UTC) + timedelta(hours=2),
                         label_delay=timedelta(hours=1))  # fmt: skip
    assert sorted(joined.frame["row"]) == [0, 1, 2]
    assert joined.counts.matched == 3


def test_bad_feedback_bodies_get_clear_answers(client):
    all_bad = client.post("/v2/models/churn/feedback", json={"labels": [{"id": "a"}]})
    assert all_bad.status_code == 422
    assert all_bad.json()["accepted"] == 0
    assert "no column 'label'" in all_bad.json()["problems"][0]
    not_json = client.post("/v2/models/churn/feedback", content=b"{nope")
    assert not_json.status_code == 400
    assert not_json.json()["error"].startswith("feedback body is not JSON")
    empty = client.post("/v2/models/churn/feedback", json={"labels": []})
    assert empty.status_code == 400
    assert "at least one label" in empty.json()["error"]
    other = client.post("/v2/models/other/feedback", json={"id": "a", "label": "yes"})
    assert other.status_code == 404
    big = client.post("/v2/models/churn/feedback", content=b" " * (2 * 1024 * 1024))
    assert big.status_code == 413


def test_a_regressor_takes_numbers(regressor):
    labels = [{"id": 7, "label": 2.5}, {"id": 8, "label": "x"}]
    reply = regressor.post("/v2/models/amount/feedback", json={"labels": labels})
    assert reply.status_code == 200
    assert (reply.json()["accepted"], reply.json()["rejected"]) == (1, 1)


def test_the_openapi_description_has_the_feedback_route(client):
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v2/models/{name}/feedback"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/FeedbackRequest"
    assert "FeedbackLabel" in spec["components"]["schemas"]


class FlakyStore(MemoryObjectStore):
    down = True

    def put_bytes(self, key, data, **kwargs):
        if self.down:
            raise StorageError("S3 down")
        super().put_bytes(key, data, **kwargs)


def served_model() -> ServedModel:
    features = (FeatureSpec("x", NUMERIC, True),)
    return ServedModel(
        name="churn",
        version=1,
        sha256="0" * 64,
        pipeline=None,
        features=features,
        classes=("no", "yes"),
    )  # type: ignore[call-arg]


def body(*ids: str) -> bytes:
    return json.dumps({"labels": [{"id": i, "label": "yes"} for i in ids]}).encode()


def test_while_s3_is_down_no_accepted_label_is_lost_and_a_full_buffer_refuses_whole_requests():
    store, metrics = FlakyStore("data"), ServerMetrics("churn", 1)
    writer = FeedbackWriter(store, served_model(), InferenceLogSettings(buffer_rows=5), metrics,
                            now=lambda: NOW)  # fmt: skip
    assert writer.receive(body("a", "b")).body["accepted"] == 2
    assert writer.writer.flush() == 0  # S3 down: the batch goes back
    assert writer.receive(body("c", "d", "e")).body["accepted"] == 3
    taken = writer.buffer.take()  # a write in flight keeps its room ...
    with pytest.raises(ServerUnavailable, match="none of this request's labels were kept"):
        writer.receive(body("f"))  # ... so the next request is refused, not a kept label lost
    assert writer.buffer.restore(taken) == 0
    with pytest.raises(ServerUnavailable):
        writer.receive(body("g"))
    store.down = False
    assert writer.writer.flush() == 5
    written = read_labels(store, "churn", LabelSchema(("no", "yes")))
    assert written.frame["id"].tolist() == ["a", "b", "c", "d", "e"]
    assert set(written.frame["time"]) == {NOW}
    refused = metrics.registry.get_sample_value(
        "continuum_server_feedback_labels_total",
        {"model": "churn", "version": "1", "outcome": "refused"},
    )
    assert refused == 2
    lost = sum(
        metrics.registry.get_sample_value(
            "continuum_server_feedback_dropped_labels_total",
            {"model": "churn", "version": "1", "reason": reason},
        )
        for reason in ("buffer_full", "write_failed")
    )
    assert lost == 0
    assert np.isclose(
        metrics.registry.get_sample_value(
            "continuum_server_feedback_written_labels_total", {"model": "churn", "version": "1"}
        ),
        5,
    )
