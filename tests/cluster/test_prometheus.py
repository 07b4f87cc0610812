"""The chart's metrics and alerts against a real Prometheus (the pinned build, a host process).

Prometheus discovers the operator through the API server by the ServiceMonitor's own terms
(tests/kit/prometheus.py: the metrics Service's endpoints, selector labels, port `metrics`) and
evaluates the chart's rendered PrometheusRule; model servers are found as pods (component
serving, port `http`). The tests prove: the operator's target is found and up with the labels
the rules select by; every rule evaluates without error; no alert fires on a healthy release; a
TrainingJob that fails fires ContinuumTrainingRunsFailing; a served model's pod is scraped and
every serving panel of the dashboard returns a series, except the error ratio while there has
been no 5xx (its numerator has no series then).

Not covered yet (issue 20): the operator and drift panels against a full workload, and the
rolled-back and drift alerts fired live.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.kit import prometheus
from tests.kit.cluster import S3Settings, upload, wait_until
from tests.kit.datasets import dataset_csv
from tests.kit.helm import CHART, Release
from tests.kit.kinds import (
    GROUP,
    MODELDEPLOYMENTS,
    TERMINAL,
    VERSION,
    create_tj,
    get_md,
    get_tj,
    model_deployment,
    objs,
    predict_in_cluster,
    training_job,
)
from tests.unit.deploy.test_dashboard import dashboard, panels

# serial: its Prometheus scrapes every model server pod, and its alerts must stay quiet
pytestmark = pytest.mark.serial

RULE_API = "monitoring.coreos.com/v1/PrometheusRule"


@pytest.fixture
def release(
    api: client.ApiClient,
    helm: Callable[..., Any],
    make_namespace: Callable[[str], str],
    namespace: str,
    project_image: str,
) -> Iterator[Release]:
    release = Release(api, helm, f"pm-{uuid.uuid4().hex[:6]}", make_namespace("pm-sys"), namespace)
    try:
        release.install_watching_team()
        yield release
    finally:
        release.uninstall("--ignore-not-found", check=False)


def rendered_rules(release: Release) -> dict[str, Any]:
    """The release's PrometheusRule spec, as `helm template` renders it for this release."""
    out = release.helm(
        "template", release.name, str(CHART), "--namespace", release.system,
        "--api-versions", RULE_API, "--set", "metrics.prometheusRule.enabled=true",
        "--show-only", "templates/prometheusrule.yaml",
    ).stdout  # fmt: skip
    return dict(yaml.safe_load(out)["spec"])


@pytest.fixture
def server(release: Release, kubeconfig: Path, tmp_path: Path) -> Iterator[prometheus.Prometheus]:
    jobs = [
        prometheus.operator_job(
            f"{release.fullname}-metrics", release.system, release.name, kubeconfig
        ),
        prometheus.model_server_job([release.team], kubeconfig),
    ]
    running = prometheus.start(tmp_path, jobs, rendered_rules(release))
    try:
        yield running
    finally:
        running.stop()
        print(running.log.read_text()[-2000:])


def firing(server: prometheus.Prometheus, name: str) -> list[dict[str, Any]]:
    return [
        a for a in server.alerts() if a["labels"]["alertname"] == name and a["state"] == "firing"
    ]


