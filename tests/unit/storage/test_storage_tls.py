"""The S3 client: addressing style, the CA bundle it trusts, and what a TLS failure says.

No network: requests are answered by a ``before-send`` hook, and TLS failures are built the way
botocore raises them (checked against a real handshake when this was written).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import SSLError
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.util.ssl_match_hostname import CertificateError

from continuum.errors import CertificateNotTrusted, ConfigError, StorageError, StorageUnavailable
from continuum.storage import S3Settings, make_client
from continuum.storage.client import _map_transport_error

ENDPOINT = "https://s3.example.internal:9443"


def settings(**fields: Any) -> S3Settings:
    base: dict[str, Any] = {
        "bucket": "models", "endpoint_url": ENDPOINT, "access_key": "AKID", "secret_key": "sk",
    }  # fmt: skip
    return S3Settings(**{**base, **fields})


class _EmptyBody:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""


def requested_url(client: Any) -> str:
    """The URL a HeadBucket of bucket 'models' goes to, answered locally."""
    seen: list[str] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        seen.append(request.url)
        return AWSResponse(request.url, 200, {}, _EmptyBody())

    client.meta.events.register("before-send.s3.HeadBucket", answer)
    client.head_bucket(Bucket="models")
    return seen[0]


def test_path_style_by_default() -> None:
    client = make_client(settings())
    assert client.meta.config.s3 == {"addressing_style": "path"}
    assert requested_url(client) == f"{ENDPOINT}/models"


def test_virtual_hosted_style_when_asked() -> None:
    client = make_client(settings(path_style=False))
    assert client.meta.config.s3 == {"addressing_style": "virtual"}
    assert requested_url(client) == "https://models.s3.example.internal:9443/"


def test_default_trust_store_without_a_bundle() -> None:
    assert make_client(settings())._endpoint.http_session._verify is True


def test_ca_bundle_is_what_the_client_verifies_with(tmp_path: Path) -> None:
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")  # read at the first connection only
    client = make_client(settings(ca_bundle=str(bundle)))
    assert client._endpoint.http_session._verify == str(bundle)


def test_missing_ca_bundle_names_the_path_and_the_spec_field(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(ConfigError) as refused:
        make_client(settings(ca_bundle=str(missing)))
    assert str(missing) in str(refused.value)
    assert "spec.storage.caBundle" in str(refused.value)


def test_a_directory_is_not_a_ca_bundle(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a readable file"):
        make_client(settings(ca_bundle=str(tmp_path)))


def ssl_error(cause: BaseException) -> SSLError:
    """A TLS failure as botocore raises it: urllib3's SSLError around the ssl module's error."""
    return SSLError(endpoint_url=f"{ENDPOINT}/models", error=Urllib3SSLError(cause))


def untrusted() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
    )
    error.verify_message = "self-signed certificate"
    return error


def test_untrusted_certificate_names_the_endpoint_and_the_fix() -> None:
    error = _map_transport_error(ssl_error(untrusted()), settings())
    assert type(error) is CertificateNotTrusted
    assert not isinstance(error, StorageUnavailable)  # never retried: it cannot heal
    text = str(error)
    assert ENDPOINT in text
    assert "certificate was not trusted" in text
    assert "self-signed certificate" in text
    assert "set spec.storage.caBundle" in text


def test_untrusted_with_a_bundle_says_the_bundle_lacks_the_ca() -> None:
    bundle = "/etc/continuum/s3-ca/ca-bundle.pem"
    error = _map_transport_error(ssl_error(untrusted()), settings(ca_bundle=bundle))
    assert type(error) is CertificateNotTrusted
    assert bundle in str(error)
    assert "does not hold the CA" in str(error)


def test_hostname_mismatch_is_an_untrusted_certificate_too() -> None:
    mismatch = CertificateError("hostname 's3.example.internal' doesn't match 'minio'")
    error = _map_transport_error(ssl_error(mismatch), settings())
    assert type(error) is CertificateNotTrusted
    assert "doesn't match" in str(error)
    assert "spec.storage.endpoint" in str(error)


def test_other_tls_failures_point_at_the_endpoint_scheme() -> None:
    wrong = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    error = _map_transport_error(ssl_error(wrong), settings())
    assert type(error) is StorageError
    assert ENDPOINT in str(error)
    assert "spec.storage.endpoint" in str(error)
