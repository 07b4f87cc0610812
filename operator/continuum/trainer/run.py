"""``run_training``: dataset -> validated pipeline -> gate -> a new, write-once model version."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from continuum.api.trainingjob import Search
from continuum.distinct import per_category, sorted_text_codes
from continuum.errors import ConfigError, TrainingError
from continuum.modelio import coerce_features, load_verified_model, serialize_model, sha256_hex
from continuum.storage import (
    ObjectInfo,
    ObjectStore,
    allocate_version,
    layout,
    list_dataset_objects,
)
from continuum.trainer import baseline
from continuum.trainer.calibration import calibration_document
from continuum.trainer.config import TrainingConfig
from continuum.trainer.dataset import MEMORY, STREAM, choose_mode, load_dataset
from continuum.trainer.evaluation import ChampionComparison, decide, evaluate
from continuum.trainer.manifest import DatasetSummary, TrainingOutcome, build_manifest
from continuum.trainer.pipeline import (
    build_estimator,
    fitted_facts,
    pipeline_for,
    svc_probability_deprecation_silenced,
    task_of,
)
from continuum.trainer.result import TrainingResult
from continuum.trainer.search import (
    Selection,
    Trial,
    cv_folds,
    plan_trials,
    score_trial,
    select,
)
from continuum.trainer.snapshot import Snapshot, build_snapshot, on_snapshot
from continuum.trainer.streamed import train_streamed
from continuum.trainer.threads import available_cpus, cpu_limited
from continuum.trainer.validation import (
    CLASSIFICATION,
    Feature,
    as_labels,
    identifier_warnings,
    validate_dataset,
)
from continuum.workload import emit

ENV_IMAGE = "CONTINUUM_IMAGE"
CLAIMANT = "continuum-trainer"  # recorded in claim.json when no TrainingJob name is known
Progress = Callable[..., None]
# The manifest's dataset fields the result summary (and so the status) repeats.
RESULT_DATASET_FIELDS = (
    "uri", "fingerprint", "rows", "mode", "sampledRows", "snapshot", "feedbackRows", "baseRows",
)  # fmt: skip


@dataclass(frozen=True)
class Holdout:
    """The seeded train/test split, with features already coerced to the schema's dtypes."""

    x_train: pd.DataFrame
    x_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    test_frame: pd.DataFrame  # raw test rows, for the champion's own feature coercion


def run_training(
    config: TrainingConfig,
    store: ObjectStore,
    *,
    champion_version: int | None = None,
    progress: Progress = emit,
    now: datetime | None = None,
) -> TrainingResult:
    """Train, evaluate against the champion, and write ``models/<model>/<version>/``.

    The dataset is read in memory, or streamed when ``spec.dataset.mode`` (or ``auto`` on a
    Parquet dataset over the in-memory limit) says so (``continuum.trainer.streamed``). With
    ``spec.dataset.feedback`` the training set is first built from served traffic as of
    ``now`` (default: the run's start) and written as a snapshot, which is then read as the
    dataset (``continuum.trainer.snapshot``).
    """
    task = check_config(config)
    progress("config_checked", task=task, estimator=config.spec.estimator.class_)
    snapshot = None
    if config.spec.dataset.feedback is not None:
        moment = now or datetime.now(UTC)
        snapshot = build_snapshot(config, store, now=moment, task=task, progress=progress)
        config = on_snapshot(config, snapshot.uri)
    source = config.spec.dataset
    objects = list_dataset_objects(store, source.uri)
    mode = choose_mode(source, objects, config.max_dataset_bytes)
    threads = config.threads or available_cpus()
    if mode == STREAM and config.spec.search is not None:
        raise ConfigError(
            f"spec.search needs the dataset in memory, but {source.uri} is streamed (over the "
            "in-memory limit CONTINUUM_MAX_DATASET_BYTES): search a sample of it"
        )
    if mode == STREAM:
        return run_streamed(config, store, objects, task=task, threads=threads,
                            champion_version=champion_version, progress=progress,
                            snapshot=snapshot)  # fmt: skip
    dataset = load_dataset(store, source, max_bytes=config.max_dataset_bytes, objects=objects)
    progress("dataset_loaded", rows=dataset.rows, fingerprint=dataset.fingerprint, mode=MEMORY)
    schema = validate_dataset(dataset.frame, config.spec, task)
    holdout = split(dataset.frame, schema, config, task)
    searched: dict[str, Any] | None = None
    with cpu_limited(threads):
        search = config.spec.search
        if search is not None:
            selection = run_search(config, search, schema, holdout, task=task, progress=progress)
            searched = search_summary(search, len(plan_search(config)), selection)
            config = with_best(config, selection)
        pipeline = fit(config, schema, holdout)
        outcome = assess(config, store, holdout, pipeline, task=task,
                         champion_version=champion_version)  # fmt: skip
    model_bytes = serialize_model(pipeline)
    outcome = replace(
        outcome, schema=tuple(schema), sha256=sha256_hex(model_bytes),
        fitted=fitted_facts(pipeline, threads),
        warnings=tuple(identifier_warnings(dataset.frame, schema)), search=searched,
    )  # fmt: skip
    report_outcome(outcome, progress)
    summary = DatasetSummary(
        source.uri, dataset.fingerprint, dataset.rows, len(dataset.objects), mode=MEMORY,
        snapshot=origin_of(snapshot),
    )  # fmt: skip
    reference = reference_of(dataset.frame, schema, config)
    return publish(config, store, summary, reference, outcome, model_bytes=model_bytes,
                   progress=progress)  # fmt: skip


