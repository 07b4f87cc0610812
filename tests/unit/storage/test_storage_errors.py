"""botocore failures become continuum errors with messages that say what to check."""

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from botocore.stub import Stubber

from continuum.errors import (
    AccessDenied,
    ObjectExists,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
)
from continuum.storage import S3Settings
from continuum.storage.client import ObjectStore, _map_client_error, _map_transport_error


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
        ("PreconditionFailed", 412, ObjectExists, "write-once"),
        ("ConditionalRequestConflict", 409, ObjectExists, "write-once"),
        ("InternalError", 500, StorageUnavailable, "S3 is unavailable"),
        ("SlowDown", 503, StorageUnavailable, "SlowDown"),
        ("MalformedXML", 400, StorageError, "MalformedXML"),
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
    assert type(error) is StorageUnavailable  # refused: the server may be restarting
    assert "http://127.0.0.1:1" in str(error)
    assert "spec.storage.endpoint" in str(error)


def test_missing_credentials_name_the_variables():
    error = _map_transport_error(NoCredentialsError(), S3Settings(bucket="b"))
    assert isinstance(error, AccessDenied)
    assert "AWS_ACCESS_KEY_ID" in str(error)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("InvalidAccessKeyId", "AWS_ACCESS_KEY_ID"),
        ("SignatureDoesNotMatch", "AWS_SECRET_ACCESS_KEY"),
        ("AccessDenied", "bucket policy"),
    ],
)
def test_a_denied_bucket_check_says_which_credential(code, words):
    s3 = boto3.client(
        "s3", region_name="us-east-1", endpoint_url="http://s3.invalid",
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="not-a-real-secret",
    )  # fmt: skip
    with Stubber(s3) as stub:
        stub.add_client_error("head_bucket", "403", http_status_code=403)
        stub.add_client_error("list_objects_v2", code, http_status_code=403)
        with pytest.raises(AccessDenied) as denied:
            ObjectStore(S3Settings(bucket="b"), client=s3).check_bucket()
    assert words in str(denied.value)
    assert "credentials" in str(denied.value) or code == "AccessDenied"
    assert "not-a-real-secret" not in str(denied.value)
