"""Search planning and selection (issue 19): the candidates, folds and winner of scikit-learn's
own GridSearchCV / RandomizedSearchCV on the same data and seed, from pure functions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.model_selection import (
    GridSearchCV,
    ParameterGrid,
    ParameterSampler,
    RandomizedSearchCV,
)
from tests.kit.datasets import as_parquet, real_shaped_frame
from tests.kit.memory_store import MemoryObjectStore

from continuum.api import TrainingJobSpec
from continuum.controllers.trainingjob.status import result_fields, summary_of_manifest
from continuum.errors import ConfigError, TrainingError
from continuum.modelio import coerce_features
from continuum.storage import read_manifest
from continuum.trainer.config import TrainingConfig
from continuum.trainer.dataset import load_dataset
from continuum.trainer.evaluation import evaluate
from continuum.trainer.pipeline import pipeline_for
from continuum.trainer.run import run_training, split
from continuum.trainer.search import (
    MAX_SUMMARY_TRIALS,
    TrialResult,
    cv_folds,
    plan_trials,
    score_trial,
    select,
)
from continuum.trainer.validation import as_labels, validate_dataset

FEATURES = ["plan", "tenure", "region", "autopay", "charges"]


def spec_of(estimator: str, params: dict | None = None, metric: str = "roc_auc"):
    return TrainingJobSpec.model_validate({
        "model": "churn",
        "dataset": {"uri": "s3://data/c/", "target": "churned", "format": "parquet",
                    "features": FEATURES, "validation": {"maxNullFraction": 0.2}},
        "estimator": {"class": estimator, "params": params or {}},
        "preprocessing": {"categorical": {"columns": ["plan", "region"]}},
        "split": {"seed": 3},
        "evaluation": {"metric": metric},
        "storage": {"bucket": "data"},
    })  # fmt: skip


@pytest.fixture(scope="module")
def data():
    frame = as_parquet(real_shaped_frame(900, seed=4))
    rng = np.random.default_rng(4)
    signal = frame["charges"].fillna(70) / 20 - frame["tenure"].astype(float).fillna(36) / 12
    frame["churned"] = np.where(signal + rng.normal(0, 1, len(frame)) > 0.5, "yes", "no")
    return frame


def prepared(spec, frame):
    schema = validate_dataset(frame, spec, "classification")
    x = coerce_features(frame, [f.to_json() for f in schema])
    return pipeline_for(spec, schema), x, as_labels(frame["churned"], "classification")


def our_search(spec, frame, trials, folds=4):
    pipeline, x, y = prepared(spec, frame)
    splits = cv_folds(y, folds, "classification")
    metric = spec.evaluation.metric
    results = [score_trial(pipeline, t, x, y, splits, metric=metric, task="classification")
               for t in trials]  # fmt: skip
    return select(results, metric), results


def scorer(metric):
    return lambda model, x, y: evaluate(model, x, y, "classification")[metric]


def test_grid_candidates_are_parameter_grids_in_its_order():
    space = {"C": [0.1, 1.0, 10.0], "fit_intercept": [True, False]}
    trials = plan_trials(spec_of("LogisticRegression").estimator, space, strategy="grid",
                         budget=6, seed=1)  # fmt: skip
    assert [t.params for t in trials] == list(ParameterGrid(space))
    assert [t.index for t in trials] == list(range(6))


def test_a_grid_over_the_budget_is_refused_before_any_data():
    with pytest.raises(ConfigError, match=r"6 grid points, more than search\.trials=5"):
        plan_trials(spec_of("LogisticRegression").estimator,
                    {"C": [0.1, 1.0, 10.0], "fit_intercept": [True, False]},
                    strategy="grid", budget=5, seed=1)  # fmt: skip


def test_every_candidate_is_validated_against_the_estimator():
    estimator = spec_of("LogisticRegression").estimator
    with pytest.raises(ConfigError, match="has no parameter"):
        plan_trials(estimator, {"depth": [1, 2]}, strategy="grid", budget=4, seed=1)
    with pytest.raises(ConfigError, match=r"search candidate \{'C': -1.0\}.*C"):
        plan_trials(estimator, {"C": [1.0, -1.0]}, strategy="grid", budget=4, seed=1)
    with pytest.raises(ConfigError, match=r"logUniform must be \[low, high\].*low > 0"):
        plan_trials(estimator, {"C": {"logUniform": [0, 1]}}, strategy="random", budget=4, seed=1)


def test_random_candidates_are_parameter_samplers_with_the_seed():
    space = {"C": {"logUniform": [1e-3, 1e2]}, "fit_intercept": [True, False]}
    trials = plan_trials(spec_of("LogisticRegression").estimator, space, strategy="random",
                         budget=7, seed=42)  # fmt: skip
    sampler = ParameterSampler(
        {"C": stats.loguniform(1e-3, 1e2), "fit_intercept": [True, False]}, 7, random_state=42
    )
    assert [t.params for t in trials] == [
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in p.items()} for p in sampler
    ]
    assert all(type(t.params["C"]) is float for t in trials)  # JSON-ready


def test_the_winner_and_its_scores_are_grid_search_cvs(data):
    spec = spec_of("LogisticRegression", {"max_iter": 300})
    space = {"C": [0.001, 0.01, 0.1, 1.0, 10.0], "class_weight": [None, "balanced"]}
    trials = plan_trials(spec.estimator, space, strategy="grid", budget=10, seed=3)
    selection, _ = our_search(spec, data, trials)
    pipeline, x, y = prepared(spec, data)
    grid = {f"estimator__{k}": v for k, v in space.items()}
    reference = GridSearchCV(pipeline, grid, cv=4, scoring=scorer("roc_auc"), refit=False)
    reference.fit(x, y)
    assert selection.best.index == reference.best_index_
    assert {f"estimator__{k}": v for k, v in selection.best.params.items()} == (
        reference.best_params_
    )
    assert selection.mean == reference.cv_results_["mean_test_score"][reference.best_index_]
    assert selection.failed == 0


def test_a_lower_is_better_metric_picks_the_smallest_error_like_a_negated_scorer(data):
    frame = data.dropna(subset=["charges"]).reset_index(drop=True)
    spec = TrainingJobSpec.model_validate({
        "model": "charges", "storage": {"bucket": "data"},
        "dataset": {"uri": "s3://data/c/", "target": "charges", "format": "parquet",
                    "features": ["plan", "tenure"], "validation": {"maxNullFraction": 0.2}},
        "estimator": {"class": "Ridge"}, "preprocessing": {"categorical": {"columns": ["plan"]}},
        "evaluation": {"metric": "rmse"},
    })  # fmt: skip
    schema = validate_dataset(frame, spec, "regression")
    x = coerce_features(frame, [f.to_json() for f in schema])
    y = as_labels(frame["charges"], "regression")
    pipeline = pipeline_for(spec, schema)
    trials = plan_trials(spec.estimator, {"alpha": [0.01, 1.0, 100.0, 10000.0]},
                         strategy="grid", budget=4, seed=0)  # fmt: skip
    splits = cv_folds(y, 3, "regression")
    results = [score_trial(pipeline, t, x, y, splits, metric="rmse", task="regression")
               for t in trials]  # fmt: skip
    selection = select(results, "rmse")
    reference = GridSearchCV(
        pipeline, {"estimator__alpha": [0.01, 1.0, 100.0, 10000.0]}, cv=3, refit=False,
        scoring=lambda m, xs, ys: -evaluate(m, xs, ys, "regression")["rmse"],
    ).fit(x, y)  # fmt: skip
    assert selection.best.index == reference.best_index_
    assert selection.mean == -reference.cv_results_["mean_test_score"][reference.best_index_]


def test_random_search_gives_randomized_search_cvs_winner(data):
    spec = spec_of("RandomForestClassifier", {"n_estimators": 15})
    space = {"max_depth": {"randint": [2, 8]}, "min_samples_leaf": [1, 5, 20]}
    trials = plan_trials(spec.estimator, space, strategy="random", budget=6, seed=9)
    selection, _ = our_search(spec, data, trials, folds=3)
    pipeline, x, y = prepared(spec, data)
    reference = RandomizedSearchCV(
        pipeline,
        {"estimator__max_depth": stats.randint(2, 9), "estimator__min_samples_leaf": [1, 5, 20]},
        n_iter=6, cv=3, scoring=scorer("roc_auc"), refit=False, random_state=9,
    ).fit(x, y)  # fmt: skip
    assert selection.best.index == reference.best_index_
    assert selection.mean == reference.cv_results_["mean_test_score"][reference.best_index_]


def test_failed_trials_are_counted_and_never_chosen(data):
    spec = spec_of("KNeighborsClassifier")
    trials = plan_trials(spec.estimator, {"n_neighbors": [5, 5000, 15]}, strategy="grid",
                         budget=3, seed=0)  # fmt: skip
    selection, results = our_search(spec, data, trials, folds=3)
    assert results[1].error is not None
    assert "n_neighbors" in results[1].error
    assert selection.failed == 1
    assert selection.best.index in (0, 2)
    assert [row["index"] for row in selection.summary] == sorted(
        [0, 2], key=lambda i: -float(np.mean(results[i].scores))
    )


def test_a_search_whose_trials_all_fail_names_why():
    results = [
        TrialResult(i, {"n_neighbors": 5000}, error="ValueError: n_neighbors") for i in (0, 1)
    ]
    with pytest.raises(TrainingError, match=r"every one of the 2 search trials failed \(trial 0: "):
        select(results, "accuracy")


def test_the_summary_is_bounded_and_ranked():
    results = [TrialResult(i, {"C": i}, (i % 7 / 10, 0.5)) for i in range(40)]
    selection = select(results, "accuracy")
    assert len(selection.summary) == MAX_SUMMARY_TRIALS
    ranks = [row["rank"] for row in selection.summary]
    assert ranks == sorted(ranks)
    assert selection.best.index == 6  # the first of the best mean (6 % 7 == 6, 13, 20, ...)


# ---------------------------------------------------------------------------- in a training run


def run_spec(**search):
    return {
        "model": "churn",
        "dataset": {"uri": "s3://data/sets/churn/", "target": "label", "format": "csv"},
        "estimator": {"class": "LogisticRegression", "params": {"max_iter": 200}},
        "preprocessing": {"categorical": {"columns": ["color"]}},
        "split": {"testSize": 0.25, "seed": 7},
        "evaluation": {"metric": "accuracy", "mustBeat": "none"},
        "storage": {"bucket": "data"},
        "search": {"space": {"C": [0.001, 0.01, 0.1, 1.0]}, "folds": 3, **search},
    }


def quiet(*_args, **_kwargs):
    return None


def test_a_run_refits_grid_search_cvs_winner_and_reports_it(store):
    lines = []
    config = TrainingConfig.from_spec(run_spec())
    result = run_training(config, store, progress=lambda e, **k: lines.append((e, k)))
    manifest = read_manifest(store, "churn", result.version)
    frame = load_dataset(store, config.spec.dataset, max_bytes=10**9).frame
    schema = validate_dataset(frame, config.spec, "classification")
    holdout = split(frame, schema, config, "classification")
    reference = GridSearchCV(
        pipeline_for(config.spec, schema), {"estimator__C": [0.001, 0.01, 0.1, 1.0]}, cv=3,
        scoring=scorer("accuracy"), refit=False,
    ).fit(holdout.x_train, holdout.y_train)  # fmt: skip
    best = reference.best_params_["estimator__C"]
    assert manifest["search"]["best"]["params"] == {"C": best}
    assert manifest["search"]["best"]["score"] == reference.best_score_
    assert manifest["estimator"]["params"] == {"max_iter": 200, "C": best}
    assert result.summary()["search"] == {
        "trials": 4, "failed": 0, "bestParams": {"C": best}, "bestScore": reference.best_score_
    }  # fmt: skip
    assert result_fields(result.summary())["search"]["bestParams"] == {"C": best}
    assert summary_of_manifest(manifest)["search"] == result.summary()["search"]
    done = [k for e, k in lines if e == "trial_done"]
    assert [(k["done"], k["of"]) for k in done] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    again = run_training(TrainingConfig.from_spec(run_spec()), store, progress=quiet)
    assert again.sha256 == result.sha256


def test_a_search_with_a_bad_candidate_fails_before_any_data():
    empty = MemoryObjectStore("data")  # no dataset: the check must come first
    spec = run_spec(space={"C": [1.0, -2.0]})
    with pytest.raises(ConfigError, match=r"search candidate \{'C': -2.0\}"):
        run_training(TrainingConfig.from_spec(spec), empty, progress=quiet)


def test_a_search_needs_the_dataset_in_memory(store):
    spec = run_spec()
    spec["dataset"].update(format="parquet", mode="stream")
    with pytest.raises(ConfigError, match="search needs an in-memory dataset"):
        TrainingConfig.from_spec(spec)


def test_status_leaves_out_a_best_param_that_is_none_which_a_merge_patch_cannot_hold():
    found = {"trials": 2, "failed": 0, "bestParams": {"C": 1.0, "class_weight": None},
             "bestScore": 0.75}  # fmt: skip
    assert result_fields({"search": found})["search"] == found | {"bestParams": {"C": 1.0}}
