"""What one training run works from: the TrainingJob spec, and what only the trainer adds.

The spec is validated by ``continuum.api.TrainingJobSpec``, the model the CRD schema is
generated from, so every default and rule lives once: the trainer never runs a spec the API
server would refuse, nor fills in a default the API server would fill differently. The trainer
adds only what its environment says: the TrainingJob's name and the dataset size limit.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from continuum.api import TrainingJobSpec
from continuum.errors import ConfigError

DEFAULT_MAX_DATASET_BYTES = 256 * 1024 * 1024
# A bad value is quoted shortened: the termination message keeps 1500 characters in all.
_shown = reprlib.Repr()
_shown.maxstring = 60


@dataclass(frozen=True)
class TrainingConfig:
    """A validated spec, the run's TrainingJob name (if known) and the dataset size limit."""

    spec: TrainingJobSpec
    training_job: str | None = None
    max_dataset_bytes: int = DEFAULT_MAX_DATASET_BYTES
    threads: int = 0  # OpenMP/BLAS threads of the fit; 0: the CPUs the pod is granted

    @classmethod
    def from_spec(
        cls, spec: Mapping[str, Any], *, training_job: str | None = None
    ) -> TrainingConfig:
        """Validate a camelCase TrainingJob ``spec``; ConfigError names every bad field."""
        return cls(parse_spec(spec), training_job=training_job)


def parse_spec(spec: Mapping[str, Any]) -> TrainingJobSpec:
    """The spec as the API model, or ConfigError listing each problem with its field path.

    Strict, like the API server's typed schema: ``true`` is not a seed and ``"0.2"`` is not a
    test size (pydantic's lax mode would take both). The operator's own spec JSON always has
    the exact types, so strictness only refuses hand-written mistakes.
    """
    try:
        return TrainingJobSpec.model_validate(spec, strict=True)
    except ValidationError as exc:
        problems = "; ".join(describe(error) for error in exc.errors(include_url=False))
        raise ConfigError(f"the TrainingJob spec is invalid: {problems}") from exc


def describe(error: ErrorDetails) -> str:
    """One validation problem, named by its camelCase path below ``spec``."""
    where = ".".join(["spec", *(str(part) for part in error["loc"])])
    if error["type"] == "missing":
        return f"{where} is required"
    if error["type"] == "value_error":  # a rule of the API model: its message names the fields
        return f"{where}: {error.get('ctx', {}).get('error', error['msg'])}"
    return f"{where}: {error['msg']}, got {_shown.repr(error['input'])}"
