"""ModelDeployment end to end on the real cluster: TrainingJobs, model server, promotion, rollback.

The operator runs as a subprocess under deploy/rbac/clusterrole.yaml (tests/kit/cluster.py).
Requests go through the Service from pods in the test namespace (restricted Pod Security),
while a prober pod keeps calling the Service for the whole rollout history: a promotion and a
rolled-back rollout must not make a single request fail.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd
from kubernetes import client

from continuum.modelio import coerce_features, load_verified_model
from continuum.storage import read_manifest
from tests.kit.cluster import (
    IMAGE,
    S3Settings,
    event_reasons,
    object_store,
    pod_logs,
    restricted_container,
    s3_client,
    start_job,
    wait_until,
)
from tests.kit.cluster import loaded_image as project_image  # noqa: F401 (no rebuild here)
from tests.kit.kinds import (
    DEADLINE,
    GROUP,
    MD,
    MODELDEPLOYMENTS,
    ROWS,
    VERSION,
    Ctx,
    conditions,
    get_md,
    model_deployment,
    objs,
    patch_spec,
    predict_in_cluster,
    stop_serving,
)

PROBER = """
import json, sys, time, urllib.request
url = "http://churn/v1/models/churn:predict"
body = json.dumps({"instances": %s}).encode()
ok = fail = 0
while True:
    try:
        req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as reply:
            reply.read()
        ok += 1
    except Exception as exc:
        if ok:  # count from the first answer on (the Service's DNS name may lag at first)
            fail += 1
            print("FAIL", repr(exc), flush=True)
    if (ok + fail) %% 25 == 0:
        print(f"STAT ok={ok} fail={fail}", flush=True)
    time.sleep(0.1)
