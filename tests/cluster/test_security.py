"""Security on the real cluster: least-privilege RBAC, no leaked credential, restricted pods.

- RBAC: the API server's own answer (SelfSubjectRulesReview, as the operator's ServiceAccount
  bound to deploy/rbac/clusterrole.yaml) must be exactly ``EXPECTED`` plus what every
  authenticated user may do anyway; anything wider (a wildcard, listing secrets, delete,
  another resource or verb) fails, and so does any right outside the bound namespace.
- Credentials: after one TrainingJob end to end, neither the S3 access key nor the secret key
  (plain or base64) appears in its status, the Job, any Event of the namespace, the operator's
  log, the trainer pod's log or any object the run wrote to the bucket.
- Pod Security: test namespaces enforce the restricted standard, so every pod the operator
  created in the other cluster tests passed it; here a non-compliant pod is refused, proving
  enforcement is on.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tests.kit.cluster import (
    CLUSTER_ROLE,
    RESTRICTED,
    operator_kubeconfig,
    pod_logs,
    restricted_container,
    s3_client,
)
from tests.kit.kinds import Ctx, conditions

# Part of the reliability and security suite (`make test-reliability`).
pytestmark = pytest.mark.reliability

Rule = tuple[str, str, str]  # (apiGroup, resource, verb)

# Exactly what the operator may do in a namespace it watches. Widening deploy/rbac means
# widening this too, on purpose, in review.
EXPECTED: frozenset[Rule] = frozenset(
    [("continuum.dev", "trainingjobs", v) for v in ("get", "list", "watch", "patch", "create")]
    + [("continuum.dev", "trainingjobs/status", "patch")]
    + [("continuum.dev", "trainingjobs/finalizers", "update")]
    + [("continuum.dev", "modeldeployments", v) for v in ("get", "list", "watch", "patch")]
    + [("continuum.dev", "modeldeployments/status", "patch")]
    + [("continuum.dev", "modeldeployments/finalizers", "update")]
    + [("continuum.dev", "driftmonitors", v) for v in ("get", "list", "watch")]
    + [("continuum.dev", "driftmonitors/status", "patch")]
    + [("continuum.dev", "driftmonitors/finalizers", "update")]
    + [("batch", "jobs", v) for v in ("create", "get", "list", "watch")]
    + [("apps", "deployments", v) for v in ("create", "get", "list", "watch", "patch")]
    + [("", "services", v) for v in ("create", "patch")]
    + [("autoscaling", "horizontalpodautoscalers", v) for v in ("create", "patch")]
    + [("", "pods", "list")]
    # GET only, through the API server: a progressive rollout reads each server pod's
    # /v2/rollout counters (docs/architecture.md, "Progressive delivery").
    + [("", "pods/proxy", "get")]
    # The Secret and CA-bundle ConfigMap a run's storage names; the continuum-storage default.
    + [("", "secrets", "get"), ("", "configmaps", "get")]
    + [("", "events", "create")]
)
NEVER_VERBS = {"delete", "deletecollection", "escalate", "bind", "impersonate", "*"}
NEVER_RESOURCES = {"serviceaccounts", "roles", "rolebindings", "*"}
# Named reads only: never list or watch these (that would hand over every credential).
GET_ONLY_RESOURCES = {"secrets", "configmaps"}


def expand(rules: list[Any]) -> set[Rule]:
    """(group, resource, verb) triples of resource rules (V1ResourceRule or ClusterRole dicts)."""
    out = set()
    for rule in rules:
        get = rule.get if isinstance(rule, dict) else lambda k, r=rule: getattr(r, _snake(k))
        for group in get("apiGroups") or [""]:
            for resource in get("resources") or []:
                for verb in get("verbs") or []:
                    out.add((group, resource, verb))
    return out


def _snake(key: str) -> str:
    return {"apiGroups": "api_groups"}.get(key, key)


def _urls(status: client.V1SubjectRulesReviewStatus) -> set[tuple[str, str]]:
    return {
        (url, verb)
        for rule in status.non_resource_rules or []
        for url in rule.non_resource_urls or []
        for verb in rule.verbs or []
    }


def rules_review(kubeconfig: Path, namespace: str) -> client.V1SubjectRulesReviewStatus:
    """What the API server says the kubeconfig's user may do in ``namespace``."""
    api = config.new_client_from_config(config_file=str(kubeconfig))
    review = client.V1SelfSubjectRulesReview(
        spec=client.V1SelfSubjectRulesReviewSpec(namespace=namespace)
    )
    status = client.AuthorizationV1Api(api).create_self_subject_rules_review(review).status
    assert not status.incomplete, status.evaluation_error
    return status


