"""Fixtures shared by the controllers' unit tests."""

from __future__ import annotations

import pytest

from continuum.api import TrainingJob
from tests.unit.controllers.trainingjob.builders import training_job


@pytest.fixture
def tj() -> TrainingJob:
    return training_job()
