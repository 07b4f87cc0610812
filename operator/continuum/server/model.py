"""The one model version this server serves: verified load, compatibility checks, predict.

Loading fails closed: the bytes must match the manifest's sha256 (``load_verified_model``) and
the manifest's scikit-learn major.minor must equal the running one, because a pipeline pickled
by another minor release may load yet predict differently.
"""

# ModelIncompatible reads as an outcome, like the names in continuum.errors.
# ruff: noqa: N818

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import sklearn

from continuum.errors import IntegrityError, ManifestInvalid
from continuum.modelio import load_verified_model
from continuum.server.compiled import Verdict
from continuum.server.scoring import Scorer
from continuum.storage import ObjectStore

NUMERIC = "numeric"
CATEGORICAL = "categorical"
CLASSIFICATION = "classification"


class ModelIncompatible(IntegrityError):
    """The model was made with a scikit-learn this server cannot vouch for."""


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: str  # NUMERIC | CATEGORICAL
    nullable: bool  # the pipeline imputes missing values of this feature


@dataclass(frozen=True)
class Prediction:
    """Outputs for a block of rows; ``proba`` columns follow ``ServedModel.classes``."""

    labels: np.ndarray
    proba: np.ndarray | None

    def rows(self, start: int, stop: int) -> Prediction:
        proba = None if self.proba is None else self.proba[start:stop]
        return Prediction(labels=self.labels[start:stop], proba=proba)


@dataclass(frozen=True)
class ServedModel:
    name: str
    version: int
    sha256: str
    pipeline: Any
    features: tuple[FeatureSpec, ...]
    classes: tuple[Any, ...] | None  # None for regressors
    has_proba: bool = False  # some classifiers (e.g. LinearSVC) have no predict_proba

    @property
    def is_classifier(self) -> bool:
        return self.classes is not None

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(feature.name for feature in self.features)

    @cached_property
    def positions(self) -> dict[str, int]:
        """Schema position of each feature (the decoder's fast branch)."""
        return {feature.name: index for index, feature in enumerate(self.features)}

    @cached_property
    def categorical_names(self) -> frozenset[str]:
        """The categorical features' names (the decoder's fast branch)."""
        return frozenset(f.name for f in self.features if f.kind == CATEGORICAL)

    @cached_property
    def scorer(self) -> Scorer:
        return Scorer(self.pipeline, self.feature_names, has_proba=self.has_proba)

    @property
    def scoring(self) -> Verdict:
        """How this model is scored (compiled or scikit-learn's steps) and why."""
        return self.scorer.verdict

    def predict(self, columns: dict[str, np.ndarray]) -> Prediction:
        """Predict a block of rows given as one array per feature (already validated)."""
        labels, proba = self.scorer(columns)
        return Prediction(labels=labels, proba=proba)


def load_served_model(store: ObjectStore, name: str, version: int) -> ServedModel:
    """Verify and load ``models/<name>/<version>/``; IntegrityError says why it is refused."""
    verified = load_verified_model(store, name, version)
    manifest = verified.manifest
    check_sklearn_version(manifest, sklearn.__version__)
    pipeline = verified.pipeline
    model = ServedModel(
        name=name,
        version=version,
        sha256=str(manifest["sha256"]),
        pipeline=pipeline,
        features=feature_specs(manifest),
        classes=_classes(manifest, pipeline),
        has_proba=manifest.get("task") == CLASSIFICATION and hasattr(pipeline, "predict_proba"),
    )
    model.scorer  # noqa: B018 -- compiles and checks it now, not on the first request
    return model


def check_sklearn_version(manifest: dict[str, Any], running: str) -> None:
    recorded = manifest.get("libraries", {}).get("scikit-learn")
    if not isinstance(recorded, str):
        raise ManifestInvalid("manifest records no scikit-learn version; refusing to serve it")
    if _major_minor(recorded) != _major_minor(running):
        raise ModelIncompatible(
            f"model was trained with scikit-learn {recorded} but this server runs {running}: "
            "major.minor must match; serve it with a matching image or retrain"
        )


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def feature_specs(manifest: dict[str, Any]) -> tuple[FeatureSpec, ...]:
    features = manifest.get("features")
    if not isinstance(features, list) or not features:
        raise ManifestInvalid("manifest has no feature schema; refusing to serve it")
    imputes = _imputation(manifest)
    try:
        return tuple(FeatureSpec(f["name"], f["kind"], imputes[f["kind"]]) for f in features)
    except (KeyError, TypeError) as exc:
        raise ManifestInvalid(f"manifest feature schema is malformed: {exc!r}") from exc


def _imputation(manifest: dict[str, Any]) -> dict[str, bool]:
    # Missing values are only acceptable where the pipeline has an imputer for them.
    pre = manifest.get("preprocessing") or {}
    numeric = (pre.get("numeric") or {}).get("impute", "mean")
    categorical = (pre.get("categorical") or {}).get("impute", "most_frequent")
    return {NUMERIC: numeric != "none", CATEGORICAL: categorical != "none"}


def _classes(manifest: dict[str, Any], pipeline: Any) -> tuple[Any, ...] | None:
    if manifest.get("task") != CLASSIFICATION:
        return None
    return tuple(np.asarray(pipeline.classes_).tolist())
