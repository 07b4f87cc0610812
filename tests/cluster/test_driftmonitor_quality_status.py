"""The data-quality verdict as the real API server stores it (issue 14): the spec's time window
and quality limits defaulted and kept, and the status the controller writes after a failed
window kept field by field (a field missing from the CRD would be pruned without a word)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kubernetes import client

from continuum.api import DriftMonitor, dump, load
from continuum.controllers.driftmonitor.verdicts import check_result, status_after_check
from tests.kit.kinds import DM, DRIFTMONITORS, GROUP, VERSION, drift_monitor, get_dm, objs

pytestmark = pytest.mark.cluster

LINE = "plan: 15.0% of values unseen in training, 15.0% more than the 0.0% the reference predicts"


def failed_summary() -> dict:
    return {
        "status": "Succeeded", "verdict": "Drift", "datasetDrift": True, "share": 0.5,
        "reportURI": "s3://continuum/reports/drift/20260301T120000Z/", "rows": 1200,
        "featuresTotal": 2,
        "features": [
            {"name": "plan", "test": "chi2", "statistic": 90.0, "pValue": 1e-12,
             "pValueUnderflow": False, "effectSize": 0.3, "drifted": True,
             "quality": ["unseenCategories"]},
            {"name": "tenure", "test": "ks", "statistic": 0.02, "pValue": 0.9,
             "pValueUnderflow": False, "effectSize": 0.02, "drifted": False, "quality": []},
        ],
        "quality": {"passed": False, "failures": [LINE], "failuresTotal": 1},
    }  # fmt: skip


def test_the_quality_status_survives_the_api_server(api: client.ApiClient, namespace, crds):
    body = drift_monitor({}, window={"maxRows": 1200, "minSamples": 50, "last": "6h"})
    del body["spec"]["retrain"]
    body["spec"]["quality"] = {"maxOutOfRangeShare": 0.2}
    objs(api).create_namespaced_custom_object(GROUP, VERSION, namespace, DRIFTMONITORS, body)
    stored = get_dm(api, namespace)
    assert stored["spec"]["window"]["last"] == "6h"
    assert stored["spec"]["quality"]["maxOutOfRangeShare"] == 0.2
    assert stored["spec"]["quality"]["maxUnseenShare"] == 0.05  # the CRD's default

    dm = load(DriftMonitor, stored)
    done = datetime(2026, 3, 1, 12, 0, 20, tzinfo=UTC)
    status = status_after_check(dm, check_result("drift-check-1", done, True, "", failed_summary()))
    objs(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, DRIFTMONITORS, DM, {"status": dump(status)}
    )
    written = get_dm(api, namespace)["status"]
    assert written["drift"]["quality"] == {
        "passed": False,
        "failures": [LINE],
        "checks": ["unseenCategories"],
    }
    assert [f["quality"] for f in written["drift"]["features"]] == [["unseenCategories"], []]
    condition = {c["type"]: c for c in written["conditions"]}["DataQualityFailed"]
    assert condition["status"] == "True"
    assert condition["reason"] == "QualityChecksFailed"
    assert condition["message"].startswith(LINE)
