"""Retraining triggers on the real cluster (issue 17): a performance drop with unchanged inputs,
a cron schedule through the cooldown, and the API server refusing bad triggers.

The operator runs as a subprocess (tests/kit/cluster.py); check Jobs and TrainingJobs run the
project image. Logged predictions and labels are written straight into MinIO in the layout the
server and the feedback endpoint write (their own paths are covered by test_performance_minio
and the server tests). Retraining templates have an unreachable gate where the test is about
the trigger, not the model, so nothing is promoted.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from continuum.storage.inference_logs import batch_key, encode_rows
from tests.kit.cluster import event_reasons, s3_client, wait_until
from tests.kit.cluster import loaded_image as project_image  # noqa: F401 (no rebuild here)
from tests.kit.datasets import FEATURES, two_class_rows
from tests.kit.kinds import (
    DM,
    DRIFTMONITORS,
    GROUP,
    VERSION,
    Ctx,
    conditions,
    drift_monitor,
    monitor_served,
    objs,
    retrain_jobs,
    wait_dm,
)


def log_and_contradict(ctx: Ctx, version: int, rows: int) -> None:
    """``rows`` predictions of ``version`` logged now, inputs as in training (no drift), each
    answered "yes", and a label "no" for every one: the concept moved, the inputs did not."""
    features = two_class_rows(rows, 11, decimals=None)  # as in training: no input drift
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    logged = [
        {"ts": stamp, "request_id": f"p{i}", "row": 0, "model": "churn", "version": version,
         "features": {name: row[name] for name in FEATURES}, "prediction": "yes"}
        for i, row in enumerate(features)
    ]  # fmt: skip
    labels = [{"id": f"p{i}", "row": 0, "label": "no"} for i in range(rows)]
    s3 = s3_client(ctx.s3)
    key = batch_key("churn", version, datetime.now(UTC))
    s3.put_object(Bucket=ctx.bucket, Key=key, Body=encode_rows(logged))
    s3.put_object(
        Bucket=ctx.bucket, Key="labels/churn/contradicted.jsonl", Body=encode_rows(labels)
    )


def unqualified_template(ctx: Ctx) -> dict[str, Any]:
    template: dict[str, Any] = ctx.training_job("template")["spec"]
    template["evaluation"]["threshold"] = 1.5  # unreachable: nothing is promoted
    return template


def test_a_realised_drop_with_unchanged_inputs_retrains_on_the_performance_trigger(
    ctx: Ctx,
) -> None:
    api, namespace = ctx.api, ctx.namespace
    assert ctx.train("churn-1") == 1
    log_and_contradict(ctx, 1, 200)
    performance = {"labelDelaySeconds": 0, "minLabels": 50, "consecutiveChecks": 1}
    body = drift_monitor(unqualified_template(ctx), performance=performance)
    monitor_served(ctx, body)

    dm = wait_dm(ctx, "a retraining", lambda d: d.get("status", {}).get("retrainings"))
    status, cond = dm["status"], conditions(dm)
    assert cond["DriftDetected"]["status"] == "False", status  # the inputs did not move
    assert cond["PerformanceDegraded"]["status"] == "True", status
    [record] = status["retrainings"]
    assert (record["trigger"], record["version"]) == ("performance", 1), record
    evidence = record["evidence"]
    assert (evidence["metric"], evidence["basis"]) == ("accuracy", "realised"), evidence
    assert evidence["value"] == 0.0
    assert evidence["upper"] < evidence["holdout"]
    assert evidence["report"] == status["reportURI"]
    assert record["reason"].startswith("realised accuracy 0 degraded in 1 consecutive checks")
    [tj] = retrain_jobs(api, namespace)
    annotations = tj["metadata"]["annotations"]
    assert annotations["continuum.dev/trigger"] == "performance"
    assert json.loads(annotations["continuum.dev/evidence"])["basis"] == "realised"
    wait_until(
        "RetrainingTriggered and PerformanceDegraded Events",
        lambda: (
            {"RetrainingTriggered", "PerformanceDegraded"}
            <= set(event_reasons(api, namespace, DM, "DriftMonitor"))
        ),
        30,
    )


def test_a_schedule_retrains_on_its_tick_and_a_tick_inside_the_cooldown_is_recorded(
    ctx: Ctx,
) -> None:
    """Every minute, a 10-minute cooldown, room for two at once: the first tick retrains, the
    next is held by the cooldown alone. No ModelDeployment: a schedule with a template needs
    no served version (the checks wait for one meanwhile)."""
    api, namespace = ctx.api, ctx.namespace
    body = drift_monitor(unqualified_template(ctx))
    body["spec"]["retrain"].update(
        triggers={"schedule": "* * * * *"}, cooldownSeconds=600, maxConcurrent=2
    )
    objs(api).create_namespaced_custom_object(GROUP, VERSION, namespace, DRIFTMONITORS, body)

    dm = wait_dm(ctx, "the first scheduled retraining", lambda d: d.get("status", {}).get(
        "retrainings"), timeout=150)  # fmt: skip
    [record] = dm["status"]["retrainings"]
    assert record["trigger"] == "schedule"
    assert record["evidence"]["schedule"] == "* * * * *"
    tick = record["evidence"]["tick"]
    assert dm["status"]["lastScheduleTick"] == tick
    assert tick.endswith(":00Z")
    [tj] = retrain_jobs(api, namespace)
    assert tj["metadata"]["name"].startswith(f"{DM}-retrain-cron-")
    assert tj["metadata"]["annotations"]["continuum.dev/trigger"] == "schedule"

    dm = wait_dm(ctx, "the next tick held by the cooldown", lambda d: d.get("status", {}).get(
        "suppressed"), timeout=150)  # fmt: skip
    [held] = dm["status"]["suppressed"]
    assert held["trigger"] == "schedule"
    assert held["reason"].startswith(f"cooldown: {tj['metadata']['name']} started")
    assert dm["status"]["lastScheduleTick"] > tick
    assert len(retrain_jobs(api, namespace)) == 1
    assert len(dm["status"]["retrainings"]) == 1
    wait_until(
        "RetrainingTriggered and RetrainingSuppressed Events",
        lambda: (
            {"RetrainingTriggered", "RetrainingSuppressed"}
            <= set(event_reasons(api, namespace, DM, "DriftMonitor"))
        ),
        30,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"retrain": {"triggers": {"schedule": "0 3 * *"}}}, "must be a cron expression"),
        ({"retrain": {"triggers": {"performance": "realised"}}}, "needs spec.performance"),
        (
            {"retrain": {"triggers": {"performance": "estimated"}}, "performance": {}},
            "needs spec.performance.estimate: true",
        ),
    ],
)
def test_the_api_server_refuses_bad_triggers_naming_them(
    ctx: Ctx, change: dict[str, Any], message: str
) -> None:
    body = drift_monitor(unqualified_template(ctx))
    for key, value in change.items():
        if key == "retrain":
            body["spec"]["retrain"].update(value)
        else:
            body["spec"][key] = value
    with pytest.raises(client.ApiException) as refused:
        objs(ctx.api).create_namespaced_custom_object(
            GROUP, VERSION, ctx.namespace, DRIFTMONITORS, body
        )
    assert refused.value.status == 422
    assert message in refused.value.body
