"""continuum.controllers: the kopf operator, one subpackage per kind over a shared skeleton.

``trainingjob``, ``modeldeployment`` and ``driftmonitor`` each hold that kind's whole story:
``handlers`` (kopf's triggers) hand work to ``controller`` (observe → plan → apply) through
the kind's work queue, over pure builders and planners. ``shared`` is the machinery they all
use (work queue and retries, the status-write loop, conditions, names, pods, metrics).
``lifecycle`` is the operator process around them (kopf settings, login, startup, cleanup);
``main`` runs it.
"""

from continuum.controllers.main import main

__all__ = ["main"]
