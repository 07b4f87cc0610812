"""Every error Continuum raises on purpose, in one hierarchy under ``ContinuumError``.

Catch ``ContinuumError`` to handle all of them; catch a subclass to handle one kind.
Each message says what went wrong and what to do about it, so it can be shown as is
in a status condition, an Event or a pod termination message (no secrets in messages).

The tree below is the whole real one (``tests/unit/test_errors.py`` walks the classes and
compares). Three subtrees live beside the code that raises them, so that this module stays
at the bottom of the import graph: ``KubeError`` in ``continuum.kube.errors``,
``ServingError`` in ``continuum.server.errors`` (each with its HTTP status) and
``ModelIncompatible`` in ``continuum.server.model``; ``Unsupported``, ``EvidenceInvalid``,
``CalibrationInvalid``, ``PerformanceMismatch`` and ``RolloutActionRefused`` beside the server's
compiler, the rollout analysis, the monitor's performance check and the rollout CLI.

Names follow one rule:

* ``<Area>Error`` names an area: catch it to handle everything that goes wrong there.
  Every class with subclasses is one; an area may have no finer kinds yet (``ConfigError``,
  ``TrainingError``).
* Every other class is one outcome, named ``<Subject><Outcome>``, subject first and no
  ``Error`` suffix: ``DatasetInvalid``, ``ObjectNotFound``, ``DigestMismatch``,
  ``RequestThrottled``.
* A name is used once in the package: the trainer reports a failure by its class name
  (the TrainingJob's reason), and a log line names the class without its module.

Tree::

    ContinuumError
    ├── ConfigError                the spec asks for something impossible (unknown estimator,
    │                              bad parameter, metric that does not fit the task, ...)
    ├── DatasetError
    │   ├── DatasetNotFound        no object at the dataset URI
    │   ├── DatasetInvalid         a column is missing, of the wrong type, too null, ...
    │   └── DatasetTooLarge        the dataset exceeds the trainer's size limit
    ├── TrainingError              fitting or evaluating the pipeline failed
    ├── StorageError               talking to S3 failed (endpoint, network, bucket, ...)
    │   ├── ObjectNotFound         a key (or bucket) the caller needs is not there
    │   ├── ObjectExists           a write-once key is taken (conditional write refused)
    │   ├── AccessDenied           the credentials are wrong or lack a permission
    │   ├── CertificateNotTrusted  the endpoint's TLS certificate did not verify
    │   └── StorageUnavailable     S3 is down, unreachable or overloaded: worth retrying
    ├── IntegrityError             a stored artefact does not match what its manifest says
    │   ├── DigestMismatch         the model file's sha256 differs from the manifest's
    │   ├── ManifestInvalid        a manifest is not JSON or lacks a required field
    │   ├── ModelIncompatible      made by a scikit-learn the model server cannot vouch for
    │   └── CalibrationInvalid     a version's calibration.json cannot be used for estimation
    ├── VersionConflict            another writer took the model version we tried to claim
    ├── KubeError                  a Kubernetes API request failed (other statuses)
    │   ├── ResourceNotFound       404: the object (or its kind) does not exist
    │   ├── ResourceConflict       409: the object exists, or changed since it was read
    │   ├── RequestForbidden       403: RBAC refused the request
    │   ├── ResourceInvalid        400, 422: the API server rejected the object
    │   ├── RequestThrottled       429: the API server shed the request (retryable)
    │   └── KubeUnavailable        5xx: the API server failed (retryable)
    ├── Unsupported                a pipeline the server's compiler cannot take (it falls back)
    ├── EvidenceInvalid            a model server's rollout counters are not what the operator reads
    ├── PerformanceMismatch        spec.performance does not fit the served version (metric, task)
    ├── RolloutActionRefused       `continuum rollout` cannot act: no such deployment or rollout
    └── ServingError               500: the model server's answers, one HTTP status each
        ├── RequestInvalid         400: the body is not JSON, or not an inference request
        ├── ModelNotFound          404: unknown model name or version
        ├── PayloadTooLarge        413: the body exceeds the server's byte limit
        ├── InputInvalid           422: the tensors do not fit the model (feature, shape, ...)
        ├── ServerUnavailable      503: no verified model is loaded (yet), or the server is busy
        └── PredictionFailed       500: the model failed on inputs that passed every check
"""

# Outcomes carry no "Error" suffix (the naming rule above).
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
