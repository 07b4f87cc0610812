"""Response bodies: OIP v2 inference responses and model metadata, and KServe v1 predictions.

Outputs of every model: ``predict`` (shape [N]: class labels or regression values); of
classifiers with probabilities also ``predict_proba`` (shape [N, n_classes], columns in the
order of the ``classes`` parameter). Bodies are plain dicts (serialised without a second
validation pass); their shapes are the pydantic models of :mod:`continuum.server.protocol`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sklearn

from continuum.server.errors import InputInvalid
from continuum.server.model import NUMERIC, ServedModel

PREDICT = "predict"
PREDICT_PROBA = "predict_proba"
PLATFORM = "scikit-learn"
MATRIX_INPUT = "input"  # suggested name of the single [N, n_features] tensor form

_DATATYPES_BY_KIND = {"f": "FP64", "i": "INT64", "u": "INT64", "b": "BOOL"}


def output_names(model: ServedModel) -> tuple[str, ...]:
    return (PREDICT, PREDICT_PROBA) if model.has_proba else (PREDICT,)


def chosen_outputs(model: ServedModel, names: Sequence[str] | None) -> list[str]:
    """The outputs to return: those requested by name (checked), or all of them."""
    available = output_names(model)
    if not names:
        return list(available)
    unknown = [name for name in names if name not in available]
    if unknown:
        raise InputInvalid(f"unknown output(s) {unknown}: this model has {list(available)}")
    return list(names)


def label_datatype(labels: np.ndarray) -> str:
    return _DATATYPES_BY_KIND.get(labels.dtype.kind, "BYTES")


def _predict_output(labels: np.ndarray) -> dict[str, Any]:
    datatype = label_datatype(labels)
    values = labels.astype(np.float64) if datatype == "FP64" else labels
    return {
        "name": PREDICT,
        "shape": [len(labels)],
        "datatype": datatype,
        "data": values.tolist(),
    }


def _proba_output(model: ServedModel, proba: np.ndarray) -> dict[str, Any]:
    return {
        "name": PREDICT_PROBA,
        "shape": list(proba.shape),
        "datatype": "FP64",
        "parameters": {"classes": list(model.classes or ())},
        "data": proba.astype(np.float64).ravel().tolist(),
    }


def infer_response(
    model: ServedModel,
    labels: np.ndarray,
    proba: np.ndarray | None,
    *,
    request_id: str | None,
    outputs: Sequence[str],
) -> dict[str, Any]:
    built = []
    for name in outputs:
        if name == PREDICT:
            built.append(_predict_output(labels))
        elif proba is not None:
            built.append(_proba_output(model, proba))
    body: dict[str, Any] = {
        "model_name": model.name,
        "model_version": str(model.version),
        "outputs": built,
    }
    if request_id is not None:
        body["id"] = request_id
    return body


def predict_response(
    model: ServedModel, labels: np.ndarray, proba: np.ndarray | None
) -> dict[str, Any]:
    """KServe v1 body: predictions, and for classifiers probabilities and class order."""
    body: dict[str, Any] = {"predictions": _predict_output(labels)["data"]}
    if proba is not None:
        body["probabilities"] = proba.astype(np.float64).tolist()
        body["classes"] = list(model.classes or ())
    return body


def model_metadata(model: ServedModel) -> dict[str, Any]:
    inputs = [
        {"name": f.name, "datatype": "FP64" if f.kind == NUMERIC else "BYTES", "shape": [-1]}
        for f in model.features
    ]
    outputs = [{"name": PREDICT, "datatype": _label_datatype(model), "shape": [-1]}]
    if model.has_proba:
        outputs.append({"name": PREDICT_PROBA, "datatype": "FP64",
                        "shape": [-1, len(model.classes or ())]})  # fmt: skip
    return {
        "name": model.name,
        "versions": [str(model.version)],
        "platform": PLATFORM,
        "inputs": inputs,
        "outputs": outputs,
        "parameters": _model_parameters(model),
    }


def _label_datatype(model: ServedModel) -> str:
    return label_datatype(np.asarray(model.classes)) if model.classes is not None else "FP64"


def _model_parameters(model: ServedModel) -> dict[str, Any]:
    return {
        "sha256": model.sha256,
        "scikit_learn_version": sklearn.__version__,
        "task": "classification" if model.is_classifier else "regression",
        "classes": list(model.classes) if model.classes is not None else None,
        "features": list(model.feature_names),
        "matrix_input": {"name": MATRIX_INPUT, "shape": [-1, len(model.features)]},
        "scoring": model.scoring.metadata(),
    }
