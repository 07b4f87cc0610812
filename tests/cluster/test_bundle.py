"""deploy/continuum.yaml on the real cluster: `kubectl apply -f crds/ && kubectl apply -f` it.

The bundle is cluster-wide (the operator watches every namespace). Running it as is would make a
second operator reconcile the other tests' objects, so the test applies a variant of it that
changes only where things go, never what they are:

- its namespaced objects go to a fresh namespace instead of continuum-system (which the test
  cluster uses for MinIO), and its ClusterRole/ClusterRoleBinding get a unique name suffix;
- the operator container gets one more argument, ``--namespace=<test namespace>``, so it
  watches only the test namespace (under the bundle's cluster-wide RBAC).

The in-cluster operator then trains a TrainingJob, serves it with a ModelDeployment and checks
it with a DriftMonitor. On those three objects the test asserts what Argo CD cares about: the
operator never writes ``spec`` (generation stays 1), never adds labels or finalizers, and adds
exactly the annotations listed in ``OPERATOR_ANNOTATIONS``; and the Lua health checks of
deploy/argocd/health report the live objects Healthy. Everything applied (except the CRDs) is
deleted at the end.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.kit import REPO
from tests.kit.cluster import S3Settings, metrics_text, operator_log, plain, upload, wait_until
from tests.kit.datasets import dataset_csv
from tests.kit.kinds import GROUP, VERSION, conditions, training_job
from tests.unit.deploy.health import health

BUNDLE = REPO / "deploy/continuum.yaml"
RELEASE = "continuum"  # the bundle's object names
TIMEOUT = 300
# The annotations the operator leaves on each kind once it has reconciled it (found on the real
# cluster; kopf's state storage, see continuum/controllers/settings.py):
# - TrainingJob: none (settings.DiffBaseStorage and ProgressStorage store nothing on them);
# - ModelDeployment: kopf's marker and its diff base (create/update/resume handlers), written with
#   the field manager "kopf";
# - DriftMonitor: none (event handlers only: kopf keeps no state for them).
# While a create/update handler is retrying, kopf also stores its progress in the annotation
# continuum.dev/<handler id> (continuum.dev/trainingjob, continuum.dev/modeldeployment) and
# removes it once the handler succeeds.
OPERATOR_ANNOTATIONS: dict[str, set[str]] = {
    "TrainingJob": set(),
    "ModelDeployment": {
        "continuum.dev/kopf-managed",
        "continuum.dev/last-handled-configuration",
    },
    "DriftMonitor": set(),
}
# The field managers of the operator: "continuum-operator" writes status (the status
# subresource), "kopf" writes the annotations above.
OPERATOR_MANAGERS = {"continuum-operator", "kopf"}


def variant(system: str, team: str, suffix: str) -> list[dict[str, Any]]:
    """The bundle's objects, moved to ``system`` and watching only ``team`` (see above)."""
    docs = [d for d in yaml.safe_load_all(BUNDLE.read_text()) if d]
    kinds = sorted(d["kind"] for d in docs)
    expected = ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service"]
    expected += ["Role", "RoleBinding"]  # leader election, in the operator's namespace
    assert kinds == sorted([*expected, "Deployment"])
    for doc in docs:
        meta, kind = doc["metadata"], doc["kind"]
        if kind == "Namespace":
            assert meta["name"] == "continuum-system"
            meta["name"] = system
        elif kind in ("ClusterRole", "ClusterRoleBinding"):
            meta["name"] = f"{meta['name']}-{suffix}"
        else:
            assert meta["namespace"] == "continuum-system"
            meta["namespace"] = system
        if kind == "ClusterRoleBinding":
            doc["roleRef"]["name"] = f"{doc['roleRef']['name']}-{suffix}"
        if kind in ("ClusterRoleBinding", "RoleBinding"):
            for subject in doc["subjects"]:
                subject["namespace"] = system
        if kind == "Deployment":
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            assert not [a for a in container["args"] if a.startswith("--namespace")]
            container["args"].append(f"--namespace={team}")
    return docs


