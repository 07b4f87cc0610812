"""The test kit: what several test modules (and the benchmarks) share, written once.

Imported as ``from tests.kit import REPO`` or ``from tests.kit.<module> import ...``; pytest puts
the checkout on ``sys.path`` (``tests`` is a package), the scripts in ``bench/`` put it there
themselves.

- ``versions``: the pins of hack/versions.env and the binaries built from them;
- ``datasets``: every generated dataset (the two-class training table, the churn customers,
  a real-shaped Parquet table);
- ``cluster``: the local cluster and its MinIO as fixtures (a pytest plugin that
  tests/conftest.py registers, so no test module imports a fixture) and the helpers around
  them: pods, Jobs, Events, the operator as a subprocess;
- ``kinds``: our three kinds on that cluster: the bodies the tests create, reads and waits;
- ``memory_store``: an in-memory ``continuum.storage.ObjectStore`` for unit tests;
- ``fake_kube``: the one in-memory stand-in for the Kubernetes gateway, for the controllers'
  unit tests (cluster tests use the real API server).

No test module imports from another test module: what two of them share lives here.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
