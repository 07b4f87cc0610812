"""The test kit: what several test modules (and the benchmarks) share, written once.

Imported as ``from tests.kit import REPO`` or ``from tests.kit.<module> import ...``; pytest puts
the checkout on ``sys.path`` (``tests`` is a package), the scripts in ``bench/`` put it there
themselves.

- ``versions``: the pins of hack/versions.env and the binaries built from them.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
