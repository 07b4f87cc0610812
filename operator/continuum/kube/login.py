"""Where the operator's credentials come from: the pod's service account, or a kubeconfig.

One function, ``login()``, serves both HTTP stacks of the operator process: kopf's own client
(through the ``@kopf.on.login`` handler of ``continuum.controllers.lifecycle``) and our gateway
(``continuum.kube.client``). Neither needs the official ``kubernetes`` library, which costs the
operator about 20 MB of memory and 400 modules for nothing else (see ``continuum.cli``).

In a pod (``$KUBERNETES_SERVICE_HOST`` set, no ``$KUBECONFIG``) the API server is the address
Kubernetes injects, with the mounted CA and token; the token file is re-read at each login, so
a rotated token is picked up when the server answers 401. Elsewhere the current context of
``$KUBECONFIG`` (or ``~/.kube/config``) is used: server, CA, client certificate, bearer token or
basic auth, as ``kubectl`` reads them, or what the user's exec credential plugin prints (the
``client.authentication.k8s.io`` protocol that EKS, GKE and AKS kubeconfigs use; run without a
terminal, so a plugin that insists on one is refused by name). Legacy auth-provider entries are
not run: kubectl itself dropped them.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import kopf
import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
LOCAL_KUBECONFIG = "~/.kube/config"


def login() -> kopf.ConnectionInfo:
    """Credentials for the API server: in-cluster when in a pod, else from a kubeconfig."""
    if not os.environ.get("KUBECONFIG") and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster()
    return from_kubeconfig()


def in_cluster(root: Path = SERVICE_ACCOUNT) -> kopf.ConnectionInfo:
    """The service account mounted in the pod, and the API server address in its env."""
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    host = f"[{host}]" if ":" in host else host  # an IPv6 address
    namespace = root / "namespace"
    return kopf.ConnectionInfo(
        server=f"https://{host}:{port}",
        ca_path=str(root / "ca.crt"),
        token=(root / "token").read_text().strip(),
        default_namespace=namespace.read_text().strip() if namespace.exists() else None,
    )


def from_kubeconfig() -> kopf.ConnectionInfo:
    """The current context of ``$KUBECONFIG`` (or ``~/.kube/config``), as kopf reads it."""
    if not os.environ.get("KUBECONFIG") and not Path(LOCAL_KUBECONFIG).expanduser().exists():
        raise kopf.LoginError("not in a pod and no kubeconfig ($KUBECONFIG, ~/.kube/config)")
    info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    if info is None or not info.server:
        raise kopf.LoginError("the kubeconfig names no server for its current context")
    if info.token or info.certificate_path or info.certificate_data or info.username:
        return info
    plugin = current_user().get("exec")
    if not plugin:
        raise kopf.LoginError(
            "the kubeconfig user has no token, client certificate, password or exec plugin "
            "(auth-provider entries are not supported; kubectl dropped them too)"
        )
    return with_exec_credential(info, run_exec_plugin(plugin))


def current_user() -> dict[str, Any]:
    """The ``user`` of the current context, reading the kubeconfig files as kubectl does."""
    raw = os.environ.get("KUBECONFIG") or LOCAL_KUBECONFIG
    paths = [Path(path).expanduser() for path in raw.split(os.pathsep) if path.strip()]
    configs = [yaml.safe_load(path.read_text()) or {} for path in paths if path.exists()]
    current = next((c["current-context"] for c in configs if c.get("current-context")), None)
    contexts = _first_by_name(configs, "contexts", "context")
    user_name = contexts.get(current or "", {}).get("user", "")
    return dict(_first_by_name(configs, "users", "user").get(user_name, {}))


def _first_by_name(configs: list[dict[str, Any]], section: str, key: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for config in configs:  # the first file that names an entry wins, as in kubectl
        for item in config.get(section) or []:
            found.setdefault(item.get("name"), item.get(key) or {})
    return found


def run_exec_plugin(plugin: dict[str, Any]) -> dict[str, Any]:
    """Run the exec credential plugin without a terminal; its ExecCredential ``status``."""
    if plugin.get("interactiveMode") == "Always":
        raise kopf.LoginError(f"the exec plugin {plugin.get('command')!r} needs a terminal")
    request = {"apiVersion": plugin.get("apiVersion"), "kind": "ExecCredential"}
    request["spec"] = {"interactive": False}
    env = {**os.environ, **{e["name"]: e["value"] for e in plugin.get("env") or []}}
    env["KUBERNETES_EXEC_INFO"] = json.dumps(request)
    command = [str(plugin.get("command")), *(plugin.get("args") or [])]
    try:
        done = subprocess.run(command, env=env, capture_output=True, timeout=60, check=True)
        status = json.loads(done.stdout).get("status") or {}
    except (OSError, subprocess.SubprocessError, ValueError) as err:
        raise kopf.LoginError(f"the exec plugin {command[0]!r} failed: {_reason(err)}") from err
    return dict(status)


def _reason(err: BaseException) -> str:
    # stderr of a failed plugin says what to do (log in again...); stdout may hold a token.
    if isinstance(err, subprocess.CalledProcessError):
        stderr = (err.stderr or b"").decode(errors="replace").strip()
        return f"exit {err.returncode}: {stderr[-500:]}"
    return type(err).__name__ if isinstance(err, ValueError) else str(err)


def with_exec_credential(info: kopf.ConnectionInfo, status: dict[str, Any]) -> kopf.ConnectionInfo:
    """The cluster's address and CA with the token or client certificate the plugin gave."""
    if not (status.get("token") or status.get("clientCertificateData")):
        raise kopf.LoginError("the exec plugin printed neither a token nor a client certificate")
    expires = status.get("expirationTimestamp")
    return dataclasses.replace(
        info,
        token=status.get("token"),
        certificate_data=status.get("clientCertificateData"),
        private_key_data=status.get("clientKeyData"),
        # kopf logs in again when a credential expires or the server answers 401.
        expiration=datetime.datetime.fromisoformat(expires) if expires else None,
    )
