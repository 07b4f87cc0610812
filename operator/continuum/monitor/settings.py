"""What one check runs with: which monitor, model and version, and the DriftMonitor's settings.

The operator passes the DriftMonitor spec as JSON in ``CONTINUUM_MONITOR_SPEC``; the whole
spec, or only the parts a check uses (``tests``, ``window``, ``sensitiveFeature``,
``fairnessThreshold``), are accepted, and the API models validate them with the same rules
as the CRD, so the Job never runs with settings the API server would have refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from continuum.api.common import first_error
from continuum.api.driftmonitor import DataQuality, DriftTests, Performance, Window
from continuum.errors import ConfigError
from continuum.storage.layout import check_name
from continuum.storage.privacy import LogPolicy, policy_from_env
from continuum.storage.retention import MAX_RETENTION_DAYS

ENV_MONITOR = "CONTINUUM_MONITOR"
ENV_MODEL = "CONTINUUM_MODEL"
ENV_VERSION = "CONTINUUM_MODEL_VERSION"
ENV_SPEC = "CONTINUUM_MONITOR_SPEC"
ENV_REPORT_TIME = "CONTINUUM_REPORT_TIME"
ENV_RETENTION_DAYS = "CONTINUUM_RETENTION_DAYS"
DEFAULT_FAIRNESS_THRESHOLD = 0.1


@dataclass(frozen=True)
class CheckSettings:
    """The parts of a DriftMonitor spec a check uses."""

    window: Window
    tests: DriftTests
    sensitive_feature: str | None = None
    fairness_threshold: float = DEFAULT_FAIRNESS_THRESHOLD
    quality: DataQuality = field(default_factory=DataQuality)
    # the served ModelDeployment's spec.inferenceLog drop/hash (env, set by the operator)
    log_policy: LogPolicy = field(default_factory=LogPolicy)
    # spec.inferenceLog.retentionDays: older logs, labels and reports are pruned first
    retention_days: int | None = None
    performance: Performance | None = None  # spec.performance: live performance (issue 16)

    def to_json(self) -> dict[str, Any]:
        """The settings as the report shows them (the policy's names, never its key)."""
        return {
            "window": self.window.model_dump(mode="json"),
            "tests": self.tests.model_dump(mode="json"),
            "sensitiveFeature": self.sensitive_feature,
            "fairnessThreshold": self.fairness_threshold,
            "quality": self.quality.model_dump(mode="json"),
            "inferenceLog": {
                "drop": sorted(self.log_policy.drop),
                "hash": sorted(self.log_policy.hashed),
            },
            "performance": self.performance.model_dump(mode="json") if self.performance else None,
        }


@dataclass(frozen=True)
class MonitorTarget:
    """Which monitor writes the report and which served model version it checks."""

    monitor: str
    model: str
    version: int


def parse_check_settings(spec: Mapping[str, Any]) -> CheckSettings:
    try:
        window = Window.model_validate(spec.get("window") or {})
        tests = DriftTests.model_validate(spec.get("tests") or {})
        quality = DataQuality.model_validate(spec.get("quality") or {})
        performance = _performance(spec.get("performance"))
    except ValidationError as exc:
        raise ConfigError(f"monitor spec is invalid: {first_error(exc)}") from exc
    threshold = spec.get("fairnessThreshold", DEFAULT_FAIRNESS_THRESHOLD)
    if not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise ConfigError(f"fairnessThreshold must be a number in [0, 1], got {threshold!r}")
    sensitive = spec.get("sensitiveFeature")
    if sensitive is not None and not isinstance(sensitive, str):
        raise ConfigError(f"sensitiveFeature must be a column name, got {sensitive!r}")
    return CheckSettings(
        window, tests, sensitive or None, float(threshold), quality, performance=performance
    )


def _performance(value: Any) -> Performance | None:
    if value is None:
        return None
    try:
        return Performance.model_validate(value)
    except ValidationError as exc:
        raise ConfigError(f"monitor spec is invalid: performance.{first_error(exc)}") from exc


def settings_from_env(env: Mapping[str, str]) -> tuple[MonitorTarget, CheckSettings]:
    settings = parse_check_settings(spec_from_env(env))
    settings = replace(settings, log_policy=policy_from_env(env), retention_days=_days(env))
    return target_from_env(env), settings


def _days(env: Mapping[str, str]) -> int | None:
    text = env.get(ENV_RETENTION_DAYS, "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_RETENTION_DAYS:
        raise ConfigError(
            f"{ENV_RETENTION_DAYS} must be a whole number of days from 1 to "
            f"{MAX_RETENTION_DAYS} (spec.inferenceLog.retentionDays), got {text!r}"
        )
    return int(text)


def spec_from_env(env: Mapping[str, str]) -> Mapping[str, Any]:
    text = env.get(ENV_SPEC) or "{}"  # no spec: the API defaults
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{ENV_SPEC} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{ENV_SPEC} must be a JSON object (the DriftMonitor spec)")
    # A whole DriftMonitor object is accepted too; its spec is what counts.
    spec = document.get("spec", document)
    return spec if isinstance(spec, dict) else {}


def target_from_env(env: Mapping[str, str]) -> MonitorTarget:
    monitor = check_name("monitor", _required(env, ENV_MONITOR))
    model = check_name("model", _required(env, ENV_MODEL))
    version_text = _required(env, ENV_VERSION)
    if not version_text.isdigit() or int(version_text) < 1:
        raise ConfigError(
            f"{ENV_VERSION} must be a model version (1, 2, ...), got {version_text!r}"
        )
    return MonitorTarget(monitor, model, int(version_text))


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set; the operator sets it on the check Job")
    return value
