"""botocore failures become continuum errors with messages that say what to check."""

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from continuum.errors import AccessDenied, AlreadyExists, ObjectNotFound, StorageError
from continuum.storage import S3Settings
from continuum.storage.client import _map_client_error, _map_transport_error


def client_error(code: str, status: int) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": "msg"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "PutObject")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status", "expected", "words"),
    [
        ("NoSuchKey", 404, ObjectNotFound, "no such object"),
        ("404", 404, ObjectNotFound, "no such object"),
        ("NoSuchBucket", 404, ObjectNotFound, "bucket 'b' does not exist"),
        ("AccessDenied", 403, AccessDenied, "check the access key"),
        ("InvalidAccessKeyId", 403, AccessDenied, "storage Secret"),
        ("SignatureDoesNotMatch", 403, AccessDenied, "secret key"),
        ("PreconditionFailed", 412, AlreadyExists, "write-once"),
        ("ConditionalRequestConflict", 409, AlreadyExists, "write-once"),
        ("InternalError", 500, StorageError, "InternalError"),
    ],
)
def test_client_errors_map_to_the_hierarchy(code, status, expected, words):
    error = _map_client_error(client_error(code, status), "write", "b", "k")
    assert type(error) is expected
    assert words in str(error)


def test_unreachable_endpoint_names_the_endpoint_and_the_spec_field():
    settings = S3Settings(bucket="b", endpoint_url="http://127.0.0.1:1")
    error = _map_transport_error(
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), settings
    )
    assert type(error) is StorageError
    assert "http://127.0.0.1:1" in str(error)
    assert "spec.storage.endpoint" in str(error)


def test_missing_credentials_name_the_variables():
    error = _map_transport_error(NoCredentialsError(), S3Settings(bucket="b"))
    assert isinstance(error, AccessDenied)
    assert "AWS_ACCESS_KEY_ID" in str(error)
