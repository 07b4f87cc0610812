"""The whole loop in real containers on the real cluster.

train v1 (TrainingJob) -> serve it (ModelDeployment, latestQualified) -> in-distribution
traffic through the Service (OIP v2, from a pod) -> DriftMonitor: NoDrift, no retraining ->
shifted traffic -> DriftDetected for consecutiveChecks checks -> exactly one TrainingJob from
the template, naming the report -> v2, trained on the dataset prefix that now holds the
shifted data -> qualified -> promoted -> the report is in S3 -> ``continuum lineage`` shows
report -> TrainingJob -> version -> ModelDeployment.

The operator runs as a subprocess under deploy/rbac/clusterrole.yaml; everything else (trainer,
server, monitor, traffic) runs in pods of a namespace that enforces restricted Pod Security.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from kubernetes import client
from tests.kit.cluster import (
    Operator,
    S3Settings,
    event_reasons,
    s3_client,
    upload,
    wait_until,
)
from tests.kit.cluster import loaded_image as project_image  # noqa: F401 (no rebuild here)
from tests.kit.datasets import as_csv, two_class_rows
from tests.kit.kinds import (
    DM,
    DRIFTMONITORS,
    GROUP,
    VERSION,
    Ctx,
    conditions,
    drift_monitor,
    finished,
    get_dm,
    lineage,
    model_deployment,
    retrain_jobs,
    training_job,
    wait_dm,
)
from tests.kit.traffic import logged_rows, send

pytestmark = pytest.mark.cluster
ROWS = 300
SHIFT = 2.0


@pytest.mark.timeout(900)
def test_drift_retrains_and_promotes(
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
    operator: Operator,
) -> None:
    started = time.monotonic()
    marks: dict[str, float] = {}
    prefix = f"s3://{s3_bucket}/datasets/churn/"
    upload(s3, s3_bucket, "datasets/churn/part-0.csv", as_csv(two_class_rows(240, 7, shift=0)))
    ctx = Ctx(api, namespace, operator, s3, s3_bucket, s3_secret, prefix)
    assert ctx.train("churn-1") == 1
    objs = client.CustomObjectsApi(api)
    objs.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", model_deployment(s3, s3_bucket, s3_secret)
    )
    ctx.serving(1)
    marks["v1 serving"] = time.monotonic() - started

    # In-distribution traffic: the first check finds no drift and nothing is retrained.
    send(api, namespace, "traffic-normal", two_class_rows(ROWS, 21, shift=0))
    wait_until("the normal traffic in the log", lambda: logged_rows(s3, s3_bucket, 1) >= ROWS, 60)
    template = training_job("template", prefix, s3, s3_bucket, s3_secret)["spec"]
    window = {"maxRows": ROWS, "minSamples": 100}
    monitor = drift_monitor(template, window=window, consecutiveChecks=2)
    objs.create_namespaced_custom_object(GROUP, VERSION, namespace, DRIFTMONITORS, monitor)
    dm = wait_dm(ctx, "the first check", lambda d: d.get("status", {}).get("lastCheckTime"))
    assert conditions(dm)["DriftDetected"]["status"] == "False", dm["status"]
    assert dm["status"]["consecutiveDrifts"] == 0
    assert retrain_jobs(api, namespace) == []
    marks["NoDrift check"] = time.monotonic() - started

    # Shifted traffic, and labelled shifted data under the template's dataset prefix.
    upload(s3, s3_bucket, "datasets/churn/part-1.csv", as_csv(two_class_rows(240, 8, shift=SHIFT)))
    send(api, namespace, "traffic-shifted", two_class_rows(ROWS, 22, shift=SHIFT))
    dm = wait_dm(ctx, "a retraining", lambda d: d.get("status", {}).get("retrainings"), 300)
    marks["retraining triggered"] = time.monotonic() - started
    [record] = dm["status"]["retrainings"]
    [tj] = retrain_jobs(api, namespace)
    assert tj["metadata"]["name"] == record["trainingJob"]
    assert tj["metadata"]["annotations"]["continuum.dev/report"] == record["report"]
    # kopf posts Events from a queue after the reconcile that wrote the status: wait for them.
    wait_until(
        "two DriftDetected events",
        lambda: event_reasons(api, namespace, DM, "DriftMonitor").count("DriftDetected") >= 2,
        30,
    )
    assert "NoDrift" in event_reasons(api, namespace, DM, "DriftMonitor")

    done = finished(api, namespace, record["trainingJob"], operator)["status"]
    assert done["phase"] == "Succeeded", done
    assert done["qualified"] is True, done
    assert done["model"]["version"] == 2
    assert done["dataset"]["rows"] == 480  # v1's data and the shifted data
    md = ctx.serving(2)
    marks["v2 serving"] = time.monotonic() - started
    assert [(h["version"], h["trainingJob"]) for h in md["status"]["history"]] == [
        (1, "churn-1"),
        (2, record["trainingJob"]),
    ]
    report_files(s3, s3_bucket, record["report"])
    text = lineage(kubeconfig, namespace)
    print(text)
    assert record["report"] in text
    assert f"-> TrainingJob {record['trainingJob']}" in text
    assert "-> ModelDeployment churn: Promoted" in text
    assert "ModelDeployment churn serves version 2" in text
    assert len(retrain_jobs(api, namespace)) == 1
    assert len(get_dm(api, namespace)["status"]["retrainings"]) == 1
    print("timings (s):", json.dumps({k: round(v) for k, v in marks.items()}))


def report_files(s3: S3Settings, bucket: str, uri: str) -> None:
    key_prefix = uri.split("/", 3)[3]
    listed = s3_client(s3).list_objects_v2(Bucket=bucket, Prefix=key_prefix)
    names = {obj["Key"].rsplit("/", 1)[-1] for obj in listed.get("Contents", [])}
    assert {"report.json", "report.html", "summary.json"} <= names
