"""The cluster tier: every test here is marked ``cluster``.

Its fixtures (a client for the real API server, a fresh namespace per test, MinIO, the
operator) come from tests/kit/cluster.py, which tests/conftest.py registers as a plugin.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)
