"""The trainer's termination message is taken from the pod that finished last."""

from __future__ import annotations

from typing import Any

from continuum.kube import PodTermination, termination_message
from continuum.kube.pods import termination_of


def pod(finished_at: str | None, message: str | None, name: str = "trainer") -> dict[str, Any]:
    state: dict[str, Any] = (
        {"running": {}}
        if finished_at is None
        else {"terminated": {"exitCode": 1, "finishedAt": finished_at, "message": message}}
    )
    return {"status": {"containerStatuses": [{"name": name, "state": state}]}}


def test_latest_finished_pod_wins() -> None:
    pods = [pod("2026-01-01T10:00:00Z", "first"), pod("2026-01-01T10:05:00Z", "second")]
    assert termination_message(pods, "trainer") == "second"


def test_running_pods_and_other_containers_are_ignored() -> None:
    pods = [pod(None, None), pod("2026-01-01T10:00:00Z", "x", name="sidecar")]
    assert termination_message(pods, "trainer") is None


def test_empty_message_is_none() -> None:
    assert termination_message([pod("2026-01-01T10:00:00Z", "")], "trainer") is None
    assert termination_message([], "trainer") is None
    assert termination_message([{"status": {}}], "trainer") is None


def test_the_image_that_ran_comes_with_the_message() -> None:
    old, new = pod("2026-01-01T10:00:00Z", "first"), pod("2026-01-01T10:05:00Z", "second")
    status = new["status"]["containerStatuses"][0]
    status |= {"image": "continuum:dev", "imageID": "docker.io/library/continuum@sha256:ab"}
    found = termination_of([old, new], "trainer")
    assert found == PodTermination(
        "second", "continuum:dev", "docker.io/library/continuum@sha256:ab"
    )
    assert termination_of([old], "trainer") == PodTermination("first", None, None)
    assert termination_of([pod(None, None)], "trainer") is None