def unbound_kubeconfig(api: client.ApiClient, admin: Path, namespace: str, out: Path) -> Path:
    """A kubeconfig for a ServiceAccount with no binding at all: the cluster's baseline."""
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "nobody"}})
    token = core.create_namespaced_service_account_token(
        "nobody", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    kc = yaml.safe_load(admin.read_text())
    cluster = kc["clusters"][0]
    out.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "nobody", "user": {"token": token}}],
                "contexts": [
                    {"name": "n", "context": {"cluster": cluster["name"], "user": "nobody"}}
                ],
                "current-context": "n",
            }
        )
    )
    out.chmod(0o600)
    return out


def test_the_cluster_role_file_is_exactly_the_expected_set() -> None:
    role = yaml.safe_load(CLUSTER_ROLE.read_text())
    assert role["kind"] == "ClusterRole"
    assert "aggregationRule" not in role
    for rule in role["rules"]:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, rule  # no resourceNames games
        assert "nonResourceURLs" not in rule
    assert expand(role["rules"]) == EXPECTED


def test_operator_rbac_is_least_privilege(
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    operator_role: str,
    tmp_path: Path,
) -> None:
    as_operator = operator_kubeconfig(api, kubeconfig, namespace, operator_role, tmp_path / "op")
    as_nobody = unbound_kubeconfig(api, kubeconfig, namespace, tmp_path / "nobody")
    baseline = rules_review(as_nobody, namespace)
    granted = rules_review(as_operator, namespace)

    extra = expand(granted.resource_rules) - expand(baseline.resource_rules)
    print(f"operator may do {len(extra)} (group, resource, verb) in {namespace}:")
    for group, resource, verb in sorted(extra):
        print(f"  {group or 'core'}/{resource}: {verb}")
    assert extra == EXPECTED, (
        f"wider: {sorted(extra - EXPECTED)}; missing: {sorted(EXPECTED - extra)}"
    )
    for _, resource, verb in extra:
        assert verb not in NEVER_VERBS, (resource, verb)
        assert resource.split("/")[0] not in NEVER_RESOURCES, (resource, verb)
        assert resource not in GET_ONLY_RESOURCES or verb == "get", (resource, verb)
    for rule in granted.resource_rules:
        assert not rule.resource_names, rule
    assert _urls(granted) == _urls(baseline)

    # Bound in one namespace (the chart's namespaced mode), it may do nothing elsewhere.
    other = f"t-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=other, labels=RESTRICTED))
    )
    try:
        elsewhere = rules_review(as_operator, other)
        assert expand(elsewhere.resource_rules) == expand(
            rules_review(as_nobody, other).resource_rules
        )
    finally:
        client.CoreV1Api(api).delete_namespace(other)

    # The API server's yes/no for a few things that must stay impossible.
    operator_api = config.new_client_from_config(config_file=str(as_operator))
    authz = client.AuthorizationV1Api(operator_api)
    for verb, resource, group in [
        ("list", "secrets", ""),
        ("watch", "secrets", ""),
        ("list", "configmaps", ""),
        ("delete", "jobs", "batch"),
        ("delete", "trainingjobs", "continuum.dev"),
        ("create", "pods", ""),
        ("create", "rolebindings", "rbac.authorization.k8s.io"),
        ("patch", "trainingjobs", "continuum.dev"),  # the control: this one is allowed
    ]:
        review = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    namespace=namespace, verb=verb, resource=resource, group=group
                )
            )
        )
        allowed = authz.create_self_subject_access_review(review).status.allowed
        assert allowed == (verb == "patch"), (verb, resource, allowed)


def _variants(secret: str) -> set[str]:
    return {secret, base64.b64encode(secret.encode()).decode()}


