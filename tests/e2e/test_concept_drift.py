"""Concept drift, end to end in real containers (issue 17): the loop closed on outcomes.

train v1 on the base data -> serve it -> traffic through the Service, inputs as in training ->
labels come back, flipped for one segment (colour red: the concept moved, the inputs did not)
-> the DriftMonitor's check: NoDrift, realised accuracy degraded -> a retraining set off by
the *performance* trigger, its TrainingJob building its training set from the served traffic
and its labels (spec.dataset.feedback, includeBase false) as a Parquet snapshot -> v2 beats
v1 on that set's holdout -> promoted -> new traffic, labelled by the new concept -> the next
check of v2 holds -> ``continuum lineage`` names the snapshot, its fingerprint and the trigger
-> a TrainingJob replaying the retraining's spec on the snapshot writes the same model bytes.

The operator runs as a subprocess under deploy/rbac/clusterrole.yaml; trainer, server, monitor
and traffic run in pods of a namespace that enforces restricted Pod Security. Labels are
dropped as a label file under labels/churn/ (the path users' systems take; the feedback
endpoint writes under the same prefix).
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tests.kit.cluster import Operator, S3Settings, s3_client, upload, wait_until
from tests.kit.cluster import loaded_image as project_image  # noqa: F401 (no rebuild here)
from tests.kit.datasets import as_csv, two_class_rows
from tests.kit.kinds import (
    DRIFTMONITORS,
    GROUP,
    VERSION,
    Ctx,
    conditions,
    create_tj,
    drift_monitor,
    get_dm,
    lineage,
    model_deployment,
    only_version_pods,
    retrain_jobs,
    training_job,
    wait_dm,
)
from tests.kit.traffic import send

from continuum.storage.inference_logs import decode_rows

pytestmark = pytest.mark.cluster
ROWS = 300
SEGMENT = "red"  # its labels flip: the new concept
# A forest: the new concept (high XOR red) is not linear in the features.
FOREST = {"class": "RandomForestClassifier", "params": {"n_estimators": 40, "random_state": 0}}


def truth(row: dict[str, Any]) -> str:
    """The label under the new concept: the old one, flipped for the segment."""
    flipped = {"yes": "no", "no": "yes"}
    return flipped[row["label"]] if row["colour"] == SEGMENT else str(row["label"])


def logged(s3: S3Settings, bucket: str, version: int) -> list[dict[str, Any]]:
    s3c = s3_client(s3)
    listed = s3c.list_objects_v2(Bucket=bucket, Prefix=f"inference-logs/churn/{version}/")
    rows: list[dict[str, Any]] = []
    for obj in sorted(listed.get("Contents", []), key=lambda o: o["Key"]):
        rows += decode_rows(s3c.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
    return rows


def serve_and_label(ctx: Ctx, version: int, seed: int, name: str) -> list[dict[str, Any]]:
    """Send ROWS rows through the Service, wait for them in the log, and drop a label file
    with the new concept's label for each logged prediction (matched by its features)."""
    rows = two_class_rows(ROWS, seed)
    send(ctx.api, ctx.namespace, f"traffic-{name}", rows)
    wait_until(
        f"{name} traffic in the log",
        lambda: len(logged(ctx.s3, ctx.bucket, version)) >= ROWS,
        150,
    )
    by_features = {(r["sepal"], r["petal"], r["width"], r["colour"]): r for r in rows}
    labels = []
    for entry in logged(ctx.s3, ctx.bucket, version):
        f = entry["features"]
        sent = by_features.get((f["sepal"], f["petal"], f["width"], f["colour"]))
        if sent is not None:
            labels.append({"id": entry["request_id"], "row": entry.get("row", 0),
                           "label": truth(sent)})  # fmt: skip
    assert len(labels) >= ROWS, len(labels)
    body = "\n".join(json.dumps(label) for label in labels).encode()
    key = f"labels/churn/{name}.jsonl"
    s3_client(ctx.s3).put_object(Bucket=ctx.bucket, Key=key, Body=body)
    return labels


def model_digest(ctx: Ctx, version: int) -> str:
    key = f"models/churn/{version}/model.skops"
    data = s3_client(ctx.s3).get_object(Bucket=ctx.bucket, Key=key)["Body"].read()
    return hashlib.sha256(data).hexdigest()


def feedback_template(ctx: Ctx) -> dict[str, Any]:
    spec: dict[str, Any] = ctx.training_job("template")["spec"]
    spec["estimator"] = copy.deepcopy(FOREST)
    spec["dataset"]["feedback"] = {"sinceSeconds": 3600, "includeBase": False}
    spec["evaluation"] = {"metric": "accuracy", "threshold": 0.6, "mustBeat": "current"}
    return spec


