"""Leader election (``continuum operator --leader-elect``): one replica runs the controllers.

Every replica is a candidate for one ``coordination.k8s.io/v1`` Lease (``continuum-operator``
in the operator's namespace). A standby tries to take it every retry period and serves
``/healthz`` meanwhile; the one that holds it starts kopf (in the same event loop) and renews
it every retry period until it stops. On SIGTERM the leader stops kopf, then releases the
Lease, so a standby takes over within one retry period (2 s by default). A leader killed
outright is replaced once its Lease expires: 13-19 s with the default timings (15 s lease,
10 s renew deadline, 2 s retry period, controller-runtime's), see ``decision.Timings``. A
leader that cannot renew for the renew deadline exits at once, before any standby can take
over (``elector``), so two replicas never run the controllers at the same time.

Why a Lease of our own and not kopf peering: peering needs its own cluster-wide CRDs
(``KopfPeering``/``ClusterKopfPeering``) and RBAC on them; it only pauses the lower-priority
operators, so each replica needs a distinct priority; and a dead peer keeps the others paused
until its record's lifetime runs out, with no renew deadline on the active side. A Lease is
what every Kubernetes controller (kube-controller-manager, controller-runtime) uses, needs only
a namespaced Role (``get``, ``update`` on the one Lease name, ``create`` on leases), and its
timings bound the takeover.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from continuum.controllers.election import health
from continuum.controllers.election.decision import Timings
from continuum.controllers.election.elector import (
    LEASE_NAME,
    Elector,
    default_namespace,
    new_identity,
)
from continuum.controllers.election.metrics import IS_LEADER
from continuum.kube.leases import Leases

__all__ = ["IS_LEADER", "LEASE_NAME", "Timings", "default_namespace", "run_elected"]

logger = logging.getLogger(__name__)


async def run_elected(
    operator: Callable[[asyncio.Event], Awaitable[None]],
    *,
    namespace: str,
    name: str,
    timings: Timings,
    liveness: str | None,
) -> int:
    """Wait for the Lease, then run ``operator(stop)`` while holding it; 0 on a clean stop.

    ``stop`` is set on SIGINT/SIGTERM until the operator installs its own handlers (kopf
    does, and also watches ``stop`` as its stop flag).
    """
    leases = await Leases.open(timeout=timings.renew_deadline / 2)
    elector = Elector(
        leases, namespace=namespace, name=name, identity=new_identity(), timings=timings
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        logger.info(f"candidate {elector.identity} for {elector.lease}")
        async with health.serving(liveness, lambda: _standby(elector)):
            leading = await elector.acquire(stop)
        if not leading:
            logger.info("stopped while standby")
            return 0
        await _lead(elector, operator, stop)
        return 0
    finally:
        await leases.close()


async def _lead(
    elector: Elector, operator: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event
) -> None:
    """Run the operator with the renewals beside it; release the Lease once it has stopped.

    The renewer is started before the operator: kopf cancels, when it stops, every task it
    finds that did not exist when it started, and the Lease must stay renewed until kopf's
    handlers have finished.
    """
    renewing = asyncio.create_task(elector.hold(), name="leader lease renewer")
    try:
        await operator(stop)
    finally:
        renewing.cancel()
        await asyncio.gather(renewing, return_exceptions=True)
        await elector.release()


def _standby(elector: Elector) -> dict[str, str]:
    return {"role": "standby", "lease": elector.lease, "holder": elector.holder}
