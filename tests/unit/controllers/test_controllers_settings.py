"""Operator settings and the command line."""

from __future__ import annotations

import kopf

from continuum.controllers.main import DEFAULT_IMAGE, build_parser
from continuum.controllers.settings import REPORTING_COMPONENT, configure


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
    selectors = list(settings.watching.label_selectors.values())
    assert selectors == ["app.kubernetes.io/managed-by=continuum"]


def test_parser_defaults(monkeypatch: object) -> None:
    args = build_parser().parse_args([])
    assert args.namespace == []
    assert args.metrics_port == 8080
    assert args.image.startswith("continuum:") or args.image == DEFAULT_IMAGE


def test_parser_namespaces_repeat() -> None:
    args = build_parser().parse_args(["-n", "a", "--namespace", "b", "--metrics-port", "0"])
    assert args.namespace == ["a", "b"]
    assert args.metrics_port == 0
