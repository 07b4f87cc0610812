"""The Argo CD health checks (deploy/argocd/health/*.lua) under Lua 5.1, on the statuses the
operator's own status functions produce (not hand-written conditions), and the argocd-cm
snippet that registers them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from continuum.api import ModelDeployment, dump, load
from continuum.controllers.driftmonitor import verdicts as drift
from continuum.controllers.modeldeployment import rollout
from continuum.controllers.modeldeployment.analysis import Counters, VersionCounts
from continuum.controllers.shared.conditions import Want, merge_conditions
from continuum.controllers.trainingjob import status
from continuum.controllers.trainingjob.manifest import ManifestRead
from tests.unit.controllers.modeldeployment.builders import (
    deployment,
    md_body,
    model_deployment,
)
from tests.unit.controllers.trainingjob.builders import training_job
from tests.unit.deploy.health import HEALTH, KINDS, REPO, health, lua_version

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SNIPPET = REPO / "deploy/argocd/argocd-cm-health.yaml"


def obj(wants: list[Want], generation: int = 1, **fields: Any) -> dict[str, Any]:
    """A resource whose status has the conditions ``wants`` (as the operator merges them)."""
    conditions = merge_conditions([], wants, generation=generation, now=NOW)
    return {
        "metadata": {"name": "x", "namespace": "team", "generation": generation},
        "status": {
            "observedGeneration": generation,
            "conditions": [dump(c) for c in conditions],
            **fields,
        },
    }


def test_runs_under_lua_5_1() -> None:
    # Argo CD runs health checks with gopher-lua, which implements Lua 5.1.
    assert lua_version() == "Lua 5.1"


def test_snippet_registers_exactly_the_three_checks() -> None:
    data = yaml.safe_load(SNIPPET.read_text())["data"]
    assert data == {
        f"resource.customizations.health.continuum.dev_{kind}": (HEALTH / f"{kind}.lua").read_text()
        for kind in KINDS
    }


@pytest.mark.parametrize("kind", KINDS)
def test_new_object_without_status_is_progressing(kind: str) -> None:
    assert health(kind, {"metadata": {"name": "x", "generation": 1}})["status"] == "Progressing"
    empty = {"metadata": {"name": "x", "generation": 1}, "status": {}}
    assert health(kind, empty)["status"] == "Progressing"


# --- TrainingJob


def tj(state: status.JobState, summary: dict[str, Any] | None = None) -> dict[str, Any]:
    outcome = status.outcome_of(state, summary, None)
    return obj(outcome.wants, phase=outcome.phase, message=outcome.message)


SUMMARY = {
    "status": "Succeeded",
    "model": "churn",
    "version": 3,
    "metric": "accuracy",
    "metrics": {"accuracy": 0.91},
    "qualified": True,
    "reasons": [],
}


@pytest.mark.parametrize(
    ("state", "summary", "expected", "message"),
    [
        (status.observe_job(None), None, "Progressing", "being created"),
        (status.JobState("Running", "Training", "Job j is training"), None, "Progressing",
         "is training"),
        (status.JobState("Succeeded", "JobComplete", "done"), SUMMARY, "Healthy",
         "version 3, accuracy 0.91, qualified"),
        (status.JobState("Succeeded", "JobComplete", "done"),
         {**SUMMARY, "qualified": False, "reasons": ["accuracy below 0.95"]}, "Healthy",
         "not qualified"),
        (status.JobState("Failed", "BackoffLimitExceeded", "Job has reached the backoff limit"),
         {"status": "Failed", "reason": "DatasetError", "message": "no column label"},
         "Degraded", "DatasetError: no column label"),
        (status.JobState("Failed", "DeadlineExceeded", "Job was active longer than allowed"),
         None, "Degraded", "DeadlineExceeded"),
        (status.JobState("Succeeded", "JobComplete", "done"), None, "Degraded", "ResultMissing"),
    ],
)  # fmt: skip
def test_training_job(
    state: status.JobState, summary: dict[str, Any] | None, expected: str, message: str
) -> None:
    got = health("TrainingJob", tj(state, summary))
    assert got["status"] == expected
    assert message in got["message"]


def completed(read: ManifestRead) -> dict[str, Any]:
    """A TrainingJob whose Job completed, as the operator judges it once ``read`` is known."""
    outcome = status.verified(training_job(name="churn-3"), MANIFEST_SUMMARY, read)
    return obj(outcome.wants, phase=outcome.phase, message=outcome.message)


MANIFEST_SUMMARY = {**SUMMARY, "uri": "s3://b/models/churn/3/", "sha256": "a" * 64}
MANIFEST_URI = "s3://b/models/churn/3/manifest.json"


@pytest.mark.parametrize(
    ("read", "expected", "message"),
    [
        (ManifestRead(MANIFEST_URI, "unreadable", problem="S3 at http://s3:9000 is down"),
         "Progressing", "S3 at http://s3:9000 is down"),
        (ManifestRead(MANIFEST_URI, "unreadable", problem="Secret ml/s3 has no key",
                      needs_change=True), "Degraded", "Secret ml/s3 has no key"),
        (ManifestRead(MANIFEST_URI, "read",
                      manifest={**MANIFEST_SUMMARY, "sha256": "b" * 64, "trainingJob": "churn-3"}),
         "Degraded", "ManifestMismatch"),
    ],
)  # fmt: skip
def test_training_job_whose_manifest_is_awaited_or_refused(
    read: ManifestRead, expected: str, message: str
) -> None:
    got = health("TrainingJob", completed(read))
    assert got["status"] == expected
    assert message in got["message"]


# --- ModelDeployment


def md(
    obs: rollout.Observed,
    serving: int | None,
    target: int | None,
    failed: int | None = None,
) -> dict[str, Any]:
    draft = rollout.Draft(serving=serving, previous=None, history=[])
    wants = rollout.conditions_for(model_deployment(), obs, draft, target, failed)
    return obj(wants, servingVersion=serving)


@pytest.mark.parametrize(
    ("resource", "expected", "message"),
    [
        (md(rollout.Observed("Absent"), None, None), "Progressing", "waiting for"),
        (md(rollout.Observed("Progressing", 1), None, 1), "Progressing", "rolling out version 1"),
        (md(rollout.Observed("Progressing", 1, 1, True), 1, 2), "Progressing",
         "rolling out version 2"),
        (md(rollout.Observed("Complete", 2, 2, True), 2, 2), "Healthy",
         "version 2 serving, 2 ready replica(s)"),
        (md(rollout.Observed("Complete", 2, 0, True), 2, 2), "Suspended", "no replicas"),
        (md(rollout.Observed("Complete", 1, 1, True), 1, 1, failed=2), "Degraded",
         "version 2 did not become ready"),
        (md(rollout.Observed("Progressing", 1, 0, False), 1, 1, failed=2), "Degraded",
         "version 2 did not become ready"),
        (md(rollout.Observed("Complete", 1, 0, False), 1, 1), "Degraded",
         "no server replica is ready"),
    ],
)  # fmt: skip
def test_model_deployment(resource: dict[str, Any], expected: str, message: str) -> None:
    got = health("ModelDeployment", resource)
    assert got["status"] == expected
    assert message in got["message"]


PROMOTED_1 = {"version": 1, "time": "2026-02-01T00:00:00Z", "outcome": "Promoted"}


def progressive_md(**kwargs: Any) -> dict[str, Any]:
    """A ModelDeployment as rollout.plan leaves it in a progressive rollout (issue 18)."""
    spec = {"strategy": "ShadowThenCanary", **kwargs.pop("rollout", {})}
    body = md_body(status={"servingVersion": 1, "history": [PROMOTED_1]}, rollout=spec)
    start = rollout.plan(load(ModelDeployment, body), {1: "iris-1", 2: "iris-2"}, deployment(1),
                         now=NOW)  # fmt: skip
    body["status"] = dump(start.status)
    body["metadata"]["annotations"] = kwargs.pop("annotations", {})
    step = rollout.plan(load(ModelDeployment, body), {1: "iris-1", 2: "iris-2"}, deployment(1),
                        now=NOW + timedelta(seconds=5), **kwargs)  # fmt: skip
    return {**body, "status": dump(step.status)}


def test_a_shadow_or_canary_step_is_progressing_with_its_reason() -> None:
    got = health("ModelDeployment", progressive_md())
    assert got == {"status": "Progressing",
                   "message": "Shadow: waiting for 0/200 requests compared"}  # fmt: skip


def test_a_paused_rollout_is_suspended() -> None:
    got = health("ModelDeployment", progressive_md(rollout={"paused": True}))
    assert got["status"] == "Suspended"
    assert "paused by spec.rollout.paused" in got["message"]


def test_a_rolled_back_rollout_is_degraded_with_the_failed_signal() -> None:
    side = VersionCounts(1000, 1000, 0, (0, 1000, 0), {"setosa": 1000})
    disagreeing = Counters("v2-step0", (0.001, 0.002), side, side, 1000, 10)
    got = health("ModelDeployment", progressive_md(evidence=rollout.Evidence(disagreeing)))
    assert got["status"] == "Degraded"
    assert "agreement 0.01 is below its threshold 0.95" in got["message"]


def test_model_deployment_spec_not_yet_observed_is_progressing() -> None:
    resource = md(rollout.Observed("Complete", 2, 2, True), 2, 2)
    resource["metadata"]["generation"] = 2
    got = health("ModelDeployment", resource)
    assert got == {
        "status": "Progressing",
        "message": "Waiting for the operator to observe generation 2",
    }


# --- DriftMonitor


def check(verdict: drift.Verdict, message: str = "") -> dict[str, Any]:
    result = drift.CheckResult(verdict, NOW, "churn-check-1", message=message)
    return obj(drift.check_conditions(result))


@pytest.mark.parametrize(
    ("resource", "expected", "message"),
    [
        (obj(drift.waiting_conditions("WaitingForDeployment", "ModelDeployment churn serves "
                                      "nothing yet")), "Progressing", "serves nothing yet"),
        (obj(drift.waiting_conditions("CheckRunning", "check Job churn-check-1 is running")),
         "Progressing", "is running"),
        (check("NoDrift"), "Healthy", ""),
        (check("InsufficientData"), "Healthy", ""),
        (check("Drift"), "Healthy", "Drift detected: "),
        (check("Failed", "check Job churn-check-1 failed: OOMKilled"), "Degraded", "OOMKilled"),
    ],
)  # fmt: skip
def test_drift_monitor(resource: dict[str, Any], expected: str, message: str) -> None:
    got = health("DriftMonitor", resource)
    assert got["status"] == expected
    assert message in got["message"]


def test_drift_is_healthy_only_while_ready() -> None:
    """A drifted last check followed by a failed one: the failure (Stalled) wins."""
    resource = check("Drift")
    failed = check("Failed", "check Job churn-check-2 failed")
    resource["status"]["conditions"] = failed["status"]["conditions"]
    assert health("DriftMonitor", resource)["status"] == "Degraded"
