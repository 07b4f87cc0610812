"""API failures map to our own exceptions with readable messages."""

from __future__ import annotations

import json

import pytest

from continuum.errors import ContinuumError
from continuum.kube import (
    KubeError,
    RequestForbidden,
    ResourceConflict,
    ResourceInvalid,
    ResourceNotFound,
)
from continuum.kube.errors import error_for


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (404, ResourceNotFound),
        (409, ResourceConflict),
        (403, RequestForbidden),
        (422, ResourceInvalid),
        (400, ResourceInvalid),
    ],
)
def test_status_codes(status: int, cls: type[KubeError]) -> None:
    body = json.dumps({"kind": "Status", "reason": "Whatever", "message": "details here"})
    error = error_for(status, body.encode(), "create Job ml/x")
    assert type(error) is cls
    assert isinstance(error, ContinuumError)
    assert error.status == status
    assert str(error) == f"create Job ml/x: HTTP {status} Whatever: details here"


def test_other_statuses_and_odd_bodies() -> None:
    error = error_for(500, b"<html>oops</html>", "read Job ml/x")
    assert type(error) is KubeError
    assert str(error) == "read Job ml/x: HTTP 500"
    assert str(error_for(503, None, "w")) == "w: HTTP 503"
