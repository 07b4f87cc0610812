"""The compiled scoring path: every preprocessing and allow-listed estimator the trainer builds,
held to scikit-learn's own answers on Parquet-shaped data; and its fallback when it cannot be."""

from __future__ import annotations

import io
import itertools
from typing import Any, get_args

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Perceptron
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import QuantileTransformer

from continuum.api.trainingjob import (
    REGRESSORS,
    CategoricalPreprocessing,
    Estimator,
    NumericPreprocessing,
)
from continuum.modelio import coerce_features
from continuum.server.compiled import (
    FAST_CONFIG,
    TOLERANCE,
    compile_pipeline,
    estimators,
    histogram,
)
from continuum.server.compiled.estimators import ENTRIES, Entry
from continuum.server.compiled.probes import UNSEEN_CATEGORY, probe_columns
from continuum.trainer.pipeline import ESTIMATORS, build_estimator, build_pipeline
from continuum.trainer.run import _labels
from continuum.trainer.validation import Feature

NUMERIC = ["tenure", "charges", "calls", "active"]
CATEGORICAL = ["plan", "region"]
NAMES = NUMERIC + CATEGORICAL
REGIONS = [f"r{i:02d}" for i in range(30)] + ["rare-1", "rare-2"]  # many, some rare: sparse


