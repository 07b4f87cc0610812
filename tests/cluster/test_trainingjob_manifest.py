"""A completed run's result comes from its manifest in S3, which the operator reads itself.

One operator, stopped while two runs complete, then started again:

- ``rotated``: meanwhile its Secret gets a wrong secret key. The run stays Running with
  ``Reconciling`` and ``Stalled`` (reason ManifestUnreadable) whose message names the manifest,
  the Secret and the credential at fault (never a value), and a Warning Event says the same.
  Once the Secret is put right, the operator's own retry reads the manifest and the run
  Succeeds, its status equal to what manifest.json says.
- ``tampered``: meanwhile its manifest's sha256 is replaced in S3. The run Fails with
  ManifestMismatch naming the field: a status never vouches for a model the trainer did not
  write.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from kubernetes import client

from tests.kit.cluster import S3Settings, event_reasons, s3_client, wait_until
from tests.kit.kinds import RUN_TIMEOUT, Ctx, conditions, create_tj, get_tj, training_job

ROTATING = "s3-rotating"
ACCESS, SECRET = "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"
WRONG_SECRET = "not-the-secret-key-0123456789"


def put_secret(api: client.ApiClient, namespace: str, s3: S3Settings, secret_key: str) -> None:
    data = {ACCESS: s3.access_key, SECRET: secret_key}
    body = {
        "metadata": {"name": ROTATING},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }
    core = client.CoreV1Api(api)
    try:
        core.replace_namespaced_secret(ROTATING, namespace, body)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        core.create_namespaced_secret(namespace, body)


def jobs_complete(api: client.ApiClient, namespace: str, names: set[str]) -> bool:
    done = set()
    for job in client.BatchV1Api(api).list_namespaced_job(namespace).items:
        conds = job.status.conditions or []
        if any(c.type == "Complete" and c.status == "True" for c in conds):
            done.add(job.metadata.name)
    failed = [
        j.metadata.name
        for j in client.BatchV1Api(api).list_namespaced_job(namespace).items
        if (j.status.failed or 0) > 0
    ]
    assert not failed, f"training Jobs failed: {failed}"
    return names <= done


def manifests(s3: S3Settings, bucket: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """By TrainingJob name: (key, manifest) of every manifest.json under models/."""
    s3c = s3_client(s3)
    found = {}
    for obj in s3c.list_objects_v2(Bucket=bucket, Prefix="models/").get("Contents", []):
        if obj["Key"].endswith("/manifest.json"):
            manifest = json.loads(s3c.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            found[manifest["trainingJob"]] = (obj["Key"], manifest)
    return found


def waiting_for_manifest(tj: dict[str, Any]) -> dict[str, Any] | None:
    reconciling = conditions(tj).get("Reconciling", {}) if tj.get("status") else {}
    return reconciling if reconciling.get("reason") == "ManifestUnreadable" else None


def test_result_is_read_from_the_manifest_and_checked_against_it(ctx: Ctx) -> None:
    api, namespace, s3 = ctx.api, ctx.namespace, ctx.s3
    put_secret(api, namespace, s3, s3.secret_key)
    create_tj(api, namespace, training_job("rotated", ctx.data, s3, ctx.bucket, ROTATING))
    ctx.start_training("tampered")
    names = {"rotated-train", "tampered-train"}
    batch = client.BatchV1Api(api)
    wait_until("both training Jobs", lambda: len(batch.list_namespaced_job(namespace).items) == 2)
    ctx.op.stop()

    wait_until("both runs to complete", lambda: jobs_complete(api, namespace, names), RUN_TIMEOUT)
    put_secret(api, namespace, s3, WRONG_SECRET)
    key, manifest = manifests(s3, ctx.bucket)["tampered"]
    forged = {**manifest, "sha256": "0" * 64}
    s3_client(s3).put_object(Bucket=ctx.bucket, Key=key, Body=json.dumps(forged).encode())
    ctx.op.start()

    # tampered: refused, naming the field
    tampered = ctx.finished("tampered")
    assert tampered["status"]["phase"] == "Failed", tampered["status"]
    stalled = conditions(tampered)["Stalled"]
    assert (stalled["status"], stalled["reason"]) == ("True", "ManifestMismatch"), stalled
    assert "sha256" in stalled["message"], stalled
    assert key in stalled["message"], stalled
    assert "model" not in tampered["status"]

    # rotated: waits, saying why, without a value
    waiting = wait_until(
        "rotated to report its unreadable manifest",
        lambda: waiting_for_manifest(get_tj(api, namespace, "rotated")),
        90,
    )
    rotated = get_tj(api, namespace, "rotated")
    assert rotated["status"]["phase"] == "Running", rotated["status"]
    assert waiting["status"] == "True"
    for expected in (ROTATING, "manifest.json", "secret key"):
        assert expected in waiting["message"], waiting
    assert conditions(rotated)["Stalled"]["status"] == "True"
    assert conditions(rotated)["Succeeded"]["status"] == "Unknown"
    wait_until(
        "the ManifestUnreadable Event",
        lambda: "ManifestUnreadable" in event_reasons(api, namespace, "rotated"),
        30,
    )
    for text in (str(rotated), ctx.op.output()):
        assert WRONG_SECRET not in text
        assert s3.secret_key not in text

    # put right: the operator's retry reads it, and the status is the manifest's
    put_secret(api, namespace, s3, s3.secret_key)
    done = ctx.finished("rotated")["status"]
    assert done["phase"] == "Succeeded", done
    _, stored = manifests(s3, ctx.bucket)["rotated"]
    assert done["model"] == {k: stored[k] for k in ("version", "uri", "sha256")}
    assert done["metrics"] == stored["metrics"]
    assert done["dataset"]["fingerprint"] == stored["dataset"]["fingerprint"]
    assert done["qualified"] is stored["qualified"]
