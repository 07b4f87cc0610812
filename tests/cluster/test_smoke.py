"""Smoke tests of the local cluster: the test bed must behave like a real Kubernetes."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client, utils

from tests.kit.cluster import (
    S3Settings,
    pod_logs,
    restricted_container,
    run_job,
    s3_client,
    wait_until,
)
from tests.kit.versions import pin

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.smoke.continuum.dev"},
    "spec": {
        "group": "smoke.continuum.dev",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1, "maximum": 10}
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_api_server_reports_the_pinned_version(api: client.ApiClient) -> None:
    pinned = pin("KUBE_VERSION")
    assert client.VersionApi(api).get_code().git_version == f"v{pinned}"


def test_node_is_ready(api: client.ApiClient) -> None:
    nodes = client.CoreV1Api(api).list_node().items
    assert len(nodes) == 1
    ready = {c.type: c.status for c in nodes[0].status.conditions}["Ready"]
    assert ready == "True"


def test_crd_schema_rejects_a_bad_object(api: client.ApiClient, namespace: str) -> None:
    ext = client.ApiextensionsV1Api(api)
    try:
        ext.create_custom_resource_definition(WIDGET_CRD)
    except client.ApiException as err:
        if err.status != 409:
            raise
    objs = client.CustomObjectsApi(api)

    def established() -> bool:
        crd = ext.read_custom_resource_definition("widgets.smoke.continuum.dev")
        return any(
            c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
        )

    wait_until("CRD established", established, 30)
    good = {
        "apiVersion": "smoke.continuum.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "ok"},
        "spec": {"size": 3},
    }
    objs.create_namespaced_custom_object("smoke.continuum.dev", "v1", namespace, "widgets", good)
    bad = {**good, "metadata": {"name": "bad"}, "spec": {"size": 99}}
    with pytest.raises(client.ApiException) as rejected:
        objs.create_namespaced_custom_object("smoke.continuum.dev", "v1", namespace, "widgets", bad)
    assert rejected.value.status == 422
    assert "spec.size" in rejected.value.body


def test_job_from_project_image_writes_to_minio_via_service_dns(
    api: client.ApiClient,
    namespace: str,
    project_image: str,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
) -> None:
    token = uuid.uuid4().hex
    script = (
        "import boto3, os, sys\n"
        "s3 = boto3.client('s3', endpoint_url=os.environ['S3_ENDPOINT'])\n"
        f"s3.put_object(Bucket='{s3_bucket}', Key='smoke/hello.txt', Body=b'{token}')\n"
        f"got = s3.get_object(Bucket='{s3_bucket}', Key='smoke/hello.txt')['Body'].read()\n"
        f"sys.exit(0 if got == b'{token}' else 3)\n"
    )
    env = [
        {"name": "S3_ENDPOINT", "value": s3.in_cluster_endpoint_url},
        {"name": "AWS_DEFAULT_REGION", "value": s3.region},
    ]
    container = restricted_container(
        "writer",
        project_image,
        ["python", "-c", script],
        env=env,
        envFrom=[{"secretRef": {"name": s3_secret}}],
    )
    run_job(api, namespace, "s3-roundtrip", container)
    body = s3_client(s3).get_object(Bucket=s3_bucket, Key="smoke/hello.txt")["Body"].read()
    assert body.decode() == token


def test_deployment_becomes_available_and_answers_through_its_service(
    api: client.ApiClient,
    namespace: str,
    project_image: str,
) -> None:
    web = restricted_container(
        "web",
        project_image,
        ["python", "-m", "http.server", "8080", "--directory", "/tmp"],
        ports=[{"containerPort": 8080}],
        readinessProbe={"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [web]}},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    utils.create_from_dict(api, deployment, namespace=namespace)
    utils.create_from_dict(api, service, namespace=namespace)
    apps = client.AppsV1Api(api)

    def available() -> bool:
        conds = (
            apps.read_namespaced_deployment(namespace=namespace, name="web").status.conditions or []
        )
        return any(c.type == "Available" and c.status == "True" for c in conds)

    wait_until("Deployment web Available", available, 180)
    probe = "import urllib.request; print(urllib.request.urlopen('http://web/', timeout=10).status)"
    run_job(
        api,
        namespace,
        "probe",
        restricted_container("probe", project_image, ["python", "-c", probe]),
    )
    assert "200" in pod_logs(api, namespace, "job-name=probe")


def test_rbac_denies_what_a_service_account_was_not_granted(
    api: client.ApiClient,
    namespace: str,
) -> None:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader-pods"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "pod-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    token = core.create_namespaced_service_account_token(
        "reader", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    reader = client.CoreV1Api(_token_client(api, token))

    def may_list_pods() -> bool:
        try:
            reader.list_namespaced_pod(namespace)
        except client.ApiException:
            return False
        return True

    wait_until("the reader's Role to apply", may_list_pods, 30)
    with pytest.raises(client.ApiException) as denied:
        reader.list_namespaced_secret(namespace)
    assert denied.value.status == 403
    assert f"system:serviceaccount:{namespace}:reader" in denied.value.body


def _token_client(admin: client.ApiClient, token: str) -> client.ApiClient:
    """A client that authenticates with the bearer token only (no admin certificate)."""
    cfg = client.Configuration()
    cfg.host = admin.configuration.host
    cfg.ssl_ca_cert = admin.configuration.ssl_ca_cert
    cfg.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(cfg)