def run_streamed(
    config: TrainingConfig,
    store: ObjectStore,
    objects: Sequence[ObjectInfo],
    *,
    task: str,
    threads: int,
    champion_version: int | None,
    progress: Progress,
    snapshot: Snapshot | None = None,
) -> TrainingResult:
    """:func:`run_training` for a streamed dataset."""
    with cpu_limited(threads):
        streamed = train_streamed(config, store, objects, task=task,
                                  champion_version=champion_version, progress=progress)  # fmt: skip
    model_bytes = serialize_model(streamed.pipeline)
    outcome = replace(
        streamed.outcome, schema=tuple(streamed.schema), sha256=sha256_hex(model_bytes),
        fitted=fitted_facts(streamed.pipeline, threads),
    )  # fmt: skip
    report_outcome(outcome, progress)
    summary = DatasetSummary(
        config.spec.dataset.uri, streamed.fingerprint, streamed.rows, len(objects),
        mode=STREAM, training=streamed.training, snapshot=origin_of(snapshot),
    )  # fmt: skip
    return publish(config, store, summary, streamed.reference, outcome,
                   model_bytes=model_bytes, progress=progress)  # fmt: skip


def origin_of(snapshot: Snapshot | None) -> Mapping[str, Any] | None:
    return snapshot.origin if snapshot is not None else None


def report_outcome(outcome: TrainingOutcome, progress: Progress) -> None:
    progress("evaluated", metrics=outcome.metrics, qualified=outcome.gate.qualified)
    if outcome.warnings:
        progress("data_warnings", warnings=list(outcome.warnings))


def check_config(config: TrainingConfig) -> str:
    """The checks beyond the API model's that need no data; returns the task.

    The spec's own rules were checked when it was parsed (TrainingConfig.from_spec); what is
    left needs scikit-learn (the estimator's params) or the storage layout (the model name).
    Both fail here, before any download.
    """
    spec = config.spec
    build_estimator(spec.estimator, spec.split.seed)
    if spec.search is not None:  # every candidate checked against the estimator, no data yet
        plan_search(config)
    layout.model_prefix(spec.model)  # the model name must be usable as a key segment
    return task_of(spec.estimator)


def plan_search(config: TrainingConfig) -> list[Trial]:
    search = config.spec.search
    if search is None:
        return []
    return plan_trials(config.spec.estimator, search.space, strategy=search.strategy,
                       budget=search.trials, seed=search.seed)  # fmt: skip


def run_search(
    config: TrainingConfig,
    search: Search,
    schema: list[Feature],
    holdout: Holdout,
    *,
    task: str,
    progress: Progress,
) -> Selection:
    """Every trial cross-validated on the training rows (one after the other), and the winner."""
    spec = config.spec
    trials = plan_search(config)
    pipeline = pipeline_for(spec, schema)
    folds = cv_folds(holdout.y_train, search.folds, task)
    results = []
    for trial in trials:
        results.append(score_trial(pipeline, trial, holdout.x_train, holdout.y_train, folds,
                                   metric=spec.evaluation.metric, task=task))  # fmt: skip
        failed = sum(1 for r in results if r.error is not None)
        progress("trial_done", trial=trial.index, done=len(results), of=len(trials),
                 failed=failed, error=results[-1].error)  # fmt: skip
    return select(results, spec.evaluation.metric)


