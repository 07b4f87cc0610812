"""continuum.storage: the only code that talks to S3, and the owner of the bucket layout."""

from continuum.storage.client import ObjectInfo, ObjectStore, make_client
from continuum.storage.datasets import list_dataset_objects
from continuum.storage.layout import S3Uri, model_uri, parse_s3_uri, version_key
from continuum.storage.manifests import fetch_manifest
from continuum.storage.models import (
    allocate_version,
    check_manifest,
    latest_qualified_version,
    list_versions,
    read_manifest,
)
from continuum.storage.retry import RetryNotice, RetryPolicy
from continuum.storage.settings import S3Settings

__all__ = [
    "ObjectInfo",
    "ObjectStore",
    "RetryNotice",
    "RetryPolicy",
    "S3Settings",
    "S3Uri",
    "allocate_version",
    "check_manifest",
    "fetch_manifest",
    "latest_qualified_version",
    "list_dataset_objects",
    "list_versions",
    "make_client",
    "model_uri",
    "parse_s3_uri",
    "read_manifest",
    "version_key",
]
