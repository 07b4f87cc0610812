"""Operator settings and the command line."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import kopf
import pytest

from continuum.controllers import lifecycle
from continuum.controllers.lifecycle import REPORTING_COMPONENT, DiffBaseStorage, configure
from continuum.controllers.main import DEFAULT_IMAGE, build_parser


def test_settings_use_our_domain_and_filter_children() -> None:
    settings = kopf.OperatorSettings()
    configure(settings)
    assert settings.persistence.finalizer == "continuum.dev/finalizer"
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert settings.persistence.progress_storage.prefix == "continuum.dev"
    assert isinstance(settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
    assert settings.persistence.diffbase_storage.prefix == "continuum.dev"
    assert settings.posting.reporting_component == REPORTING_COMPONENT
    assert settings.posting.loggers is False
    assert settings.scanning.disabled is True
    selectors = settings.watching.label_selectors
    managed = "app.kubernetes.io/managed-by=continuum"
    assert len(selectors) == 2
    assert selectors["batch", "jobs"] == selectors["apps", "deployments"] == managed


def test_parser_defaults(monkeypatch: object) -> None:
    args = build_parser().parse_args([])
    assert args.namespace == []
    assert args.metrics_port == 8080
    assert args.image.startswith("continuum:") or args.image == DEFAULT_IMAGE


def test_parser_namespaces_repeat() -> None:
    args = build_parser().parse_args(["-n", "a", "--namespace", "b", "--metrics-port", "0"])
    assert args.namespace == ["a", "b"]
    assert args.metrics_port == 0


def essence_storage() -> DiffBaseStorage:
    settings = kopf.OperatorSettings()
    configure(settings)
    storage = settings.persistence.diffbase_storage
    assert isinstance(storage, DiffBaseStorage)
    return storage


def training_job(status: dict[str, object] | None = None) -> kopf.Body:
    raw: dict[str, object] = {
        "apiVersion": "continuum.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "a", "namespace": "ml", "annotations": {}},
        "spec": {"model": "m"},
    }
    if status is not None:
        raw["status"] = status
    return kopf.Body(raw)  # type: ignore[arg-type]


def test_training_jobs_are_new_until_their_first_status() -> None:
    storage = essence_storage()
    assert storage.fetch(body=training_job()) is None  # create handlers run
    handled = training_job({"phase": "Pending"})
    assert storage.fetch(body=handled) == storage.build(body=handled)  # resume only


def test_training_jobs_get_no_diffbase_annotation() -> None:
    storage = essence_storage()
    body = training_job({"phase": "Pending"})
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert not patch


def test_other_kinds_keep_the_annotation() -> None:
    storage = essence_storage()
    body = kopf.Body(
        {  # type: ignore[arg-type]
            "apiVersion": "continuum.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "a", "namespace": "ml", "annotations": {}},
            "spec": {"model": "m"},
        }
    )
    assert storage.fetch(body=body) is None
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert "continuum.dev/last-handled-configuration" in patch["metadata"]["annotations"]


def test_a_training_job_handled_at_once_needs_no_annotation_write() -> None:
    settings = kopf.OperatorSettings()
    configure(settings)
    storage = settings.persistence.progress_storage
    body = training_job()
    patch = kopf.Patch()
    record: kopf.ProgressRecord = {"started": "2026-01-01T00:00:00", "success": True}
    storage.store(key=kopf.HandlerId("trainingjob"), record=record, body=body, patch=patch)
    storage.purge(key=kopf.HandlerId("trainingjob"), body=body, patch=patch)
    assert not patch.get("metadata", {}).get("annotations")


def test_the_private_kopf_hook_we_override_is_still_there() -> None:
    """``ProgressStorage`` overrides kopf's private ``_store_marker``; kopf is pinned below its
    next minor version, and this fails first if the hook moves or changes its signature."""
    hook = inspect.signature(kopf.AnnotationsProgressStorage._store_marker)
    assert list(hook.parameters) == ["self", "prefix", "patch", "body"]


def test_a_watch_answered_410_gone_ends_its_stream_not_the_operator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kopf stops the whole operator when a watch request is answered HTTP 410; ours ends
    that stream so that kopf lists again (the API fault test's ``watch-410-http``)."""
    from kopf._cogs.clients import errors, watching  # noqa: PLC0415

    assert watching.continuous_watch is lifecycle.continuous_watch, "installed in kopf"
    params = inspect.signature(lifecycle._continuous_watch).parameters
    assert set(params) == {"settings", "resource", "namespace", "operator_pause_waiter"}

    def answered(status: int) -> Any:
        async def original(**_: Any) -> Any:
            yield {"type": None, "object": {"metadata": {"name": "a"}}}
            raise errors.APIClientError("too old resource version", status=status, headers={})

        return original

    async def events() -> list[Any]:
        return [e async for e in lifecycle.continuous_watch(settings=None)]

    monkeypatch.setattr(lifecycle, "_continuous_watch", answered(410))
    assert len(asyncio.run(events())) == 1, "the events before, then the stream ends"
    monkeypatch.setattr(lifecycle, "_continuous_watch", answered(403))
    with pytest.raises(errors.APIClientError):
        asyncio.run(events())
