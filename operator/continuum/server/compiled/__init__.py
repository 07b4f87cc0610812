"""The served pipeline compiled into array operations, verified against scikit-learn at load.

``compile_pipeline`` turns the trainer's fitted ``Pipeline([preprocess, estimator])`` into
:class:`CompiledPipeline`: the ColumnTransformer's steps as numpy operations on the request's
columns (:mod:`.preprocess`), then the estimator's entry (:mod:`.estimators`, one small entry
per allow-listed class). Why not ONNX Runtime: ``docs/architecture.md`` (the server path).

It is used only if, on probe rows with every edge case (:mod:`.probes`: NaN where a step
imputes, an unseen category, extreme values, every class), its labels equal
``pipeline.predict`` and its probabilities ``pipeline.predict_proba`` on a DataFrame —
identical arrays, of the same dtype, at several batch sizes (1, 16 and all the probe rows).
An entry that cannot be bit-identical (``Entry.exact`` false: a forest scikit-learn runs on
several threads sums its trees in a varying order) must have identical labels and values
within :data:`TOLERANCE`. Otherwise, and for anything the compiler does not cover, the
:class:`Verdict` says why, and the server scores with scikit-learn's own steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.pipeline import Pipeline

from continuum.server.compiled.estimators import Context, Entry, Output, build_entry
from continuum.server.compiled.preprocess import (
    Columns,
    Preprocessor,
    Unsupported,
    compile_preprocessor,
)
from continuum.server.compiled.probes import every_class, probe_columns

__all__ = [
    "FAST_CONFIG",
    "TOLERANCE",
    "CompiledPipeline",
    "Verdict",
    "compile_pipeline",
    "request_frame",
]

FAST_CONFIG = {"assume_finite": True, "skip_parameter_validation": True}
# For an entry that cannot be bit-identical: |ours - scikit-learn's| <= TOLERANCE * (1 + |theirs|)
# (float64 sums of the same terms in another order differ by a few units in the last place,
# about 1e-16 relative; nothing a caller can see in a probability or a regression value).
TOLERANCE = 1e-12
SINGLE_ROWS = 8  # probe rows also checked one by one (the batch size of a lone request)
BATCH = 16  # and as one batch of this many


@dataclass(frozen=True)
class Verdict:
    """How the server scores this model, and why: what the metadata and the log say."""

    compiled: bool
    reason: str  # what was checked, or why scikit-learn's own steps score
    entry: str | None = None  # "LogisticRegression (formula)"
    exactness: str | None = None  # "bit-identical" | "within 1e-12"
    probe_rows: int = 0
    classes_covered: str | None = None  # "3/3": classes predicted on the probe rows

    @property
    def path(self) -> str:
        return "compiled" if self.compiled else "scikit-learn"

    def metadata(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "entry": self.entry,
            "exactness": self.exactness,
            "probe_rows": self.probe_rows,
            "classes_covered": self.classes_covered,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class CompiledPipeline:
    preprocessor: Preprocessor
    entry: Entry

    def __call__(self, columns: Columns) -> Output:
        return self.entry.score(self.preprocessor(columns))


def compile_pipeline(
    pipeline: Any, feature_names: Sequence[str], *, has_proba: bool
) -> tuple[CompiledPipeline | None, Verdict]:
    """The compiled pipeline if it verifies, with the verdict either way (never raises)."""
    try:
        compiled = _compile(pipeline, has_proba)
    except (Unsupported, LookupError) as exc:
        return None, Verdict(False, f"not compiled: {exc}")
    try:
        return _verified(compiled, pipeline, list(feature_names), has_proba)
    except Exception as exc:  # anything the compiled path trips on: scikit-learn scores
        return None, Verdict(False, f"not compiled: the check failed: {type(exc).__name__}: {exc}")


def _compile(pipeline: Any, has_proba: bool) -> CompiledPipeline:
    if type(pipeline) is not Pipeline or len(pipeline.steps) != 2:
        raise Unsupported("the model is not a Pipeline of preprocessing and one estimator")
    preprocessor = compile_preprocessor(pipeline.steps[0][1])
    estimator = pipeline.steps[-1][1]
    entry = build_entry(estimator, Context(has_proba=has_proba, sparse=preprocessor.sparse))
    return CompiledPipeline(preprocessor, entry)


def _verified(
    compiled: CompiledPipeline, pipeline: Any, names: list[str], has_proba: bool
) -> tuple[CompiledPipeline | None, Verdict]:
    probes, _ = probe_columns(compiled.preprocessor, names)
    compiled = _in_the_same_order(compiled, pipeline, probes, names)
    classes = list(getattr(pipeline, "classes_", [])) if has_proba else []
    covered = None
    if classes:
        probes, seen = every_class(
            probes, lambda c: pipeline.predict(request_frame(c, names)), classes,
            compiled.preprocessor, names,
        )  # fmt: skip
        covered = f"{len(seen)}/{len(classes)}"
    rows = len(probes[names[0]])
    estimator = type(pipeline.steps[-1][1]).__name__
    entry = f"{estimator} ({compiled.entry.kind})"
    exactness = "bit-identical" if compiled.entry.exact else f"within {TOLERANCE:g}"
    for batch in _batches(rows):
        problem = _difference(compiled, pipeline, _take(probes, batch), names, has_proba)
        if problem is not None:
            reason = f"not compiled: on probe rows {batch.start}-{batch.stop - 1}, {problem}"
            return None, Verdict(False, reason, entry, None, rows, covered)
    reason = f"{exactness} to scikit-learn on {rows} probe rows"
    return compiled, Verdict(True, reason, entry, exactness, rows, covered)


def _in_the_same_order(
    compiled: CompiledPipeline, pipeline: Any, probes: Columns, names: list[str]
) -> CompiledPipeline:
    """``compiled`` giving its matrix in the memory order scikit-learn's transform gives it.

    Read from the fitted ColumnTransformer's own output on a few probe rows (a frame built as
    the server builds it): the order follows from the blocks, not from the values.
    """
    rows = request_frame(_take(probes, slice(0, BATCH)), names)
    matrix = pipeline.steps[0][1].transform(rows)
    fortran = isinstance(matrix, np.ndarray) and not matrix.flags.c_contiguous
    preprocessor = replace(compiled.preprocessor, order="F" if fortran else "C")
    return replace(compiled, preprocessor=preprocessor)


def _batches(rows: int) -> list[slice]:
    singles = [slice(i, i + 1) for i in range(min(SINGLE_ROWS, rows))]
    return [slice(0, rows), *singles, slice(rows - min(BATCH, rows), rows)]


def _take(columns: Columns, rows: slice) -> Columns:
    return {name: column[rows] for name, column in columns.items()}


def request_frame(columns: Columns, names: Sequence[str]) -> pd.DataFrame:
    """The request's rows as the DataFrame a user hands ``pipeline.predict`` (one column per
    feature, built from a dict as MLServer's pandas codec does too): the reference every check
    compares with, and what the server's scikit-learn path scores."""
    return pd.DataFrame({name: columns[name] for name in names}, columns=names)


