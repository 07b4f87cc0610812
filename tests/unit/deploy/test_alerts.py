"""The chart's alerting rules (templates/prometheusrule.yaml): gated like the ServiceMonitor,
valid for the pinned Prometheus (`promtool check rules`), each alert fired and held off by a
unit case (`promtool test rules`, alerts.test.yaml), PromQL over exported metric names only, and
a runbook entry per alert in docs/troubleshooting.md."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kit import REPO
from tests.kit.versions import promtool_binary
from tests.unit.chart.conftest import Manifest, Render, by_kind, one
from tests.unit.deploy.test_dashboard import METRIC, code_metrics

RULE_API = "monitoring.coreos.com/v1/PrometheusRule"
ENABLED = {"metrics": {"prometheusRule": {"enabled": True}}}
UNIT_TESTS = Path(__file__).with_name("alerts.test.yaml")
TROUBLESHOOTING = REPO / "docs/troubleshooting.md"
ALERTS = {
    "ContinuumTrainingRunsFailing",
    "ContinuumRolloutRolledBack",
    "ContinuumDriftNotRetrained",
    "ContinuumDataQualityFailing",
    "ContinuumReconcileErrors",
    "ContinuumOperatorAbsent",
    "ContinuumModelServerErrors",
    "ContinuumModelServerSlow",
    "ContinuumInferenceLogRowsDropped",
}


@pytest.fixture(scope="session")
def promtool() -> str:
    found = promtool_binary()
    if found is None:
        pytest.fail(
            "no promtool binary: run `make tools`, put promtool on PATH or set CONTINUUM_PROMTOOL"
        )
    return found


def run_promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=120, check=False
    )


def rule_object(render: Render, values: dict[str, Any] | None = None) -> Manifest:
    return one(render("--api-versions", RULE_API, values=values or ENABLED), "PrometheusRule")


def rules(rule: Manifest) -> list[dict[str, Any]]:
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


@pytest.fixture
def rules_file(render: Render, tmp_path: Path) -> Path:
    """The default release's rule groups as a Prometheus rules file."""
    path = tmp_path / "continuum.rules.yaml"
    path.write_text(yaml.safe_dump(rule_object(render)["spec"], sort_keys=False))
    return path


def test_promtool_checks_the_rules(promtool: str, rules_file: Path) -> None:
    result = run_promtool(promtool, "check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_promtool_unit_cases_pass(promtool: str, rules_file: Path, tmp_path: Path) -> None:
    cases = yaml.safe_load(UNIT_TESTS.read_text())
    cases["rule_files"] = [str(rules_file)]
    path = tmp_path / "alerts.test.yaml"
    path.write_text(yaml.safe_dump(cases, sort_keys=False))
    result = run_promtool(promtool, "test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_case_that_fires_it_and_one_that_does_not() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load(UNIT_TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fired == ALERTS
    assert quiet == ALERTS


def test_rules_use_only_metrics_the_code_exports(render: Render) -> None:
    known = code_metrics()
    for rule in rules(rule_object(render)):
        names = set(METRIC.findall(rule["expr"]))
        assert names, f"no continuum metric in {rule['alert']}"
        assert names <= known, f"unknown metrics {names - known} in {rule['alert']}"


def test_every_alert_has_a_runbook_entry(render: Render) -> None:
    text = TROUBLESHOOTING.read_text()
    headings = set(re.findall(r"^### (Continuum\w+)$", text, re.MULTILINE))
    alerts = {r["alert"] for r in rules(rule_object(render))}
    assert alerts == ALERTS
    assert headings == ALERTS, "docs/troubleshooting.md: one '### <alert>' per alert"
    for rule in rules(rule_object(render)):
        assert rule["annotations"]["runbook"] == (
            f"docs/troubleshooting.md#{rule['alert'].lower()}"
        )
        assert rule["labels"]["severity"] in {"warning", "critical"}


def test_operator_series_are_this_releases(render: Render) -> None:
    selector = 'job="rel-continuum-metrics", namespace="ops"'
    for rule in rules(rule_object(render)):
        if "continuum_server_" not in rule["expr"]:
            assert selector in rule["expr"], rule["alert"]


def test_off_by_default_and_only_when_the_api_exists(render: Render) -> None:
    assert not by_kind(render("--api-versions", RULE_API), "PrometheusRule")
    assert not by_kind(render(values=ENABLED), "PrometheusRule")
    metrics_off = {"metrics": {"enabled": False, "prometheusRule": {"enabled": True}}}
    assert not by_kind(render("--api-versions", RULE_API, values=metrics_off), "PrometheusRule")


def test_labels_and_thresholds(render: Render) -> None:
    values = {
        "replicaCount": 0,
        "metrics": {
            "prometheusRule": {
                "enabled": True,
                "additionalLabels": {"release": "kps"},
                "serverErrorRatio": 0.2,
                "serverLatencySeconds": 2,
                "driftRetrainWindow": "6h",
            }
        },
    }
    rule = rule_object(render, values)
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert rule["metadata"]["labels"]["app.kubernetes.io/part-of"] == "continuum"
    assert rule["metadata"]["namespace"] == "ops"
    by_name = {r["alert"]: r for r in rules(rule)}
    # Stopped on purpose (replicaCount 0): no operator is expected.
    assert set(by_name) == ALERTS - {"ContinuumOperatorAbsent"}
    assert by_name["ContinuumModelServerErrors"]["expr"].rstrip().endswith("> 0.2")
    assert by_name["ContinuumModelServerSlow"]["expr"].rstrip().endswith("> 2")
    assert "[6h]" in by_name["ContinuumDriftNotRetrained"]["expr"]
    assert "offset 6h" in by_name["ContinuumDriftNotRetrained"]["expr"]


@pytest.mark.parametrize(
    "values",
    [
        {"metrics": {"prometheusRule": {"enable": True}}},
        {"metrics": {"prometheusRule": {"enabled": "yes"}}},
        {"metrics": {"prometheusRule": {"labels": {"release": "kps"}}}},
        {"metrics": {"prometheusRule": {"serverErrorRatio": 5}}},
        {"metrics": {"prometheusRule": {"serverErrorRatio": 0}}},
        {"metrics": {"prometheusRule": {"serverLatencySeconds": "500ms"}}},
        {"metrics": {"prometheusRule": {"driftRetrainWindow": "2 hours"}}},
    ],
)
def test_schema_rejects_bad_values(render_error: Any, values: dict[str, Any]) -> None:
    assert "schema" in render_error(values=values).lower()
