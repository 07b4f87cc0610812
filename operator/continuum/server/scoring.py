"""Scoring a block of rows with the served pipeline: the same numbers, less overhead.

``Pipeline.predict`` plus ``Pipeline.predict_proba`` on a DataFrame cost milliseconds even for
one row, nearly all of it validation and bookkeeping (scikit-learn 1.9, pandas 3). A ``Scorer``
takes one of two paths, chosen once at load time and reported by :attr:`Scorer.verdict` (the
model metadata's ``parameters.scoring``, the ``continuum_server_model_scoring`` metric, the
load log line):

- **compiled** (:mod:`continuum.server.compiled`): the fitted ColumnTransformer and estimator
  as array operations, used only when, on probe rows with every edge case, it gives arrays
  identical to ``pipeline.predict``/``predict_proba`` on the request's DataFrame;
- **scikit-learn**: the pipeline's own steps on that DataFrame (built as
  :func:`~continuum.server.compiled.request_frame` builds it, so this path *is* the reference),
  with scikit-learn's finiteness and parameter checks off (the rows are already validated by
  :mod:`continuum.server.inputs`) and the transforms run once for both outputs
  (``Pipeline.predict``/``predict_proba`` are exactly "transform each step, then the final
  estimator").

The three shortcuts this module had before the compiler (``passthrough``: a ColumnTransformer
that only passes numbers through replaced by the array of its columns; ``forest``: a
RandomForestClassifier's trees summed by hand; ``logistic``: a LogisticRegression's one
product) are gone: each applied only to pipelines the compiler covers, with the same
arithmetic, and the compiler is as fast or faster on every one (us per call at 1 / 32 rows,
one CPU of this 2-CPU machine, 2026-12-04, the bench's models and the demo's):

- 20 numeric columns passed through (the bench's models), LogisticRegression: shortcuts
  27 / 20, compiled 17 / 18; RandomForest (100 trees): shortcuts 243 / 311, compiled 208 / 301
  (the same leaf lookups);
- the demo's pipeline (3 numeric columns imputed and scaled, one one-hot column), where the
  shortcuts could only take the final step: LogisticRegression 2836 / 2804 with them, 21 / 28
  compiled; RandomForest 3323 / 4245 with them, 253 / 355 compiled;
- scikit-learn's own two calls on a DataFrame: 1524 / 1519 (20 columns, LogisticRegression)
  up to 19162 / 20701 (demo, RandomForest); the scikit-learn path (transforms once) 1118 / 1098
  and 16720 / 20182.

And where the compiler refuses a pipeline (a step it does not know, or its check failed), a
shortcut's arithmetic is the compiler's own, so it would have failed the same check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sklearn
from sklearn.pipeline import Pipeline

from continuum.server.compiled import (
    FAST_CONFIG,
    CompiledPipeline,
    Verdict,
    compile_pipeline,
    request_frame,
)

OFF = Verdict(False, "not compiled: the compiled path is turned off")


class Scorer:
    """Labels (and probabilities) for rows given as one array per feature, schema order.

    ``compiled`` false keeps the scikit-learn path whatever the pipeline (what the bench
    measures the compiled path against).
    """

    def __init__(
        self,
        pipeline: Any,
        feature_names: Sequence[str],
        *,
        has_proba: bool,
        compiled: bool = True,
    ) -> None:
        self.pipeline = pipeline
        self.names = list(feature_names)
        self.has_proba = has_proba
        self._final: Any = None
        self._transforms: list[Any] = []
        if isinstance(pipeline, Pipeline):
            self._final = pipeline.steps[-1][1]
            self._transforms = [
                step for _, step in pipeline.steps[:-1] if step not in (None, "passthrough")
            ]
        self.compiled: CompiledPipeline | None = None
        self.verdict = OFF
        if compiled:
            self.compiled, self.verdict = compile_pipeline(
                pipeline, self.names, has_proba=has_proba
            )

    @property
    def path(self) -> str:
        """``compiled`` or ``scikit-learn``."""
        return self.verdict.path

    def __call__(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        with sklearn.config_context(**FAST_CONFIG):
            if self.compiled is not None:
                return self.compiled(columns)
            return self._scikit_learn(columns)

    def _scikit_learn(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        frame = request_frame(columns, self.names)
        if self._final is None:  # not a Pipeline: the model's own calls
            labels = np.asarray(self.pipeline.predict(frame))
            proba = self.pipeline.predict_proba(frame) if self.has_proba else None
            return labels, None if proba is None else np.asarray(proba)
        rows: Any = frame
        for step in self._transforms:
            rows = step.transform(rows)
        labels = np.asarray(self._final.predict(rows))
        return labels, np.asarray(self._final.predict_proba(rows)) if self.has_proba else None
