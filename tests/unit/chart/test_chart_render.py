"""`helm lint` and `helm template` of charts/continuum: the values that matter render right."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.unit.chart.conftest import CHART, REPO, Manifest, Render, by_kind, one, run_helm

SELECTOR = {"app.kubernetes.io/name": "continuum", "app.kubernetes.io/instance": "rel"}
RECOMMENDED = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
}
SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"


def container(manifests: list[Manifest]) -> dict[str, Any]:
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["operator"]
    return dict(pod["containers"][0])


def lease(obj: Manifest) -> bool:
    """The leader election Role or RoleBinding (release namespace, every mode)."""
    return bool(obj["metadata"]["name"].endswith("-leader-election"))


def env(manifests: list[Manifest]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(manifests)["env"]}


@pytest.mark.parametrize(
    "sets",
    [
        [],
        ["--set", "watchNamespaces={team-a,team-b}"],
        ["--set", "crds.enabled=false,metrics.enabled=false,podDisruptionBudget.enabled=true"],
        ["--set", "metrics.serviceMonitor.enabled=true,replicaCount=0"],
    ],
)
def test_lint_strict(helm: str, sets: list[str]) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), *sets)
    assert "0 chart(s) failed" in result.stdout


def test_defaults(render: Render) -> None:
    manifests = render()
    kinds = sorted(m["kind"] for m in manifests)
    assert kinds == sorted(
        ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "Deployment"]
        + ["Role", "RoleBinding"]  # leader election, in the release namespace
        + ["CustomResourceDefinition"] * 3
    )
    deploy = one(manifests, "Deployment")
    assert deploy["metadata"]["name"] == "rel-continuum"
    assert deploy["metadata"]["namespace"] == "ops"
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "rel-continuum"
    main = container(manifests)
    assert main["image"] == "continuum:0.1.0"
    assert main["imagePullPolicy"] == "IfNotPresent"
    assert main["args"] == [
        "operator",
        "--metrics-port=8080",
        "--liveness=http://0.0.0.0:8081/healthz",
        "--log-format=full",
        "--resync-seconds=600",
        "--leader-elect",
        "--leader-election-name=rel-continuum-operator",
        "--leader-election-lease-duration=15",
        "--leader-election-renew-deadline=10",
        "--leader-election-retry-period=2",
    ]
    assert env(manifests)["CONTINUUM_IMAGE"] == "continuum:0.1.0"
    assert env(manifests)["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env(manifests)["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert "resources" not in main
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"health": 8081, "metrics": 8080}
    for probe in ("livenessProbe", "readinessProbe"):
        assert main[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    service = one(manifests, "Service")
    assert service["metadata"]["name"] == "rel-continuum-metrics"
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    binding = one(manifests, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == one(manifests, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rel-continuum", "namespace": "ops"}
    ]


def test_restricted_pod_security(render: Render) -> None:
    pod = one(render(), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork")
    assert not pod.get("hostPID")
    sc = pod["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["readOnlyRootFilesystem"] is True
    assert {v["name"]: set(v) - {"name"} for v in pod["volumes"]} == {"tmp": {"emptyDir"}}


def test_recommended_labels_everywhere_and_no_version_in_selectors(render: Render) -> None:
    manifests = render(
        "--set",
        "podDisruptionBudget.enabled=true,metrics.serviceMonitor.enabled=true",
        "--api-versions",
        SERVICE_MONITOR_API,
    )
    for m in manifests:
        assert set(m["metadata"]["labels"]) >= RECOMMENDED, m["metadata"]["name"]
    deploy = one(manifests, "Deployment")
    assert deploy["spec"]["selector"] == {"matchLabels": SELECTOR}
    assert set(deploy["spec"]["template"]["metadata"]["labels"]) >= RECOMMENDED
    assert one(manifests, "Service")["spec"]["selector"] == SELECTOR
    assert one(manifests, "PodDisruptionBudget")["spec"]["selector"] == {"matchLabels": SELECTOR}
    assert one(manifests, "ServiceMonitor")["spec"]["selector"] == {"matchLabels": SELECTOR}


def test_namespaced_mode(render: Render) -> None:
    manifests = render(values={"watchNamespaces": ["team-a", "team-b", "team-a"]})
    assert not by_kind(manifests, "ClusterRole")
    assert not by_kind(manifests, "ClusterRoleBinding")
    roles = {r["metadata"]["namespace"]: r for r in by_kind(manifests, "Role") if not lease(r)}
    bindings = {
        b["metadata"]["namespace"]: b for b in by_kind(manifests, "RoleBinding") if not lease(b)
    }
    assert set(roles) == set(bindings) == {"team-a", "team-b"}
    for ns, binding in bindings.items():
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": roles[ns]["metadata"]["name"],
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "rel-continuum", "namespace": "ops"}
        ]
    args = container(manifests)["args"]
    assert [a for a in args if a.startswith("--namespace")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ]


def test_operator_values(render: Render) -> None:
    manifests = render(
        values={
            "image": {"repository": "registry.example/continuum", "tag": "0.2.0"},
            "operator": {
                "logFormat": "json",
                "verbose": True,
                "resyncSeconds": 0,
                "workloadImage": "registry.example/continuum-workloads:0.2.0",
                "extraArgs": ["--foo"],
                "extraEnv": [{"name": "EXTRA", "value": "1"}],
            },
            "metrics": {"port": 9090},
            "health": {"port": 9091},
            "resources": {"requests": {"cpu": "50m", "memory": "160Mi"}},
        }
    )
    main = container(manifests)
    assert main["image"] == "registry.example/continuum:0.2.0"
    assert main["args"] == [
        "operator",
        "--metrics-port=9090",
        "--liveness=http://0.0.0.0:9091/healthz",
        "--log-format=json",
        "--resync-seconds=0",
        "--leader-elect",
        "--leader-election-name=rel-continuum-operator",
        "--leader-election-lease-duration=15",
        "--leader-election-renew-deadline=10",
        "--leader-election-retry-period=2",
        "--verbose",
        "--foo",
    ]
    assert env(manifests)["CONTINUUM_IMAGE"] == "registry.example/continuum-workloads:0.2.0"
    assert env(manifests)["EXTRA"] == "1"
    assert main["resources"] == {"requests": {"cpu": "50m", "memory": "160Mi"}}
    assert one(manifests, "Service")["spec"]["ports"][0]["port"] == 9090


def test_image_digest_wins_and_feeds_the_workloads(render: Render) -> None:
    digest = "sha256:" + "a" * 64
    manifests = render(values={"image": {"digest": digest}})
    assert container(manifests)["image"] == f"continuum@{digest}"
    assert env(manifests)["CONTINUUM_IMAGE"] == f"continuum@{digest}"


def test_metrics_off(render: Render) -> None:
    manifests = render("--set", "metrics.enabled=false")
    assert not by_kind(manifests, "Service")
    main = container(manifests)
    assert "--metrics-port=0" in main["args"]
    assert [p["name"] for p in main["ports"]] == ["health"]


def test_ports_must_differ(render_error: Any) -> None:
    assert "must differ" in render_error(values={"metrics": {"port": 8081}})


def test_service_monitor_only_when_the_api_exists(render: Render) -> None:
    asked = {
        "metrics": {"serviceMonitor": {"enabled": True, "additionalLabels": {"release": "kps"}}}
    }
    assert not by_kind(render(values=asked), "ServiceMonitor")
    assert not by_kind(render("--api-versions", SERVICE_MONITOR_API), "ServiceMonitor")
    monitor = one(render("--api-versions", SERVICE_MONITOR_API, values=asked), "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ops"]}
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s"}
    ]


def test_pod_disruption_budget(render: Render, render_error: Any) -> None:
    assert not by_kind(render(), "PodDisruptionBudget")
    pdb = one(render("--set", "podDisruptionBudget.enabled=true"), "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert "maxUnavailable" not in pdb["spec"]
    pdb = one(
        render(values={"podDisruptionBudget": {"enabled": True, "maxUnavailable": "100%"}}),
        "PodDisruptionBudget",
    )
    assert pdb["spec"] == {"selector": {"matchLabels": SELECTOR}, "maxUnavailable": "100%"}
    both = {"podDisruptionBudget": {"enabled": True, "minAvailable": 1, "maxUnavailable": 1}}
    assert "not both" in render_error(values=both)


def test_existing_service_account(render: Render, render_error: Any) -> None:
    values = {"serviceAccount": {"create": False, "name": "mine"}}
    manifests = render(values=values)
    assert not by_kind(manifests, "ServiceAccount")
    assert one(manifests, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "mine"
    assert one(manifests, "ClusterRoleBinding")["subjects"][0]["name"] == "mine"
    assert "serviceAccount.name is required" in render_error(
        values={"serviceAccount": {"create": False}}
    )


def test_rbac_off(render: Render) -> None:
    manifests = render("--set", "rbac.create=false")
    kinds = {m["kind"] for m in manifests}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def test_replicas_zero_pauses(render: Render) -> None:
    assert one(render("--set", "replicaCount=0"), "Deployment")["spec"]["replicas"] == 0


def test_common_labels_stay_out_of_selectors(render: Render) -> None:
    manifests = render(values={"commonLabels": {"team": "ml"}, "podLabels": {"extra": "yes"}})
    deploy = one(manifests, "Deployment")
    assert deploy["metadata"]["labels"]["team"] == "ml"
    assert deploy["spec"]["template"]["metadata"]["labels"]["extra"] == "yes"
    assert deploy["spec"]["selector"] == {"matchLabels": SELECTOR}
    for crd in by_kind(manifests, "CustomResourceDefinition"):
        assert crd["metadata"]["labels"]["team"] == "ml"


def test_argocd_example_values_render(render: Render) -> None:
    """The values of deploy/argocd/application.yaml pass the schema and render."""
    app = yaml.safe_load((REPO / "deploy/argocd/application.yaml").read_text())
    source = app["spec"]["source"]
    assert source["path"] == "charts/continuum"
    manifests = render(values=source["helm"]["valuesObject"])
    roles = [r for r in by_kind(manifests, "Role") if not lease(r)]
    assert [r["metadata"]["namespace"] for r in roles] == ["ml-team-a"]


def test_leader_election_role_is_one_lease_in_the_release_namespace(render: Render) -> None:
    for values in ({}, {"watchNamespaces": ["team-a"]}):
        manifests = render(values=values)
        (role,) = [r for r in by_kind(manifests, "Role") if lease(r)]
        (binding,) = [b for b in by_kind(manifests, "RoleBinding") if lease(b)]
        assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "ops"
        assert role["rules"] == [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "resourceNames": ["rel-continuum-operator"], "verbs": ["get", "update"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        ]  # fmt: skip
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "rel-continuum", "namespace": "ops"}
        ]


def test_two_replicas_roll_with_a_standby_and_get_a_budget(render: Render) -> None:
    manifests = render("--set", "replicaCount=2")
    deploy = one(manifests, "Deployment")
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pdb = one(manifests, "PodDisruptionBudget")
    assert pdb["spec"] == {"selector": {"matchLabels": SELECTOR}, "maxUnavailable": 1}
    assert not by_kind(render("--set", "replicaCount=2,podDisruptionBudget.enabled=false"),
                       "PodDisruptionBudget")  # fmt: skip


def test_leader_election_timings_must_be_ordered(render: Render, render_error: Any) -> None:
    args = container(render(values={"leaderElection": {"leaseDuration": 30}}))["args"]
    assert "--leader-election-lease-duration=30" in args
    bad = {"leaderElection": {"leaseDuration": 10, "renewDeadline": 10}}
    assert "leaseDuration > renewDeadline > retryPeriod" in render_error(values=bad)
