"""Building a feedback training set and writing it once as an immutable Parquet snapshot.

``spec.dataset.feedback`` makes a run train on served traffic: before training,
:func:`build_snapshot` reads every version's inference log of the window, the model's labels
and (``includeBase``) the base dataset, builds the training set (``continuum.trainer.feedback``)
and writes it to ``snapshots/<model>/<sha256 prefix>/data.parquet`` in the run's bucket
(``storage.layout.snapshot_key``), keeping an object already there (same key, same bytes).

The run then trains on the snapshot **read back through the normal dataset path**, as if
``spec.dataset`` were ``{uri: <snapshot>, format: parquet}`` with no feedback: the fingerprint,
the split and the model are those a TrainingJob naming the snapshot would get, which is what
makes a run replayable (docs/feedback.md#training-on-feedback). The labels and logs keep
changing; the snapshot does not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from continuum.api.trainingjob import Feedback, TrainingJobSpec
from continuum.errors import DatasetInvalid, ManifestInvalid, ObjectExists, ObjectNotFound
from continuum.storage import ObjectStore, layout, read_manifest
from continuum.storage.ground_truth import PREDICTION, TS, join_labels, predictions_frame
from continuum.storage.inference_logs import list_batches_since, logged_versions, read_batch
from continuum.storage.labels import Labels, LabelSchema, read_labels
from continuum.trainer import feedback as fb
from continuum.trainer.config import TrainingConfig
from continuum.trainer.dataset import LoadedDataset, load_dataset
from continuum.trainer.validation import CLASSIFICATION

Progress = Callable[..., None]
PARQUET = "parquet"


@dataclass(frozen=True)
class Logged:
    """The logged rows of the window, and the newest version that logged one."""

    rows: list[dict[str, Any]]
    newest_version: int | None


@dataclass(frozen=True)
class Snapshot:
    """The snapshot written (or found), and where its rows came from (the manifest's
    ``snapshot``)."""

    uri: str
    origin: Mapping[str, Any]

    @property
    def feedback_rows(self) -> int:
        return int(self.origin["feedbackRows"])

    @property
    def base_rows(self) -> int:
        return int(self.origin["baseRows"])


def source_model(spec: TrainingJobSpec, feedback: Feedback) -> str:
    return feedback.model or spec.model


def on_snapshot(config: TrainingConfig, uri: str) -> TrainingConfig:
    """The config that trains on the snapshot as any Parquet dataset (no feedback)."""
    dataset = config.spec.dataset.model_copy(
        update={"uri": uri, "format": PARQUET, "feedback": None}
    )
    return replace(config, spec=config.spec.model_copy(update={"dataset": dataset}))


def build_snapshot(
    config: TrainingConfig, store: ObjectStore, *, now: datetime, task: str, progress: Progress
) -> Snapshot:
    """Build the feedback training set of ``config`` at ``now`` and write it once."""
    spec = config.spec
    feedback = spec.dataset.feedback
    if feedback is None:
        raise ValueError("build_snapshot needs spec.dataset.feedback")
    model, window = source_model(spec, feedback), fb.window_of(feedback, now)
    base = load_dataset(store, spec.dataset, max_bytes=config.max_dataset_bytes) if (
        feedback.include_base) else None  # fmt: skip
    logged = read_logged(store, model, window)
    wanted = resolve_features(spec, store, model, base, logged)
    fb.check_usable(logged.rows, wanted, model, explicit=spec.dataset.features is not None)
    labels = read_labels(store, model, label_schema(task, logged.rows, base, spec.dataset.target))
    predictions = predictions_frame(logged.rows, wanted)
    joined = join_labels(predictions, labels.frame, now=window.end, label_delay=timedelta(0))
    kept, cut = fb.newest(joined.frame, feedback.max_rows)
    frame = training_frame(spec, base, kept, wanted, model)
    uri, found = write_once(store, spec.model, fb.snapshot_bytes(frame))
    origin = {
        "uri": uri, "model": model, "window": window.to_json(),
        "sinceSeconds": feedback.since_seconds, "maxRows": feedback.max_rows,
        "feedbackRows": len(kept), "overCap": cut, "baseRows": base.rows if base else 0,
        "base": _base_json(spec, base), "join": joined.counts.as_dict(),
        "labels": labels_json(labels), "existed": found, "features": list(wanted),
    }  # fmt: skip
    progress("snapshot_written", uri=uri, feedback_rows=len(kept), base_rows=origin["baseRows"],
             existed=found)  # fmt: skip
    return Snapshot(uri, origin)


def read_logged(store: ObjectStore, model: str, window: fb.Window) -> Logged:
    """Every version's logged rows answered in the window, in key order."""
    rows: list[dict[str, Any]] = []
    newest_version = None
    for version in logged_versions(store, model):
        keys = list_batches_since(store, model, version, window.start)
        found = [row for key in keys for row in read_batch(store, key)]
        if found:
            times = pd.to_datetime(
                pd.Series([r.get(TS) for r in found]), utc=True, format="ISO8601"
            )
            inside = [
                row for row, keep in zip(found, fb.in_window(times, window), strict=True) if keep
            ]
            rows += inside
            newest_version = version if inside else newest_version
    return Logged(rows, newest_version)


