"""Every error Continuum raises on purpose, in one hierarchy.

Catch ``ContinuumError`` to handle all of them; catch a subclass to handle one kind.
Each message says what went wrong and what to do about it, so it can be shown as is
in a status condition, an Event or a pod termination message (no secrets in messages).

Tree::

    ContinuumError
    ├── ConfigError              the spec asks for something impossible (unknown estimator,
    │                            bad parameter, metric that does not fit the task, ...)
    ├── DatasetError
    │   ├── DatasetNotFound      no object at the dataset URI
    │   ├── DatasetInvalid       a column is missing, of the wrong type, too null, ...
    │   └── DatasetTooLarge      the dataset exceeds the trainer's size limit
    ├── TrainingError            fitting or evaluating the pipeline failed
    ├── StorageError             talking to S3 failed (endpoint, network, bucket, ...)
    │   ├── ObjectNotFound       a key (or bucket) the caller needs is not there
    │   ├── ObjectExists         a write-once key is taken (conditional write refused)
    │   ├── AccessDenied         the credentials are wrong or lack a permission
    │   ├── CertificateNotTrusted  the endpoint's TLS certificate did not verify
    │   └── StorageUnavailable   S3 is down, unreachable or overloaded: worth retrying
    ├── IntegrityError           a stored artefact does not match what its manifest says
    │   ├── DigestMismatch       the model file's sha256 differs from the manifest's
    │   └── ManifestInvalid      a manifest is not JSON or lacks a required field
    └── VersionConflict          another writer took the model version we tried to claim
"""

# Names read as outcomes (httpx style: "DatasetNotFound"), so no "Error" suffix on leaves.
# ruff: noqa: N818

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "CertificateNotTrusted",
    "ConfigError",
    "ContinuumError",
    "DatasetError",
    "DatasetInvalid",
    "DatasetNotFound",
    "DatasetTooLarge",
    "DigestMismatch",
    "IntegrityError",
    "ManifestInvalid",
    "ObjectExists",
    "ObjectNotFound",
    "StorageError",
    "StorageUnavailable",
    "TrainingError",
    "VersionConflict",
]


class ContinuumError(Exception):
    """Base class of every error Continuum raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(ContinuumError):
    """The spec is well-formed but asks for something that cannot be done."""


class DatasetError(ContinuumError):
    """The training dataset cannot be used."""


class DatasetNotFound(DatasetError):
    """No dataset object exists at the given URI."""


class DatasetInvalid(DatasetError):
    """The dataset does not satisfy the spec; the message names the column and the problem."""

    def __init__(self, column: str | None, problem: str) -> None:
        where = f"column {column!r}: " if column is not None else ""
        super().__init__(f"dataset invalid: {where}{problem}")
        self.column = column
        self.problem = problem


class DatasetTooLarge(DatasetError):
    """The dataset is larger than the trainer is allowed to load."""


class TrainingError(ContinuumError):
    """Fitting or evaluating the pipeline failed."""


class StorageError(ContinuumError):
    """An S3 request failed."""


class ObjectNotFound(StorageError):
    """The requested S3 object (or bucket) does not exist."""


class ObjectExists(StorageError):
    """A write-once key already exists; S3 refused the conditional write."""


class AccessDenied(StorageError):
    """S3 refused the request: wrong credentials or a missing permission."""


class CertificateNotTrusted(StorageError):
    """The S3 endpoint's TLS certificate did not verify: no retry can fix it, a CA bundle can."""


class StorageUnavailable(StorageError):
    """S3 refused the connection, timed out or answered 5xx/throttling: a retry may succeed."""


class IntegrityError(ContinuumError):
    """A stored artefact does not match its manifest."""


class DigestMismatch(IntegrityError):
    """The model file's sha256 is not the one recorded in its manifest."""


class ManifestInvalid(IntegrityError):
    """A manifest cannot be parsed or lacks a required field."""


class VersionConflict(ContinuumError):
    """Another writer claimed the model version this one tried to take."""
