"""docs/troubleshooting.md covers every condition reason and Event reason the code sets, and
every trainer error a TrainingJob can fail with."""

from __future__ import annotations

import inspect
import re

from continuum import errors
from continuum.api import vocabulary
from continuum.controllers.driftmonitor import verdicts
from tests.unit.deploy.health import REPO

CONTROLLERS = REPO / "operator/continuum/controllers"
DOC = (REPO / "docs/troubleshooting.md").read_text()
LITERAL_REASON = re.compile(r'Want\(\s*[A-Z_]+,\s*"(?:True|False|Unknown)",\s*"([A-Za-z]+)"')
EVENT_REASON = re.compile(r'Event\("(?:Normal|Warning)",\s*"([A-Za-z]+)"')
KOPF_EVENT = re.compile(r'kopf\.(?:info|warn)\([^)]*reason="([A-Za-z]+)"')
WAITING = re.compile(r'status_waiting\(\s*\w+,\s*"([A-Za-z]+)"')
OTHER_LITERALS = re.compile(r'"((?:Job|Training|Result|Rolling|Rolled|Rollout)[A-Za-z]*)"')


def documented(reason: str) -> bool:
    return f"`{reason}`" in DOC


def vocabulary_reasons() -> set[str]:
    """The reasons ``continuum.api.vocabulary`` declares (its "reasons" section)."""
    source = inspect.getsource(vocabulary)
    section = source.split("# -- reasons", 1)[1].split("# -- labels", 1)[0]
    return {getattr(vocabulary, name) for name in re.findall(r"^([A-Z_]+): Final", section, re.M)}


def code_reasons() -> set[str]:
    found = vocabulary_reasons()
    for path in CONTROLLERS.rglob("*.py"):
        text = path.read_text()
        for pattern in (LITERAL_REASON, EVENT_REASON, KOPF_EVENT, WAITING):
            found |= set(pattern.findall(text))
    for name in ("trainingjob/status.py", "modeldeployment/rollout.py"):
        found |= set(OTHER_LITERALS.findall((CONTROLLERS / name).read_text()))
    # A check's verdict is its DriftDetected reason, except Drift (DatasetDrift).
    found |= set(verdicts.VERDICTS - {"Drift"})
    # JobComplete only leads to Succeeded or ResultMissing: never a condition reason itself.
    return found - {"JobComplete"}


def test_every_condition_and_event_reason_is_documented() -> None:
    reasons = code_reasons()
    assert {
        "JobPending",
        "RolloutFailed",
        "WaitingForDeployment",
        "RetrainingSuppressed",
    } <= reasons
    assert sorted(r for r in reasons if not documented(r)) == []


def test_every_trainer_error_is_documented() -> None:
    # The trainer's failure reason is the class name of the error it raised.
    names = {
        name
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.ContinuumError) and cls.__module__ == errors.__name__
    }
    names -= {"ContinuumError"}
    assert "DatasetInvalid" in names
    assert sorted(n for n in names if not documented(n)) == []
