"""Builders of DriftMonitor bodies, check Jobs and monitor summaries for controller unit tests."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from continuum.api import DriftMonitor, ModelDeployment, load
from tests.unit.controllers.modeldeployment.builders import md_body
from tests.unit.controllers.trainingjob.builders import SPEC as TJ_SPEC

DM_UID = "9b3e1f2a-0000-4000-8000-000000000003"
NOW = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
REPORT = "s3://continuum/reports/drift/20260301T120000Z/"


def dm_spec(**retrain: Any) -> dict[str, Any]:
    return {
        "deployment": "iris",
        "schedule": {"intervalSeconds": 60},
        "window": {"maxRows": 500, "minSamples": 50},
        "tests": {"pValue": 0.01, "driftShare": 0.5},
        "consecutiveChecks": 2,
        "retrain": {
            "enabled": True,
            "template": copy.deepcopy(TJ_SPEC),
            "cooldownSeconds": 600,
            "maxConcurrent": 1,
            **retrain,
        },
    }


def dm_body(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    """A DriftMonitor as the API server returns it."""
    return {
        "apiVersion": "continuum.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {
            "name": "drift",
            "namespace": "ml",
            "uid": DM_UID,
            "generation": 1,
            "resourceVersion": "10",
        },
        "spec": {**dm_spec(), **spec},
        "status": status or {},
    }


def drift_monitor(status: dict[str, Any] | None = None, **spec: Any) -> DriftMonitor:
    return load(DriftMonitor, dm_body(status, **spec))


def serving_md(version: int | None = 1) -> ModelDeployment:
    status = {"servingVersion": version} if version is not None else {}
    return load(ModelDeployment, md_body(status=status))


def summary(verdict: str = "Drift", time: str = "20260301T120000Z") -> dict[str, Any]:
    drifted = verdict == "Drift"
    return {
        "status": "Succeeded",
        "verdict": verdict,
        "datasetDrift": drifted if verdict != "InsufficientData" else False,
        "share": 0.75 if drifted else 0.0,
        "reportURI": f"s3://continuum/reports/drift/{time}/",
        "rows": 400 if verdict != "InsufficientData" else 10,
        "featuresTotal": 2,
        "features": [
            {"name": "petal", "test": "ks", "statistic": 0.61, "pValue": 0.0001,
             "effectSize": 0.61, "drifted": drifted},
            {"name": "colour", "test": "chi2", "statistic": 1.2, "pValue": 0.5,
             "effectSize": 0.02, "drifted": False},
        ],
        "featuresTruncated": False,
    }  # fmt: skip


def check_job(
    time: str = "20260301T120000Z", outcome: str | None = "Complete", uid: str = DM_UID
) -> dict[str, Any]:
    """A check Job of the monitor, finished with ``outcome`` (None: still running)."""
    status: dict[str, Any] = {"startTime": "2026-03-01T12:00:01Z"}
    if outcome is not None:
        status["conditions"] = [{"type": outcome, "status": "True", "reason": "",
                                 "message": "Job failed" if outcome == "Failed" else "",
                                 "lastTransitionTime": "2026-03-01T12:00:20Z"}]  # fmt: skip
        if outcome == "Complete":
            status["completionTime"] = "2026-03-01T12:00:20Z"
    moment = datetime.strptime(time, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"drift-check-{int(moment.timestamp())}",
            "namespace": "ml",
            "uid": f"job-{time}",
            "annotations": {"continuum.dev/check-time": time},
            "ownerReferences": [
                {
                    "apiVersion": "continuum.dev/v1alpha1",
                    "kind": "DriftMonitor",
                    "name": "drift",
                    "uid": uid,
                    "controller": True,
                }
            ],
        },
        "status": status,
    }


def message(value: dict[str, Any]) -> str:
    return json.dumps(value)
