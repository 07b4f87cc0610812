"""Credentials of the operator: the pod's service account, or the kubeconfig's current context."""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

import kopf
import pytest

from continuum.kube import login
from continuum.kube.client import authorization
from continuum.kube.login import in_cluster

KUBECONFIG = """
apiVersion: v1
kind: Config
current-context: here
contexts:
- name: here
  context: {cluster: local, user: admin, namespace: ml}
clusters:
- name: local
  cluster: {server: "https://172.31.250.1:6443", certificate-authority-data: Q0E=}
users:
- name: admin
  user: {token: secret-token}
"""


def service_account(tmp_path: Path) -> Path:
    (tmp_path / "token").write_text("sa-token\n")
    (tmp_path / "ca.crt").write_text("CA")
    (tmp_path / "namespace").write_text("continuum-system\n")
    return tmp_path


def test_in_a_pod_the_injected_address_and_the_mounted_token_are_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    info = in_cluster(service_account(tmp_path))
    assert info.server == "https://10.96.0.1:443"
    assert info.token == "sa-token"
    assert info.default_namespace == "continuum-system"
    assert authorization(info) == {"Authorization": "Bearer sa-token"}


def test_an_ipv6_service_address_is_bracketed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    assert in_cluster(service_account(tmp_path)).server == "https://[fd00::1]:6443"


def test_a_rotated_token_is_read_at_the_next_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    root = service_account(tmp_path)
    assert in_cluster(root).token == "sa-token"
    (root / "token").write_text("rotated")
    assert in_cluster(root).token == "rotated"


def test_outside_a_pod_the_kubeconfig_current_context_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")  # $KUBECONFIG wins
    info = login()
    assert info.server == "https://172.31.250.1:6443"
    assert info.token == "secret-token"
    assert info.default_namespace == "ml"


def test_a_kubeconfig_user_without_credentials_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG.replace("{token: secret-token}", "{auth-provider: {name: gcp}}"))
    monkeypatch.setenv("KUBECONFIG", str(path))
    with pytest.raises(kopf.LoginError, match="no token, client certificate, password or exec"):
        login()


PLUGIN = """
import json, os, sys
request = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
if os.environ.get("PLUGIN_FAIL"):
    sys.exit("token expired: run 'cloud login' again")
print(json.dumps({"kind": "ExecCredential", "status": {
    "token": os.environ["PLUGIN_TOKEN"] + ":" + str(request["spec"]["interactive"]),
    "expirationTimestamp": "2030-01-02T03:04:05Z"}}))
"""


def exec_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **plugin: str) -> None:
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN)
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(script)],
            "env": [{"name": "PLUGIN_TOKEN", "value": "from-plugin"}],
            **plugin,
        }
    }
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG.replace("{token: secret-token}", json.dumps(user)))
    monkeypatch.setenv("KUBECONFIG", str(path))


def test_an_exec_plugin_gives_the_token_and_its_expiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exec_kubeconfig(tmp_path, monkeypatch)
    info = login()
    assert info.server == "https://172.31.250.1:6443"
    assert info.token == "from-plugin:False", "env entries applied, run without a terminal"
    assert info.expiration == datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def test_a_failing_exec_plugin_is_reported_with_what_it_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exec_kubeconfig(tmp_path, monkeypatch)
    monkeypatch.setenv("PLUGIN_FAIL", "1")
    with pytest.raises(kopf.LoginError, match=r"failed: exit 1: token expired: run 'cloud login'"):
        login()


def test_an_exec_plugin_that_needs_a_terminal_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exec_kubeconfig(tmp_path, monkeypatch, interactiveMode="Always")
    with pytest.raises(kopf.LoginError, match="needs a terminal"):
        login()


def test_basic_auth_and_client_certificates() -> None:
    basic = kopf.ConnectionInfo(server="https://k", username="u", password="p")
    assert authorization(basic) == {"Authorization": "Basic dTpw"}
    certificate = kopf.ConnectionInfo(server="https://k", certificate_data="X")
    assert authorization(certificate) == {}, "the client certificate is in the TLS context"
