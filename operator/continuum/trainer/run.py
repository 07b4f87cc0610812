"""``run_training``: dataset -> validated pipeline -> gate -> a new, write-once model version."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from continuum.errors import TrainingError
from continuum.modelio import coerce_features, load_verified_model, serialize_model, sha256_hex
from continuum.storage import ObjectStore, allocate_version, layout
from continuum.trainer import baseline
from continuum.trainer.config import TrainingConfig
from continuum.trainer.dataset import LoadedDataset, load_dataset
from continuum.trainer.evaluation import ChampionComparison, decide, evaluate
from continuum.trainer.manifest import DatasetSummary, TrainingOutcome, build_manifest
from continuum.trainer.pipeline import (
    build_estimator,
    build_pipeline,
    fitted_facts,
    native_categorical,
    svc_probability_deprecation_silenced,
    task_of,
)
from continuum.trainer.result import TrainingResult
from continuum.trainer.threads import available_cpus, cpu_limited
from continuum.trainer.validation import (
    CLASSIFICATION,
    Feature,
    identifier_warnings,
    validate_dataset,
)
from continuum.workload import emit

ENV_IMAGE = "CONTINUUM_IMAGE"
CLAIMANT = "continuum-trainer"  # recorded in claim.json when no TrainingJob name is known
Progress = Callable[..., None]


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
) -> TrainingResult:
    """Train, evaluate against the champion, and write ``models/<model>/<version>/``."""
    task = check_config(config)
    progress("config_checked", task=task, estimator=config.spec.estimator.class_)
    dataset = load_dataset(store, config.spec.dataset, max_bytes=config.max_dataset_bytes)
    progress("dataset_loaded", rows=dataset.rows, fingerprint=dataset.fingerprint)
    schema = validate_dataset(dataset.frame, config.spec, task)
    holdout = split(dataset.frame, schema, config, task)
    threads = config.threads or available_cpus()
    with cpu_limited(threads):
        pipeline = fit(config, schema, holdout)
        outcome = assess(config, store, holdout, pipeline, task=task,
                         champion_version=champion_version)  # fmt: skip
    model_bytes = serialize_model(pipeline)
    outcome = replace(
        outcome, schema=tuple(schema), sha256=sha256_hex(model_bytes),
        fitted=fitted_facts(pipeline, threads),
        warnings=tuple(identifier_warnings(dataset.frame, schema)),
    )  # fmt: skip
    progress("evaluated", metrics=outcome.metrics, qualified=outcome.gate.qualified)
    if outcome.warnings:
        progress("data_warnings", warnings=list(outcome.warnings))
    return publish(config, store, dataset, outcome, model_bytes=model_bytes, progress=progress)


def check_config(config: TrainingConfig) -> str:
    """The checks beyond the API model's that need no data; returns the task.

    The spec's own rules were checked when it was parsed (TrainingConfig.from_spec); what is
    left needs scikit-learn (the estimator's params) or the storage layout (the model name).
    Both fail here, before any download.
    """
    spec = config.spec
    build_estimator(spec.estimator, spec.split.seed)
    layout.model_prefix(spec.model)  # the model name must be usable as a key segment
    return task_of(spec.estimator)


def split(frame: pd.DataFrame, schema: list[Feature], config: TrainingConfig, task: str) -> Holdout:
    spec = config.spec
    target = frame[spec.dataset.target]
    stratify = target.astype(str) if task == CLASSIFICATION and spec.split.stratify else None
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


def _labels(target: pd.Series, task: str) -> pd.Series:
    # Class labels as strings: the same label compares equal from CSV, Parquet and JSON.
    return target.astype(str).astype(object) if task == CLASSIFICATION else target.astype(float)


def fit(config: TrainingConfig, schema: list[Feature], holdout: Holdout) -> Any:
    spec = config.spec
    estimator = build_estimator(spec.estimator, spec.split.seed)
    preprocessing = spec.preprocessing
    native = native_categorical(spec.estimator, preprocessing.categorical)
    pipeline = build_pipeline(
        estimator, schema, preprocessing.numeric, preprocessing.categorical, native=native
    )
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
    )


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
    dataset: LoadedDataset,
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
    write_baseline(store, key, dataset.frame, outcome.schema, config)
    manifest = _manifest(config, version, store.bucket, dataset, outcome)
    store.put_json(key(layout.MANIFEST_FILE), manifest, if_absent=True)
    result = _result(config, outcome, manifest)
    store.put_json(key(layout.RESULT_FILE), result.summary(), if_absent=True)
    progress("published", version=version, uri=result.uri, qualified=result.qualified)
    return result


def _manifest(
    config: TrainingConfig,
    version: int,
    bucket: str,
    dataset: LoadedDataset,
    outcome: TrainingOutcome,
) -> dict[str, Any]:
    return build_manifest(
        config,
        version=version,
        bucket=bucket,
        dataset=DatasetSummary(
            config.spec.dataset.uri, dataset.fingerprint, dataset.rows, len(dataset.objects)
        ),
        outcome=outcome,
        created=datetime.now(UTC),
        image=os.environ.get(ENV_IMAGE),
    )


def write_baseline(
    store: ObjectStore,
    key: Callable[[str], str],
    frame: pd.DataFrame,
    schema: Sequence[Feature],
    config: TrainingConfig,
) -> None:
    columns = [feature.name for feature in schema] + [config.spec.dataset.target]
    sample = baseline.reference_sample(frame[columns], config.spec.split.seed)
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
        dataset={k: manifest["dataset"][k] for k in ("uri", "fingerprint", "rows")},
        manifest=manifest,
    )