class Scorer:
    """The compiled path where it verifies, else scikit-learn's own pipeline (the fallback)."""

    def __init__(self, pipeline: Pipeline, names: list[str], *, has_proba: bool) -> None:
        self.pipeline, self.names, self.has_proba = pipeline, names, has_proba
        self.compiled, self.verdict = compile_pipeline(pipeline, names, has_proba=has_proba)

    def __call__(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        if self.compiled is not None:
            with sklearn.config_context(**FAST_CONFIG):
                return self.compiled(columns)
        frame = pd.DataFrame(columns, columns=self.names)
        proba = self.pipeline.predict_proba(frame) if self.has_proba else None
        return self.pipeline.predict(frame), proba


def parquet_frame(rows: int = 600, seed: int = 0, *, numeric_nulls: bool = True) -> pd.DataFrame:
    """Shaped like a user's Parquet file: category, nullable Int64, string, bool, NaN."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "tenure": pd.array(rng.integers(0, 72, rows), dtype="Int64"),
        "charges": rng.lognormal(4, 0.5, rows),
        "calls": rng.poisson(3, rows).astype("float64"),
        "active": rng.random(rows) < 0.7,
        "plan": pd.Categorical(rng.choice(["basic", "plus", "premium"], rows)),
        "region": pd.array(rng.choice(REGIONS, rows, p=[0.031] * 30 + [0.035, 0.035]),
                           dtype="string"),
    })  # fmt: skip
    if numeric_nulls:
        frame.loc[rng.random(rows) < 0.06, "tenure"] = pd.NA
        frame.loc[rng.random(rows) < 0.06, "charges"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "region"] = pd.NA
    frame.loc[rng.random(rows) < 0.05, "plan"] = np.nan
    score = frame["charges"].fillna(70) / 60 - frame["tenure"].astype("float64").fillna(30) / 40
    score += (frame["plan"] == "premium").astype(float) + rng.normal(scale=0.3, size=rows)
    frame["churn"] = np.digitize(score, [0.3, 1.2]).astype(str)  # three classes
    frame["value"] = 12 * score + rng.normal(size=rows)
    return pd.read_parquet(io.BytesIO(frame.to_parquet()))  # through Parquet, as users' data


SCHEMA = [Feature(n, "numeric", "float64") for n in NUMERIC] + [
    Feature(n, "categorical", "category") for n in CATEGORICAL
]
AS_JSON = [feature.to_json() for feature in SCHEMA]
SMALL = {  # allow-listed classes, made quick to fit
    "RandomForestClassifier": {"n_estimators": 12},
    "RandomForestRegressor": {"n_estimators": 12},
    "ExtraTreesClassifier": {"n_estimators": 12},
    "ExtraTreesRegressor": {"n_estimators": 12},
    "GradientBoostingClassifier": {"n_estimators": 15},
    "GradientBoostingRegressor": {"n_estimators": 15},
    "HistGradientBoostingClassifier": {"max_iter": 15},
    "HistGradientBoostingRegressor": {"max_iter": 15},
    "Lasso": {"alpha": 0.01},
    "ElasticNet": {"alpha": 0.01},
}


def trained(
    estimator: str,
    numeric: dict[str, str] | None = None,
    categorical: dict[str, str] | None = None,
    *,
    params: dict[str, Any] | None = None,
) -> tuple[Pipeline, bool, pd.DataFrame]:
    """A pipeline as the trainer fits it, whether it has probabilities, and its training frame."""
    numeric = numeric or {}
    frame = parquet_frame(numeric_nulls=numeric.get("impute") != "none")
    config = Estimator.model_validate(
        {"class": estimator, "params": params or SMALL.get(estimator, {})}
    )
    cat = CategoricalPreprocessing(columns=CATEGORICAL, **(categorical or {}))
    native = {"native": True} if cat.encode == "native" else {}  # the trainer's native encoding
    pipeline = build_pipeline(
        build_estimator(config, 0), SCHEMA, NumericPreprocessing(**numeric), cat, **native
    )
    regressor = estimator in REGRESSORS
    target = frame["value" if regressor else "churn"]
    pipeline.fit(
        coerce_features(frame, AS_JSON),
        _labels(target, "regression" if regressor else "classification"),
    )
    return pipeline, not regressor, frame


def request_columns(frame: pd.DataFrame, rows: slice, *, unseen: bool) -> dict[str, np.ndarray]:
    """Rows as the server's decoder gives them: float64 with NaN, str objects with NaN."""
    part = coerce_features(frame.iloc[rows], AS_JSON)
    columns = {name: part[name].to_numpy(np.float64) for name in NUMERIC}
    for name in CATEGORICAL:
        columns[name] = part[name].to_numpy(object).copy()
        if unseen:
            columns[name][::3] = UNSEEN_CATEGORY + "-2"
    return columns


def assert_scores_like_scikit_learn(
    scorer: Scorer, pipeline: Pipeline, frame: pd.DataFrame, exact: bool
) -> None:
    for rows, unseen in ((slice(0, 1), False), (slice(5, 10), True), (slice(100, 164), True)):
        columns = request_columns(frame, rows, unseen=unseen)
        expected_frame = pd.DataFrame(columns, columns=NAMES)
        labels, proba = scorer(columns)
        expected = pipeline.predict(expected_frame)
        assert labels.dtype == expected.dtype
        if exact or expected.dtype.kind != "f":
            assert np.array_equal(labels, expected)
        else:
            np.testing.assert_allclose(labels, expected, rtol=TOLERANCE, atol=TOLERANCE)
        if scorer.has_proba:
            want = pipeline.predict_proba(expected_frame)
            assert proba is not None
            if exact:
                assert np.array_equal(proba, want)
            else:
                np.testing.assert_allclose(proba, want, rtol=TOLERANCE, atol=TOLERANCE)


def test_every_allow_listed_estimator_has_a_compiled_entry() -> None:
    assert set(ESTIMATORS.values()) <= set(ENTRIES)


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_every_estimator_with_the_default_preprocessing_is_compiled_bit_identical(
    estimator: str,
) -> None:
    pipeline, has_proba, frame = trained(estimator)
    scorer = Scorer(pipeline, NAMES, has_proba=has_proba)
    verdict = scorer.verdict
    assert verdict.compiled, verdict.reason
    assert verdict.exactness == "bit-identical"
    assert verdict.probe_rows > 250
    if has_proba:
        assert verdict.classes_covered == "3/3"
    assert_scores_like_scikit_learn(scorer, pipeline, frame, exact=True)


NUMERIC_OPTIONS = [
    {"impute": impute, "scale": scale}
    for impute, scale in itertools.product(
        ["mean", "median", "none"], ["standard", "minmax", "none"]
    )
]
CATEGORICAL_OPTIONS = [{"impute": "most_frequent"}, {"impute": "none"}]


@pytest.mark.parametrize("estimator", ["LogisticRegression", "RandomForestClassifier", "Ridge"])
@pytest.mark.parametrize("numeric", NUMERIC_OPTIONS, ids=lambda o: f"{o['impute']}-{o['scale']}")
@pytest.mark.parametrize("categorical", CATEGORICAL_OPTIONS, ids=lambda o: o["impute"])
def test_every_preprocessing_is_compiled_bit_identical(
    estimator: str, numeric: dict[str, str], categorical: dict[str, str]
) -> None:
    pipeline, has_proba, frame = trained(estimator, numeric, categorical)
    scorer = Scorer(pipeline, NAMES, has_proba=has_proba)
    assert scorer.verdict.compiled, scorer.verdict.reason
    assert scorer.verdict.exactness == "bit-identical"
    assert_scores_like_scikit_learn(scorer, pipeline, frame, exact=True)


# Where the trainer has them (issue 19 adds HistGradientBoosting and its native encoding).
HISTOGRAM_BOOSTING = sorted(name for name in ESTIMATORS if name.startswith("HistGradient"))
ENCODINGS = list(get_args(CategoricalPreprocessing.model_fields["encode"].annotation))


@pytest.mark.parametrize("estimator", HISTOGRAM_BOOSTING)
@pytest.mark.parametrize("categorical", CATEGORICAL_OPTIONS, ids=lambda o: o["impute"])
@pytest.mark.parametrize("encode", [e for e in ENCODINGS if e != "auto"])
def test_histogram_boosting_with_native_or_one_hot_categories(
    estimator: str, categorical: dict[str, str], encode: str
) -> None:
    pipeline, has_proba, frame = trained(estimator, categorical={**categorical, "encode": encode})
    scorer = Scorer(pipeline, NAMES, has_proba=has_proba)
    assert scorer.verdict.compiled, scorer.verdict.reason
    assert_scores_like_scikit_learn(scorer, pipeline, frame, exact=True)


def own_raw(model: Any, encoded: np.ndarray) -> np.ndarray:
    """scikit-learn's ``_raw_predict`` of already encoded rows (its predictors, one thread)."""
    expected = np.zeros((len(encoded), model.n_trees_per_iteration_), order="F")
    expected += model._baseline_prediction
    model._predict_iterations(encoded, model._predictors, expected, False, 1)
    return expected


def encoded_probes(pipeline: Pipeline, has_proba: bool) -> np.ndarray:
    """The probe rows as the model's trees read them (after both encoders)."""
    compiled, verdict = compile_pipeline(pipeline, NAMES, has_proba=has_proba)
    assert compiled is not None, verdict.reason
    probes, _ = probe_columns(compiled.preprocessor, NAMES)
    model = pipeline.steps[-1][1]
    return histogram.hist_encoder(model)(compiled.preprocessor(probes))


@pytest.mark.parametrize("estimator", HISTOGRAM_BOOSTING)
@pytest.mark.parametrize("encode", [e for e in ENCODINGS if e != "auto"])
def test_histogram_boosting_leaf_tables_give_its_own_sums(estimator: str, encode: str) -> None:
    """The leaf tables against scikit-learn's predictors, on every probe row (one at a time
    and all at once) and on codes the encoder never gives (negative, or a category the model
    does not know: both taken as missing; a fraction: cast to uint8 as the Cython does)."""
    pipeline, has_proba, _ = trained(estimator, categorical={"encode": encode})
    model = pipeline.steps[-1][1]
    encoded = encoded_probes(pipeline, has_proba)
    if model.is_categorical_ is not None:
        categorical = int(np.sum(model.is_categorical_))
        encoded[::5, :categorical] = -1.0
        encoded[1::7, :categorical] = 200.0  # < 256, but no column has that many categories
        encoded[2::11, :categorical] = 1.5
    tables = histogram.LeafTables.of(model)
    assert tables is not None
    expected = own_raw(model, encoded)
    assert np.array_equal(tables.raw(encoded), expected)
    for row in range(0, len(encoded), 17):
        assert np.array_equal(tables.raw(encoded[row : row + 1]), expected[row : row + 1])


@pytest.mark.parametrize("estimator", HISTOGRAM_BOOSTING)
def test_histogram_boosting_values_on_every_threshold_go_where_its_trees_send_them(
    estimator: str,
) -> None:
    """Each numeric split's threshold itself (``<=``: left), the next double either side, +-0,
    +-inf and NaN, in every numeric column: the edges of the tables' threshold ranks."""
    pipeline, has_proba, _ = trained(estimator, categorical={"encode": "native"})
    model = pipeline.steps[-1][1]
    base = encoded_probes(pipeline, has_proba)[:1]
    nodes = np.concatenate([tree.nodes for it in model._predictors for tree in it])
    split = nodes[(nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 0)]
    rows = []
    for feature in np.unique(split["feature_idx"]):
        edges = np.unique(split["num_threshold"][split["feature_idx"] == feature])
        values = np.concatenate([
            edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf),
            [0.0, -0.0, np.inf, -np.inf, np.nan],
        ])  # fmt: skip
        block = np.repeat(base, len(values), axis=0)
        block[:, feature] = values
        rows.append(block)
    encoded = np.concatenate(rows)
    tables = histogram.LeafTables.of(model)
    assert tables is not None
    assert np.array_equal(tables.raw(encoded), own_raw(model, encoded))