def with_best(config: TrainingConfig, selection: Selection) -> TrainingConfig:
    """The config whose estimator params carry the best trial's on top of the spec's."""
    estimator = config.spec.estimator
    params = {**estimator.params, **selection.best.params}
    spec = config.spec.model_copy(
        update={"estimator": estimator.model_copy(update={"params": params})}
    )
    return replace(config, spec=spec)


def search_summary(search: Search, planned: int, selection: Selection) -> dict[str, Any]:
    """The manifest's ``search``: the plan, the winner and the best trials (at most 20)."""
    return {
        "strategy": search.strategy, "space": dict(search.space), "trials": search.trials,
        "folds": search.folds, "seed": search.seed, "planned": planned,
        "failed": selection.failed, "best": {"index": selection.best.index,
        "params": dict(selection.best.params), "score": selection.mean},
        "top": selection.summary,
    }  # fmt: skip


def split(frame: pd.DataFrame, schema: list[Feature], config: TrainingConfig, task: str) -> Holdout:
    spec = config.spec
    target = frame[spec.dataset.target]
    stratify = stratify_codes(target) if task == CLASSIFICATION and spec.split.stratify else None
    train, test = train_test_split(
        frame,
        test_size=spec.split.test_size,
        random_state=spec.split.seed,
        stratify=stratify,
    )
    as_json = [feature.to_json() for feature in schema]
    return Holdout(
        x_train=coerce_features(train, as_json),
        x_test=coerce_features(test, as_json),
        y_train=_labels(train[spec.dataset.target], task),
        y_test=_labels(test[spec.dataset.target], task),
        test_frame=test,
    )


def stratify_codes(target: pd.Series) -> Any:
    """What the split stratifies on: each row's class as a position among the sorted labels.

    The same rows as stratifying on the labels' text (:func:`sorted_text_codes`), without
    scikit-learn sorting a million strings: the split took 0.25 s instead of 1.2 s at
    1,000,000 rows of the issue-19 bench.
    """
    return sorted_text_codes(per_category(target, _as_text))


def _as_text(series: pd.Series) -> pd.Series:
    return series.astype(str)


def _labels(target: pd.Series, task: str) -> pd.Series:
    return as_labels(target, task)


def fit(config: TrainingConfig, schema: list[Feature], holdout: Holdout) -> Any:
    spec = config.spec
    pipeline = pipeline_for(spec, schema)
    try:
        with svc_probability_deprecation_silenced():
            return pipeline.fit(holdout.x_train, holdout.y_train)
    except Exception as exc:  # scikit-learn raises many types; report them all the same way
        raise TrainingError(f"fitting {spec.estimator.class_} failed: {exc}") from exc


def assess(
    config: TrainingConfig,
    store: ObjectStore,
    holdout: Holdout,
    pipeline: Any,
    *,
    task: str,
    champion_version: int | None,
) -> TrainingOutcome:
    """Holdout metrics of the new pipeline and of the champion, and the gate's decision."""
    metrics = _evaluate_or_fail(pipeline, holdout, task)
    champion = evaluate_champion(store, config.spec.model, champion_version, holdout, task)
    evaluation = config.spec.evaluation
    value = metrics[evaluation.metric]
    gate = decide(evaluation.metric, value, evaluation.threshold, evaluation.must_beat, champion)
    return TrainingOutcome(
        task=task,
        metrics=metrics,
        champion=champion,
        gate=gate,
        schema=(),  # schema and sha256 are filled in by run_training
        sha256="",
        train_rows=len(holdout.x_train),
        test_rows=len(holdout.x_test),
        calibration=calibrate(pipeline, holdout, task),
    )


def calibrate(pipeline: Any, holdout: Holdout, task: str) -> dict[str, Any] | None:
    """The holdout's probability calibration (classifiers), so the monitor can estimate
    performance before labels arrive; None for regressors and models without probabilities."""
    if task != CLASSIFICATION:
        return None
    try:
        return calibration_document(pipeline, holdout.x_test, holdout.y_test)
    except Exception as exc:  # scikit-learn raises many types; report them all the same way
        raise TrainingError(f"calibrating the probabilities on the holdout failed: {exc}") from exc


