"""continuum rollout (issue 18): what each verb writes, and what status prints."""

from __future__ import annotations

from typing import Any

import pytest

from continuum.rollouts import RolloutActionRefused, describe, patch_for


def md(rollout: dict[str, Any] | None) -> dict[str, Any]:
    status: dict[str, Any] = {"servingVersion": 1}
    if rollout is not None:
        status["rollout"] = rollout
    return {"metadata": {"name": "churn"}, "status": status}


UNDER_WAY = {
    "candidate": 3, "champion": 2, "step": 1, "steps": 3, "stepName": "Canary 10%",
    "weight": 10, "stepStartedAt": "2026-12-04T22:00:00Z", "requests": 40, "compared": 400,
    "verdict": "Wait", "message": "Canary 10%: waiting for 40/100 requests answered",
    "evidence": [{"signal": "errorRate", "value": 0.0, "threshold": 0.01, "passed": None},
                 {"signal": "agreement", "value": 0.5, "threshold": 0.95, "passed": False}],
}  # fmt: skip


def test_promote_and_abort_name_the_candidate_under_way() -> None:
    assert patch_for("promote", md(UNDER_WAY)) == {
        "metadata": {"annotations": {"continuum.dev/rollout-action": "promote-3"}}
    }
    assert patch_for("abort", md(UNDER_WAY)) == {
        "metadata": {"annotations": {"continuum.dev/rollout-action": "abort-3"}}
    }


def test_pause_and_resume_set_the_spec() -> None:
    assert patch_for("pause", md(None)) == {"spec": {"rollout": {"paused": True}}}
    assert patch_for("resume", md(None)) == {"spec": {"rollout": {"paused": False}}}


@pytest.mark.parametrize("rollout", [None, {**UNDER_WAY, "verdict": "RollBack"}])
def test_nothing_to_promote_says_why(rollout: dict[str, Any] | None) -> None:
    with pytest.raises(RolloutActionRefused, match="no progressive rollout under way"):
        patch_for("promote", md(rollout))


def test_status_prints_the_step_and_each_signal() -> None:
    text = describe(md(UNDER_WAY))
    assert "version 3 beside version 2, step 2/3 (Canary 10%, candidate answers 10%)" in text
    assert "errorRate" in text
    assert "not judged yet" in text
    assert "FAIL" in text
    assert (
        describe(md(None)) == "ModelDeployment churn: no progressive rollout (serving version 1)\n"
    )