def _difference(
    compiled: CompiledPipeline, pipeline: Any, columns: Columns, names: list[str], proba: bool
) -> str | None:
    frame = request_frame(columns, names)
    expected = np.asarray(pipeline.predict(frame))
    expected_proba = np.asarray(pipeline.predict_proba(frame)) if proba else None
    with sklearn.config_context(**FAST_CONFIG):
        labels, probabilities = compiled(columns)
    exact = compiled.entry.exact
    if labels.dtype != expected.dtype:
        return f"labels of dtype {labels.dtype}, scikit-learn's {expected.dtype}"
    problem = _compare("predictions", labels, expected, exact)
    if problem is None and expected_proba is not None:
        problem = _compare("probabilities", probabilities, expected_proba, exact)
    return problem


def _compare(what: str, ours: np.ndarray | None, theirs: np.ndarray, exact: bool) -> str | None:
    if ours is None or ours.shape != theirs.shape:
        return f"{what} of shape {None if ours is None else ours.shape}, not {theirs.shape}"
    if theirs.dtype.kind != "f" or exact:
        same = np.array_equal(ours, theirs, equal_nan=theirs.dtype.kind == "f")
        return None if same else f"{what} differ from scikit-learn's ({_worst(ours, theirs)})"
    close = np.allclose(ours, theirs, rtol=TOLERANCE, atol=TOLERANCE, equal_nan=True)
    return None if close else f"{what} differ by more than {TOLERANCE:g} ({_worst(ours, theirs)})"


def _worst(ours: np.ndarray, theirs: np.ndarray) -> str:
    if theirs.dtype.kind != "f":
        return f"{int(np.sum(ours != theirs))} of {theirs.size} differ"
    return f"largest difference {float(np.nanmax(np.abs(ours - theirs))):.3g}"
