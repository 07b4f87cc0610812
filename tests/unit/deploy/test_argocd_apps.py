"""deploy/argocd/team-models.yaml ignores exactly the operator's field managers on our kinds."""

from __future__ import annotations

import yaml

from continuum.kube.client import FIELD_MANAGER
from tests.unit.deploy.health import KINDS, REPO

TEAM_APP = REPO / "deploy/argocd/team-models.yaml"


def test_team_app_ignores_only_the_operators_field_managers() -> None:
    app = yaml.safe_load(TEAM_APP.read_text())
    assert app["kind"] == "Application"
    ignored = app["spec"]["ignoreDifferences"]
    assert sorted(i["kind"] for i in ignored) == sorted(KINDS)
    for item in ignored:
        assert item["group"] == "continuum.dev"
        # The operator writes status as FIELD_MANAGER, kopf its annotations as "kopf".
        assert set(item["managedFieldsManagers"]) == {FIELD_MANAGER, "kopf"}
        assert set(item) == {"group", "kind", "managedFieldsManagers"}
    options = app["spec"]["syncPolicy"]["syncOptions"]
    assert "RespectIgnoreDifferences=true" in options
    assert not [o for o in options if o.startswith("Replace=")]
