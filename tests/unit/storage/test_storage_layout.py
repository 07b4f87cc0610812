import pytest

from continuum.errors import ConfigError
from continuum.storage import layout


def test_version_folders_are_decimal_numbers():
    assert layout.version_folder(12) == "12"
    assert layout.parse_version("12") == 12


@pytest.mark.parametrize("folder", ["0", "v1", "01", "1a", "", "-1"])
def test_non_version_folders_parse_to_none(folder):
    assert layout.parse_version(folder) is None


@pytest.mark.parametrize("version", [0, -3, True, "3"])
def test_invalid_versions_are_refused(version):
    with pytest.raises(ConfigError, match="not a model version"):
        layout.version_folder(version)


def test_version_keys_follow_the_documented_layout():
    assert layout.version_key("churn", 3, layout.MODEL_FILE) == "models/churn/3/model.skops"
    assert layout.version_key("churn", 3, layout.STATS_FILE) == "models/churn/3/baseline/stats.json"
    assert layout.inference_log_prefix("churn", 3) == "inference-logs/churn/3/"
    assert layout.report_prefix("mon", "20260101T000000Z") == "reports/mon/20260101T000000Z/"
    assert layout.model_uri("b", "churn", 3) == "s3://b/models/churn/3/"


@pytest.mark.parametrize("name", ["../etc", "a/b", "Upper", "-lead", "", "x" * 64, "a..b"])
def test_names_that_could_escape_their_folder_are_refused(name):
    with pytest.raises(ConfigError, match="cannot be used in storage keys"):
        layout.model_prefix(name)


def test_s3_uri_parsing():
    assert layout.parse_s3_uri("s3://bucket/a/b.csv") == layout.S3Uri("bucket", "a/b.csv")
    assert layout.parse_s3_uri("s3://bucket") == layout.S3Uri("bucket", "")
    assert str(layout.S3Uri("bucket", "p/")) == "s3://bucket/p/"


@pytest.mark.parametrize("uri", ["http://b/k", "bucket/key", "s3://", "s3:///key"])
def test_bad_s3_uris_say_how_to_write_one(uri):
    with pytest.raises(ConfigError, match="s3://<bucket>/<key-or-prefix>"):
        layout.parse_s3_uri(uri)


def test_a_snapshot_key_names_its_content():
    digest = "ab" * 32
    assert layout.snapshot_key("churn", digest) == f"snapshots/churn/{'ab' * 16}/data.parquet"
    with pytest.raises(ValueError, match="not a hex SHA-256"):
        layout.snapshot_key("churn", "abc")
    with pytest.raises(ConfigError, match="cannot be used in storage keys"):
        layout.snapshot_key("../x", digest)
    assert layout.inference_log_prefix("churn", 3) == "inference-logs/churn/3/"
