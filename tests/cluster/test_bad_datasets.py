"""Bad datasets end in a Failed TrainingJob naming the problem, and never take the operator down.

Every case is a real TrainingJob reconciled by the operator (a subprocess under the operator's
RBAC, tests/kit/cluster.py) and trained by a real trainer Job in a restricted namespace,
reading a real object from MinIO. All of them run side by side; while they run the operator's
process must stay alive and its liveness endpoint must answer 200.

The dataset size limit is the trainer's ``CONTINUUM_MAX_DATASET_BYTES`` (default 256 MiB). The
TrainingJob API does not expose it, so the "too large" case uploads a sparse file one byte over
the default (about 2 s against the local MinIO); the trainer refuses it from the object listing
without downloading it.
"""

from __future__ import annotations

import io
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kubernetes import client

from tests.kit.cluster import Operator, S3Settings, pod_logs, s3_client, upload, wait_until
from tests.kit.datasets import dataset_csv
from tests.kit.kinds import RUN_TIMEOUT, TERMINAL, conditions, create_tj, get_tj, training_job

# Part of the reliability and security suite (`make test-reliability`).
pytestmark = pytest.mark.reliability

DEFAULT_MAX_DATASET_BYTES = 256 * 1024 * 1024


def _frame() -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(dataset_csv()))


def _csv(frame: pd.DataFrame) -> bytes:
    return str(frame.to_csv(index=False)).encode()


def missing_column() -> bytes:
    return _csv(_frame().drop(columns=["petal"]))


def wrong_type() -> bytes:
    frame = _frame()
    frame["sepal"] = [f"{v:.2f} cm" for v in frame["sepal"]]
    return _csv(frame)


def all_null() -> bytes:
    frame = _frame()
    frame["width"] = None
    return _csv(frame)


def single_class() -> bytes:
    frame = _frame()
    frame["label"] = "yes"
    return _csv(frame)


def null_target() -> bytes:
    frame = _frame()
    frame.loc[::3, "label"] = None
    return _csv(frame)


def corrupt_csv() -> bytes:
    good = dataset_csv().decode().splitlines()
    return "\n".join([*good[:5], "1.0,2.0,3.0,red,yes,extra,fields,here", *good[5:]]).encode()


