"""Shared by every tier: the cluster fixtures (tests/kit) and hypothesis's storage.

The cluster fixtures start the real local cluster only when a test asks for one of them.
"""

from __future__ import annotations

import os
from pathlib import Path

pytest_plugins = ("tests.kit.cluster", "tests.kit.kinds")

# Hypothesis keeps its example database and a cache of constants (which records this
# machine's absolute source paths) under ./.hypothesis by default: keep them out of the
# checkout. Read lazily by hypothesis, so setting it before the first test is enough.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path.home() / ".cache" / "continuum" / "hypothesis")
)
