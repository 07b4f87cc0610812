"""A TrainingJob with spec.search on the real cluster (issue 19): the trainer pod runs the
trials and refits the winner, whose parameters and score are scikit-learn's own GridSearchCV's
on the same training rows and seed, computed here in one process."""

from __future__ import annotations

import io

import pandas as pd
from sklearn.model_selection import GridSearchCV

from continuum.storage import read_manifest
from continuum.trainer.config import TrainingConfig
from continuum.trainer.evaluation import evaluate
from continuum.trainer.pipeline import pipeline_for
from continuum.trainer.run import split
from continuum.trainer.validation import validate_dataset
from tests.kit.cluster import object_store, upload
from tests.kit.datasets import churn_dataset
from tests.kit.kinds import Ctx, create_tj

NAME = "search-1"
SPACE = {"C": [0.001, 0.01, 0.1, 1.0, 10.0], "class_weight": [None, "balanced"]}


def test_a_search_reaches_succeeded_with_grid_search_cvs_winner(ctx: Ctx) -> None:
    data = churn_dataset(600, seed=3).to_csv(index=False).encode()  # noisy: no ties at 1.0
    body = ctx.training_job(NAME)
    body["spec"]["dataset"] = {
        "uri": upload(ctx.s3, ctx.bucket, "datasets/churn-noisy.csv", data),
        "target": "churned",
    }
    body["spec"]["preprocessing"] = {"categorical": {"columns": ["plan"]}}
    body["spec"]["search"] = {"strategy": "grid", "space": SPACE, "trials": 10, "folds": 3}
    create_tj(ctx.api, ctx.namespace, body)
    status = ctx.finished(NAME)["status"]
    assert status["phase"] == "Succeeded", status
    config = TrainingConfig.from_spec(body["spec"])
    frame = pd.read_csv(io.BytesIO(data))
    schema = validate_dataset(frame, config.spec, "classification")
    holdout = split(frame, schema, config, "classification")
    reference = GridSearchCV(
        pipeline_for(config.spec, schema),
        {f"estimator__{name}": values for name, values in SPACE.items()},
        cv=3, refit=False,
        scoring=lambda model, x, y: evaluate(model, x, y, "classification")["accuracy"],
    ).fit(holdout.x_train, holdout.y_train)  # fmt: skip
    best = {name.removeprefix("estimator__"): v for name, v in reference.best_params_.items()}
    # status leaves out a None (a merge patch cannot hold one); the manifest has every param
    shown = {name: value for name, value in best.items() if value is not None}
    assert status["search"] == {
        "trials": 10, "failed": 0, "bestParams": shown, "bestScore": reference.best_score_
    }  # fmt: skip
    manifest = read_manifest(object_store(ctx.s3, ctx.bucket), "churn", status["model"]["version"])
    assert manifest["search"]["best"]["params"] == best
    assert len(set(reference.cv_results_["mean_test_score"])) > 1  # the grid is no tie
