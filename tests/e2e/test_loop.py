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

import csv
import io
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tests.cluster.conftest import (  # noqa: F401 (fixtures)
    api,
    namespace,
    restricted_container,
    run_job,
    s3_secret,
    wait_until,
)
from tests.cluster.test_driftmonitor import (
    DM,
    conditions,
    get_dm,
    lineage,
    reasons,
    retrain_jobs,
    wait_dm,
)
from tests.cluster.test_modeldeployment import (  # noqa: F401 (fixtures)
    IMAGE,
    Ctx,
    model_deployment,
    project_image,
)
from tests.cluster.test_trainingjob import (  # noqa: F401 (fixtures)
    FEATURES,
    Operator,
    crds,
    finished,
    operator,
    operator_role,
    training_job,
    upload,
)
from tests.conftest import S3Settings, s3_client

from continuum.storage.inference_logs import decode_rows

pytestmark = pytest.mark.cluster
GROUP, VERSION = "continuum.dev", "v1alpha1"
ROWS = 300
SHIFT = 2.0
TRAFFIC = """
import json, sys, urllib.request
rows = json.loads(sys.argv[1])
url = "http://churn/v2/models/churn/infer"
for start in range(0, len(rows), 50):
    part = rows[start:start + 50]
    inputs = [{"name": f, "shape": [len(part)], "datatype": "FP64", "data": [r[f] for r in part]}
              for f in ("sepal", "petal", "width")]
    inputs.append({"name": "colour", "shape": [len(part)], "datatype": "BYTES",
                   "data": [r["colour"] for r in part]})
    req = urllib.request.Request(url, json.dumps({"inputs": inputs}).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as reply:
        reply.read()
print("SENT", len(rows), flush=True)
"""


def rows(count: int, seed: int, shift: float) -> list[dict[str, Any]]:
    """Rows like the training data (two classes, 3 apart), features moved by ``shift``."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        label = "yes" if i % 2 else "no"
        centre = (3.0 if label == "yes" else 0.0) + shift
        row: dict[str, Any] = {f: round(rng.gauss(centre, 1.0), 4) for f in FEATURES[:3]}
        row["colour"] = rng.choice(["red", "green", "blue"])
        row["label"] = label
        out.append(row)
    return out


def as_csv(data: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*FEATURES, "label"])
    writer.writeheader()
    writer.writerows(data)
    return out.getvalue().encode()


def send(k8s: client.ApiClient, ns: str, name: str, data: list[dict[str, Any]]) -> None:
    """POST the rows' features to the Service as OIP v2 infer requests, from a pod."""
    features = [{k: v for k, v in row.items() if k != "label"} for row in data]
    command = ["python", "-c", TRAFFIC, json.dumps(features)]
    run_job(k8s, ns, name, restricted_container("traffic", IMAGE, command), timeout=180)


def logged_rows(s3: S3Settings, bucket: str, version: int) -> int:
    s3c = s3_client(s3)
    listed = s3c.list_objects_v2(Bucket=bucket, Prefix=f"inference-logs/churn/{version}/")
    total = 0
    for obj in listed.get("Contents", []):
        total += len(decode_rows(s3c.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()))
    return total


def drift_monitor(template: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DriftMonitor",
        "metadata": {"name": DM},
        "spec": {
            "deployment": "churn",
            "schedule": {"intervalSeconds": 60},  # the schema's minimum
            "window": {"maxRows": ROWS, "minSamples": 100},
            "consecutiveChecks": 2,
            "retrain": {
                "enabled": True,
                "template": template,
                "cooldownSeconds": 3600,
                "maxConcurrent": 1,
            },
        },
    }


@pytest.mark.timeout(900)
def test_drift_retrains_and_promotes(
    api: client.ApiClient,  # noqa: F811
    kubeconfig: Path,
    namespace: str,  # noqa: F811
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,  # noqa: F811
    operator: Operator,  # noqa: F811
) -> None:
    started = time.monotonic()
    marks: dict[str, float] = {}
    prefix = f"s3://{s3_bucket}/datasets/churn/"
    upload(s3, s3_bucket, "datasets/churn/part-0.csv", as_csv(rows(240, seed=7, shift=0)))
    ctx = Ctx(api, namespace, operator, s3, s3_bucket, s3_secret, prefix)
    assert ctx.train("churn-1") == 1
    objs = client.CustomObjectsApi(api)
    objs.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", model_deployment(s3, s3_bucket, s3_secret)
    )
    ctx.serving(1)
    marks["v1 serving"] = time.monotonic() - started

    # In-distribution traffic: the first check finds no drift and nothing is retrained.
    send(api, namespace, "traffic-normal", rows(ROWS, seed=21, shift=0))
    wait_until("the normal traffic in the log", lambda: logged_rows(s3, s3_bucket, 1) >= ROWS, 60)
    template = training_job("template", prefix, s3, s3_bucket, s3_secret)["spec"]
    objs.create_namespaced_custom_object(GROUP, VERSION, namespace, "driftmonitors",
                                         drift_monitor(template))  # fmt: skip
    dm = wait_dm(ctx, "the first check", lambda d: d.get("status", {}).get("lastCheckTime"))
    assert conditions(dm)["DriftDetected"]["status"] == "False", dm["status"]
    assert dm["status"]["consecutiveDrifts"] == 0
    assert retrain_jobs(api, namespace) == []
    marks["NoDrift check"] = time.monotonic() - started

    # Shifted traffic, and labelled shifted data under the template's dataset prefix.
    upload(s3, s3_bucket, "datasets/churn/part-1.csv", as_csv(rows(240, seed=8, shift=SHIFT)))
    send(api, namespace, "traffic-shifted", rows(ROWS, seed=22, shift=SHIFT))
    dm = wait_dm(ctx, "a retraining", lambda d: d.get("status", {}).get("retrainings"), 300)
    marks["retraining triggered"] = time.monotonic() - started
    [record] = dm["status"]["retrainings"]
    [tj] = retrain_jobs(api, namespace)
    assert tj["metadata"]["name"] == record["trainingJob"]
    assert tj["metadata"]["annotations"]["continuum.dev/report"] == record["report"]
    assert reasons(api, namespace).count("DriftDetected") >= 2
    assert "NoDrift" in reasons(api, namespace)

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
