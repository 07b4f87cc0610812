"""continuum.kube: the only code that talks to the Kubernetes API.

``Kube`` is a small async gateway over ``kubernetes.aio`` that takes and returns plain dicts;
API failures surface as ``KubeError`` subclasses (``NotFound``, ``Conflict``, ``Forbidden``,
``Invalid``).
"""

from continuum.kube.client import Kube
from continuum.kube.errors import Conflict, Forbidden, Invalid, KubeError, NotFound
from continuum.kube.pods import termination_message

__all__ = [
    "Conflict",
    "Forbidden",
    "Invalid",
    "Kube",
    "KubeError",
    "NotFound",
    "termination_message",
]
