import pytest

from continuum.errors import ConfigError
from continuum.storage import S3Settings

ENV = {
    "AWS_ACCESS_KEY_ID": "AKIA-EXAMPLE-ID",
    "AWS_SECRET_ACCESS_KEY": "very-secret-value",
    "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000",
    "AWS_REGION": "eu-west-1",
    "CONTINUUM_S3_BUCKET": "models",
}


def test_settings_come_from_the_standard_variables():
    settings = S3Settings.from_env(ENV)
    assert settings.bucket == "models"
    assert settings.endpoint_url == "http://127.0.0.1:9000"
    assert settings.region == "eu-west-1"
    assert (settings.access_key, settings.secret_key) == ("AKIA-EXAMPLE-ID", "very-secret-value")


def test_spec_values_override_the_environment():
    settings = S3Settings.from_env(ENV, endpoint_url="http://minio:9000", bucket="other")
    assert (settings.endpoint_url, settings.bucket) == ("http://minio:9000", "other")


def test_continuum_endpoint_variable_wins_over_aws_ones():
    settings = S3Settings.from_env({**ENV, "CONTINUUM_S3_ENDPOINT": "http://mine:1"})
    assert settings.endpoint_url == "http://mine:1"


def test_region_defaults_to_us_east_1():
    settings = S3Settings.from_env({"CONTINUUM_S3_BUCKET": "b"})
    assert settings.region == "us-east-1"
    assert settings.access_key is None


def test_secrets_never_appear_in_repr_or_str():
    settings = S3Settings.from_env(ENV)
    for text in (repr(settings), str(settings), f"{settings}"):
        assert "very-secret-value" not in text
        assert "AKIA-EXAMPLE-ID" not in text
        assert "models" in text


def test_missing_bucket_names_both_places_to_set_it():
    with pytest.raises(ConfigError, match=r"spec\.storage\.bucket or CONTINUUM_S3_BUCKET"):
        S3Settings.from_env({})


def test_path_style_is_the_default():
    assert S3Settings.from_env(ENV).path_style is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("false", False), ("False", False), ("0", False)],
)
def test_path_style_from_the_environment(text, expected):
    settings = S3Settings.from_env({**ENV, "CONTINUUM_S3_PATH_STYLE": text})
    assert settings.path_style is expected


@pytest.mark.parametrize("text", ["yes", "off", "2", "virtual"])
def test_bad_path_style_names_the_variable_and_the_value(text):
    with pytest.raises(ConfigError, match=rf"CONTINUUM_S3_PATH_STYLE.*{text!r}"):
        S3Settings.from_env({**ENV, "CONTINUUM_S3_PATH_STYLE": text})


def test_ca_bundle_comes_from_aws_ca_bundle():
    settings = S3Settings.from_env({**ENV, "AWS_CA_BUNDLE": "/etc/continuum/s3-ca/ca-bundle.pem"})
    assert settings.ca_bundle == "/etc/continuum/s3-ca/ca-bundle.pem"
    assert S3Settings.from_env(ENV).ca_bundle is None


def test_encryption_from_env_and_its_mistakes_named():
    env = {"CONTINUUM_S3_BUCKET": "b", "CONTINUUM_S3_SSE": "SSE-KMS",
           "CONTINUUM_S3_SSE_KMS_KEY_ID": "key-1"}  # fmt: skip
    settings = S3Settings.from_env(env)
    assert settings.encryption_args() == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "key-1"}
    assert S3Settings.from_env({"CONTINUUM_S3_BUCKET": "b"}).encryption_args() == {}
    with pytest.raises(ConfigError, match="CONTINUUM_S3_SSE must be SSE-S3 or SSE-KMS"):
        S3Settings.from_env({**env, "CONTINUUM_S3_SSE": "aes"})
    with pytest.raises(ConfigError, match="a KMS key id needs SSE-KMS"):
        S3Settings.from_env({**env, "CONTINUUM_S3_SSE": "SSE-S3"})