def recovers(ctx: Ctx, checked: str, dropped: float) -> dict[str, Any]:
    """v2 serves traffic labelled by the new concept; a later check of it holds, its realised
    accuracy well above v1's."""
    serve_and_label(ctx, 2, 31, "v2")

    def held(d: dict[str, Any]) -> bool:
        found = d.get("status", {}).get("performance") or {}
        return d["status"].get("lastCheckTime", "") > checked and found.get("verdict") == "Held"

    dm = wait_dm(ctx, "a held check of v2", held, 300)
    realised = dm["status"]["performance"]["realised"]
    assert realised["value"] > dropped + 0.1, (realised, dropped)
    assert conditions(dm)["PerformanceDegraded"]["status"] == "False"
    return dm


def replay_writes_the_same_model(ctx: Ctx, snapshot: str, done: dict[str, Any]) -> None:
    """A TrainingJob with the retraining's spec on the snapshot (no feedback, a gate nothing
    passes, so nothing is promoted) records the same fingerprint and the same model bytes."""
    api, namespace = ctx.api, ctx.namespace
    replay = training_job("churn-replay", snapshot, ctx.s3, ctx.bucket, ctx.secret)
    replay["spec"] = copy.deepcopy(retrain_jobs(api, namespace)[0]["spec"])
    replay["spec"]["dataset"] = {**replay["spec"]["dataset"], "uri": snapshot,
                                 "format": "parquet"}  # fmt: skip
    del replay["spec"]["dataset"]["feedback"]
    replay["spec"]["evaluation"] = {"metric": "accuracy", "threshold": 1.5, "mustBeat": "none"}
    create_tj(api, namespace, replay)
    again = ctx.finished("churn-replay")["status"]
    assert again["phase"] == "Succeeded", again
    assert again["dataset"]["fingerprint"] == done["dataset"]["fingerprint"]
    assert model_digest(ctx, again["model"]["version"]) == model_digest(ctx, 2)


@pytest.mark.timeout(1200)
def test_concept_drift_retrains_on_served_traffic_and_the_metric_recovers(
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
    operator: Operator,
) -> None:
    started, marks = time.monotonic(), {}
    prefix = f"s3://{s3_bucket}/datasets/churn/"
    upload(s3, s3_bucket, "datasets/churn/part-0.csv", as_csv(two_class_rows(240, 7)))
    ctx = Ctx(api, namespace, operator, s3, s3_bucket, s3_secret, prefix)
    assert ctx.train("churn-1") == 1
    objs = client.CustomObjectsApi(api)
    objs.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", model_deployment(s3, s3_bucket, s3_secret)
    )
    ctx.serving(1)
    serve_and_label(ctx, 1, 21, "v1")
    marks["v1 served and labelled"] = time.monotonic() - started

    performance = {"labelDelaySeconds": 0, "minLabels": 100, "consecutiveChecks": 1,
                   "windowSeconds": 3600, "maxDrop": 0.05}  # fmt: skip
    monitor = drift_monitor(feedback_template(ctx), performance=performance,
                            window={"maxRows": ROWS, "minSamples": 100})  # fmt: skip
    monitor["spec"]["retrain"]["cooldownSeconds"] = 60
    objs.create_namespaced_custom_object(GROUP, VERSION, namespace, DRIFTMONITORS, monitor)
    dm = wait_dm(ctx, "a retraining", lambda d: d.get("status", {}).get("retrainings"), 300)
    marks["performance retraining"] = time.monotonic() - started
    status = dm["status"]
    assert conditions(dm)["DriftDetected"]["status"] == "False", status  # inputs unchanged
    assert conditions(dm)["PerformanceDegraded"]["status"] == "True", status
    [record] = status["retrainings"]
    assert (record["trigger"], record["version"]) == ("performance", 1), record
    dropped = record["evidence"]["value"]
    assert record["evidence"]["upper"] < record["evidence"]["holdout"] - 0.05, record

    done = ctx.finished(record["trainingJob"])["status"]
    assert done["phase"] == "Succeeded", done
    assert done["qualified"] is True, done  # beats v1 on the new concept's holdout
    assert done["model"]["version"] == 2
    snapshot = done["dataset"]["snapshot"]
    assert snapshot.startswith(f"s3://{s3_bucket}/snapshots/churn/"), done["dataset"]
    assert done["dataset"]["feedbackRows"] >= ROWS
    ctx.serving(2)
    wait_until("v1's server pods to be gone", lambda: only_version_pods(api, namespace, 2), 120)
    marks["v2 serving"] = time.monotonic() - started

    dm = recovers(ctx, status["lastCheckTime"], dropped)
    marks["v2 held"] = time.monotonic() - started
    assert len(retrain_jobs(api, namespace)) == 1  # once per served version

    text = lineage(kubeconfig, namespace)
    print(text)
    assert snapshot in text
    assert done["dataset"]["fingerprint"] in text
    assert "performance" in text

    replay_writes_the_same_model(ctx, snapshot, done)
    assert get_dm(api, namespace)["status"]["retrainings"] == dm["status"]["retrainings"]
    marks["replayed"] = time.monotonic() - started
    print("timings (s):", json.dumps({k: round(v) for k, v in marks.items()}))
