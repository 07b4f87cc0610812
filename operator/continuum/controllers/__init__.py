"""continuum.controllers: the kopf operator.

Pure builders (``desired``, ``status``, ``conditions``, ``naming``) turn a custom resource
and the observed children into desired children and status; the handler modules
(``trainingjob``) are thin glue over them and ``continuum.kube``. ``main`` runs the operator.
"""

from continuum.controllers.main import main

__all__ = ["main"]
