"""A wrong S3 endpoint, bucket or credential: the TrainingJob fails saying which, leaking nothing.

Three TrainingJobs run side by side under the real operator, each with one thing wrong: an
endpoint that does not resolve (a Service name in the test namespace that does not exist: the
cluster DNS answers it, nothing leaves the machine), a bucket that does not exist, and a Secret
with keys the real MinIO does not know. Each ends Failed/Stalled with a message naming the
endpoint, the bucket or the credentials; no secret key appears in a status, an Event or a pod log.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from kubernetes import client

from tests.kit.cluster import pod_logs
from tests.kit.kinds import Ctx, conditions, create_tj, training_job


def with_storage(body: dict[str, Any], **storage: Any) -> dict[str, Any]:
    body["spec"]["storage"].update(storage)
    return body


def test_wrong_endpoint_bucket_and_credentials_say_which(ctx: Ctx) -> None:
    api, namespace, s3 = ctx.api, ctx.namespace, ctx.s3
    nowhere = f"http://nowhere.{namespace}.svc:9000"  # in-cluster name, no such Service
    missing = f"missing-{uuid.uuid4().hex[:12]}"
    wrong_secret = f"wrong-{uuid.uuid4().hex}"
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="bad-credentials"),
            string_data={
                "AWS_ACCESS_KEY_ID": f"nobody-{uuid.uuid4().hex[:8]}",
                "AWS_SECRET_ACCESS_KEY": wrong_secret,
            },
        ),
    )
    cases = {
        "wrong-endpoint": with_storage(ctx.training_job("wrong-endpoint"), endpoint=nowhere),
        "wrong-bucket": with_storage(ctx.training_job("wrong-bucket"), bucket=missing),
        "wrong-credentials": training_job(
            "wrong-credentials", ctx.data, s3, ctx.bucket, "bad-credentials"
        ),
    }
    for body in cases.values():
        create_tj(api, namespace, body)
    done = {name: ctx.finished(name) for name in cases}

    for name, tj in done.items():
        status = tj["status"]
        assert status["phase"] == "Failed", (name, status)
        stalled = conditions(tj)["Stalled"]
        assert stalled["status"] == "True", (name, stalled)
        assert stalled["message"], (name, stalled)
        assert "model" not in status

    endpoint = done["wrong-endpoint"]["status"]["message"]
    assert nowhere in endpoint, endpoint
    assert "endpoint" in endpoint, endpoint
    bucket = done["wrong-bucket"]["status"]["message"]
    assert missing in bucket, bucket
    assert "does not exist" in bucket, bucket
    credentials = done["wrong-credentials"]["status"]["message"]
    assert "credentials" in credentials, credentials
    assert "AWS_ACCESS_KEY_ID" in credentials, credentials

    secrets = {s3.secret_key, wrong_secret}
    secrets |= {base64.b64encode(s.encode()).decode() for s in list(secrets)}
    events = core.list_namespaced_event(namespace).items
    event_text = " ".join(f"{e.reason} {e.message}" for e in events)
    assert "Failed" in {e.reason for e in events}, event_text
    logs = pod_logs(api, namespace, "app.kubernetes.io/managed-by=continuum")
    assert "nowhere" in logs or "does not exist" in logs, logs  # the logs were really read
    for where, text in {"status": str(done), "events": event_text, "logs": logs}.items():
        for secret in secrets:
            assert secret not in text, f"a secret key appears in the {where}"
