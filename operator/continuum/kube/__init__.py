"""continuum.kube: the only code that talks to the Kubernetes API.

``Kube`` is a small async gateway over ``aiohttp`` that takes and returns plain dicts;
API failures surface as ``KubeError`` subclasses (``ResourceNotFound``, ``ResourceConflict``,
``RequestForbidden``, ``ResourceInvalid``; the retryable ``RequestThrottled`` and
``KubeUnavailable`` with the server's ``retry_after``). ``login`` finds the credentials (service
account or kubeconfig) for it and for kopf.
"""

from continuum.kube.client import Kube
from continuum.kube.errors import (
    KubeError,
    KubeUnavailable,
    RequestForbidden,
    RequestThrottled,
    ResourceConflict,
    ResourceInvalid,
    ResourceNotFound,
)
from continuum.kube.login import login
from continuum.kube.pods import PodTermination, termination_message

__all__ = [
    "Kube",
    "KubeError",
    "KubeUnavailable",
    "PodTermination",
    "RequestForbidden",
    "RequestThrottled",
    "ResourceConflict",
    "ResourceInvalid",
    "ResourceNotFound",
    "login",
    "termination_message",
]
