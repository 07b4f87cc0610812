"""The Helm chart on the real cluster: install, reconcile in-cluster, upgrade, uninstall.

The operator runs IN the cluster, as the chart's Deployment under the chart's ServiceAccount and
RBAC, in a namespace that enforces the restricted Pod Security Standard. A TrainingJob trained
end to end in the watched namespace proves the RBAC is sufficient; `kubectl auth can-i` proves
it is no wider than needed.

The CRDs come from the chart (crds.enabled=true, crds.keep=true). CRDs are cluster-scoped and
other tests apply crds/ with kubectl, so the install adopts whatever exists with
`helm install --take-ownership` (Helm >= 3.17). The test never uninstalls a release whose
crds.keep is false: that would delete every continuum.dev object of the other tests.

Only namespaced mode runs a pod here: a cluster-wide operator would also reconcile the other
tests' objects. Cluster-wide RBAC is installed with replicaCount=0 and checked with can-i.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.kit.cluster import (
    S3Settings,
    plain,
    upload,
    wait_until,
)
from tests.kit.datasets import dataset_csv
from tests.kit.helm import CHART, Release
from tests.kit.kinds import GROUP, TERMINAL, TRAININGJOBS, VERSION, create_tj, get_tj, training_job

CRD_NAMES = [
    "trainingjobs.continuum.dev",
    "modeldeployments.continuum.dev",
    "driftmonitors.continuum.dev",
]
TRAIN_TIMEOUT = 300


def can_i(kubectl: list[str], who: str, *request: str) -> bool:
    """`kubectl auth can-i <request> --as <who>`: True for yes, False for no."""
    result = subprocess.run(
        [*kubectl, "auth", "can-i", *request, "--as", who],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode in {0, 1}, result.stderr
    return result.returncode == 0


def phase(api: client.ApiClient, namespace: str, name: str) -> str | None:
    return get_tj(api, namespace, name).get("status", {}).get("phase")  # type: ignore[no-any-return]


def check_installed(release: Release) -> str:
    """The operator is Ready under the chart's ServiceAccount; the release owns the CRDs.

    Returns the name of the operator pod."""
    apps = client.AppsV1Api(release.api)
    deploy = plain(release.api, apps.read_namespaced_deployment(release.fullname, release.system))
    assert deploy["status"]["readyReplicas"] == 1
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    (pod,) = release.pods()
    assert pod["spec"]["serviceAccountName"] == release.fullname
    args = pod["spec"]["containers"][0]["args"]
    assert f"--namespace={release.team}" in args
    assert "--log-format=full" in args
    ext = client.ApiextensionsV1Api(release.api)
    for name in CRD_NAMES:
        crd = plain(release.api, ext.read_custom_resource_definition(name))
        annotations = crd["metadata"].get("annotations", {})
        assert annotations.get("meta.helm.sh/release-name") == release.name
        assert annotations.get("helm.sh/resource-policy") == "keep"
    return str(pod["metadata"]["name"])


def check_least_privilege(kubectl: list[str], release: Release, other: str) -> None:
    """What the ServiceAccount may and may not do in namespaced mode."""
    team, system = release.team, release.system
    allowed = [
        ("create", "jobs.batch", "-n", team),
        ("watch", "trainingjobs.continuum.dev", "-n", team),
        ("patch", "trainingjobs.continuum.dev", "--subresource=status", "-n", team),
        ("patch", "deployments.apps", "-n", team),
        ("create", "events", "-n", team),
        ("get", "secrets", "-n", team),  # the Secret a finished run names, by name only
    ]
    denied = [
        ("list", "secrets", "-n", team),
        ("watch", "secrets", "-n", team),
        ("list", "configmaps", "-n", team),
        ("get", "secrets", "-n", system),
        ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
        ("list", "customresourcedefinitions.apiextensions.k8s.io"),
        ("list", "namespaces"),
        ("list", "trainingjobs.continuum.dev", "-n", other),
        ("create", "jobs.batch", "-n", other),
        ("list", "trainingjobs.continuum.dev", "--all-namespaces"),
        ("delete", "jobs.batch", "-n", team),
        ("delete", "trainingjobs.continuum.dev", "-n", team),
        ("update", "trainingjobs.continuum.dev", "-n", team),
        ("create", "rolebindings.rbac.authorization.k8s.io", "-n", team),
        ("create", "pods", "-n", team),
    ]
    assert [r for r in allowed if not can_i(kubectl, release.who, *r)] == []
    assert [r for r in denied if can_i(kubectl, release.who, *r)] == []


def check_upgraded(release: Release, old_pod: str, output: str) -> None:
    """The changed values rolled the operator (Recreate): one new pod with the new flags."""
    assert "STATUS: deployed" in output
    assert "REVISION: 2" in output
    wait_until(
        "the old operator pod to go",
        lambda: [p["metadata"]["name"] for p in release.pods()] not in ([], [old_pod]),
        120,
    )
    (pod,) = release.pods()
    args = pod["spec"]["containers"][0]["args"]
    assert "--log-format=json" in args
    assert "--metrics-port=9090" in args
    core = client.CoreV1Api(release.api)
    service = core.read_namespaced_service(f"{release.fullname}-metrics", release.system)
    assert [p["port"] for p in plain(release.api, service)["spec"]["ports"]] == [9090]
    assert "continuum_" in release.metrics()


def check_uninstalled(release: Release, output: str) -> None:
    """The operator and its RBAC are gone; the CRDs (and so the objects) stay."""
    assert "kept due to the resource policy" in output
    ext = client.ApiextensionsV1Api(release.api)
    for name in CRD_NAMES:
        crd = plain(release.api, ext.read_custom_resource_definition(name))
        assert "deletionTimestamp" not in crd["metadata"]
    assert get_tj(release.api, release.team, "helm-1")["status"]["phase"] == "Succeeded"
    objs = client.CustomObjectsApi(release.api)
    kept: Any = objs.list_namespaced_custom_object(GROUP, VERSION, release.team, TRAININGJOBS)
    assert len(kept["items"]) == 2
    rbac = client.RbacAuthorizationV1Api(release.api)
    assert not rbac.list_namespaced_role_binding(release.team).items
    assert not rbac.list_namespaced_role(release.team).items
    assert not client.AppsV1Api(release.api).list_namespaced_deployment(release.system).items


def test_install_reconcile_upgrade_uninstall_namespaced(
    api: client.ApiClient,
    kubectl: list[str],
    helm: Callable[..., Any],
    make_namespace: Callable[[str], str],
    namespace: str,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
) -> None:
    other, team = make_namespace("other"), namespace
    release = Release(api, helm, f"cont-{uuid.uuid4().hex[:6]}", make_namespace("sys"), team)
    try:
        # install: the CRDs are adopted from whoever applied them (other tests, kubectl)
        notes = release.install_watching_team()
        assert f"Mode: namespaced. The operator watches only: {team}" in notes
        first_pod = check_installed(release)
        check_least_privilege(kubectl, release, other)

        # the in-cluster operator trains a model in the watched namespace
        data = upload(s3, s3_bucket, "datasets/churn.csv", dataset_csv())
        create_tj(
            api,
            team,
            training_job(
                "helm-1", data, s3, s3_bucket, s3_secret, endpoint=s3.in_cluster_endpoint_url
            ),
        )
        jobs = client.BatchV1Api(api)
        wait_until("Job helm-1-train", lambda: jobs.list_namespaced_job(team).items, 60)
        wait_until(
            "TrainingJob helm-1 to finish",
            lambda: phase(api, team, "helm-1") in TERMINAL,
            TRAIN_TIMEOUT,
            every=2,
        )
        status = get_tj(api, team, "helm-1")["status"]
        assert status["phase"] == "Succeeded", status
        assert status["model"]["version"] == 1
        assert "continuum_trainingjobs" in release.metrics()

        # upgrade: changed values roll the operator, which keeps reconciling
        upgraded = release.upgrade("--set", "operator.logFormat=json,metrics.port=9090")
        check_upgraded(release, first_pod, upgraded)
        create_tj(
            api,
            team,
            training_job(
                "helm-2", data, s3, s3_bucket, s3_secret, endpoint=s3.in_cluster_endpoint_url
            ),
        )
        wait_until("TrainingJob helm-2 to get a phase", lambda: phase(api, team, "helm-2"), 90)
        json_lines = [line for line in release.log().splitlines() if line.startswith("{")]
        assert json_lines, release.log()
        json.loads(json_lines[-1])

        # uninstall: crds.keep=true leaves the CRDs and every object
        check_uninstalled(release, release.uninstall("--wait", "--timeout", "120s"))
    except BaseException:
        print(release.log())
        raise
    finally:
        release.uninstall("--ignore-not-found", check=False)


def test_cluster_wide_rbac(
    api: client.ApiClient,
    kubectl: list[str],
    helm: Callable[..., Any],
    make_namespace: Callable[[str], str],
    namespace: str,
) -> None:
    """Cluster-wide mode grants the same rules in every namespace, and nothing else."""
    system = make_namespace("sys")
    release = f"cw-{uuid.uuid4().hex[:6]}"
    fullname = f"{release}-continuum"
    who = f"system:serviceaccount:{system}:{fullname}"
    try:
        # replicaCount=0: no operator pod (it would reconcile the other tests' objects);
        # crds.enabled=false: the CRDs are managed elsewhere (here: by the other test or kubectl).
        installed = helm(
            "install", release, str(CHART), "--namespace", system, "--wait",
            "--set", "replicaCount=0,crds.enabled=false",
        )  # fmt: skip
        assert "Mode: cluster-wide" in installed.stdout
        assert "crds.enabled=false" in installed.stdout
        rbac = client.RbacAuthorizationV1Api(api)
        assert rbac.read_cluster_role(fullname).rules
        allowed = [
            ("list", "trainingjobs.continuum.dev", "--all-namespaces"),
            ("watch", "modeldeployments.continuum.dev", "--all-namespaces"),
            ("create", "jobs.batch", "-n", namespace),
            ("patch", "driftmonitors.continuum.dev", "--subresource=status", "-n", namespace),
            ("get", "secrets", "-n", namespace),
        ]
        denied = [
            ("list", "secrets", "--all-namespaces"),
            ("watch", "secrets", "--all-namespaces"),
            ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
            ("list", "namespaces"),
            ("delete", "jobs.batch", "-n", namespace),
            ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
            ("patch", "nodes"),
        ]
        assert [r for r in allowed if not can_i(kubectl, who, *r)] == []
        assert [r for r in denied if can_i(kubectl, who, *r)] == []
        helm("uninstall", release, "--namespace", system, "--wait")
        with pytest.raises(client.ApiException) as gone:
            rbac.read_cluster_role(fullname)
        assert gone.value.status == 404
    finally:
        helm("uninstall", release, "--namespace", system, "--ignore-not-found", check=False)
