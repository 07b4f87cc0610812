"""Reading a finished run's manifest for the operator, over connections kept for reuse.

The operator checks every finished TrainingJob against the manifest its trainer wrote. The runs
of one namespace usually share one connection (endpoint, credentials, CA bundle), and a boto3
client costs about 14 MB and tens of milliseconds to make, so a store is made once per distinct
connection and kept (at most ``MAX_STORES``; the least recently used goes first).

A CA bundle reaches the operator as PEM text from a Secret or ConfigMap while botocore wants a
file: each distinct bundle is written once, named by its digest, into a private directory of
this process. Called from worker threads (``asyncio.to_thread``), hence the lock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from continuum.errors import ConfigError
from continuum.storage.client import ObjectStore
from continuum.storage.models import read_manifest
from continuum.storage.settings import S3Settings

MAX_STORES = 16
_lock = threading.Lock()
_stores: OrderedDict[S3Settings, ObjectStore] = OrderedDict()
_ca_dir: Path | None = None


def fetch_manifest(
    settings: S3Settings, model: str, version: int, *, ca_pem: str | None = None
) -> dict[str, Any]:
    """The checked manifest of ``model`` ``version`` (errors of ``continuum.errors``)."""
    if ca_pem is not None:
        settings = dataclasses.replace(settings, ca_bundle=str(_ca_file(ca_pem)))
    return read_manifest(_store_for(settings), model, version)


def _store_for(settings: S3Settings) -> ObjectStore:
    with _lock:
        store = _stores.get(settings)
        if store is not None:
            _stores.move_to_end(settings)
            return store
    store = ObjectStore(settings)  # made outside the lock: it takes tens of milliseconds
    with _lock:
        _stores[settings] = store
        while len(_stores) > MAX_STORES:
            _stores.popitem(last=False)
    return store


def _ca_file(pem: str) -> Path:
    global _ca_dir  # noqa: PLW0603 - one private directory per process, made on first use
    with _lock:
        try:
            if _ca_dir is None:
                _ca_dir = Path(tempfile.mkdtemp(prefix="continuum-s3-ca-"))  # mode 0700
            path = _ca_dir / f"{hashlib.sha256(pem.encode()).hexdigest()}.pem"
            if not path.exists():
                path.write_text(pem, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot write the S3 CA bundle to a temporary file ({exc.strerror}); the "
                "operator needs a writable temporary directory (TMPDIR, an emptyDir at /tmp)"
            ) from exc
        return path
