"""Where everything lives in the bucket. The one place that spells out key names.

::

    models/<model>/<version>/model.skops      the pipeline (skops, no pickle); <version> = 1, 2, ...
    models/<model>/<version>/manifest.json          what was trained, how, and its sha256
    models/<model>/<version>/result.json            the trainer's short summary
    models/<model>/<version>/claim.json             version marker, written first, write-once
    models/<model>/<version>/baseline/reference.parquet   bounded reference sample for drift
    models/<model>/<version>/baseline/stats.json    per-feature statistics of that sample
    models/<model>/<version>/baseline/calibration.json   classifiers: probability calibration
    inference-logs/<model>/<version>/<batch>        logged rows and predictions
    labels/<model>/<any/path>.csv|.parquet|.jsonl    ground truth for logged predictions
    labels/<model>/feedback/<YYYY-MM-DD>/<batch>    the same, posted to the model server
    reports/<monitor>/<time>/<file>                 drift reports
    snapshots/<model>/<sha256[:32]>/data.parquet    training sets built from served traffic

A snapshot's folder is the first 128 bits of the SHA-256 of its Parquet bytes: the key says
what the object holds, so an object found at a snapshot's key is that snapshot, and writing
the same training set twice writes nothing (issue 17, docs/feedback.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from continuum.errors import ConfigError

MODEL_FILE = "model.skops"
MANIFEST_FILE = "manifest.json"
RESULT_FILE = "result.json"
CLAIM_FILE = "claim.json"
REFERENCE_FILE = "baseline/reference.parquet"
STATS_FILE = "baseline/stats.json"
CALIBRATION_FILE = "baseline/calibration.json"  # isotonic curves per class (issue 16)
SNAPSHOT_FILE = "data.parquet"
SNAPSHOT_DIGEST_CHARS = 32  # hex digits of the content's SHA-256 naming a snapshot's folder
_DIGEST_PATTERN = re.compile(r"^[a-f0-9]{64}$")

# Versions are positive integers (the API's version numbers); the folder is the decimal number.
_VERSION_PATTERN = re.compile(r"^[1-9][0-9]{0,8}$")
# Model and monitor names become key segments: keep them to DNS-label-like names so a name can
# never climb out of its folder ("..") or collide with another ("a/b").
_NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")


def version_folder(version: int) -> str:
    """Version 3 -> folder name ``"3"``."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(f"{version!r} is not a model version: versions are 1, 2, 3, ...")
    return str(version)


def parse_version(folder: str) -> int | None:
    """Folder ``"3"`` -> 3; anything that is not a version folder -> None."""
    return int(folder) if _VERSION_PATTERN.match(folder) else None


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it is safe as a key segment, else raise ConfigError."""
    if not _NAME_PATTERN.match(name) or ".." in name:
        raise ConfigError(
            f"{kind} name {name!r} cannot be used in storage keys: use lowercase letters, "
            "digits, '-', '_' or '.', starting and ending with a letter or digit (max 63)"
        )
    return name


def model_prefix(model: str) -> str:
    return f"models/{check_name('model', model)}/"


def version_prefix(model: str, version: int) -> str:
    return f"{model_prefix(model)}{version_folder(version)}/"


def version_key(model: str, version: int, file: str) -> str:
    """Key of ``file`` (one of the *_FILE names) inside a model version folder."""
    return version_prefix(model, version) + file


def inference_log_prefix(model: str, version: int) -> str:
    return f"{inference_logs_prefix(model)}{version_folder(version)}/"


def labels_prefix(model: str) -> str:
    """Where label files of ``model`` go, whoever writes them (continuum.storage.labels)."""
    return f"labels/{check_name('model', model)}/"


def inference_logs_prefix(model: str) -> str:
    """Where every version's inference log batches of ``model`` live."""
    return f"inference-logs/{check_name('model', model)}/"


def snapshot_key(model: str, content_sha256: str) -> str:
    """``snapshots/<model>/<first 32 hex digits of the sha256>/data.parquet``."""
    if not _DIGEST_PATTERN.match(content_sha256):
        raise ValueError(f"{content_sha256!r} is not a hex SHA-256 digest")
    folder = content_sha256[:SNAPSHOT_DIGEST_CHARS]
    return f"snapshots/{check_name('model', model)}/{folder}/{SNAPSHOT_FILE}"


def report_prefix(monitor: str, time: str) -> str:
    return f"reports/{check_name('monitor', monitor)}/{time}/"


@dataclass(frozen=True)
class S3Uri:
    """A parsed ``s3://bucket/key`` URI; ``key`` may be a prefix or empty."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_uri(uri: str) -> S3Uri:
    """Split ``s3://bucket/key`` into its parts, or raise ConfigError."""
    scheme, sep, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme != "s3" or not sep or not bucket:
        raise ConfigError(f"{uri!r} is not an S3 URI: write it as s3://<bucket>/<key-or-prefix>")
    return S3Uri(bucket=bucket, key=key)


def model_uri(bucket: str, model: str, version: int) -> str:
    return str(S3Uri(bucket, version_prefix(model, version)))