def test_no_credential_in_status_events_logs_or_artefacts(ctx: Ctx) -> None:
    api, namespace, s3 = ctx.api, ctx.namespace, ctx.s3
    ctx.start_training("leak-check")
    tj = ctx.finished("leak-check")
    assert tj["status"]["phase"] == "Succeeded", tj["status"]
    assert conditions(tj)["Ready"]["status"] == "True"

    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    job = batch.read_namespaced_job("leak-check-train", namespace)
    events = core.list_namespaced_event(namespace).items
    trainer_log = pod_logs(api, namespace, "continuum.dev/training-job=leak-check")
    pods = core.list_namespaced_pod(namespace, label_selector="job-name=leak-check-train").items
    termination = [
        s.state.terminated.message or ""
        for p in pods
        for s in p.status.container_statuses or []
        if s.state.terminated
    ]
    s3c = s3_client(s3)
    artefacts = {}
    for page in s3c.get_paginator("list_objects_v2").paginate(Bucket=ctx.bucket):
        for obj in page.get("Contents", []):
            if not obj["Key"].startswith("datasets/"):
                body = s3c.get_object(Bucket=ctx.bucket, Key=obj["Key"])["Body"].read()
                artefacts[obj["Key"]] = body.decode("latin-1")
    assert any(k.endswith("manifest.json") for k in artefacts), sorted(artefacts)
    assert trainer_log.strip(), "the trainer's log was really read"
    assert ctx.op.output().strip(), "the operator's log was really read"

    places = {
        "TrainingJob (status and all)": json.dumps(tj),
        "training Job": json.dumps(api.sanitize_for_serialization(job)),
        "Events": json.dumps([api.sanitize_for_serialization(e) for e in events]),
        "operator log": ctx.op.output(),
        "trainer pod log": trainer_log,
        "termination message": "\n".join(termination),
        **{f"s3://{ctx.bucket}/{key}": text for key, text in artefacts.items()},
    }
    secret = core.read_namespaced_secret(ctx.secret, namespace)
    credentials: dict[str, set[str]] = {
        "secret key": _variants(s3.secret_key),
        "access key": _variants(s3.access_key),
        **{
            f"Secret data {k}": {v, base64.b64decode(v).decode()}
            for k, v in (secret.data or {}).items()
        },
    }
    print(f"searched {len(places)} places ({sum(map(len, places.values()))} characters)")
    leaks = [
        f"the {what} appears in the {where}"
        for where, text in places.items()
        for what, values in credentials.items()
        if any(value and value in text for value in values)
    ]
    assert not leaks, leaks


def test_a_non_compliant_pod_is_refused_in_test_namespaces(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    labels = core.read_namespace(namespace).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    container: dict[str, Any] = {"name": "c", "image": "busybox", "command": ["sleep", "1"]}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"}}
    # A pod with no securityContext at all (what most charts ship) is refused, naming each rule.
    with pytest.raises(client.ApiException) as refused:
        core.create_namespaced_pod(
            namespace, {**pod, "spec": {"containers": [container]}}, dry_run="All"
        )
    assert refused.value.status == 403, refused.value.body
    message = json.loads(refused.value.body or "{}")["message"]
    assert 'violates PodSecurity "restricted:latest"' in message, message
    for rule in ("allowPrivilegeEscalation", "unrestricted capabilities", "runAsNonRoot",
                 "seccompProfile"):  # fmt: skip
        assert rule in message, message

    # The restricted container of the test helpers passes; root and an added capability do not.
    ok = restricted_container("c", "busybox", ["sleep", "1"])
    core.create_namespaced_pod(namespace, {**pod, "spec": {"containers": [ok]}}, dry_run="All")
    root = {**ok, "securityContext": {**ok["securityContext"], "runAsUser": 0}}
    added = {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    cap = {**ok, "securityContext": {**ok["securityContext"], "capabilities": added}}
    for bad, says in [(root, "runAsUser=0"), (cap, "NET_ADMIN")]:
        with pytest.raises(client.ApiException) as refused:
            core.create_namespaced_pod(
                namespace, {**pod, "spec": {"containers": [bad]}}, dry_run="All"
            )
        assert refused.value.status == 403, refused.value.body
        assert says in json.loads(refused.value.body or "{}")["message"], refused.value.body
