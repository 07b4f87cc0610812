"""The reference side: the served version's manifest (feature schema) and its baseline sample."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pandas as pd

from continuum.errors import ManifestInvalid
from continuum.storage import ObjectStore, layout, read_manifest

NUMERIC = "numeric"
CATEGORICAL = "categorical"
CLASSIFICATION = "classification"


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: str  # NUMERIC | CATEGORICAL
    dtype: str = ""  # the training column's pandas dtype, as the manifest spells it
    categories: tuple[str, ...] = ()  # every training category (str(value)), categoricals only


@dataclass(frozen=True)
class Reference:
    """What the current window is compared with."""

    features: tuple[FeatureSpec, ...]
    frame: pd.DataFrame  # the reference sample: feature columns (and the target)
    task: str | None
    target: str | None

    @property
    def rows(self) -> int:
        return len(self.frame)

    def classes(self) -> list[str]:
        """Class labels as the trainer sees them (strings), sorted; empty for regressors."""
        if self.task != CLASSIFICATION or self.target not in self.frame:
            return []
        return sorted(set(self.frame[self.target].dropna().astype(str)))


def load_reference(store: ObjectStore, model: str, version: int) -> Reference:
    manifest = read_manifest(store, model, version)
    features = feature_specs(manifest, f"{model}/{version}")
    data = store.get_bytes(layout.version_key(model, version, layout.REFERENCE_FILE))
    frame = pd.read_parquet(io.BytesIO(data))
    missing = [f.name for f in features if f.name not in frame.columns]
    if missing:
        raise ManifestInvalid(
            f"reference sample of {model}/{version} lacks features {missing}; retrain to rebuild it"
        )
    target = manifest.get("target")
    return Reference(
        features, frame, manifest.get("task"), target if isinstance(target, str) else None
    )


def feature_specs(manifest: dict[str, Any], where: str) -> tuple[FeatureSpec, ...]:
    entries = manifest.get("features")
    if not isinstance(entries, list) or not entries:
        raise ManifestInvalid(f"manifest of {where} has no feature schema; retrain to add one")
    try:
        specs = tuple(_feature_spec(e) for e in entries)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ManifestInvalid(f"manifest of {where} has a malformed feature entry: {exc}") from exc
    unknown = [s.name for s in specs if s.kind not in {NUMERIC, CATEGORICAL}]
    if unknown:
        raise ManifestInvalid(f"manifest of {where}: features {unknown} have an unknown kind")
    return specs


def _feature_spec(entry: dict[str, Any]) -> FeatureSpec:
    listed = entry.get("categories")
    return FeatureSpec(
        str(entry["name"]),
        str(entry["kind"]),
        str(entry.get("dtype") or ""),
        tuple(str(c) for c in listed) if isinstance(listed, list) else (),
    )
