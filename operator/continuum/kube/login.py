"""Where the operator's credentials come from: the pod's service account, or a kubeconfig.

One function, ``login()``, serves both HTTP stacks of the operator process: kopf's own client
(through the ``@kopf.on.login`` handler of ``continuum.controllers.settings``) and our gateway
(``continuum.kube.client``). Neither needs the official ``kubernetes`` library, which costs the
operator about 20 MB of memory and 400 modules for nothing else (see ``continuum.cli``).

In a pod (``$KUBERNETES_SERVICE_HOST`` set, no ``$KUBECONFIG``) the API server is the address
Kubernetes injects, with the mounted CA and token; the token file is re-read at each login, so
a rotated token is picked up when the server answers 401. Elsewhere the current context of
``$KUBECONFIG`` (or ``~/.kube/config``) is used: server, CA, client certificate, bearer token or
basic auth, as ``kubectl`` reads them. Exec and auth-provider plugins are not run.
"""

from __future__ import annotations

import os
from pathlib import Path

import kopf

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
    if not (info.token or info.certificate_path or info.certificate_data or info.username):
        raise kopf.LoginError(
            "the kubeconfig user has no token, client certificate or password "
            "(exec and auth-provider plugins are not supported)"
        )
    return info