def apply(kubectl: list[str], *args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        [*kubectl, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def create(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    plural = body["kind"].lower() + "s"
    made = custom(api).create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
    return dict(made)


def get(api: client.ApiClient, namespace: str, kind: str, name: str) -> dict[str, Any]:
    plural = kind.lower() + "s"
    found = custom(api).get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    return dict(found)


def model_deployment(s3: S3Settings, bucket: str, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": "churn"},
        "spec": {
            "model": "churn",
            "version": {"policy": "latestQualified"},
            "replicas": 1,
            "storage": {
                "endpoint": s3.in_cluster_endpoint_url,
                "bucket": bucket,
                "secretRef": {"name": secret},
            },
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        },
    }


def drift_monitor() -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DriftMonitor",
        "metadata": {"name": "churn"},
        "spec": {
            "deployment": "churn",
            "schedule": {"intervalSeconds": 3600},
            "window": {"maxRows": 400, "minSamples": 50},
        },
    }


def managed_by_others(obj: dict[str, Any], ours: str) -> list[dict[str, Any]]:
    """The managedFields entries of every field manager but the test's own."""
    return [m for m in obj["metadata"].get("managedFields", []) if m.get("manager") != ours]


def check_untouched(created: dict[str, Any], live: dict[str, Any], test_manager: str) -> None:
    """The operator wrote status and its annotations, nothing else (see the module doc)."""
    kind, meta = live["kind"], live["metadata"]
    assert live["spec"] == created["spec"], kind
    assert meta["generation"] == 1, kind
    assert meta.get("labels", {}) == created["metadata"].get("labels", {}), kind
    assert not meta.get("finalizers"), kind
    before = set(created["metadata"].get("annotations", {}))
    added = set(meta.get("annotations", {})) - before
    assert added == OPERATOR_ANNOTATIONS[kind], (kind, meta.get("annotations"))
    for entry in managed_by_others(live, test_manager):
        assert entry["manager"] in OPERATOR_MANAGERS, (kind, entry)
        fields = entry.get("fieldsV1", {})
        if entry["manager"] == "continuum-operator":
            assert entry.get("subresource") == "status", (kind, entry)
        assert set(fields) <= {"f:status", "f:metadata"}, (kind, entry)
        assert set(fields.get("f:metadata", {})) <= {"f:annotations"}, (kind, entry)


@pytest.mark.usefixtures("crds")
def test_bundle_installs_a_working_operator(
    api: client.ApiClient,
    kubectl: list[str],
    project_image: str,
    namespace: str,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
    tmp_path: Path,
) -> None:
    team, suffix = namespace, uuid.uuid4().hex[:6]
    system = f"sys-{suffix}"
    docs = variant(system, team, suffix)
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == project_image
    manifest = tmp_path / "continuum.yaml"
    manifest.write_text(yaml.safe_dump_all(docs))
    try:
        apply(kubectl, "apply", "-f", str(REPO / "crds"))
        apply(kubectl, "apply", "-f", str(manifest))
        apply(kubectl, "-n", system, "rollout", "status", f"deployment/{RELEASE}",
              "--timeout=180s", timeout=200)  # fmt: skip
        check_operator_pod(api, system, team)
        reconcile_all_kinds(api, system, team, s3, s3_bucket, s3_secret)
    except BaseException:
        print(operator_log(api, system, RELEASE))
        raise
    finally:
        subprocess.run(
            [*kubectl, "delete", "-f", str(manifest), "--ignore-not-found", "--wait",
             "--timeout=120s"],
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
    rbac = client.RbacAuthorizationV1Api(api)
    for read in (rbac.read_cluster_role, rbac.read_cluster_role_binding):
        with pytest.raises(client.ApiException) as gone:
            read(f"{RELEASE}-{suffix}")
        assert gone.value.status == 404


def check_operator_pod(api: client.ApiClient, system: str, team: str) -> None:
    """One Ready operator pod, under the bundle's ServiceAccount, restricted, watching ``team``."""
    core = client.CoreV1Api(api)
    selector = f"app.kubernetes.io/name=continuum,app.kubernetes.io/instance={RELEASE}"
    pods = plain(api, core.list_namespaced_pod(system, label_selector=selector))["items"]
    pods = [p for p in pods if "deletionTimestamp" not in p["metadata"]]
    assert len(pods) == 1
    pod = pods[0]
    assert pod["spec"]["serviceAccountName"] == RELEASE
    assert f"--namespace={team}" in pod["spec"]["containers"][0]["args"]
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert ready["Ready"] == "True"
    labels = core.read_namespace(system).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def reconcile_all_kinds(
    api: client.ApiClient, system: str, team: str, s3: S3Settings, bucket: str, secret: str
) -> None:
    """Train, serve and monitor; then check metadata, spec and Argo CD health of each."""
    data = upload(s3, bucket, "datasets/churn.csv", dataset_csv())
    created = {
        "TrainingJob": create(
            api,
            team,
            training_job("churn-1", data, s3, bucket, secret, endpoint=s3.in_cluster_endpoint_url),
        )
    }

    def phase() -> str | None:
        return get(api, team, "TrainingJob", "churn-1").get("status", {}).get("phase")  # type: ignore[no-any-return]

    wait_until("TrainingJob churn-1 to finish", lambda: phase() in {"Succeeded", "Failed"},
               TIMEOUT, every=2)  # fmt: skip
    assert phase() == "Succeeded", get(api, team, "TrainingJob", "churn-1")["status"]
    assert "continuum_trainingjobs" in metrics_text(api, system, f"{RELEASE}-metrics")

    created["ModelDeployment"] = create(api, team, model_deployment(s3, bucket, secret))

    def served() -> bool:
        md = get(api, team, "ModelDeployment", "churn")
        ready = conditions(md).get("Ready", {}).get("status") == "True"
        return ready and md["status"].get("servingVersion") == 1

    wait_until("ModelDeployment churn to serve version 1", served, TIMEOUT, every=2)

    created["DriftMonitor"] = create(api, team, drift_monitor())
    wait_until(
        "DriftMonitor churn's first check",
        lambda: get(api, team, "DriftMonitor", "churn").get("status", {}).get("lastCheckTime"),
        TIMEOUT,
        every=2,
    )

    test_manager = created["TrainingJob"]["metadata"]["managedFields"][0]["manager"]
    names = {"TrainingJob": "churn-1", "ModelDeployment": "churn", "DriftMonitor": "churn"}
    for kind, name in names.items():
        live = get(api, team, kind, name)
        check_untouched(created[kind], live, test_manager)
        verdict = health(kind, live)
        assert verdict["status"] == "Healthy", (kind, verdict, live["status"])