def test_histogram_boosting_learns_where_missing_numbers_go_and_is_still_bit_identical() -> None:
    """No numeric imputation: NaN reaches the trees, which learned a side for it in training."""
    frame = parquet_frame()
    cat = CategoricalPreprocessing(columns=CATEGORICAL, encode="native")
    config = Estimator.model_validate({"class": "HistGradientBoostingClassifier",
                                       "params": {"max_iter": 20}})  # fmt: skip
    numeric = NumericPreprocessing(impute="none", scale="none")
    pipeline = build_pipeline(build_estimator(config, 0), SCHEMA, numeric, cat, native=True)
    pipeline.fit(coerce_features(frame, AS_JSON), _labels(frame["churn"], "classification"))
    nodes = np.concatenate([t.nodes for it in pipeline.steps[-1][1]._predictors for t in it])
    internal = nodes[nodes["is_leaf"] == 0]
    assert len(np.unique(internal["missing_go_to_left"])) == 2  # both sides learned somewhere
    scorer = Scorer(pipeline, NAMES, has_proba=True)
    assert scorer.verdict.exactness == "bit-identical", scorer.verdict.reason
    assert scorer.verdict.classes_covered == "3/3"
    assert_scores_like_scikit_learn(scorer, pipeline, frame, exact=True)


