"""The calibration stored beside a classifier: probability -> observed frequency, per class.

Written to ``baseline/calibration.json`` (JSON arrays, no pickle) from the holdout, so the
monitor can estimate accuracy, f1 or ROC AUC before any label arrives
(``continuum.monitor.estimation``, confidence-based performance estimation). For each class c
(binary models: only the positive class, the last in sorted order) an isotonic regression of
``y == c`` on the model's probability of c: the monotone step-wise-linear curve scikit-learn
fits, kept as its ``X_thresholds_`` / ``y_thresholds_`` knots; ``np.interp`` over the knots is
what its ``predict`` computes (``out_of_bounds="clip"``). Isotonic rather than Platt's sigmoid:
it assumes nothing about the shape of the model's miscalibration (forests and boosting are
not sigmoid-shaped), at the price of needing a few hundred holdout rows to be smooth.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression

CALIBRATION_SCHEMA_VERSION = 1
METHOD = "isotonic"


def calibration_document(pipeline: Any, features: Any, target: Any) -> dict[str, Any] | None:
    """The calibration of ``pipeline`` on the holdout (features, string labels); None when
    the model gives no probabilities or the holdout has fewer than two classes."""
    if not hasattr(pipeline, "predict_proba"):
        return None
    classes = [str(c) for c in np.asarray(pipeline.classes_).tolist()]
    truth = np.asarray(target).astype(str)
    if len(classes) < 2 or len(set(truth.tolist())) < 2:
        return None
    proba = np.asarray(pipeline.predict_proba(features), dtype=np.float64)
    fitted = [1] if len(classes) == 2 else range(len(classes))
    curves = [_curve(proba[:, c], truth == classes[c], c) for c in fitted]
    return {
        "schemaVersion": CALIBRATION_SCHEMA_VERSION,
        "method": METHOD,
        "classes": classes,
        "rows": len(truth),
        "curves": curves,
    }


def _curve(score: np.ndarray[Any, Any], hit: np.ndarray[Any, Any], index: int) -> dict[str, Any]:
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    isotonic.fit(score, hit.astype(np.float64))
    return {
        "class": index,
        "x": [float(v) for v in isotonic.X_thresholds_],
        "y": [float(v) for v in isotonic.y_thresholds_],
    }