def _evaluate_or_fail(pipeline: Any, holdout: Holdout, task: str) -> dict[str, float]:
    try:
        return evaluate(pipeline, holdout.x_test, holdout.y_test, task)
    except Exception as exc:  # e.g. a metric undefined on this holdout
        raise TrainingError(f"evaluating on the holdout failed: {exc}") from exc


def evaluate_champion(
    store: ObjectStore, model: str, version: int | None, holdout: Holdout, task: str
) -> ChampionComparison | None:
    """The champion's metrics on our holdout; a load that fails verification is fatal."""
    if version is None:
        return None
    champion = load_verified_model(store, model, version)  # IntegrityError propagates
    try:
        features = coerce_features(holdout.test_frame, champion.manifest["features"])
        metrics = evaluate(champion.pipeline, features, holdout.y_test, task)
    except Exception as exc:  # incompatible features/classes: recorded, and the gate says so
        return ChampionComparison(version=version, error=f"{type(exc).__name__}: {exc}")
    return ChampionComparison(version=version, metrics=metrics)


def publish(
    config: TrainingConfig,
    store: ObjectStore,
    dataset: DatasetSummary,
    reference: pd.DataFrame,
    outcome: TrainingOutcome,
    *,
    model_bytes: bytes,
    progress: Progress,
) -> TrainingResult:
    """Claim a version, then write model, baseline, manifest (the completion mark), result."""
    model = config.spec.model
    version = allocate_version(store, model, claimant=config.training_job or CLAIMANT)
    progress("version_claimed", version=version)

    def key(file: str) -> str:
        return layout.version_key(model, version, file)

    store.put_bytes(key(layout.MODEL_FILE), model_bytes, if_absent=True)
    write_baseline(store, key, reference, outcome.schema)
    if outcome.calibration is not None:
        store.put_json(key(layout.CALIBRATION_FILE), dict(outcome.calibration), if_absent=True)
    manifest = build_manifest(
        config, version=version, bucket=store.bucket, dataset=dataset, outcome=outcome,
        created=datetime.now(UTC), image=os.environ.get(ENV_IMAGE),
    )  # fmt: skip
    store.put_json(key(layout.MANIFEST_FILE), manifest, if_absent=True)
    result = _result(config, outcome, manifest)
    store.put_json(key(layout.RESULT_FILE), result.summary(), if_absent=True)
    progress("published", version=version, uri=result.uri, qualified=result.qualified)
    return result


def reference_of(frame: pd.DataFrame, schema: Sequence[Feature], config: TrainingConfig) -> Any:
    """The drift baseline's bounded sample of an in-memory dataset."""
    columns = [feature.name for feature in schema] + [config.spec.dataset.target]
    return baseline.reference_sample(frame[columns], config.spec.split.seed)


def write_baseline(
    store: ObjectStore,
    key: Callable[[str], str],
    sample: pd.DataFrame,
    schema: Sequence[Feature],
) -> None:
    parquet = baseline.to_parquet_bytes(sample)
    store.put_bytes(key(layout.REFERENCE_FILE), parquet, if_absent=True)
    store.put_json(key(layout.STATS_FILE), baseline.feature_stats(sample, schema), if_absent=True)


def _result(
    config: TrainingConfig, outcome: TrainingOutcome, manifest: dict[str, Any]
) -> TrainingResult:
    return TrainingResult(
        model=config.spec.model,
        version=manifest["version"],
        uri=manifest["uri"],
        sha256=outcome.sha256,
        metric=config.spec.evaluation.metric,
        metrics=outcome.metrics,
        qualified=outcome.gate.qualified,
        reasons=outcome.gate.reasons,
        dataset={k: v for k, v in manifest["dataset"].items() if k in RESULT_DATASET_FIELDS},
        manifest=manifest,
        search=search_result(manifest.get("search")),
    )


def search_result(search: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The search's part of the result summary (and of status): counts and the winner."""
    if search is None:
        return None
    best = search["best"]
    return {"trials": search["planned"], "failed": search["failed"],
            "bestParams": best["params"], "bestScore": best["score"]}  # fmt: skip
