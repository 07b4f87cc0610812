"""A streamed training: a Parquet dataset larger than the pod's memory, read chunk by chunk.

The objects are copied one by one to the pod's scratch disk (``/tmp``) and read from there by
row group, only the target and feature columns, in chunks of ``stream.CHUNK_ROWS`` rows:

1. **scan** (the one read from S3): each object is downloaded and hashed into the
   fingerprint, and its chunks folded into the validation facts (row count, nulls, dtypes,
   categories, classes), a seeded sample of ``sampleRows`` training rows and the drift
   baseline's sample (5,000 rows of the whole dataset);
2. **fit**: estimators with ``partial_fit`` (:data:`INCREMENTAL`: SGDClassifier, SGDRegressor,
   GaussianNB) have the preprocessing fitted on the sample, then learn from every training
   row, chunk after chunk, ``passes`` times; the others are fitted on the sample;
3. **evaluate**: every holdout row is scored, chunk by chunk, by the new model and by the
   champion; only labels and predictions (1-byte codes below 128 classes) and class scores
   (float64: one for two classes, else one per class) are kept, 10 bytes a holdout row for
   two classes, and the metrics are computed once at the end, so they are the numbers
   scikit-learn gives on the whole holdout.

The split is a hash of each row's global index (``stream.holdout_mask``): the same rows for
any chunking, ``testSize`` of them in expectation, not stratified. The same seed and the same
rows give the same model bytes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.pipeline import Pipeline

from continuum.errors import DatasetInvalid, TrainingError
from continuum.modelio import coerce_features, load_verified_model
from continuum.storage import ObjectInfo, ObjectStore
from continuum.trainer.baseline import MAX_REFERENCE_ROWS
from continuum.trainer.config import TrainingConfig
from continuum.trainer.dataset import Downloads
from continuum.trainer.evaluation import ChampionComparison, decide, metrics_of
from continuum.trainer.manifest import TrainingOutcome
from continuum.trainer.pipeline import (
    ESTIMATOR_STEP,
    PREPROCESS_STEP,
    pipeline_for,
    svc_probability_deprecation_silenced,
)
from continuum.trainer.stream import (
    BASELINE_SALT,
    SAMPLE_SALT,
    BottomK,
    Chunk,
    data_columns,
    holdout_mask,
    iter_chunks,
    row_keys,
)
from continuum.trainer.validation import (
    CLASSIFICATION,
    DatasetFacts,
    Feature,
    as_labels,
    check_columns_present,
    feature_names,
    identifier_warnings,
    validate_facts,
)

# The allow-listed estimators with partial_fit: they learn from every training row.
INCREMENTAL = frozenset({"SGDClassifier", "SGDRegressor", "GaussianNB"})
PROGRESS_EVERY_CHUNKS = 16  # a rows_read line per ~1M rows
Progress = Callable[..., None]


@dataclass(frozen=True)
class Scan:
    """What the one pass over the downloaded dataset found."""

    facts: DatasetFacts
    columns: list[str]  # read from every object: the target, then the features
    train_rows: int
    test_rows: int
    sample: pd.DataFrame  # the seeded sample of training rows, indexed by global row
    reference: pd.DataFrame  # the drift baseline's sample of all rows


@dataclass(frozen=True)
class StreamedRun:
    """A streamed training's products, for the caller to serialize and publish."""

    pipeline: Pipeline
    outcome: TrainingOutcome
    schema: list[Feature]
    reference: pd.DataFrame
    fingerprint: str
    rows: int
    training: Mapping[str, Any]  # how the estimator saw the rows (manifest "training")


