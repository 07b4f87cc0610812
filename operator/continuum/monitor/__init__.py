"""continuum.monitor: the workload behind ``continuum monitor`` (one drift check in a Job).

Pure parts: :mod:`stats` (per-feature statistics), :mod:`corrections` (multiple testing),
:mod:`verdict` (feature and dataset verdicts), :mod:`fairness`, :mod:`check` (all of them on
two frames), :mod:`report` and :mod:`html` (the documents). I/O: :mod:`reference` and
:mod:`window` (reading), :mod:`run` (one check), :mod:`cli` (environment, exit code).
"""

from continuum.monitor.cli import main

__all__ = ["main"]
