"""spec.inferenceLog drop/hash under the real operator, model server, drift check and MinIO.

The HMAC key is a real Secret; the server pod and the check pod get it from the kubelet
(secretKeyRef). The served rows land in MinIO without the dropped feature and with the hashed
one as hmac:<hex>, equal to what the key gives for the plain value; the drift check leaves the
dropped feature out, hashes the reference with the same key, and says both in the report's
notes; the key appears in no status, Event, report or Deployment.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from kubernetes import client

from continuum.storage.inference_logs import decode_rows
from continuum.storage.privacy import hash_value
from tests.kit.cluster import s3_client, wait_until
from tests.kit.kinds import (
    GROUP,
    MD,
    ROWS,
    VERSION,
    drift_monitor,
    get_dm,
    get_md,
    model_deployment,
    objs,
    predict_in_cluster,
    wait_dm,
    write_inference_log,
)

pytestmark = pytest.mark.cluster


def logged_rows(ctx: Any) -> list[dict[str, Any]]:
    s3 = s3_client(ctx.s3)
    listed = s3.list_objects_v2(Bucket=ctx.bucket, Prefix="inference-logs/churn/1/")
    rows: list[dict[str, Any]] = []
    for item in listed.get("Contents", []):
        body = s3.get_object(Bucket=ctx.bucket, Key=item["Key"])["Body"].read()
        # the server's rows only, not the kit's plain ones (request ids r0, r1, ...)
        rows += [r for r in decode_rows(body) if not str(r.get("request_id", "")).startswith("r")]
    return rows


def test_dropped_and_hashed_features_in_the_log_and_the_drift_check(ctx):
    key = secrets.token_hex(32)
    core = client.CoreV1Api(ctx.api)
    core.create_namespaced_secret(ctx.namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="log-key"), string_data={"hmac": key}))  # fmt: skip
    assert ctx.train("churn-1") == 1
    log = {"enabled": True, "flushRows": 3, "flushSeconds": 5, "drop": ["width"],
           "hash": ["colour"], "hashKey": {"name": "log-key", "key": "hmac"}}  # fmt: skip
    body = model_deployment(ctx.s3, ctx.bucket, ctx.secret, inferenceLog=log)
    objs(ctx.api).create_namespaced_custom_object(GROUP, VERSION, ctx.namespace,
                                                  "modeldeployments", body)  # fmt: skip
    ctx.serving(1)
    predict_in_cluster(ctx.api, ctx.namespace, MD)

    rows = wait_until("the server's log batch in MinIO", lambda: logged_rows(ctx), 120, every=2)
    for row in rows:
        assert "width" not in row["features"], row
        assert row["features"]["colour"].startswith("hmac:"), row
    plain = {hash_value(r["colour"], key.encode()): r["colour"] for r in ROWS}
    assert {row["features"]["colour"] for row in rows} <= set(plain)

    env = get_deployment_env(ctx)
    assert env["CONTINUUM_INFERENCE_LOG_HASH_KEY"] == {
        "secretKeyRef": {"name": "log-key", "key": "hmac"}
    }

    # rows logged as plain text (before hashing was turned on): the check hashes them too
    write_inference_log(ctx.s3, ctx.bucket, 1, 120, shift=0.0)
    monitor = drift_monitor({}, window={"maxRows": 400, "minSamples": 50})
    del monitor["spec"]["retrain"]
    objs(ctx.api).create_namespaced_custom_object(GROUP, VERSION, ctx.namespace,
                                                  "driftmonitors", monitor)  # fmt: skip
    dm = wait_dm(ctx, "the first check", lambda d: d.get("status", {}).get("lastCheckTime"))
    uri = dm["status"]["reportURI"]
    prefix = uri.split("/", 3)[3]
    report = json.loads(s3_client(ctx.s3).get_object(
        Bucket=ctx.bucket, Key=f"{prefix}report.json")["Body"].read())  # fmt: skip
    features = {f["name"]: f for f in report["features"]}
    assert "width" not in features
    assert features["colour"]["kind"] == "categorical"
    assert features["colour"]["counts"]["current"] >= 120
    notes = " ".join(report["notes"])
    assert "width: dropped from the inference log" in notes
    assert "colour: hashed in the inference log" in notes
    assert report["settings"]["inferenceLog"] == {"drop": ["width"], "hash": ["colour"]}

    events = core.list_namespaced_event(ctx.namespace).to_dict()
    for where in (
        json.dumps(report),
        json.dumps(get_md(ctx.api, ctx.namespace)),
        json.dumps(get_dm(ctx.api, ctx.namespace)),
        str(events),
        json.dumps(env),
    ):
        assert key not in where  # fmt: skip


def get_deployment_env(ctx: Any) -> dict[str, Any]:
    deployment = client.AppsV1Api(ctx.api).read_namespaced_deployment(MD, ctx.namespace)
    container = deployment.to_dict()["spec"]["template"]["spec"]["containers"][0]
    found = {}
    for item in container["env"]:
        ref = (item.get("value_from") or {}).get("secret_key_ref")
        found[item["name"]] = (
            {"secretKeyRef": {"name": ref["name"], "key": ref["key"]}} if ref else item.get("value")
        )
    return found