def train_streamed(
    config: TrainingConfig,
    store: ObjectStore,
    objects: Sequence[ObjectInfo],
    *,
    task: str,
    champion_version: int | None,
    progress: Progress,
) -> StreamedRun:
    """Download, scan, validate, fit and evaluate; the scratch copies are removed after."""
    with tempfile.TemporaryDirectory(prefix="continuum-dataset-") as directory:
        downloads = Downloads(store, config.spec.dataset.uri, objects, directory)
        scan = scan_dataset(config, downloads, [item.key for item in objects], task, progress)
        progress("dataset_loaded", rows=scan.facts.rows, fingerprint=downloads.fingerprint(),
                 mode="stream", objects=len(objects))  # fmt: skip
        schema = validate_facts(scan.facts, config.spec, task)
        local = Local(downloads.paths, [item.key for item in objects], scan.columns)
        pipeline, training = fit_streamed(config, schema, scan, local, task=task, progress=progress)
        outcome = assess_streamed(
            config, store, pipeline, schema=schema, scan=scan, local=local, task=task,
            champion_version=champion_version, progress=progress,
        )  # fmt: skip
    warnings = tuple(identifier_warnings(scan.facts, schema))
    return StreamedRun(
        pipeline=pipeline,
        outcome=replace(outcome, warnings=warnings),
        schema=schema,
        reference=scan.reference[[f.name for f in schema] + [config.spec.dataset.target]],
        fingerprint=downloads.fingerprint(),
        rows=scan.facts.rows,
        training=training,
    )


@dataclass(frozen=True)
class Local:
    """The downloaded objects and the columns read from them."""

    paths: Sequence[str]
    keys: Sequence[str]
    columns: Sequence[str]

    def chunks(self) -> Iterator[Chunk]:
        return iter_chunks(self.paths, self.keys, self.columns)


# ---------------------------------------------------------------------------- scan


def scan_dataset(
    config: TrainingConfig,
    downloads: Downloads,
    keys: Sequence[str],
    task: str,
    progress: Progress,
) -> Scan:
    """One pass: download and hash every object, gather facts and both samples."""
    spec = config.spec
    first = data_columns(downloads.get(0))
    names = feature_names(spec, first)
    check_columns_present(first, [spec.dataset.target, *names])  # before reading any row
    columns = [spec.dataset.target, *names]
    facts = DatasetFacts(first)
    sample, reference = BottomK(spec.dataset.sample_rows, narrow=True), BottomK(MAX_REFERENCE_ROWS)
    train_rows = test_rows = 0
    for chunk in reported(iter_chunks(downloads, keys, columns), progress, "scan"):
        facts.add(chunk.frame(), spec, task)
        test = holdout_mask(chunk.start, chunk.rows, spec.split.seed, spec.split.test_size)
        _offer(sample, chunk, spec.split.seed, SAMPLE_SALT, ~test)
        _offer(reference, chunk, spec.split.seed, BASELINE_SALT, None)
        test_rows += int(test.sum())
        train_rows += chunk.rows - int(test.sum())
    if not facts.rows:
        raise DatasetInvalid(None, "the dataset has no rows; add data")
    return Scan(facts, columns, train_rows, test_rows, _frame(sample), _frame(reference, True))


def _offer(sampler: BottomK, chunk: Chunk, seed: int, salt: int, rows: np.ndarray | None) -> None:
    keys = row_keys(chunk.start, chunk.rows, seed, salt)
    index = np.arange(chunk.start, chunk.start + chunk.rows, dtype=np.int64)
    if rows is None:
        sampler.offer(keys, index, chunk.table)
    else:
        sampler.offer(keys[rows], index[rows], chunk.table.filter(pa.array(rows)))


def _frame(sampler: BottomK, renumber: bool = False) -> pd.DataFrame:
    index, table = sampler.result()
    if table is None:
        return pd.DataFrame()
    frame = table.to_pandas()
    frame.index = pd.RangeIndex(len(frame)) if renumber else pd.Index(index)
    return frame


def reported(chunks: Iterable[Chunk], progress: Progress, phase: str) -> Iterator[Chunk]:
    """``chunks``, with a ``rows_read`` progress line every PROGRESS_EVERY_CHUNKS chunks and
    one when the phase ends (rows: how many of the dataset's rows the phase has read)."""
    rows = told = 0
    for count, chunk in enumerate(chunks, start=1):
        yield chunk
        rows = chunk.start + chunk.rows
        if count % PROGRESS_EVERY_CHUNKS == 0:
            progress("rows_read", phase=phase, rows=rows)
            told = rows
    if rows != told or not rows:
        progress("rows_read", phase=phase, rows=rows)


