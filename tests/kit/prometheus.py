"""A real Prometheus (the pinned build of hack/build-tools.sh) as a host process of a test.

It discovers its targets through the API server (kubernetes_sd, the admin kubeconfig) the way
the chart's ServiceMonitor describes them: the metrics Service's endpoints in the release
namespace, selected by the chart's selector labels and the port named ``metrics``, with the
labels the Prometheus Operator gives them (job = the Service's name, namespace, pod, service).
Model servers are discovered as pods labelled ``app.kubernetes.io/component=serving`` with a
port named ``http`` (what the operator gives them). The host reaches pod IPs over the pod bridge.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kit.cluster import free_port
from tests.kit.versions import prometheus

SCRAPE_INTERVAL = "2s"  # the tests wait for series; production uses the chart's 30s


def operator_job(service: str, namespace: str, instance: str, kubeconfig: Path) -> dict[str, Any]:
    """The scrape job the chart's ServiceMonitor amounts to (endpoints role, port `metrics`)."""
    keep = {
        "__meta_kubernetes_service_label_app_kubernetes_io_name": "continuum",
        "__meta_kubernetes_service_label_app_kubernetes_io_instance": instance,
        "__meta_kubernetes_endpoint_port_name": "metrics",
    }
    relabel = [{"source_labels": [k], "regex": v, "action": "keep"} for k, v in keep.items()]
    relabel += [
        _copy("__meta_kubernetes_namespace", "namespace"),
        _copy("__meta_kubernetes_pod_name", "pod"),
        _copy("__meta_kubernetes_service_name", "service"),
        _copy("__meta_kubernetes_service_name", "job"),
    ]
    return {
        "job_name": f"serviceMonitor/{namespace}/{service}/0",
        "scrape_interval": SCRAPE_INTERVAL,
        "kubernetes_sd_configs": [_sd("endpoints", [namespace], kubeconfig)],
        "relabel_configs": relabel,
    }


def model_server_job(namespaces: list[str], kubeconfig: Path) -> dict[str, Any]:
    """Every model server pod of the watched namespaces (port `http`, /metrics)."""
    relabel = [
        {
            "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"],
            "regex": "serving",
            "action": "keep",
        },
        {
            "source_labels": ["__meta_kubernetes_pod_container_port_name"],
            "regex": "http",
            "action": "keep",
        },
        _copy("__meta_kubernetes_namespace", "namespace"),
        _copy("__meta_kubernetes_pod_name", "pod"),
    ]
    return {
        "job_name": "continuum-model-servers",
        "scrape_interval": SCRAPE_INTERVAL,
        "kubernetes_sd_configs": [_sd("pod", namespaces, kubeconfig)],
        "relabel_configs": relabel,
    }


def _sd(role: str, namespaces: list[str], kubeconfig: Path) -> dict[str, Any]:
    return {"role": role, "kubeconfig_file": str(kubeconfig), "namespaces": {"names": namespaces}}


def _copy(source: str, target: str) -> dict[str, Any]:
    return {"source_labels": [source], "target_label": target, "action": "replace"}


@dataclass
class Prometheus:
    """A running Prometheus; ``query`` and ``alerts`` read its HTTP API."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    folder: Path = field(repr=False)

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as reply:
            body = json.load(reply)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])

    def targets(self) -> list[dict[str, Any]]:
        return list(self.api("targets", state="active")["activeTargets"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start(folder: Path, jobs: list[dict[str, Any]], rules: dict[str, Any] | None) -> Prometheus:
    """Start the pinned Prometheus with these scrape jobs (and rule groups) in ``folder``."""
    binary = prometheus()
    if not binary.exists():
        pytest.fail(f"no Prometheus at {binary}: run `make tools`")
    config: dict[str, Any] = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "2s"},
        "scrape_configs": jobs,
    }
    if rules is not None:
        (folder / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
        config["rule_files"] = [str(folder / "rules.yaml")]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    log = folder / "prometheus.log"
    process = subprocess.Popen(
        [
            str(binary),
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = Prometheus(process, f"http://127.0.0.1:{port}", log, folder)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Prometheus exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as reply:
                if reply.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(0.3)
    server.stop()
    pytest.fail(f"Prometheus not ready in 30 s:\n{log.read_text()[-3000:]}")