@pytest.mark.timeout(600)
def test_operator_scraped_rules_evaluate_and_a_failed_run_fires(
    release: Release,
    server: prometheus.Prometheus,
    api: client.ApiClient,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
) -> None:
    job = f"{release.fullname}-metrics"
    selector = f'job="{job}", namespace="{release.system}"'
    leader = wait_until(
        "the operator scraped as leader",
        lambda: server.query(f"continuum_operator_is_leader{{{selector}}} == 1"),
        120,
        every=1,
    )
    [sample] = leader
    assert sample["metric"]["service"] == job
    assert sample["metric"]["pod"].startswith(release.fullname)
    [target] = [t for t in server.targets() if t["labels"].get("job") == job]
    assert target["health"] == "up", target
    assert target["discoveredLabels"]["__meta_kubernetes_endpoint_port_name"] == "metrics"

    # Every rule evaluated at least once without error (PromQL valid against real series).
    shipped = sorted(r["alert"] for g in rendered_rules(release)["groups"] for r in g["rules"])

    def evaluated() -> list[dict[str, Any]] | None:
        rules = [r for g in server.api("rules")["groups"] for r in g["rules"]]
        done = all(r.get("lastEvaluation", "").startswith("20") for r in rules)
        return rules if done and sorted(r["name"] for r in rules) == shipped else None

    for rule in wait_until("every rule evaluated", evaluated, 60, every=1):
        assert rule["health"] == "ok", rule
    assert not [a for a in server.alerts() if a["state"] == "firing"], server.alerts()

    data = upload(s3, s3_bucket, "datasets/pm-broken.csv", dataset_csv(drop="label"))
    spec = training_job(
        "broken", data, s3, s3_bucket, s3_secret, endpoint=s3.in_cluster_endpoint_url
    )
    create_tj(api, release.team, spec)
    wait_until(
        "TrainingJob broken to finish",
        lambda: get_tj(api, release.team, "broken").get("status", {}).get("phase") in TERMINAL,
        300,
        every=1,
    )
    assert get_tj(api, release.team, "broken")["status"]["phase"] == "Failed"
    [alert] = wait_until(
        "ContinuumTrainingRunsFailing to fire",
        lambda: firing(server, "ContinuumTrainingRunsFailing"),
        60,
        every=1,
    )
    assert alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["description"].startswith("1 training run(s) failed")


def dashboard_queries(metric_prefix: str) -> list[str]:
    """The dashboard's panel queries over ``metric_prefix`` metrics, Grafana's variables filled
    in as a one-hour view would: every model, 1m rate windows."""
    exprs = [t["expr"] for p in panels(dashboard()) for t in p.get("targets", [])]
    filled = (
        e.replace("$__rate_interval", "1m").replace("$__range", "1h").replace("$model", ".*")
        for e in exprs
        if metric_prefix in e
    )
    return sorted(set(filled))


@pytest.mark.timeout(900)
def test_model_servers_scraped_and_the_serving_panels_answer(
    release: Release,
    server: prometheus.Prometheus,
    api: client.ApiClient,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
) -> None:
    team = release.team
    data = upload(s3, s3_bucket, "datasets/pm.csv", dataset_csv())
    create_tj(
        api,
        team,
        training_job(
            "churn-1", data, s3, s3_bucket, s3_secret, endpoint=s3.in_cluster_endpoint_url
        ),
    )
    wait_until(
        "TrainingJob churn-1 to succeed",
        lambda: get_tj(api, team, "churn-1").get("status", {}).get("phase") == "Succeeded",
        300,
        every=1,
    )
    objs(api).create_namespaced_custom_object(
        GROUP, VERSION, team, MODELDEPLOYMENTS, model_deployment(s3, s3_bucket, s3_secret)
    )
    wait_until(
        "ModelDeployment churn serving version 1",
        lambda: get_md(api, team).get("status", {}).get("servingVersion") == 1,
        300,
        every=2,
    )
    for i in range(3):
        assert predict_in_cluster(api, team, f"client-{i}")
    selector = f'continuum_server_requests_total{{namespace="{team}", model="churn"}}'
    [sample] = wait_until(
        "the model server's requests in Prometheus", lambda: server.query(selector), 90, every=2
    )
    assert sample["metric"]["job"] == "continuum-model-servers"
    assert sample["metric"]["pod"].startswith("churn-")
    # Without a single 5xx the error ratio's numerator has no series: the panel is empty.
    error_ratio = [q for q in dashboard_queries("continuum_server_") if 'status=~"5.."' in q]
    empty = []
    for expr in dashboard_queries("continuum_server_"):
        if not server.query(expr):
            empty.append(expr)
    assert empty == error_ratio, empty
    # The serving rules evaluated against real model-server series without error.
    rules = [r for g in server.api("rules")["groups"] for r in g["rules"]]
    assert all(r["health"] == "ok" for r in rules), rules
