"""Scoring a block of rows with the served pipeline: the same numbers, less overhead.

``Pipeline.predict`` plus ``Pipeline.predict_proba`` on a DataFrame cost milliseconds even for
one row, nearly all of it validation and bookkeeping (scikit-learn 1.9, pandas 3), and a
forest's ``predict_proba`` runs its trees through joblib. What a ``Scorer`` does instead, each
step giving exactly what the plain call gives:

- the rows are already validated (:mod:`continuum.server.inputs`: numbers are finite, missing
  values only where the pipeline imputes them), so scikit-learn's finiteness and parameter
  checks are skipped (``assume_finite``, ``skip_parameter_validation``, thread-local);
- an all-numeric frame is built from one 2-D array (one pandas block) instead of a dict;
- the pipeline's transforms run once and both outputs come from the transformed rows
  (``Pipeline.predict``/``predict_proba`` are exactly "transform each step, then the final
  estimator");
- a ColumnTransformer that only passes numeric columns through (the trainer's pipeline for
  ``scale: none``/``impute: none``) is replaced by the array of those columns;
- a RandomForestClassifier's probabilities are the mean of its trees' in tree order (what its
  ``predict_proba`` computes with n_jobs=1), and its labels the classes of their argmax
  (what its ``predict`` is); other estimators keep their own ``predict``. Each tree's
  probabilities are its leaf values looked up by ``tree_.apply`` (what the tree's
  ``predict_proba`` returns after its fitted and shape checks, which cost more than the lookup).
- a LogisticRegression's labels and probabilities come from one ``rows @ coef_.T + intercept_``
  with its own formulas (labels: score > 0, or the argmax; probabilities: the logistic of the
  score, or the softmax), instead of ``predict`` and ``predict_proba`` each validating the rows
  and computing the same product again.

The three shortcuts (``SHORTCUTS``: ``passthrough``, ``forest``, ``logistic``) are checked at
load time against scikit-learn's own calls on probe rows and dropped if they do not give
identical arrays; any other pipeline is scored by its own steps.

What each is worth, per predict call, on the bench's models (bench/server_vs_mlserver.py:
20 numeric features, ``scale: none``/``impute: none``; measured 2026-12-03 in one process on
one CPU of this 2-CPU machine, median us per call at 1 and 32 rows; the bench's "Scoring
shortcuts" figures repeat it). For scale, one request at concurrency 1 over HTTP took about
350 us (LogisticRegression) and 650 us (100-tree forest) in the same hour:

- scikit-learn's own ``pipeline.predict`` + ``predict_proba`` on a DataFrame: 2200/2150 us
  (LogisticRegression), 11600/11800 us (forest); the Scorer with every shortcut that applies:
  25/26 us and 220/610 us.
- ``passthrough`` off: about +1020/+1010 us (LogisticRegression), +1150/+1270 us (forest): the
  ColumnTransformer's ``transform`` on a DataFrame built for it.
- ``forest`` off: +8700/+9000 us; the forest's ``predict_proba`` alone runs its trees through
  joblib (4400/4800 us), the trees' own ``predict_proba(check_input=False)`` summed by hand
  would take 790/1200 us against 190/530 us for the leaf-value lookups.
- ``logistic`` off: +190/+200 us (``predict`` and ``predict_proba`` on the array took
  184/190 us together, the one product 6.5/7.3 us).

``passthrough`` and ``forest`` each save more than a whole request costs at concurrency 1,
``logistic`` more than half of one (its request would cost about 1.55x), so all three stay.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from scipy import sparse  # type: ignore[import-untyped]
from scipy.special import expit  # type: ignore[import-untyped]
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.utils.extmath import softmax

PROBE_ROWS = 64
SHORTCUTS = frozenset({"passthrough", "forest", "logistic"})
_FAST_CONFIG = {"assume_finite": True, "skip_parameter_validation": True}


class Scorer:
    """Labels (and probabilities) for rows given as one array per feature, schema order.

    ``shortcuts`` are those it may take (each only where its load-time check passes); the
    server allows all of them, the bench fewer to measure what each is worth.
    """

    def __init__(
        self,
        pipeline: Any,
        feature_names: Sequence[str],
        *,
        has_proba: bool,
        shortcuts: frozenset[str] = SHORTCUTS,
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
        self._picked = self._passthrough_plan() if "passthrough" in shortcuts else None
        self._leaf_values = self._forest_leaf_values()
        self.forest = "forest" in shortcuts and self._forest_applies()
        self.logistic = "logistic" in shortcuts and self._logistic_applies()

    @property
    def passthrough(self) -> bool:
        return self._picked is not None

    def __call__(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        with sklearn.config_context(**_FAST_CONFIG):
            if self._final is None:
                frame = self.frame(columns)
                labels = np.asarray(self.pipeline.predict(frame))
                proba = self.pipeline.predict_proba(frame) if self.has_proba else None
                return labels, None if proba is None else np.asarray(proba)
            return self._score(self._transform(columns))

    def frame(self, columns: dict[str, np.ndarray]) -> pd.DataFrame:
        arrays = [columns[name] for name in self.names]
        if all(array.dtype == np.float64 for array in arrays):
            return pd.DataFrame(np.column_stack(arrays), columns=self.names)
        return pd.DataFrame(columns, columns=self.names)

    def _transform(self, columns: dict[str, np.ndarray]) -> Any:
        arrays = [columns[name] for name in self.names]
        if self._picked is not None and all(array.dtype == np.float64 for array in arrays):
            return np.column_stack(arrays)[:, self._picked]
        return self._plain_transform(self.frame(columns))

    def _plain_transform(self, rows: Any) -> Any:
        for step in self._transforms:
            rows = step.transform(rows)
        return rows

    def _passthrough_plan(self) -> list[int] | None:
        """Column indices when the one transform is a ColumnTransformer passing numbers through."""
        if len(self._transforms) != 1 or not isinstance(self._transforms[0], ColumnTransformer):
            return None
        transformer = self._transforms[0]
        if getattr(transformer, "sparse_output_", True) or transformer.remainder != "drop":
            return None
        index = {name: i for i, name in enumerate(self.names)}
        picked: list[int] = []
        for _, step, columns in transformer.transformers:  # as declared, not as fitted
            if step == "drop":
                continue
            if step != "passthrough" or not all(column in index for column in columns):
                return None
            picked += [index[column] for column in columns]

        def plain(probe: np.ndarray) -> Any:
            return self._plain_transform(pd.DataFrame(probe, columns=self.names))

        ok = _same(lambda probe: probe[:, picked], plain, len(self.names))
        return picked if ok else None

    def _forest_applies(self) -> bool:
        forest = self._final
        if type(forest) is not RandomForestClassifier or not self.has_proba:
            return False
        if forest.n_outputs_ != 1 or forest.n_jobs not in (None, 1):
            return False
        return _same(self._forest_proba, forest.predict_proba, int(forest.n_features_in_))

    def _score(self, rows: Any) -> tuple[np.ndarray, np.ndarray | None]:
        final = self._final
        if self.forest:
            proba = self._forest_proba(rows)
            labels = np.asarray(final.classes_).take(np.argmax(proba, axis=1), axis=0)
            return labels, proba
        if self.logistic and isinstance(rows, np.ndarray) and rows.dtype == np.float64:
            return self._logistic(rows)
        labels = np.asarray(final.predict(rows))
        return labels, np.asarray(final.predict_proba(rows)) if self.has_proba else None

    def _logistic_applies(self) -> bool:
        model = self._final
        if type(model) is not LogisticRegression or type(model.coef_) is not np.ndarray:
            return False
        width = int(model.n_features_in_)
        if not _same(lambda probe: self._logistic(probe)[0], model.predict, width):
            return False
        return not self.has_proba or _same(
            lambda probe: self._logistic(probe)[1], model.predict_proba, width
        )

    def _logistic(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """LogisticRegression's predict and predict_proba, from one product (its formulas)."""
        model = self._final
        scores = rows @ model.coef_.T + model.intercept_
        if scores.shape[1] == 1:  # binary: one score per row, for classes_[1]
            scores = scores.reshape(-1)
            indices = (scores > 0).astype(np.intp)
        else:
            indices = np.argmax(scores, axis=1)
        labels = np.asarray(model.classes_).take(indices, axis=0)
        if not self.has_proba:
            return labels, None
        if scores.ndim == 1:
            positive = expit(scores)
            return labels, np.stack([1 - positive, positive], axis=1)
        return labels, softmax(scores, copy=False)

    def _forest_leaf_values(self) -> list[tuple[Any, np.ndarray]]:
        """Per tree of a single-output forest: its tree structure and [node, class] values."""
        forest = self._final
        if type(forest) is not RandomForestClassifier or forest.n_outputs_ != 1:
            return []
        n_classes = int(forest.n_classes_)
        return [
            (tree.tree_, tree.tree_.value.reshape(tree.tree_.node_count, -1)[:, :n_classes])
            for tree in forest.estimators_
        ]

    def _forest_proba(self, rows: Any) -> np.ndarray:
        forest = self._final
        matrix = _tree_input(rows)
        if matrix.ndim != 2 or matrix.shape[1] != forest.n_features_in_:
            raise ValueError(f"the forest needs {forest.n_features_in_} features per row")
        proba = np.zeros((matrix.shape[0], forest.n_classes_), dtype=np.float64)
        for structure, values in self._leaf_values:
            proba += values.take(structure.apply(matrix), axis=0)
        proba /= len(self._leaf_values)
        return proba


def _tree_input(rows: Any) -> Any:
    """Rows as the trees read them: float32, C-ordered, or CSR when sparse (one-hot of an
    ID-like column): ``np.ascontiguousarray`` of a sparse matrix is a 0-d object array."""
    if sparse.issparse(rows):
        matrix = sparse.csr_matrix(rows, dtype=np.float32)
        matrix.sort_indices()
        return matrix
    return np.ascontiguousarray(rows, dtype=np.float32)  # the trees' dtype


def _same(
    shortcut: Callable[[np.ndarray], Any], plain: Callable[[np.ndarray], Any], width: int
) -> bool:
    """Whether ``shortcut`` (fast settings) gives exactly ``plain``'s array on probe rows."""
    probe = np.random.default_rng(0).normal(scale=3.0, size=(PROBE_ROWS, width))
    try:
        with sklearn.config_context(**_FAST_CONFIG):
            fast = np.asarray(shortcut(probe))
        expected = np.asarray(plain(probe))
    except Exception:  # a pipeline the shortcut cannot score keeps the plain path
        return False
    return fast.shape == expected.shape and bool(np.array_equal(fast, expected))
