"""Operator-wide kopf settings and the startup/cleanup of shared resources."""

from __future__ import annotations

import os
import socket
from typing import Any

import kopf

from continuum.api import GROUP
from continuum.controllers.naming import MANAGED_SELECTOR
from continuum.kube import Kube

REPORTING_COMPONENT = "continuum-operator"
ARGOCD_TRACKING = ["metadata", "annotations", "argocd.argoproj.io/tracking-id"]


def configure(settings: kopf.OperatorSettings) -> None:
    """Our persistence prefix, Event identity, retry timings and server-side child filters."""
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration", ignored_fields=[ARGOCD_TRACKING]
    )
    settings.posting.reporting_component = REPORTING_COMPONENT
    settings.posting.reporting_instance = _instance()
    settings.posting.loggers = False
    settings.execution.default_backoff = 10
    settings.networking.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.watching.chunk_size = 500
    settings.watching.label_selectors["batch", "jobs"] = MANAGED_SELECTOR
    # Handlers name exact group/version/plural: no CRD or namespace watching, so no RBAC for it.
    settings.scanning.disabled = True


def _instance() -> str:
    return (os.environ.get("POD_NAME") or socket.gethostname() or "continuum")[:128]


@kopf.on.startup(id="continuum-startup")
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    configure(settings)
    memo["kube"] = await Kube.connect()


@kopf.on.cleanup(id="continuum-cleanup")
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    kube = memo.get("kube")
    if isinstance(kube, Kube):
        await kube.close()


def kube_of(memo: kopf.Memo) -> Kube:
    """The gateway the startup handler stored in the memo."""
    kube = memo.get("kube")
    if not isinstance(kube, Kube):
        raise kopf.TemporaryError("the Kubernetes gateway is not connected yet", delay=1)
    return kube


def image_of(memo: kopf.Memo) -> str:
    """The project image the operator runs workloads with."""
    return str(memo["image"])
