"""DriftMonitor on the real cluster: scheduled check Jobs, status, Events, brakes, no finalizer.

The operator runs as a subprocess under deploy/rbac/clusterrole.yaml (tests/kit/cluster.py);
check Jobs and TrainingJobs run the project image. Shifted inference-log rows are written
straight into MinIO (the server's traffic path is covered by tests/e2e/test_loop.py). The
retraining template has an unreachable gate, so the retrained model is not qualified and the
champion keeps serving.
"""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from continuum.storage.inference_logs import batch_key, encode_rows
from tests.kit.cluster import (
    S3Settings,
    event_reasons,
    s3_client,
    wait_until,
)
from tests.kit.cluster import loaded_image as project_image  # noqa: F401 (no rebuild here)
from tests.kit.datasets import FEATURES, two_class_rows
from tests.kit.kinds import (
    DM,
    DRIFTMONITORS,
    GROUP,
    INTERVAL,
    VERSION,
    Ctx,
    conditions,
    drift_monitor,
    get_dm,
    lineage,
    model_deployment,
    monitor_served,
    objs,
    retrain_jobs,
    wait_dm,
)


def write_log(s3: S3Settings, bucket: str, version: int, rows: int, shift: float) -> None:
    """``rows`` logged rows of model churn ``version``, features moved by ``shift``."""
    features = two_class_rows(rows, 11, shift=shift, gap=0.0, decimals=None)
    logged = [
        {
            "ts": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "request_id": f"r{i}",
            "model": "churn",
            "version": version,
            "features": {name: row[name] for name in FEATURES},
            "prediction": "yes",
        }
        for i, row in enumerate(features)
    ]
    key = batch_key("churn", version, datetime.now(UTC))
    s3_client(s3).put_object(Bucket=bucket, Key=key, Body=encode_rows(logged))


def test_drift_retrains_once_failed_gate_keeps_champion(ctx: Ctx, kubeconfig: Path) -> None:
    api, namespace, s3 = ctx.api, ctx.namespace, ctx.s3
    assert ctx.train("churn-1") == 1
    write_log(s3, ctx.bucket, 1, 300, shift=6.0)
    template = ctx.training_job("template")["spec"]
    template["evaluation"]["threshold"] = 1.5  # unreachable: the retrained model fails its gate
    objs(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, DRIFTMONITORS, drift_monitor(template)
    )

    # No ModelDeployment yet: the monitor says what it waits for and starts no Job.
    dm = wait_dm(ctx, "WaitingForDeployment", lambda d: conditions(d).get("Ready"))
    assert conditions(dm)["Ready"]["reason"] == "WaitingForDeployment"
    assert conditions(dm)["Reconciling"]["status"] == "True"
    assert not dm["metadata"].get("finalizers")
    assert (
        not client.BatchV1Api(api)
        .list_namespaced_job(namespace, label_selector="app.kubernetes.io/component=drift-check")
        .items
    )

    objs(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments",
        model_deployment(s3, ctx.bucket, ctx.secret),
    )  # fmt: skip
    ctx.serving(1)

    dm = wait_dm(ctx, "the first check", lambda d: d.get("status", {}).get("lastCheckTime"))
    first_check(ctx, dm)
    tj = retrain_jobs(api, namespace)[0]
    done = ctx.finished(tj["metadata"]["name"])
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["qualified"] is False
    assert done["status"]["model"]["version"] == 2

    # Restart: the next check drifts again, but the cooldown holds; still one TrainingJob.
    ctx.op.stop(signal.SIGKILL)
    ctx.op.start()
    dm = wait_dm(ctx, "a suppressed retraining", lambda d: d.get("status", {}).get("suppressed"),
                 timeout=INTERVAL + 120)  # fmt: skip
    assert dm["status"]["suppressed"][0]["reason"].startswith("cooldown")
    assert len(dm["status"]["retrainings"]) == 1
    assert len(retrain_jobs(api, namespace)) == 1
    assert "RetrainingSuppressed" in event_reasons(api, namespace, DM, "DriftMonitor")
    md = ctx.serving(1)  # the champion keeps serving
    assert [h["version"] for h in md["status"]["history"]] == [1]

    text = lineage(kubeconfig, namespace)
    print(text)
    assert dm["status"]["retrainings"][0]["report"] in text
    assert f"TrainingJob {tj['metadata']['name']}" in text
    assert "version 2" in text
    assert "not qualified" in text
    assert "ModelDeployment churn: Promoted" in text

    deleted_without_operator(ctx)


