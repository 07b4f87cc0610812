"""The Grafana dashboard (charts/continuum/dashboards/continuum.json): valid JSON whose PromQL
uses only metrics the code exports, shipped by the chart as an optional sidecar ConfigMap."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from continuum.server.metrics import ServerMetrics
from tests.unit.chart.conftest import CHART, Render, by_kind, one

DASHBOARD = CHART / "dashboards/continuum.json"
METRIC = re.compile(r"\bcontinuum_[a-z0-9_]+")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum")}


def exported(registry: CollectorRegistry) -> set[str]:
    """The series names a registry's metrics produce (labelled ones too, before any sample)."""
    names = set()
    for family in registry.collect():
        suffixes = SUFFIXES.get(family.type, ("",))
        names |= {family.name + suffix for suffix in suffixes}
    return names


def code_metrics() -> set[str]:
    # Importing the controllers registers their metrics on the operator's registry.
    for module in ("trainingjob", "modeldeployment", "driftmonitor"):
        importlib.import_module(f"continuum.controllers.{module}.metrics")
    operator = importlib.import_module("continuum.controllers.shared.metrics").REGISTRY
    return exported(operator) | exported(ServerMetrics("model", 1).registry)


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dash["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dash: dict[str, Any]) -> Iterator[str]:
    for panel in panels(dash):
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in dash["templating"]["list"]:
        if variable["type"] == "query":
            yield variable["definition"]
            yield variable["query"]["query"]


def test_every_expr_uses_only_metrics_the_code_exports() -> None:
    known = code_metrics()
    assert "continuum_server_request_duration_seconds_bucket" in known
    assert "continuum_drift_feature_statistic" in known
    exprs = list(queries(dashboard()))
    assert exprs
    used = set()
    for expr in exprs:
        names = set(METRIC.findall(expr))
        assert names, f"no continuum metric in {expr!r}"
        assert names <= known, f"unknown metrics {names - known} in {expr!r}"
        used |= names
    # The four topics are all covered.
    for name in (
        "continuum_training_runs_total",
        "continuum_model_metric",
        "continuum_server_requests_total",
        "continuum_server_request_duration_seconds_bucket",
        "continuum_drift_feature_statistic",
        "continuum_drift_retrainings_total",
    ):
        assert name in used


def test_panels_are_well_formed() -> None:
    dash = dashboard()
    assert dash["uid"] == "continuum-overview"
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids))
    for panel in panels(dash):
        if panel["type"] == "row":
            continue
        assert panel["title"]
        assert panel["description"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        assert [t["refId"] for t in panel["targets"]] == [
            chr(65 + i) for i in range(len(panel["targets"]))
        ]
    names = [v["name"] for v in dash["templating"]["list"]]
    assert names == ["datasource", "model", "monitor"]
    # Every variable a query uses is defined.
    for expr in queries(dash):
        for var in re.findall(r"\$(\w+)", expr):
            assert var in names or var.startswith("__"), (var, expr)


def test_configmap_is_off_by_default(render: Render) -> None:
    assert not by_kind(render(), "ConfigMap")


def test_configmap_for_the_grafana_sidecar(render: Render) -> None:
    values = {
        "grafanaDashboard": {
            "enabled": True,
            "namespace": "monitoring",
            "annotations": {"grafana_folder": "MLOps"},
        }
    }
    cm = one(render(values=values), "ConfigMap")
    assert cm["metadata"]["name"] == "rel-continuum-dashboard"
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["labels"]["app.kubernetes.io/part-of"] == "continuum"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "MLOps"}
    assert cm["data"] == {"continuum.json": DASHBOARD.read_text()}


def test_configmap_defaults_to_the_release_namespace(render: Render) -> None:
    cm = one(render(values={"grafanaDashboard": {"enabled": True}}), "ConfigMap")
    assert cm["metadata"]["namespace"] == "ops"


@pytest.mark.parametrize(
    "values",
    [
        {"grafanaDashboard": {"enable": True}},
        {"grafanaDashboard": {"enabled": "yes"}},
        {"grafanaDashboard": {"labels": {"grafana_dashboard": 1}}},
        {"grafanaDashboard": {"namespace": "Monitoring"}},
    ],
)
def test_schema_rejects_bad_values(render_error: Any, values: dict[str, Any]) -> None:
    assert "schema" in render_error(values=values).lower()