def corrupt_parquet() -> bytes:
    buffer = io.BytesIO()
    _frame().to_parquet(buffer)
    whole = buffer.getvalue()
    return whole[: len(whole) // 2]


@dataclass(frozen=True)
class BadDataset:
    """One TrainingJob over a bad object: what the status must say about it."""

    name: str
    key: str
    data: Callable[[], bytes] | None  # None: uploaded by the test itself
    reason: str
    says: tuple[str, ...]  # all of these appear in the status message and Stalled condition
    spec: dict[str, Any] = field(default_factory=dict)  # merged into spec.dataset


CASES = (
    BadDataset("missing-column", "missing.csv", missing_column, "DatasetInvalid",
               ("column 'petal'", "not found in the dataset"),
               {"features": ["sepal", "petal", "width", "colour"]}),
    BadDataset("wrong-type", "types.csv", wrong_type, "DatasetInvalid",
               ("column 'sepal'", "not numeric")),
    BadDataset("all-null", "nulls.csv", all_null, "DatasetInvalid",
               ("column 'width'", "every value is empty")),
    BadDataset("single-class", "one.csv", single_class, "DatasetInvalid",
               ("column 'label'", "only one class ('yes')")),
    BadDataset("null-target", "target.csv", null_target, "DatasetInvalid",
               ("column 'label'", "target has 80 empty value(s)")),
    BadDataset("empty-file", "empty.csv", lambda: b"", "DatasetInvalid",
               ("object datasets/empty.csv is not valid csv", "No columns to parse")),
    BadDataset("corrupt-csv", "corrupt.csv", corrupt_csv, "DatasetInvalid",
               ("object datasets/corrupt.csv is not valid csv",
                "Expected 5 fields in line 6, saw 8")),
    BadDataset("corrupt-parquet", "corrupt.parquet", corrupt_parquet, "DatasetInvalid",
               ("object datasets/corrupt.parquet is not valid parquet",
                "Parquet magic bytes not found"),
               {"format": "parquet"}),
    BadDataset("csv-as-parquet", "plain.csv", dataset_csv, "DatasetInvalid",
               ("object datasets/plain.csv is not valid parquet", "check spec.dataset.format"),
               {"format": "parquet"}),
    BadDataset("no-such-object", "nothing-here.csv", None, "DatasetNotFound",
               ("no dataset objects at s3://", "nothing-here.csv")),
    BadDataset("too-large", "huge.csv", None, "DatasetTooLarge",
               (f"is {DEFAULT_MAX_DATASET_BYTES + 1} bytes in 1 object(s)",
                f"limit of {DEFAULT_MAX_DATASET_BYTES} bytes", "CONTINUUM_MAX_DATASET_BYTES")),
)  # fmt: skip


def upload_huge(s3: S3Settings, bucket: str, key: str, path: Path) -> None:
    """One byte over the trainer's default limit, from a sparse file (no RAM, little disk)."""
    with path.open("wb") as out:
        out.truncate(DEFAULT_MAX_DATASET_BYTES + 1)
    try:
        s3_client(s3).upload_file(str(path), bucket, key)
    finally:
        path.unlink()


def liveness_url(running: Operator) -> str:
    return running.args[running.args.index("--liveness") + 1]


def healthy(running: Operator) -> bool:
    """The operator's process runs and its liveness endpoint answers 200."""
    if running.process is None or running.process.poll() is not None:
        return False
    try:
        with urllib.request.urlopen(liveness_url(running), timeout=5) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def wait_all(
    api: client.ApiClient, namespace: str, names: list[str], running: Operator
) -> tuple[dict[str, dict[str, Any]], int]:
    """Every TrainingJob terminal; the operator checked alive and live at every poll."""
    deadline = time.monotonic() + RUN_TIMEOUT
    done: dict[str, dict[str, Any]] = {}
    probes = 0
    while len(done) < len(names):
        if time.monotonic() > deadline:
            print(running.output())
            print(pod_logs(api, namespace, "app.kubernetes.io/managed-by=continuum"))
            pytest.fail(f"timed out; finished: {sorted(done)} of {names}")
        assert healthy(running), f"the operator is down:\n{running.output()}"
        probes += 1
        for name in names:
            if name not in done:
                tj = get_tj(api, namespace, name)
                if tj.get("status", {}).get("phase") in TERMINAL:
                    done[name] = tj
        time.sleep(2)
    return done, probes


def test_bad_datasets_fail_naming_the_problem_and_the_operator_stays_up(
    api: client.ApiClient,
    namespace: str,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
    operator: Operator,
    tmp_path: Path,
) -> None:
    wait_until("the operator's liveness endpoint", lambda: healthy(operator), 60)
    upload_huge(s3, s3_bucket, "datasets/huge.csv", tmp_path / "huge.csv")
    for case in CASES:
        uri = f"s3://{s3_bucket}/datasets/{case.key}"
        if case.data is not None:
            uri = upload(s3, s3_bucket, f"datasets/{case.key}", case.data())
        body = training_job(case.name, uri, s3, s3_bucket, s3_secret)
        body["spec"]["model"] = case.name
        body["spec"]["dataset"].update(case.spec)
        create_tj(api, namespace, body)

    started = time.monotonic()
    done, probes = wait_all(api, namespace, [case.name for case in CASES], operator)
    print(f"{len(CASES)} bad datasets failed in {time.monotonic() - started:.0f}s; "
          f"operator alive and live at all {probes} probes")  # fmt: skip

    problems = []
    for case in CASES:
        tj = done[case.name]
        status = tj["status"]
        stalled = conditions(tj).get("Stalled", {})
        got = (status["phase"], stalled.get("status"), stalled.get("reason"))
        if got != ("Failed", "True", case.reason):
            problems.append(f"{case.name}: {got}, {status.get('message')}")
            continue
        for text in case.says:
            if text not in status["message"] or text not in stalled.get("message", ""):
                problems.append(f"{case.name}: {text!r} not in {status['message']!r}")
        if "model" in status:
            problems.append(f"{case.name}: a model was published: {status['model']}")
        print(f"{case.name}: {case.reason}: {status['message'][:160]}")
    assert not problems, "\n".join(problems)

    events = client.CoreV1Api(api).list_namespaced_event(namespace).items
    failed = {e.involved_object.name for e in events if e.reason == "Failed"}
    assert failed >= {case.name for case in CASES}, failed
    assert healthy(operator), operator.output()