# ---------------------------------------------------------------------------- fit


def fit_streamed(
    config: TrainingConfig,
    schema: list[Feature],
    scan: Scan,
    local: Local,
    *,
    task: str,
    progress: Progress,
) -> tuple[Pipeline, dict[str, Any]]:
    """The fitted pipeline and how its estimator saw the rows (for the manifest)."""
    spec = config.spec
    pipeline = pipeline_for(spec, schema)
    features = [feature.to_json() for feature in schema]
    x_sample = coerce_features(scan.sample, features)
    y_sample = as_labels(scan.sample[spec.dataset.target], task)
    try:
        with svc_probability_deprecation_silenced():
            if spec.estimator.class_ not in INCREMENTAL:
                pipeline.fit(x_sample, y_sample)
                return pipeline, _sampled(spec.dataset.sample_rows, len(x_sample), scan)
            pipeline.named_steps[PREPROCESS_STEP].fit(x_sample, y_sample)
            classes = sorted(scan.facts.classes) if task == CLASSIFICATION else None
            _partial_fit(pipeline, local, config, features, classes=classes, progress=progress)
    except (DatasetInvalid, TrainingError):
        raise
    except Exception as exc:  # scikit-learn raises many types; report them all the same way
        raise TrainingError(f"fitting {spec.estimator.class_} failed: {exc}") from exc
    training = {"method": "partial_fit", "passes": spec.dataset.passes,
                "trainRows": scan.train_rows, "preprocessingSampleRows": len(x_sample)}  # fmt: skip
    return pipeline, training


def _sampled(requested: int, rows: int, scan: Scan) -> dict[str, Any]:
    return {"method": "sample", "sampleRows": requested, "sampledRows": rows,
            "trainRows": scan.train_rows}  # fmt: skip


def _partial_fit(
    pipeline: Pipeline,
    local: Local,
    config: TrainingConfig,
    features: list[dict[str, Any]],
    *,
    classes: list[str] | None,
    progress: Progress,
) -> None:
    spec = config.spec
    preprocess = pipeline.named_steps[PREPROCESS_STEP]
    estimator = pipeline.named_steps[ESTIMATOR_STEP]
    extra = {"classes": np.asarray(classes, dtype=object)} if classes is not None else {}
    task = CLASSIFICATION if classes is not None else "regression"
    for done in range(spec.dataset.passes):
        phase = f"fit pass {done + 1}/{spec.dataset.passes}"
        for chunk in reported(local.chunks(), progress, phase):
            train = ~holdout_mask(chunk.start, chunk.rows, spec.split.seed, spec.split.test_size)
            if train.any():
                frame = chunk.frame()[train]
                x = preprocess.transform(coerce_features(frame, features))
                estimator.partial_fit(x, as_labels(frame[spec.dataset.target], task), **extra)


# ---------------------------------------------------------------------------- evaluate


class HoldoutScores:
    """Labels, predictions and class scores of one model on the holdout, chunk by chunk.

    Classification labels are kept as codes, positions in ``universe`` (every label, sorted),
    so a holdout of millions of rows costs a few bytes a row, and the metrics are computed on
    the codes: the same numbers as on the labels, since the codes keep the labels' order.
    """

    def __init__(self, model: Any, features: Sequence[dict[str, Any]], task: str,
                 universe: Sequence[str]) -> None:  # fmt: skip
        self.model, self.features, self.task = model, list(features), task
        self.universe = list(universe)
        self.y: list[np.ndarray] = []
        self.predicted: list[np.ndarray] = []
        self.scores: list[np.ndarray] = []

    def add(self, frame: pd.DataFrame, target: pd.Series) -> None:
        x = coerce_features(frame, self.features)
        predicted = np.asarray(self.model.predict(x))
        if self.task == CLASSIFICATION:
            self.y.append(self._codes(target))
            self.predicted.append(self._codes(predicted))
            scores = np.asarray(self.model.predict_proba(x), dtype=np.float64)
            # Two classes: the metrics read only the second's score (roc_auc), so only it is kept.
            self.scores.append(scores[:, -1:] if scores.shape[1] == 2 else scores)
        else:
            self.y.append(np.asarray(target, dtype=np.float64))
            self.predicted.append(predicted.astype(np.float64))

    def _codes(self, labels: Any) -> np.ndarray:
        text = pd.Series(np.asarray(labels)).astype(str)
        return np.asarray(pd.Categorical(text, categories=self.universe).codes)

    def metrics(self) -> dict[str, float]:
        if not self.y:
            raise TrainingError("the holdout is empty: the dataset has too few rows for testSize")
        y, predicted = np.concatenate(self.y), np.concatenate(self.predicted)
        if self.task != CLASSIFICATION:
            return metrics_of(y, predicted, None, np.asarray([]), self.task)
        classes = self._codes(np.asarray(self.model.classes_))
        return metrics_of(y, predicted, np.concatenate(self.scores), classes, self.task)


