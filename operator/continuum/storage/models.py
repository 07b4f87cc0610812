"""Model versions: monotonic allocation that never overwrites, listing, manifests.

Versions are 1, 2, 3, ... per model. A version is taken by writing ``claim.json`` into its
folder with S3's conditional write (``If-None-Match: *``), so of two trainers racing for 7
exactly one wins and the other moves on to 8. The claim is read back as a second guard for
servers that ignore the precondition. Every later file in the folder is write-once too.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from continuum.errors import ManifestInvalid, ObjectExists, ObjectNotFound, VersionConflict
from continuum.storage import layout
from continuum.storage.client import ObjectStore

MAX_CLAIM_ATTEMPTS = 5
REQUIRED_MANIFEST_FIELDS = ("model", "version", "sha256", "qualified", "metrics")


def list_versions(store: ObjectStore, model: str) -> list[int]:
    """Claimed versions of ``model``, oldest first (finished or not)."""
    folders = store.list_folders(layout.model_prefix(model))
    return sorted(n for n in map(layout.parse_version, folders) if n is not None)


def allocate_version(store: ObjectStore, model: str, *, claimant: str) -> int:
    """Claim the next free version of ``model`` for ``claimant`` (e.g. a TrainingJob name)."""
    existing = list_versions(store, model)
    first = existing[-1] + 1 if existing else 1
    for version in range(first, first + MAX_CLAIM_ATTEMPTS):
        if _try_claim(store, model, version, claimant):
            return version
    raise VersionConflict(
        f"could not claim a version of model {model!r}: versions {first}.."
        f"{first + MAX_CLAIM_ATTEMPTS - 1} were all taken by other trainers meanwhile; "
        "retry the training run"
    )


def _try_claim(store: ObjectStore, model: str, version: int, claimant: str) -> bool:
    key = layout.version_key(model, version, layout.CLAIM_FILE)
    claim = {
        "claimant": claimant,
        "token": uuid.uuid4().hex,
        "claimedAt": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        store.put_json(key, claim, if_absent=True)
    except ObjectExists:
        return False
    # Read back: a server that ignores If-None-Match would have let a rival overwrite us.
    return bool(store.get_json(key).get("token") == claim["token"])


def read_manifest(store: ObjectStore, model: str, version: int) -> dict[str, Any]:
    """The manifest of a finished version; ObjectNotFound if the version has none (yet)."""
    key = layout.version_key(model, version, layout.MANIFEST_FILE)
    try:
        data = store.get_bytes(key)
    except ObjectNotFound as exc:
        raise ObjectNotFound(
            f"model {model!r} version {version} has no manifest: it does not exist or its "
            "training has not finished"
        ) from exc
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        # Damaged, not unavailable: an IntegrityError, so readers fail closed instead of
        # retrying as they would on a StorageError.
        raise ManifestInvalid(
            f"manifest of {model}/{version} ({key}) is not JSON: {exc}; the version folder "
            "is damaged, do not serve it"
        ) from exc
    return check_manifest(manifest, model, version)


def check_manifest(manifest: Any, model: str, version: int) -> dict[str, Any]:
    """Return ``manifest`` if it is a dict with the fields readers rely on and the right name."""
    where = f"manifest of {model}/{version}"
    if not isinstance(manifest, dict):
        raise ManifestInvalid(f"{where} is not a JSON object; the version folder is damaged")
    missing = [name for name in REQUIRED_MANIFEST_FIELDS if name not in manifest]
    if missing:
        raise ManifestInvalid(f"{where} lacks {', '.join(missing)}; retrain to replace it")
    if (manifest["model"], manifest["version"]) != (model, version):
        raise ManifestInvalid(
            f"{where} describes {manifest['model']}/{manifest['version']}: it was copied or "
            "moved; do not serve it"
        )
    return manifest


def latest_qualified_version(store: ObjectStore, model: str) -> int | None:
    """Newest version whose manifest says it passed its gate, or None."""
    for version in reversed(list_versions(store, model)):
        try:
            if read_manifest(store, model, version).get("qualified") is True:
                return version
        except ObjectNotFound:
            continue  # claimed but unfinished, or a failed run: not a candidate
    return None
