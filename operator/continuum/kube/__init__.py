"""continuum.kube: the only code that talks to the Kubernetes API.

``Kube`` is a small async gateway over ``aiohttp`` that takes and returns plain dicts;
API failures surface as ``KubeError`` subclasses (``NotFound``, ``Conflict``, ``Forbidden``,
``Invalid``). ``login`` finds the credentials (service account or kubeconfig) for it and for
kopf.
"""

from continuum.kube.client import Kube
from continuum.kube.errors import Conflict, Forbidden, Invalid, KubeError, NotFound
from continuum.kube.login import login
from continuum.kube.pods import termination_message

__all__ = [
    "Conflict",
    "Forbidden",
    "Invalid",
    "Kube",
    "KubeError",
    "NotFound",
    "login",
    "termination_message",
]
