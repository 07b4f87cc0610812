"""values.schema.json rejects misspelt keys and wrong types instead of ignoring them."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.unit.chart.conftest import CHART, Render


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"replicas": 1}, "replicas"),  # replicaCount
        ({"crds": {"enable": True}}, "enable"),  # crds.enabled
        ({"image": {"pullpolicy": "Always"}}, "pullpolicy"),
        ({"metrics": {"serviceMonitor": {"enabled": True, "labels": {"a": "b"}}}}, "labels"),
        ({"operator": {"logformat": "json"}}, "logformat"),
        ({"watchNamespace": ["a"]}, "watchNamespace"),
        ({"resources": {"request": {"cpu": "1"}}}, "request"),
        ({"podDisruptionBudget": {"enabled": True, "minavailable": 1}}, "minavailable"),
    ],
)
def test_typos_are_rejected(render_error: Any, values: dict[str, Any], complaint: str) -> None:
    error = render_error(values=values)
    assert "additional properties" in error.lower() or "additionalProperties" in error, error
    assert complaint in error


@pytest.mark.parametrize(
    "values",
    [
        {"replicaCount": "1"},
        {"replicaCount": 2.5},
        {"podDisruptionBudget": {"enabled": "auto"}},
        {"leaderElection": {"retryPeriod": 0}},
        {"replicaCount": -1},
        {"crds": {"keep": "yes"}},
        {"metrics": {"port": "8080"}},
        {"metrics": {"port": 70000}},
        {"metrics": {"enabled": "true"}},
        {"operator": {"logFormat": "yaml"}},
        {"operator": {"verbose": 1}},
        {"image": {"pullPolicy": "Sometimes"}},
        {"image": {"tag": "latest"}},
        {"image": {"tag": 1.0}},
        {"image": {"digest": "1234"}},
        {"watchNamespaces": "team-a"},
        {"watchNamespaces": ["Team_A"]},
        {"nodeSelector": {"disk": True}},
        {"tolerations": {"key": "x"}},
        {"podDisruptionBudget": {"enabled": True, "minAvailable": "half"}},
        {"metrics": {"serviceMonitor": {"interval": "30 seconds"}}},
        {"health": {"livenessProbe": {"periodSeconds": 0}}},
    ],
)
def test_wrong_types_are_rejected(render_error: Any, values: dict[str, Any]) -> None:
    assert "schema" in render_error(values=values).lower()


def test_every_default_is_described_by_the_schema() -> None:
    """Each key of values.yaml is in the schema, so the defaults themselves validate."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(values: dict[str, Any], node: dict[str, Any], path: str) -> None:
        if "$ref" in node:
            node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
        if node.get("additionalProperties") is False:
            for key, value in values.items():
                assert key in node["properties"], f"{path}{key} missing from the schema"
                child = node["properties"][key]
                if isinstance(value, dict):
                    walk(value, child, f"{path}{key}.")

    assert schema["additionalProperties"] is False
    walk(defaults, schema, "")
    assert set(schema["properties"]) - {"global"} == set(defaults)


def test_good_values_pass(render: Render) -> None:
    render(
        values={
            "replicaCount": 3,
            "leaderElection": {"leaseDuration": 30, "renewDeadline": 20, "retryPeriod": 4},
            "watchNamespaces": ["team-a"],
            "image": {"tag": "0.1.0", "pullPolicy": "Never"},
            "podDisruptionBudget": {"enabled": True, "maxUnavailable": "50%"},
            "metrics": {"serviceMonitor": {"enabled": True, "interval": "15s"}},
            "tolerations": [{"key": "x", "operator": "Exists"}],
            "nodeSelector": {"kubernetes.io/os": "linux"},
        }
    )
