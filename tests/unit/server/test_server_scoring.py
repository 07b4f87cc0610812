"""The Scorer: the compiled path where its load-time check passes, else scikit-learn's own
steps, each giving exactly what ``pipeline.predict``/``predict_proba`` give on the request's
DataFrame."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, QuantileTransformer, StandardScaler

from continuum.server.compiled import request_frame
from continuum.server.compiled.probes import probe_columns
from continuum.server.scoring import Scorer

NAMES = [f"f{i:02d}" for i in range(20)]


def fitted(estimator: object, transform: object, names: list[str] = NAMES) -> Pipeline:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(400, len(names))), columns=names)
    target = np.where(frame[names[0]] + frame[names[3]] > 0, "yes", "no")
    pre = ColumnTransformer([("numeric", transform, names)], remainder="drop")
    return Pipeline([("preprocess", pre), ("estimator", estimator)]).fit(frame, target)


def columns_of(rows: int, seed: int, names: list[str] = NAMES) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    columns = {name: rng.normal(scale=2.0, size=rows) for name in names}
    columns[names[1]][::5] = 1e15  # extremes, as a request may send them
    columns[names[2]][::7] = -1e6
    return columns


def assert_exact(scorer: Scorer, pipeline: Pipeline, columns: dict[str, np.ndarray]) -> None:
    frame = request_frame(columns, scorer.names)
    labels, proba = scorer(columns)
    expected = pipeline.predict(frame)
    assert labels.dtype == expected.dtype
    assert np.array_equal(labels, expected)
    if scorer.has_proba:
        assert proba is not None
        assert np.array_equal(proba, pipeline.predict_proba(frame))
    else:
        assert proba is None


FOREST = RandomForestClassifier(n_estimators=15, random_state=0)


@pytest.mark.parametrize(
    ("estimator", "transform"),
    [
        (LogisticRegression(), "passthrough"),
        (LogisticRegression(), StandardScaler()),
        (FOREST, "passthrough"),
        (FOREST, StandardScaler()),
    ],
)
def test_the_compiled_path_is_taken_and_exact(estimator: object, transform: object) -> None:
    pipeline = fitted(estimator, transform)
    scorer = Scorer(pipeline, NAMES, has_proba=True)
    assert scorer.path == "compiled", scorer.verdict.reason
    assert scorer.verdict.exactness == "bit-identical"
    for rows in (1, 7, 300):
        assert_exact(scorer, pipeline, columns_of(rows, seed=rows))


def test_turned_off_the_scikit_learn_path_gives_the_same_arrays() -> None:
    """What the bench measures the compiled path against."""
    pipeline = fitted(FOREST, StandardScaler())
    scorer = Scorer(pipeline, NAMES, has_proba=True, compiled=False)
    assert scorer.path == "scikit-learn"
    assert scorer.compiled is None
    assert scorer.verdict.reason == "not compiled: the compiled path is turned off"
    assert_exact(scorer, pipeline, columns_of(40, seed=2))


def test_one_block_of_numeric_columns_is_scored_in_scikit_learns_memory_order() -> None:
    """scikit-learn hands a LogisticRegression behind a lone passthrough block a Fortran-ordered
    matrix, and BLAS sums ``X @ coef`` in another order for it: the compiled matrix must be
    Fortran-ordered too. In C order the probabilities differ in the last place on some of the
    probe rows (what the load-time check caught when the order was not kept)."""
    pipeline = fitted(LogisticRegression(), "passthrough")
    scorer = Scorer(pipeline, NAMES, has_proba=True)
    assert scorer.compiled is not None
    assert scorer.compiled.preprocessor.order == "F"
    probes, _ = probe_columns(scorer.compiled.preprocessor, NAMES)
    assert_exact(scorer, pipeline, probes)
    in_c_order = replace(scorer.compiled.preprocessor, order="C")
    _, proba = scorer.compiled.entry.score(in_c_order(probes))
    expected = pipeline.predict_proba(request_frame(probes, NAMES))
    assert not np.array_equal(proba, expected)


def with_a_one_hot_column() -> tuple[Pipeline, list[str]]:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    frame["plan"] = rng.choice(["basic", "plus", "premium"], 300).astype(object)
    pre = ColumnTransformer([
        ("numeric", StandardScaler(), ["a", "b", "c"]),
        ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["plan"]),
    ])  # fmt: skip
    pipeline = Pipeline([("preprocess", pre), ("estimator", LogisticRegression())])
    return pipeline.fit(frame, frame["a"] - frame["c"] > 0), list(frame.columns)


@pytest.mark.parametrize("case", ["one passthrough block", "numeric and one-hot blocks"])
def test_the_compiled_matrix_has_the_memory_order_of_scikit_learns(case: str) -> None:
    if case == "one passthrough block":
        pipeline, names = fitted(LogisticRegression(), "passthrough"), NAMES
    else:
        pipeline, names = with_a_one_hot_column()
    scorer = Scorer(pipeline, names, has_proba=True)
    assert scorer.compiled is not None, scorer.verdict.reason
    probes, _ = probe_columns(scorer.compiled.preprocessor, names)
    rows = {name: column[:10] for name, column in probes.items()}
    ours = scorer.compiled.preprocessor(rows)
    theirs = pipeline.steps[0][1].transform(request_frame(rows, names))
    assert np.array_equal(ours, theirs)
    assert (ours.flags.c_contiguous, ours.flags.f_contiguous) == (
        theirs.flags.c_contiguous,
        theirs.flags.f_contiguous,
    )
    assert scorer.compiled.preprocessor.order == ("F" if case.startswith("one") else "C")
    assert_exact(scorer, pipeline, probes)


def test_a_multiclass_logistic_regression_is_scored_exactly() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(300, len(NAMES))), columns=NAMES)
    target = np.digitize(frame["f00"] + frame["f02"], [-0.5, 0.5])  # three classes: 0, 1, 2
    pre = ColumnTransformer([("numeric", "passthrough", NAMES)], remainder="drop")
    pipeline = Pipeline([("preprocess", pre), ("estimator", LogisticRegression())])
    pipeline.fit(frame, target)
    scorer = Scorer(pipeline, NAMES, has_proba=True)
    assert scorer.path == "compiled"
    assert scorer.verdict.classes_covered == "3/3"
    assert_exact(scorer, pipeline, columns_of(40, seed=6))


def test_a_step_the_compiler_does_not_know_is_scored_by_scikit_learn_saying_why() -> None:
    pipeline = fitted(LogisticRegression(), QuantileTransformer(n_quantiles=50))
    scorer = Scorer(pipeline, NAMES, has_proba=True)
    assert scorer.path == "scikit-learn"
    assert scorer.verdict.reason == (
        "not compiled: no compiled form of the numeric step QuantileTransformer"
    )
    assert_exact(scorer, pipeline, columns_of(30, seed=7))


def test_a_plain_estimator_is_scored_as_is() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(50, 2)), columns=["a", "b"])
    model = LogisticRegression().fit(frame, frame["a"] > 0)
    scorer = Scorer(model, ["a", "b"], has_proba=False)
    assert scorer.path == "scikit-learn"
    assert "not a Pipeline" in scorer.verdict.reason
    labels, proba = scorer({"a": frame["a"].to_numpy(), "b": frame["b"].to_numpy()})
    assert np.array_equal(labels, model.predict(frame))
    assert proba is None
