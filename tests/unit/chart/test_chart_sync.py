"""The chart ships the same CRDs as crds/ and the same RBAC rules as deploy/rbac/."""

from __future__ import annotations

import filecmp
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.unit.chart.conftest import CHART, REPO, Render, by_kind

CRD_TEMPLATES = CHART / "templates/crds"
KEEP = "helm.sh/resource-policy"


def test_generated_templates_are_current(tmp_path: Path) -> None:
    """templates/crds/*.yaml and templates/_rules.tpl are what hack/chart-crds.sh makes now."""
    out = tmp_path / "templates"
    subprocess.run([str(REPO / "hack/chart-crds.sh"), str(out)], check=True, timeout=60)
    fresh = sorted(p.name for p in (out / "crds").glob("*.yaml"))
    committed = sorted(p.name for p in CRD_TEMPLATES.glob("*.yaml"))
    assert committed == fresh, "run hack/chart-crds.sh (make chart-crds)"
    _, mismatch, errors = filecmp.cmpfiles(out / "crds", CRD_TEMPLATES, fresh, shallow=False)
    assert mismatch + errors == [], "stale CRD templates; run hack/chart-crds.sh"
    rules = (CHART / "templates/_rules.tpl").read_text()
    assert rules == (out / "_rules.tpl").read_text(), "stale _rules.tpl; run hack/chart-crds.sh"


def test_rendered_crds_equal_crds_folder(render: Render) -> None:
    sources = [yaml.safe_load(p.read_text()) for p in sorted((REPO / "crds").glob("*.yaml"))]
    rendered = by_kind(render(), "CustomResourceDefinition")
    assert sorted(c["metadata"]["name"] for c in rendered) == sorted(
        c["metadata"]["name"] for c in sources
    )
    expected = {c["metadata"]["name"]: c for c in sources}
    for crd in rendered:
        metadata = crd["metadata"]
        assert metadata.pop("annotations") == {KEEP: "keep"}
        assert metadata.pop("labels")["app.kubernetes.io/part-of"] == "continuum"
        assert crd == expected[metadata["name"]]


def test_crds_gated_and_kept(render: Render) -> None:
    assert not by_kind(render("--set", "crds.enabled=false"), "CustomResourceDefinition")
    loose = by_kind(render("--set", "crds.keep=false"), "CustomResourceDefinition")
    assert len(loose) == 3
    assert all(KEEP not in c["metadata"].get("annotations", {}) for c in loose)


def normalized(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """Rules as {(group, resource): verbs}: order and grouping do not matter."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, rule  # no resourceNames etc.
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def test_rbac_rules_equal_deploy_rbac(render: Render) -> None:
    source = yaml.safe_load((REPO / "deploy/rbac/clusterrole.yaml").read_text())
    expected = normalized(source["rules"])
    (cluster_role,) = by_kind(render(), "ClusterRole")
    assert normalized(cluster_role["rules"]) == expected
    roles = [
        role
        for role in by_kind(render("--set", "watchNamespaces={a,b}"), "Role")
        if not role["metadata"]["name"].endswith("-leader-election")
    ]
    assert len(roles) == 2
    for role in roles:
        assert normalized(role["rules"]) == expected


def test_rbac_is_least_privilege(render: Render) -> None:
    """No listing of Secrets or ConfigMaps (a named get only), no CRDs, namespaces, wildcards
    or deletes (garbage collection deletes children)."""
    (cluster_role,) = by_kind(render(), "ClusterRole")
    for (group, resource), verbs in normalized(cluster_role["rules"]).items():
        assert "*" not in (group, resource, *verbs)
        assert not verbs & {"delete", "deletecollection"}
        assert resource not in {"customresourcedefinitions", "namespaces"}
        if resource in {"secrets", "configmaps"}:
            assert verbs == {"get"}, (resource, verbs)
        assert group != "rbac.authorization.k8s.io"