def first_check(ctx: Ctx, dm: dict[str, Any]) -> None:
    """The first check saw drift and created exactly one TrainingJob naming its report."""
    status = dm["status"]
    cond = conditions(dm)
    assert cond["DriftDetected"]["status"] == "True", status
    assert cond["Ready"]["status"] == "True"
    assert cond["Stalled"]["status"] == "False"
    assert status["drift"]["datasetDrift"] is True
    assert any(f["drifted"] for f in status["drift"]["features"])
    assert status["reportURI"].startswith(f"s3://{ctx.bucket}/reports/{DM}/")
    assert status["checkJobName"].startswith(f"{DM}-check-")
    assert status["consecutiveDrifts"] == 0  # reset by the retraining it triggered
    keys = s3_client(ctx.s3).list_objects_v2(
        Bucket=ctx.bucket, Prefix=status["reportURI"].split("/", 3)[3]
    )
    assert {"report.json", "report.html", "summary.json"} <= {
        k["Key"].rsplit("/", 1)[-1] for k in keys.get("Contents", [])
    }
    [record] = status["retrainings"]
    [tj] = retrain_jobs(ctx.api, ctx.namespace)
    assert record["trainingJob"] == tj["metadata"]["name"]
    assert record["report"] == status["reportURI"]
    assert tj["metadata"]["annotations"]["continuum.dev/report"] == status["reportURI"]
    owner = tj["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("DriftMonitor", DM)
    wait_until(
        "DriftDetected and RetrainingTriggered Events",
        lambda: (
            {"DriftDetected", "RetrainingTriggered"}
            <= set(event_reasons(ctx.api, ctx.namespace, DM, "DriftMonitor"))
        ),
        30,
    )


def deleted_without_operator(ctx: Ctx) -> None:
    """No finalizer: with the operator stopped, deleting the monitor still completes."""
    ctx.op.stop()
    objs(ctx.api).delete_namespaced_custom_object(GROUP, VERSION, ctx.namespace, DRIFTMONITORS, DM)

    def gone() -> bool:
        try:
            get_dm(ctx.api, ctx.namespace)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_until("the DriftMonitor to be deleted", gone, 30)
    ctx.op.start()


def write_rows(
    s3: S3Settings, bucket: str, version: int, rows: list[dict[str, Any]], features: tuple[str, ...]
) -> None:
    """``rows`` logged now as one batch of model churn ``version``, with only ``features``."""
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    logged = [
        {"ts": stamp, "request_id": f"q{i}", "model": "churn", "version": version,
         "features": {name: row[name] for name in features}, "prediction": "yes"}
        for i, row in enumerate(rows)
    ]  # fmt: skip
    key = batch_key("churn", version, datetime.now(UTC))
    s3_client(s3).put_object(Bucket=bucket, Key=key, Body=encode_rows(logged))


def test_a_window_failing_its_quality_checks_holds_the_retraining_back(ctx: Ctx) -> None:
    """Drifted traffic that lacks the colour column: the check (a Job of the project image)
    drifts, fails its data-quality checks (colour missing, the shifted values out of range),
    and the missing column (in quality.holdRetraining by default) suppresses the retraining."""
    api, namespace = ctx.api, ctx.namespace
    assert ctx.train("churn-1") == 1
    rows = two_class_rows(300, 11, shift=6.0, gap=0.0, decimals=None)
    write_rows(ctx.s3, ctx.bucket, 1, rows, FEATURES[:3])
    template = ctx.training_job("template")["spec"]
    body = drift_monitor(template, window={"maxRows": 400, "minSamples": 50, "last": "1h"})
    monitor_served(ctx, body)

    dm = wait_dm(ctx, "the first check", lambda d: d.get("status", {}).get("lastCheckTime"))
    status, cond = dm["status"], conditions(dm)
    assert cond["DriftDetected"]["status"] == "True", status
    quality = cond["DataQualityFailed"]
    assert (quality["status"], quality["reason"]) == ("True", "QualityChecksFailed"), status
    # shifted 6 sd, the numeric features also leave the training range
    assert quality["message"].startswith("sepal: ")
    assert "of values outside the training range" in quality["message"]
    assert "colour: absent from all 300 logged rows (missing column)" in quality["message"]
    assert status["drift"]["quality"]["passed"] is False
    assert status["drift"]["quality"]["checks"] == ["missingColumn", "outOfRange"]
    by_name = {f["name"]: f.get("quality") for f in status["drift"]["features"]}
    assert by_name["colour"] == ["missingColumn"]
    assert by_name["sepal"] == ["outOfRange"]
    assert status["suppressed"][0]["reason"].startswith(
        "data quality: the window failed missingColumn (quality.holdRetraining): "
    )
    assert not status.get("retrainings")
    assert not retrain_jobs(api, namespace)
    wait_until(
        "QualityChecksFailed and RetrainingSuppressed Events",
        lambda: (
            {"QualityChecksFailed", "RetrainingSuppressed"}
            <= set(event_reasons(api, namespace, DM, "DriftMonitor"))
        ),
        30,
    )
    report = s3_client(ctx.s3).get_object(
        Bucket=ctx.bucket, Key=status["reportURI"].split("/", 3)[3] + "report.json"
    )
    window = json.loads(report["Body"].read())["window"]
    assert (window["strategy"], window["last"], window["rows"]) == ("time", "1h", 300)