def resolve_features(
    spec: TrainingJobSpec,
    store: ObjectStore,
    model: str,
    base: LoadedDataset | None,
    logged: Logged,
) -> list[str]:
    """The feature columns (``feedback.wanted_features``), checked against the base's."""
    target, explicit = spec.dataset.target, spec.dataset.features is not None
    columns = list(base.frame.columns) if base is not None else None
    served = None if explicit or base is not None else served_features(store, model, logged)
    wanted = fb.wanted_features(spec.dataset.features, target, columns, served)
    if base is not None and columns is not None:
        fb.check_columns(columns, wanted, target, spec.dataset.uri, fb.logged_names(logged.rows),
                         explicit=explicit)  # fmt: skip
    return wanted


def served_features(store: ObjectStore, model: str, logged: Logged) -> list[str]:
    """The features of the newest logged version's manifest; else every logged name."""
    if logged.newest_version is not None:
        try:
            manifest = read_manifest(store, model, logged.newest_version)
            return [str(f["name"]) for f in manifest.get("features") or []]
        except (ObjectNotFound, ManifestInvalid, KeyError, TypeError):
            pass  # a version trained elsewhere: the logged names are all there is
    return sorted(fb.logged_names(logged.rows))


def label_schema(
    task: str, rows: Sequence[Mapping[str, Any]], base: LoadedDataset | None, target: str
) -> LabelSchema:
    """Classifiers: the classes served or in the base target; regressors: any number."""
    if task != CLASSIFICATION:
        return LabelSchema(None)
    base_values = base.frame[target].dropna().unique().tolist() if base is not None else []
    return LabelSchema(fb.label_classes((row.get(PREDICTION) for row in rows), base_values))


def training_frame(
    spec: TrainingJobSpec,
    base: LoadedDataset | None,
    kept: pd.DataFrame,
    wanted: Sequence[str],
    model: str,
) -> pd.DataFrame:
    """Base rows (if any) then the feedback rows; DatasetInvalid when there is nothing."""
    target = spec.dataset.target
    fresh = fb.feedback_frame(kept, wanted, target)
    if base is None:
        if not len(fresh):
            raise DatasetInvalid(None, _no_rows_message(model, spec))
        return fb.inferred(fresh)
    columns = [*wanted, target] if spec.dataset.features is not None else list(base.frame.columns)
    return fb.union_with_base(base.frame[columns], fresh)


def _no_rows_message(model: str, spec: TrainingJobSpec) -> str:
    feedback = spec.dataset.feedback
    since = feedback.since_seconds if feedback is not None else 0
    return (
        f"no labelled served rows of model {model!r} in the last {since} s and "
        "dataset.feedback.includeBase is false, so there is nothing to train on: check that the "
        f"ModelDeployment logs predictions (spec.inferenceLog) and that labels reach "
        f"labels/{model}/ with the answered request ids, widen sinceSeconds, or include the base"
    )


def write_once(store: ObjectStore, model: str, data: bytes) -> tuple[str, bool]:
    """Write the snapshot at its content key unless there; (its URI, whether it was there)."""
    key = layout.snapshot_key(model, fb.content_sha256(data))
    uri = f"s3://{store.bucket}/{key}"
    if store.exists(key):
        return uri, True
    try:
        store.put_bytes(key, data, if_absent=True, content_type="application/vnd.apache.parquet")
    except ObjectExists:  # another run wrote the same bytes meanwhile
        return uri, True
    return uri, False


def _base_json(spec: TrainingJobSpec, base: LoadedDataset | None) -> dict[str, Any] | None:
    if base is None:
        return None
    return {"uri": spec.dataset.uri, "format": spec.dataset.format,
            "fingerprint": base.fingerprint, "rows": base.rows}  # fmt: skip


def labels_json(labels: Labels) -> dict[str, Any]:
    summary = labels.summary()
    return {k: summary[k] for k in ("files", "labels", "rejected", "problems")}
