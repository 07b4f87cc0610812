"""A streamed TrainingJob on a dataset larger than its pod's memory limit (issue 19).

16.5 million rows (12 float features rounded to one decimal, a 3-level category, a 2-class
category label; 98 bytes a row in pandas, 1.5 GiB in all, about 3x the pod's 512 MiB limit)
in 17 Parquet objects of 250,000-row groups (10.5 MB per million rows) are trained by
SGDClassifier with ``dataset.mode: stream``: the pod must finish without being OOM-killed,
every row read (the pod log's ``rows_read`` lines), and status must say how it was read.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pandas as pd
from kubernetes import client

from tests.kit.cluster import pod_logs, upload
from tests.kit.kinds import Ctx, create_tj

ROWS = 16_500_000
PART_ROWS = 1_000_000
NUMERIC = 12
LIMIT_MIB = 512
NAME = "stream-1"


def part(rows: int, seed: int) -> pd.DataFrame:
    """One object's rows: the label depends on x0, x1 and the plan, with noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": np.round(rng.normal(size=rows), 1) for i in range(NUMERIC)})
    frame["plan"] = pd.Categorical(rng.choice(["basic", "plus", "pro"], rows))
    signal = frame["x0"] - frame["x1"] + (frame["plan"] == "basic") + rng.normal(0, 0.5, rows)
    frame["label"] = pd.Categorical(np.where(signal > 0, "yes", "no"))
    return frame


def in_memory_bytes(rows: int) -> float:
    """The whole dataset's size in pandas (fixed-width dtypes: bytes a row times rows)."""
    sample = part(10_000, 0)
    return float(sample.memory_usage(deep=True, index=False).sum()) / len(sample) * rows


def upload_dataset(ctx: Ctx) -> str:
    for number, start in enumerate(range(0, ROWS, PART_ROWS)):
        buffer = io.BytesIO()
        rows = min(PART_ROWS, ROWS - start)
        part(rows, number).to_parquet(buffer, index=False, row_group_size=250_000)
        upload(ctx.s3, ctx.bucket, f"datasets/big/part-{number:03d}.parquet", buffer.getvalue())
    return f"s3://{ctx.bucket}/datasets/big/"


def streamed_job(ctx: Ctx, uri: str) -> dict[str, Any]:
    body = ctx.training_job(NAME)
    body["spec"].update(
        {
            "dataset": {"uri": uri, "target": "label", "format": "parquet", "mode": "stream",
                        "sampleRows": 20_000},
            "estimator": {"class": "SGDClassifier", "params": {}},
            "preprocessing": {"categorical": {"columns": ["plan"]}},
            "split": {"testSize": 0.1, "seed": 5},
            "evaluation": {"metric": "accuracy", "threshold": 0.8, "mustBeat": "none"},
            "resources": {
                "requests": {"cpu": "500m", "memory": f"{LIMIT_MIB}Mi"},
                "limits": {"memory": f"{LIMIT_MIB}Mi"},
            },
            "activeDeadlineSeconds": 900,
        }
    )  # fmt: skip
    return body


def trainer_pod(ctx: Ctx) -> client.V1Pod:
    pods = client.CoreV1Api(ctx.api).list_namespaced_pod(
        ctx.namespace, label_selector=f"continuum.dev/training-job={NAME}"
    )
    assert len(pods.items) == 1, [p.metadata.name for p in pods.items]  # no retried pod
    return pods.items[0]


def test_a_dataset_three_times_the_pod_memory_trains_streamed(ctx: Ctx) -> None:
    assert in_memory_bytes(ROWS) >= 2.9 * LIMIT_MIB * 2**20  # 1.5 GiB against 512 MiB
    create_tj(ctx.api, ctx.namespace, streamed_job(ctx, upload_dataset(ctx)))
    status = ctx.finished(NAME)["status"]
    assert status["phase"] == "Succeeded", status
    assert status["dataset"]["rows"] == ROWS
    assert status["dataset"]["mode"] == "stream"
    assert "sampledRows" not in status["dataset"]  # partial_fit saw every training row
    assert status["metrics"]["accuracy"] >= 0.8
    pod = trainer_pod(ctx)
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.reason, terminated.exit_code) == ("Completed", 0)
    assert pod.status.container_statuses[0].restart_count == 0
    assert pod.spec.containers[0].resources.limits["memory"] == f"{LIMIT_MIB}Mi"
    phases = _rows_read(pod_logs(ctx.api, ctx.namespace, f"continuum.dev/training-job={NAME}"))
    assert [phase for phase, rows in phases if rows == ROWS] == [
        "scan", "fit pass 1/1", "evaluate"
    ]  # fmt: skip
    assert len(phases) > 3 * (ROWS // 1_048_576)  # a line about every million rows


def _rows_read(log: str) -> list[tuple[str, int]]:
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [(line["phase"], line["rows"]) for line in lines if line["event"] == "rows_read"]
