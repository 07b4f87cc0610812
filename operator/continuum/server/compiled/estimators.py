"""One small entry per allow-listed estimator: its labels and probabilities from a matrix.

An entry is built from the fitted estimator once, at load time, and then scores a dense
float64 matrix (the compiled preprocessing's output) the way the estimator's own ``predict``
and ``predict_proba`` do, without their per-call validation. ``ENTRIES`` maps the exact class
(``type(estimator) is cls``: a subclass may compute differently) to its builder; a class that
has no entry is not compiled, and the server scores it with scikit-learn's own steps.

Three kinds of entry:

- **formula**: the arithmetic written out. Linear models: one ``X @ coef_.T + intercept_``
  (on the CSR matrix scikit-learn would have built, when the ColumnTransformer's output is
  sparse, so the sum runs in the same order), then the estimator's own link (logistic,
  softmax, one-vs-rest normalisation, modified Huber). Trees and forests: each tree's leaf
  values looked up by ``tree_.apply`` on float32 rows, summed in tree order and divided by
  the number of trees, as ``predict_proba`` with ``n_jobs=1`` does.
- **raw**: the boosting models' raw scores, then their loss's link: GradientBoosting's own
  private ``_raw_predict`` (initial prediction plus every stage, in scikit-learn's Cython);
  HistGradientBoosting's without its per-call validation (its own ColumnTransformer compiled),
  by leaf tables that find every tree's leaf at once (:mod:`.histogram`). No
  DataFrame, no validation of the pipeline's steps.
- **own**: the estimator's own public ``predict``/``predict_proba`` on the compiled matrix
  (k-nearest neighbours, SVC, GaussianNB): exact by construction; what is saved is the
  ColumnTransformer on a DataFrame, the most expensive part of a call.

``exact`` says whether the entry must give identical arrays (every entry but one); a forest
that scikit-learn itself runs with ``n_jobs`` > 1 sums its trees in whatever order the threads
finish, so the entry is held to :data:`continuum.server.compiled.TOLERANCE` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse  # type: ignore[import-untyped]
from scipy.special import expit  # type: ignore[import-untyped]
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.extmath import softmax

from continuum.server.compiled.histogram import hist_raw

Output = tuple[np.ndarray, np.ndarray | None]  # labels (or values), probabilities
Score = Callable[[np.ndarray], Output]


@dataclass(frozen=True)
class Context:
    """What an entry needs to know besides the estimator."""

    has_proba: bool  # the server returns probabilities (a classifier that has them)
    sparse: bool  # scikit-learn hands the estimator a CSR matrix


@dataclass(frozen=True)
class Entry:
    kind: str  # "formula" | "raw" | "own"
    score: Score
    exact: bool = True


Builder = Callable[[Any, Context], Entry]


def _as_fitted(matrix: np.ndarray, context: Context) -> Any:
    """The matrix in the storage scikit-learn gives the estimator (CSR when it is sparse)."""
    return sparse.csr_matrix(matrix) if context.sparse else matrix


# ---------------------------------------------------------------- linear models


def _scores(model: Any, context: Context) -> Callable[[np.ndarray], np.ndarray]:
    """``decision_function``'s product: ``X @ coef_.T + intercept_``, raveled for one column."""
    coef = model.coef_
    if not isinstance(coef, np.ndarray):
        coef = coef.toarray()
    coef_t = coef.T if coef.ndim == 2 else coef
    intercept = model.intercept_

    def scores(matrix: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.asarray(_as_fitted(matrix, context) @ coef_t) + intercept
        return out.reshape(-1) if out.ndim > 1 and out.shape[1] == 1 else out

    return scores


def _labels_from_scores(classes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else np.argmax(scores, axis=1)
    return classes.take(indices, axis=0)


def _binary_logistic(scores: np.ndarray) -> np.ndarray:
    positive = expit(scores)
    return np.stack([1 - positive, positive], axis=1)


def _one_vs_rest(scores: np.ndarray) -> np.ndarray:
    """``_predict_proba_lr``: the logistic of each score, normalised per row."""
    if scores.ndim == 1:
        return _binary_logistic(scores)
    proba = expit(scores)
    total = proba.sum(axis=1)
    empty = total == 0
    if empty.any():
        proba[empty, :] = 1
        total[empty] = proba.shape[1]
    proba /= total.reshape((proba.shape[0], -1))
    return proba  # type: ignore[no-any-return]


def _multinomial(scores: np.ndarray) -> np.ndarray:
    return _binary_logistic(scores) if scores.ndim == 1 else softmax(scores, copy=False)


def _modified_huber(scores: np.ndarray) -> np.ndarray:
    """SGDClassifier(loss="modified_huber").predict_proba's formula."""
    if scores.ndim == 1:
        both = np.ones((scores.shape[0], 2))
        positive = both[:, 1]
        np.clip(scores, -1, 1, positive)
        positive += 1.0
        positive /= 2.0
        both[:, 0] -= positive
        return both
    proba = np.clip(scores, -1, 1)
    proba += 1.0
    proba /= 2.0
    total = proba.sum(axis=1)
    empty = total == 0
    if empty.any():
        proba[empty, :] = 1
        total[empty] = proba.shape[1]
    proba /= total.reshape((proba.shape[0], -1))
    return proba  # type: ignore[no-any-return]


def _linear_classifier(link: Callable[[np.ndarray], np.ndarray]) -> Builder:
    def build(model: Any, context: Context) -> Entry:
        scores_of, classes = _scores(model, context), np.asarray(model.classes_)

        def score(matrix: np.ndarray) -> Output:
            scores = scores_of(matrix)
            labels = _labels_from_scores(classes, scores)
            return labels, link(scores) if context.has_proba else None

        return Entry("formula", score)

    return build


def _sgd_classifier(model: Any, context: Context) -> Entry:
    links = {"log_loss": _one_vs_rest, "modified_huber": _modified_huber}
    link = links.get(model.loss)
    if link is None and context.has_proba:
        raise LookupError(f"SGDClassifier(loss={model.loss!r}) has no predict_proba")
    return _linear_classifier(link or _one_vs_rest)(model, context)


def _linear_regressor(model: Any, context: Context) -> Entry:
    scores_of = _scores(model, context)
    return Entry("formula", lambda matrix: (scores_of(matrix), None))


# ---------------------------------------------------------------- trees and forests


def _leaf_values(tree: Any, width: int | None) -> tuple[Any, np.ndarray]:
    """A fitted tree's structure and its [node, output] values (classifiers: the classes)."""
    structure = tree.tree_
    values = structure.value.reshape(structure.node_count, -1)
    return structure, values if width is None else values[:, :width]


def _float32_rows(matrix: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(matrix, dtype=np.float32)  # the trees' dtype


def _tree_sum(trees: list[tuple[Any, np.ndarray]], rows: np.ndarray) -> np.ndarray:
    total = np.zeros((rows.shape[0], trees[0][1].shape[1]), dtype=np.float64)
    for structure, values in trees:
        total += values.take(structure.apply(rows), axis=0)
    return total


def _single_output(model: Any) -> None:
    if model.n_outputs_ != 1:
        raise LookupError("a multi-output tree model")


def _tree_classifier(model: Any, context: Context) -> Entry:
    _single_output(model)
    tree, classes = [_leaf_values(model, int(model.n_classes_))], np.asarray(model.classes_)

    def score(matrix: np.ndarray) -> Output:
        proba = tree[0][1].take(tree[0][0].apply(_float32_rows(matrix)), axis=0)
        return classes.take(np.argmax(proba, axis=1), axis=0), proba

    return Entry("formula", score)


def _tree_regressor(model: Any, context: Context) -> Entry:
    _single_output(model)
    structure, values = _leaf_values(model, 1)

    def score(matrix: np.ndarray) -> Output:
        return values[:, 0].take(structure.apply(_float32_rows(matrix)), axis=0), None

    return Entry("formula", score)


def _forest_classifier(model: Any, context: Context) -> Entry:
    _single_output(model)
    width, classes = int(model.n_classes_), np.asarray(model.classes_)
    trees = [_leaf_values(tree, width) for tree in model.estimators_]

    def score(matrix: np.ndarray) -> Output:
        proba = _tree_sum(trees, _float32_rows(matrix))
        proba /= len(trees)
        return classes.take(np.argmax(proba, axis=1), axis=0), proba

    return Entry("formula", score, exact=model.n_jobs in (None, 1))


def _forest_regressor(model: Any, context: Context) -> Entry:
    _single_output(model)
    trees = [_leaf_values(tree, 1) for tree in model.estimators_]

    def score(matrix: np.ndarray) -> Output:
        values = _tree_sum(trees, _float32_rows(matrix))[:, 0]
        values /= len(trees)
        return values, None

    return Entry("formula", score, exact=model.n_jobs in (None, 1))


# ---------------------------------------------------------------- boosting


def _boosting_classifier(
    model: Any, context: Context, raw_of: Callable[[np.ndarray], np.ndarray], *,
    binary_at_zero: bool,
) -> Entry:  # fmt: skip
    classes, loss = np.asarray(model.classes_), model._loss

    def score(matrix: np.ndarray) -> Output:
        raw = raw_of(matrix)
        if raw.shape[1] == 1:
            flat = raw.ravel()
            indices = (flat >= 0 if binary_at_zero else flat > 0).astype(np.intp)
        else:
            indices = np.argmax(raw, axis=1)
        labels = classes[indices]
        if not context.has_proba:
            return labels, None
        # GradientBoosting hands its loss the raveled scores, HistGradientBoosting the column
        return labels, loss.predict_proba(
            raw.ravel() if binary_at_zero and raw.shape[1] == 1 else raw
        )

    return Entry("raw", score)


def _gradient_boosting_raw(model: Any, context: Context) -> Callable[[np.ndarray], np.ndarray]:
    def raw(matrix: np.ndarray) -> np.ndarray:
        rows = _as_fitted(_float32_rows(matrix), context)  # what its validation makes of X
        return model._raw_predict(rows)  # type: ignore[no-any-return]

    return raw


def _gradient_boosting_classifier(model: Any, context: Context) -> Entry:
    raw_of = _gradient_boosting_raw(model, context)
    return _boosting_classifier(model, context, raw_of, binary_at_zero=True)


def _gradient_boosting_regressor(model: Any, context: Context) -> Entry:
    raw_of = _gradient_boosting_raw(model, context)
    return Entry("raw", lambda matrix: (raw_of(matrix).ravel(), None))


def _hist_raw(model: Any, context: Context) -> Callable[[np.ndarray], np.ndarray]:
    """HistGradientBoosting's ``_raw_predict`` by :mod:`.histogram` (dense matrices only)."""
    if context.sparse:
        raise LookupError("HistGradientBoosting on a sparse matrix")
    return hist_raw(model)


def _hist_gradient_boosting_classifier(model: Any, context: Context) -> Entry:
    raw_of = _hist_raw(model, context)
    return _boosting_classifier(model, context, raw_of, binary_at_zero=False)


def _hist_gradient_boosting_regressor(model: Any, context: Context) -> Entry:
    raw_of, inverse = _hist_raw(model, context), model._loss.link.inverse
    return Entry("raw", lambda matrix: (inverse(raw_of(matrix).ravel()), None))


# ---------------------------------------------------------------- the estimator's own calls


def _own(model: Any, context: Context) -> Entry:
    def score(matrix: np.ndarray) -> Output:
        rows = _as_fitted(matrix, context)
        labels = np.asarray(model.predict(rows))
        return labels, np.asarray(model.predict_proba(rows)) if context.has_proba else None

    return Entry("own", score)


ENTRIES: dict[type, Builder] = {
    LogisticRegression: _linear_classifier(_multinomial),
    SGDClassifier: _sgd_classifier,
    LinearRegression: _linear_regressor,
    Ridge: _linear_regressor,
    Lasso: _linear_regressor,
    ElasticNet: _linear_regressor,
    SGDRegressor: _linear_regressor,
    DecisionTreeClassifier: _tree_classifier,
    DecisionTreeRegressor: _tree_regressor,
    RandomForestClassifier: _forest_classifier,
    ExtraTreesClassifier: _forest_classifier,
    RandomForestRegressor: _forest_regressor,
    ExtraTreesRegressor: _forest_regressor,
    GradientBoostingClassifier: _gradient_boosting_classifier,
    GradientBoostingRegressor: _gradient_boosting_regressor,
    HistGradientBoostingClassifier: _hist_gradient_boosting_classifier,
    HistGradientBoostingRegressor: _hist_gradient_boosting_regressor,
    KNeighborsClassifier: _own,
    KNeighborsRegressor: _own,
    SVC: _own,
    GaussianNB: _own,
}


def build_entry(model: Any, context: Context) -> Entry:
    """The entry of ``model``'s exact class; LookupError naming what is not covered."""
    builder = ENTRIES.get(type(model))
    if builder is None:
        raise LookupError(f"no compiled entry for {type(model).__name__}")
    return builder(model, context)