def assess_streamed(
    config: TrainingConfig,
    store: ObjectStore,
    pipeline: Pipeline,
    *,
    schema: list[Feature],
    scan: Scan,
    local: Local,
    task: str,
    champion_version: int | None,
    progress: Progress,
) -> TrainingOutcome:
    """Holdout metrics of the new pipeline and of the champion (one pass), and the gate."""
    spec = config.spec
    champion = None
    if champion_version is not None:
        champion = load_verified_model(store, spec.model, champion_version)
    universe = _universe(scan, pipeline, champion.pipeline if champion else None, task)
    ours = HoldoutScores(pipeline, [f.to_json() for f in schema], task, universe)
    theirs = (HoldoutScores(champion.pipeline, champion.manifest["features"], task, universe)
              if champion is not None else None)  # fmt: skip
    error = _score_holdout(local, config, ours, theirs, progress)
    metrics = _metrics_or_fail(ours)
    comparison = _comparison(champion_version, theirs, error)
    evaluation = spec.evaluation
    gate = decide(evaluation.metric, metrics[evaluation.metric], evaluation.threshold,
                  evaluation.must_beat, comparison)  # fmt: skip
    return TrainingOutcome(
        task=task, metrics=metrics, champion=comparison, gate=gate, schema=(), sha256="",
        train_rows=scan.train_rows, test_rows=scan.test_rows,
    )  # fmt: skip


def _universe(scan: Scan, pipeline: Any, champion: Any, task: str) -> list[str]:
    if task != CLASSIFICATION:
        return []
    labels = set(scan.facts.classes) | {str(c) for c in pipeline.classes_}
    if champion is not None:
        labels |= {str(c) for c in getattr(champion, "classes_", [])}
    return sorted(labels)


def _score_holdout(
    local: Local,
    config: TrainingConfig,
    ours: HoldoutScores,
    theirs: HoldoutScores | None,
    progress: Progress,
) -> str | None:
    """Score every holdout row; the champion's first failure (as text) ends its scoring."""
    spec, error = config.spec, None
    for chunk in reported(local.chunks(), progress, "evaluate"):
        test = holdout_mask(chunk.start, chunk.rows, spec.split.seed, spec.split.test_size)
        if not test.any():
            continue
        frame = chunk.frame()[test]
        target = as_labels(frame[spec.dataset.target], ours.task)
        ours.add(frame, target)
        if theirs is not None and error is None:
            try:
                theirs.add(frame, target)
            except Exception as exc:  # incompatible features/classes: recorded, the gate says so
                error = f"{type(exc).__name__}: {exc}"
    return error


def _metrics_or_fail(scores: HoldoutScores) -> dict[str, float]:
    try:
        return scores.metrics()
    except TrainingError:
        raise
    except Exception as exc:  # e.g. a metric undefined on this holdout
        raise TrainingError(f"evaluating on the holdout failed: {exc}") from exc


def _comparison(
    version: int | None, scores: HoldoutScores | None, error: str | None
) -> ChampionComparison | None:
    if version is None or scores is None:
        return None
    if error is not None:
        return ChampionComparison(version=version, error=error)
    try:
        return ChampionComparison(version=version, metrics=scores.metrics())
    except Exception as exc:  # a metric the champion's answers leave undefined
        return ChampionComparison(version=version, error=f"{type(exc).__name__}: {exc}")