def test_histogram_boosting_trees_of_more_than_64_leaves_are_scored_by_its_predictors() -> None:
    pipeline, _, frame = trained(
        "HistGradientBoostingClassifier",
        categorical={"encode": "native"},
        params={"max_iter": 5, "max_leaf_nodes": 100, "min_samples_leaf": 2},
    )
    model = pipeline.steps[-1][1]
    assert max(t.get_n_leaf_nodes() for it in model._predictors for t in it) > 64
    assert histogram.LeafTables.of(model) is None
    scorer = Scorer(pipeline, NAMES, has_proba=True)
    assert scorer.verdict.exactness == "bit-identical", scorer.verdict.reason
    assert_scores_like_scikit_learn(scorer, pipeline, frame, exact=True)


def test_histogram_boosting_batches_beyond_the_tables_row_limit_use_its_predictors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline, _, frame = trained("HistGradientBoostingClassifier", categorical={"encode": "native"})
    tables = histogram.LeafTables.of(pipeline.steps[-1][1])
    assert tables is not None
    assert tables.max_rows >= 1024  # thousands: 8 MB over 6 features x 45 trees
    monkeypatch.setattr(histogram, "TABLE_GATHER_BYTES", 1)  # one row at a time, no more
    scorer = Scorer(pipeline, NAMES, has_proba=True)
    assert scorer.verdict.exactness == "bit-identical", scorer.verdict.reason
    assert_scores_like_scikit_learn(scorer, pipeline, frame, exact=True)


def test_histogram_boosting_of_single_leaf_trees_scores_its_baseline_and_leaves() -> None:
    """A constant target: no tree splits, so no feature has a table; each tree is its leaf."""
    frame = parquet_frame()
    frame["value"] = 3.25
    config = Estimator.model_validate({"class": "HistGradientBoostingRegressor",
                                       "params": {"max_iter": 5}})  # fmt: skip
    cat = CategoricalPreprocessing(columns=CATEGORICAL, encode="native")
    pipeline = build_pipeline(
        build_estimator(config, 0), SCHEMA, NumericPreprocessing(), cat, native=True
    )
    pipeline.fit(coerce_features(frame, AS_JSON), frame["value"])
    tables = histogram.LeafTables.of(pipeline.steps[-1][1])
    assert tables is not None
    assert not len(tables.columns)
    scorer = Scorer(pipeline, NAMES, has_proba=False)
    assert scorer.verdict.exactness == "bit-identical", scorer.verdict.reason
    assert_scores_like_scikit_learn(scorer, pipeline, frame, exact=True)


def test_the_one_hot_output_is_sparse_here_and_still_bit_identical() -> None:
    """30+ regions make the ColumnTransformer's output sparse: the linear model's sum runs over
    the same CSR matrix, in the same order."""
    pipeline, _, frame = trained("LogisticRegression")
    assert pipeline.steps[0][1].sparse_output_
    scorer = Scorer(pipeline, NAMES, has_proba=True)
    assert scorer.verdict.exactness == "bit-identical"
    assert_scores_like_scikit_learn(scorer, pipeline, frame, exact=True)


