"""Retrying transient S3 failures: which errors, how far apart, until when, write-once safety."""

import io
import socket

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.response import StreamingBody
from botocore.stub import Stubber
from urllib3.exceptions import NameResolutionError

from continuum.errors import ObjectExists, ObjectNotFound, StorageError, StorageUnavailable
from continuum.storage import S3Settings
from continuum.storage.client import ObjectStore, _map_transport_error
from continuum.storage.retry import RetryNotice, RetryPolicy, call_with_retry


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def policy(fake: FakeTime, deadline: float = 90, **kwargs) -> RetryPolicy:
    return RetryPolicy(deadline, sleep=fake.sleep, clock=lambda: fake.now, **kwargs)


def failing(times: int, error: Exception, result: str = "done"):
    calls = {"n": 0}

    def operation() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error
        return result

    return operation, calls


def test_an_outage_shorter_than_the_deadline_is_ridden_out_with_doubling_capped_delays():
    fake, notices = FakeTime(), []
    operation, calls = failing(7, StorageUnavailable("down"))
    retry = policy(fake, first_delay=1, max_delay=10, on_retry=notices.append)
    assert call_with_retry(operation, retry) == "done"
    assert calls["n"] == 8
    assert fake.sleeps == [1, 2, 4, 8, 10, 10, 10]
    assert [n.attempt for n in notices] == [1, 2, 3, 4, 5, 6, 7]
    assert notices[-1].waited == 35
    assert all(isinstance(n, RetryNotice) and n.error.message == "down" for n in notices)


def test_past_the_deadline_the_last_error_is_raised_saying_how_long_it_tried():
    fake = FakeTime()
    operation, calls = failing(1000, StorageUnavailable("cannot reach S3"))
    with pytest.raises(StorageUnavailable) as raised:
        call_with_retry(operation, policy(fake, deadline=60))
    assert sum(fake.sleeps) <= 60
    assert fake.now + 10 > 60  # it stopped only because the next wait would pass the deadline
    assert "cannot reach S3" in raised.value.message
    assert f"{calls['n']} attempts" in raised.value.message


@pytest.mark.parametrize("error", [ObjectNotFound("gone"), StorageError("bad"), ValueError("x")])
def test_errors_a_retry_cannot_fix_are_raised_at_once(error):
    fake = FakeTime()
    operation, calls = failing(1, error)
    with pytest.raises(type(error)):
        call_with_retry(operation, policy(fake))
    assert calls["n"] == 1
    assert fake.sleeps == []


def test_without_a_policy_nothing_is_retried():
    operation, calls = failing(1, StorageUnavailable("down"))
    with pytest.raises(StorageUnavailable):
        call_with_retry(operation, None)
    assert calls["n"] == 1


def test_refused_connection_is_transient_but_an_unknown_host_is_not():
    settings = S3Settings(bucket="b", endpoint_url="http://minio.example.svc:9000")
    refused = EndpointConnectionError(
        endpoint_url="http://minio.example.svc:9000", error=ConnectionRefusedError(111, "refused")
    )
    assert type(_map_transport_error(refused, settings)) is StorageUnavailable
    for cause in (socket.gaierror(-2, "Name or service not known"),
                  NameResolutionError("minio.example.svc", None, "no such host")):  # fmt: skip
        unknown = EndpointConnectionError(endpoint_url="http://x", error=cause)
        error = _map_transport_error(unknown, settings)
        assert type(error) is StorageError
        assert "spec.storage.endpoint" in str(error)


def stubbed_store(fake: FakeTime) -> tuple[ObjectStore, Stubber]:
    s3 = boto3.client(
        "s3", region_name="us-east-1", endpoint_url="http://s3.invalid",
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="not-a-real-secret",
    )  # fmt: skip
    return ObjectStore(S3Settings(bucket="b"), client=s3, retry=policy(fake)), Stubber(s3)


def test_the_store_retries_each_operation_through_503s():
    fake = FakeTime()
    store, stub = stubbed_store(fake)
    with stub:
        stub.add_client_error("head_bucket", "ServiceUnavailable", http_status_code=503)
        stub.add_client_error("head_bucket", "XMinioServerNotInitialized", http_status_code=503)
        stub.add_response("head_bucket", {})
        store.check_bucket()
        stub.assert_no_pending_responses()
    assert fake.sleeps == [1, 2]


def test_a_retried_write_once_that_finds_its_own_bytes_succeeds():
    fake = FakeTime()
    store, stub = stubbed_store(fake)
    with stub:
        stub.add_client_error("put_object", "RequestTimeout", http_status_code=503)
        stub.add_client_error("put_object", "PreconditionFailed", http_status_code=412)
        stub.add_response("get_object", {"Body": _body(b"ours")})
        store.put_bytes("models/m/1/claim.json", b"ours", if_absent=True)
        stub.assert_no_pending_responses()


def test_a_write_once_key_holding_other_bytes_is_still_refused():
    fake = FakeTime()
    store, stub = stubbed_store(fake)
    with stub:
        stub.add_client_error("put_object", "PreconditionFailed", http_status_code=412)
        stub.add_response("get_object", {"Body": _body(b"a rival's claim")})
        with pytest.raises(ObjectExists):
            store.put_bytes("models/m/1/claim.json", b"ours", if_absent=True)


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def test_through_botocore_a_name_that_does_not_resolve_fails_at_once(monkeypatch):
    def no_such_host(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)  # no lookup leaves the machine
    fake = FakeTime()
    settings = S3Settings(bucket="b", endpoint_url="http://nowhere.example.svc:9000",
                          access_key="AKIDEXAMPLE", secret_key="not-a-real-secret")  # fmt: skip
    store = ObjectStore(settings, retry=policy(fake))
    with pytest.raises(StorageError) as raised:
        store.check_bucket()
    assert type(raised.value) is StorageError
    assert "spec.storage.endpoint" in raised.value.message
    assert fake.sleeps == []


def test_through_botocore_a_refused_connection_is_retried(monkeypatch):
    fake = FakeTime()
    settings = S3Settings(bucket="b", endpoint_url="http://127.0.0.1:1",
                          access_key="AKIDEXAMPLE", secret_key="not-a-real-secret")  # fmt: skip
    store = ObjectStore(settings, retry=policy(fake, deadline=5))
    with pytest.raises(StorageUnavailable, match="attempts"):
        store.check_bucket()
    assert fake.sleeps == [1, 2]