"""


def local_predictions(s3: S3Settings, bucket: str, version: int) -> list[Any]:
    store = object_store(s3, bucket)
    model = load_verified_model(store, "churn", version).pipeline
    features = coerce_features(
        pd.DataFrame(ROWS), read_manifest(store, "churn", version)["features"]
    )
    return list(model.predict(features).tolist())


def start_prober(api: client.ApiClient, namespace: str) -> None:
    container = restricted_container("prober", IMAGE, ["python", "-c", PROBER % json.dumps(ROWS)])
    start_job(api, namespace, "prober", container)


def prober_stats(api: client.ApiClient, namespace: str) -> tuple[int, int, str]:
    logs = pod_logs(api, namespace, "job-name=prober")
    stats = [x for x in logs.splitlines() if x.startswith("STAT ")]
    if not stats:
        return 0, 0, logs
    fields = dict(kv.split("=") for kv in stats[-1].split()[1:])
    return int(fields["ok"]), int(fields["fail"]), logs


def template_version(api: client.ApiClient, namespace: str) -> str:
    dep = client.AppsV1Api(api).read_namespaced_deployment(MD, namespace)
    return str(dep.spec.template.metadata.labels["continuum.dev/model-version"])


def tamper(s3: S3Settings, bucket: str, version: int) -> None:
    key = f"models/churn/{version}/model.skops"
    s3c = s3_client(s3)
    data = bytearray(s3c.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0xFF
    s3c.put_object(Bucket=bucket, Key=key, Body=bytes(data))


def test_serve_promote_and_roll_back(ctx: Ctx) -> None:
    try:
        serve_promote_and_roll_back(ctx)
    finally:
        stop_serving(ctx)


def serve_promote_and_roll_back(ctx: Ctx) -> None:
    api, namespace = ctx.api, ctx.namespace
    serve_first_version(ctx)
    start_prober(api, namespace)
    wait_until("the prober's first answers", lambda: prober_stats(api, namespace)[0] > 0, 120)
    promote_second_version(ctx)
    roll_back_tampered_third_version(ctx)

    # The failed version is remembered: no retry, and the Service answered throughout.
    time.sleep(DEADLINE / 2)
    assert template_version(api, namespace) == "2"
    assert len(get_md(api, namespace)["status"]["history"]) == 3
    ok, failed, logs = prober_stats(api, namespace)
    assert ok > 100, logs[-3000:]
    assert failed == 0, logs[-3000:]
    answer = predict_in_cluster(api, namespace, "predict-2")
    assert answer["predictions"] == local_predictions(ctx.s3, ctx.bucket, 2)


def serve_first_version(ctx: Ctx) -> None:
    """v1: latestQualified serves the only qualified version, through its Service."""
    api, namespace = ctx.api, ctx.namespace
    assert ctx.train("churn-1") == 1
    body = model_deployment(ctx.s3, ctx.bucket, ctx.secret)
    objs(api).create_namespaced_custom_object(GROUP, VERSION, namespace, MODELDEPLOYMENTS, body)
    md = ctx.serving(1)
    status = md["status"]
    assert status["url"] == f"http://{MD}.{namespace}.svc.cluster.local/v2/models/churn"
    assert status["readyReplicas"] == 1
    assert status["observedGeneration"] == md["metadata"]["generation"]
    assert [(h["version"], h["trainingJob"], h["outcome"]) for h in status["history"]] == [
        (1, "churn-1", "Promoted")
    ]
    cond = conditions(md)
    for type_ in ("Progressing", "Degraded", "Stalled", "Reconciling"):
        assert cond[type_]["status"] == "False", cond[type_]
    answer = predict_in_cluster(api, namespace, "predict-1")
    assert answer["predictions"] == local_predictions(ctx.s3, ctx.bucket, 1)


def promote_second_version(ctx: Ctx) -> None:
    """v2: a new qualified TrainingJob is promoted automatically."""
    assert ctx.train("churn-2") == 2
    md = ctx.serving(2)
    assert md["status"]["previousVersion"] == 1
    assert [h["version"] for h in md["status"]["history"]] == [1, 2]
    wait_until(
        "RolloutStarted and Promoted Events",
        lambda: (
            {"RolloutStarted", "Promoted"}
            <= set(event_reasons(ctx.api, ctx.namespace, MD, "ModelDeployment"))
        ),
        30,
    )


def roll_back_tampered_third_version(ctx: Ctx) -> None:
    """v3, tampered: pin v2 while v3 is trained and its model file corrupted, then let
    latestQualified roll it out. The server refuses it, the rollout misses its deadline and
    is rolled back to v2, which keeps serving."""
    api, namespace = ctx.api, ctx.namespace
    patch_spec(api, namespace, {"version": {"pinned": 2, "policy": None}})
    assert ctx.train("churn-3") == 3
    assert template_version(api, namespace) == "2"
    tamper(ctx.s3, ctx.bucket, 3)
    patch_spec(api, namespace, {"version": {"pinned": None, "policy": "latestQualified"}})
    wait_until("the rollout of version 3", lambda: template_version(api, namespace) == "3", 60)
    md = wait_for_rollback(ctx)
    last = md["status"]["history"][-1]
    assert (last["version"], last["trainingJob"]) == (3, "churn-3")
    md = ctx.serving(2, timeout=120, true=("Available", "Degraded", "Stalled"))
    cond = conditions(md)
    assert cond["Ready"]["status"] == "False"
    assert cond["Degraded"]["status"] == "True"
    assert cond["Degraded"]["reason"] == "RolloutFailed"
    assert "version 3" in cond["Degraded"]["message"]
    assert cond["Stalled"]["status"] == "True"
    assert md["status"]["servingVersion"] == 2
    assert "RolledBack" in event_reasons(api, namespace, MD, "ModelDeployment")


def wait_for_rollback(ctx: Ctx) -> dict[str, Any]:
    api, namespace = ctx.api, ctx.namespace

    def rolled_back() -> dict[str, Any] | None:
        md = get_md(api, namespace)
        history = md.get("status", {}).get("history", [])
        done = history and history[-1]["outcome"] == "RolledBack"
        return md if done and template_version(api, namespace) == "2" else None

    try:
        return wait_until("the rollback", rolled_back, DEADLINE + 150, every=2)  # type: ignore[no-any-return]
    except BaseException:
        print(ctx.op.output())
        print(json.dumps(get_md(api, namespace).get("status"), indent=1))
        print(pod_logs(api, namespace, "continuum.dev/model-version=3")[-3000:])
        raise