def test_an_unseen_category_and_a_missing_value_are_encoded_as_scikit_learn_does() -> None:
    pipeline, _, frame = trained("LogisticRegression")
    scorer = Scorer(pipeline, NAMES, has_proba=True)
    columns = request_columns(frame, slice(0, 4), unseen=False)
    columns["region"] = np.array(["r03", UNSEEN_CATEGORY + "x", np.nan, "rare-1"], dtype=object)
    columns["charges"] = np.array([np.nan, 1e15, -1e15, 0.0])
    matrix = scorer.compiled.preprocessor(columns)  # type: ignore[union-attr]
    expected = pipeline.steps[0][1].transform(pd.DataFrame(columns, columns=NAMES))
    assert np.array_equal(matrix, expected.toarray())


def test_a_forest_on_several_threads_is_held_to_the_stated_tolerance() -> None:
    pipeline, _, frame = trained("RandomForestClassifier", params={"n_estimators": 12, "n_jobs": 2})
    scorer = Scorer(pipeline, NAMES, has_proba=True)
    assert scorer.verdict.compiled
    assert scorer.verdict.exactness == f"within {TOLERANCE:g}"
    assert_scores_like_scikit_learn(scorer, pipeline, frame, exact=False)


# ------------------------------------------------------------------ falling back


def replaced_estimator(pipeline: Pipeline, estimator: Any, frame: pd.DataFrame) -> Pipeline:
    pre = pipeline.steps[0][1]
    refit = Pipeline([("preprocess", pre), ("estimator", estimator)])
    return refit.fit(coerce_features(frame, AS_JSON), frame["churn"].astype(str).astype(object))


def test_an_estimator_without_an_entry_falls_back_and_says_so() -> None:
    base, _, frame = trained("LogisticRegression")
    pipeline = replaced_estimator(base, Perceptron(random_state=0), frame)
    scorer = Scorer(pipeline, NAMES, has_proba=False)
    assert not scorer.verdict.compiled
    assert scorer.compiled is None
    assert scorer.verdict.reason == "not compiled: no compiled entry for Perceptron"
    assert scorer.verdict.path == "scikit-learn"
    assert_scores_like_scikit_learn(scorer, pipeline, frame, exact=True)


def test_a_subclass_of_an_allow_listed_estimator_is_not_taken_for_it() -> None:
    class Tweaked(LogisticRegression):
        def predict(self, X: Any) -> Any:  # noqa: N803 -- scikit-learn's name
            return super().predict(X)

    base, _, frame = trained("LogisticRegression")
    pipeline = replaced_estimator(base, Tweaked(max_iter=300), frame)
    verdict = Scorer(pipeline, NAMES, has_proba=True).verdict
    assert verdict.reason == "not compiled: no compiled entry for Tweaked"


def test_a_preprocessing_step_the_compiler_does_not_know_falls_back() -> None:
    frame = parquet_frame(numeric_nulls=False)
    pre = ColumnTransformer(
        [("numeric", QuantileTransformer(n_quantiles=50), ["charges", "calls"])]
    )
    pipeline = Pipeline([("preprocess", pre), ("estimator", LogisticRegression())])
    pipeline.fit(coerce_features(frame, AS_JSON), frame["churn"].astype(str))
    scorer = Scorer(pipeline, NAMES, has_proba=True)
    assert (
        scorer.verdict.reason
        == "not compiled: no compiled form of the numeric step QuantileTransformer"
    )
    assert_scores_like_scikit_learn(scorer, pipeline, frame, exact=True)


def test_an_entry_that_computes_wrongly_is_caught_by_the_probes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The load-time check is what keeps a wrong formula off the server: a last-bit error in
    the probabilities is enough."""
    real = ENTRIES[LogisticRegression]

    def off_by_one_ulp(model: Any, context: estimators.Context) -> Entry:
        entry = real(model, context)

        def score(matrix: np.ndarray) -> Any:
            labels, proba = entry.score(matrix)
            return labels, np.nextafter(proba, 2.0)

        return Entry(entry.kind, score)

    monkeypatch.setitem(ENTRIES, LogisticRegression, off_by_one_ulp)
    pipeline, _, frame = trained("LogisticRegression")
    compiled, verdict = compile_pipeline(pipeline, NAMES, has_proba=True)
    assert compiled is None
    assert not verdict.compiled
    assert "probabilities differ from scikit-learn's" in verdict.reason
    scorer = Scorer(pipeline, NAMES, has_proba=True)
    assert_scores_like_scikit_learn(scorer, pipeline, frame, exact=True)
