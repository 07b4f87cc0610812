"""DriftMonitor scheduling: when a check is due, its slot and name, the pending check, the Job."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from continuum.api import DriftMonitorStatus, ModelDeployment, dump, load
from continuum.controllers.driftmonitor.checks import (
    CHECK_SPEC_KEYS,
    check_job_name,
    check_slot,
    check_time_of,
    desired_check_job,
    is_due,
    next_check_due,
    pending_check,
)
from continuum.monitor.settings import parse_check_settings, settings_from_env
from tests.unit.controllers.driftmonitor.builders import (
    DM_UID,
    NOW,
    check_job,
    drift_monitor,
    serving_md,
)
from tests.unit.controllers.modeldeployment.builders import md_body

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_first_check_is_due_at_once() -> None:
    dm = drift_monitor()
    assert next_check_due(dm.status, dm.spec, NOW) == NOW
    assert is_due(dm.status, dm.spec, NOW)


def test_next_check_one_interval_after_the_last() -> None:
    dm = drift_monitor({"lastCheckTime": "2026-03-01T12:00:20Z"})
    due = next_check_due(dm.status, dm.spec, NOW)
    assert due == datetime(2026, 3, 1, 12, 1, 20, tzinfo=UTC)
    assert not is_due(dm.status, dm.spec, due - timedelta(seconds=1))
    assert is_due(dm.status, dm.spec, due)


def test_slots_are_epoch_aligned_and_always_advance() -> None:
    assert check_slot(datetime(2026, 3, 1, 12, 0, 59, tzinfo=UTC), 60) == T0
    assert check_slot(T0, 60) == T0
    # a check that finished late in its slot still schedules the next into a later slot
    last = T0 + timedelta(seconds=59)
    assert check_slot(last + timedelta(seconds=60), 60) > T0


def test_job_name_is_deterministic_per_slot() -> None:
    assert check_job_name("drift", T0) == f"drift-check-{int(T0.timestamp())}"
    assert check_job_name("drift", T0) == check_job_name("drift", T0)
    assert len(check_job_name("m" * 63, T0)) <= 63


def test_pending_check_is_the_newest_not_yet_in_status() -> None:
    old, new = check_job("20260301T115900Z"), check_job("20260301T120000Z", outcome=None)
    fresh = DriftMonitorStatus()
    assert pending_check([old, new], fresh) is new
    folded = DriftMonitorStatus.model_validate({"lastCheckTime": "2026-03-01T12:00:20Z"})
    assert pending_check([old, new], folded) is None
    assert pending_check([], fresh) is None
    assert check_time_of({"metadata": {}}) is None


def test_check_job_runs_the_monitor_against_the_served_version() -> None:
    dm, md = drift_monitor(), serving_md(3)
    job = desired_check_job(dm, md, 3, T0, "continuum:0.1.0")
    meta = job["metadata"]
    assert meta["name"] == check_job_name("drift", T0)
    assert meta["annotations"] == {"continuum.dev/check-time": "20260301T120000Z"}
    assert meta["labels"]["continuum.dev/drift-monitor"] == "drift"
    assert meta["labels"]["app.kubernetes.io/component"] == "drift-check"
    assert meta["ownerReferences"][0]["uid"] == DM_UID
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 60
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["command"] == ["continuum", "monitor"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["CONTINUUM_MONITOR"] == "drift"
    assert env["CONTINUUM_MODEL"] == "iris"
    assert env["CONTINUUM_MODEL_VERSION"] == "3"
    assert env["CONTINUUM_REPORT_TIME"] == "20260301T120000Z"
    assert env["CONTINUUM_S3_BUCKET"] == "continuum"
    assert env["CONTINUUM_S3_ENDPOINT"] == "http://minio.minio.svc:9000"
    assert env["AWS_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": "s3-credentials", "key": "AWS_SECRET_ACCESS_KEY"}
    }
    spec = json.loads(env["CONTINUUM_MONITOR_SPEC"])
    # Only what the DriftMonitor sets: an older monitor image reads it (version skew in an
    # upgrade); this release's monitor reads the same settings as from the full spec.
    assert spec == {
        "window": {"maxRows": 500, "minSamples": 50},
        "tests": {"driftShare": 0.5, "pValue": 0.01},
    }
    full = {k: v for k, v in dump(dm.spec).items() if k in CHECK_SPEC_KEYS}
    assert parse_check_settings(spec) == parse_check_settings(full)


def test_the_quality_limits_and_time_window_reach_the_check() -> None:
    quality = {"maxOutOfRangeShare": 0.2, "failOnExtraColumns": True}
    dm = drift_monitor(quality=quality, window={"last": "6h", "seed": 4, "minSamples": 50})
    job = desired_check_job(dm, serving_md(3), 3, T0, "continuum:0.1.0")
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    spec = json.loads(env["CONTINUUM_MONITOR_SPEC"])
    assert spec["quality"]["maxOutOfRangeShare"] == 0.2
    assert spec["quality"]["failOnExtraColumns"] is True
    assert (spec["window"]["last"], spec["window"]["seed"]) == ("6h", 4)


def test_check_job_gets_the_served_logs_policy_and_the_hmac_key_as_a_secret_reference() -> None:
    log = {"drop": ["email"], "hash": ["plan", "zip"], "hashKey": {"name": "log-key", "key": "k"}}
    body = md_body(status={"servingVersion": 3})
    body["spec"]["inferenceLog"] = {**body["spec"]["inferenceLog"], **log}
    md = load(ModelDeployment, body)
    container = desired_check_job(drift_monitor(), md, 3, T0, "c:1")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["containers"][0]["env"]}
    assert json.loads(env["CONTINUUM_INFERENCE_LOG_DROP"]) == ["email"]
    assert json.loads(env["CONTINUUM_INFERENCE_LOG_HASH"]) == ["plan", "zip"]
    assert env["CONTINUUM_INFERENCE_LOG_HASH_KEY"] == {
        "secretKeyRef": {"name": "log-key", "key": "k"}
    }
    plain = {name: value for name, value in env.items() if isinstance(value, str)}
    plain["CONTINUUM_INFERENCE_LOG_HASH_KEY"] = "a-key-of-32-bytes-for-this-test!"
    _, settings = settings_from_env(plain)
    assert settings.log_policy.drop == {"email"}
    assert settings.log_policy.hashed == {"plan", "zip"}


def test_check_job_without_a_policy_sets_none_of_its_variables() -> None:
    container = desired_check_job(drift_monitor(), serving_md(3), 3, T0, "c:1")["spec"]
    names = {e["name"] for e in container["template"]["spec"]["containers"][0]["env"]}
    assert not {n for n in names if n.startswith("CONTINUUM_INFERENCE_LOG_")}


def test_check_job_carries_the_retention_of_the_served_model() -> None:
    body = md_body(status={"servingVersion": 3})
    body["spec"]["inferenceLog"] = {**body["spec"]["inferenceLog"], "retentionDays": 30}
    job = desired_check_job(drift_monitor(), load(ModelDeployment, body), 3, T0, "c:1")
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["CONTINUUM_RETENTION_DAYS"] == "30"
