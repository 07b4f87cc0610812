"""The Scorer's shortcuts give exactly what the plain pipeline calls give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from continuum.server.scoring import SHORTCUTS, Scorer

NAMES = [f"f{i}" for i in range(6)]


def fitted(estimator: object, transform: object) -> Pipeline:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(300, len(NAMES))), columns=NAMES)
    target = np.where(frame["f0"] + frame["f3"] > 0, "yes", "no")
    pre = ColumnTransformer([("numeric", transform, NAMES)], remainder="drop")
    return Pipeline([("preprocess", pre), ("estimator", estimator)]).fit(frame, target)


FOREST = RandomForestClassifier(n_estimators=15, random_state=0)


@pytest.mark.parametrize(
    ("estimator", "transform", "shortcuts"),
    [
        (LogisticRegression(), "passthrough", (True, False, True)),
        (LogisticRegression(), StandardScaler(), (False, False, True)),
        (FOREST, "passthrough", (True, True, False)),
        (FOREST, StandardScaler(), (False, True, False)),
    ],
)
def test_shortcuts_equal_the_pipeline(
    estimator: object, transform: object, shortcuts: tuple[bool, bool, bool]
) -> None:
    pipeline = fitted(estimator, transform)
    scorer = Scorer(pipeline, NAMES, has_proba=True)
    assert (scorer.passthrough, scorer.forest, scorer.logistic) == shortcuts
    rng = np.random.default_rng(9)
    for rows in (1, 7, 200):
        columns = {name: rng.normal(scale=2.0, size=rows) for name in NAMES}
        frame = pd.DataFrame(columns)
        labels, proba = scorer(columns)
        assert np.array_equal(labels, pipeline.predict(frame))
        assert proba is not None
        assert np.array_equal(proba, pipeline.predict_proba(frame))


def test_a_plain_estimator_is_scored_as_is() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(50, 2)), columns=["a", "b"])
    model = LogisticRegression().fit(frame, frame["a"] > 0)
    labels, proba = Scorer(model, ["a", "b"], has_proba=False)(
        {"a": frame["a"].to_numpy(), "b": frame["b"].to_numpy()}
    )
    assert np.array_equal(labels, model.predict(frame))
    assert proba is None


def test_a_multiclass_logistic_regression_is_scored_exactly() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(300, len(NAMES))), columns=NAMES)
    target = np.digitize(frame["f0"] + frame["f2"], [-0.5, 0.5])  # three classes: 0, 1, 2
    pre = ColumnTransformer([("numeric", "passthrough", NAMES)], remainder="drop")
    pipeline = Pipeline([("preprocess", pre), ("estimator", LogisticRegression())])
    pipeline.fit(frame, target)
    scorer = Scorer(pipeline, NAMES, has_proba=True)
    assert scorer.logistic
    columns = {name: rng.normal(scale=2.0, size=40) for name in NAMES}
    labels, proba = scorer(columns)
    assert np.array_equal(labels, pipeline.predict(pd.DataFrame(columns)))
    assert np.array_equal(proba, pipeline.predict_proba(pd.DataFrame(columns)))


@pytest.mark.parametrize("left_out", sorted(SHORTCUTS))
def test_a_shortcut_left_out_is_not_taken_and_the_answers_stay_the_same(left_out: str) -> None:
    """What the bench measures each shortcut against: the same scorer without it."""
    pipeline = fitted(FOREST if left_out == "forest" else LogisticRegression(), "passthrough")
    scorer = Scorer(pipeline, NAMES, has_proba=True, shortcuts=SHORTCUTS - {left_out})
    assert getattr(scorer, left_out) is False
    columns = {name: np.random.default_rng(2).normal(size=9) for name in NAMES}
    labels, proba = scorer(columns)
    assert np.array_equal(labels, pipeline.predict(pd.DataFrame(columns)))
    assert np.array_equal(proba, pipeline.predict_proba(pd.DataFrame(columns)))
