"""Live performance, the I/O: what the served version says, its predictions and labels.

Reads, for one check with ``spec.performance`` (:mod:`continuum.monitor.performance` does the
rest, pure):

* the served version's manifest (task, target, holdout metrics, evaluation.metric) and its
  ``baseline/calibration.json`` when present;
* the logged predictions answered since the realised window's start (older batches are not
  downloaded: :func:`continuum.storage.inference_logs.list_batches_since`), with the
  sensitive feature's value when one is set;
* every label of the model (:func:`continuum.storage.labels.read_labels`), joined with the
  matured predictions. Labels of predictions older than the window were not read with them,
  so they count among ``unknownIds`` of the join; the report says so.

The join runs in memory when the version's logs and the model's labels fit the budget of
:mod:`continuum.monitor.bounded_join` (256 MB of frames), else partition by partition through
local disk, with the same result: in memory it is faster (1M x 1M: 9.3 s against 16.6 s), and
partitioned its peak stops growing with the data (bench/realised_join.py).

A spec that does not fit the version (a regression metric on a classifier) does not fail the
drift check: the section says what to change, with verdict ``InsufficientData``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from continuum.api.driftmonitor import Performance
from continuum.errors import ObjectNotFound
from continuum.monitor.bounded_join import Span, bounded_join, stored_partitions
from continuum.monitor.estimation import Calibration, CalibrationInvalid, parse_calibration
from continuum.monitor.performance import (
    INSUFFICIENT,
    Inputs,
    PerformanceMismatch,
    Served,
    Window,
    assess,
    rows_of,
    sampled,
)
from continuum.monitor.reference import load_reference
from continuum.monitor.settings import MonitorTarget
from continuum.storage import ObjectStore, layout
from continuum.storage.ground_truth import TS, join_labels, read_predictions_since
from continuum.storage.labels import LabelSchema, read_labels
from continuum.storage.models import read_manifest

DEFAULT_MAX_ROWS = Performance().max_rows
JOIN_NOTE = (
    "labels of predictions answered before the window's start are not joined and count "
    "among unknownIds"
)


def served_version(store: ObjectStore, model: str, version: int) -> tuple[Served, list[str]]:
    """The served version's task, classes, holdout metrics and calibration, and notes."""
    manifest = read_manifest(store, model, version)
    calibration, notes = _calibration(store, model, version)
    task = manifest.get("task")
    classes = (
        calibration.classes if calibration else tuple(_classes(store, manifest, model, version))
    )
    evaluation = manifest.get("evaluation") or {}
    metrics = {k: float(v) for k, v in (manifest.get("metrics") or {}).items()
               if isinstance(v, int | float)}  # fmt: skip
    metric = evaluation.get("metric") if isinstance(evaluation, Mapping) else None
    return Served(task, classes, metrics, metric, calibration), notes


def _calibration(
    store: ObjectStore, model: str, version: int
) -> tuple[Calibration | None, list[str]]:
    key = layout.version_key(model, version, layout.CALIBRATION_FILE)
    try:
        document = store.get_json(key)
    except ObjectNotFound:
        return None, []
    try:
        return parse_calibration(document, f"s3://{store.bucket}/{key}"), []
    except CalibrationInvalid as exc:
        return None, [f"calibration not used: {exc}"]


def _classes(
    store: ObjectStore, manifest: Mapping[str, Any], model: str, version: int
) -> list[str]:
    """Without a calibration: the classes of the reference sample's target (sorted, as
    scikit-learn orders them), for versions trained before calibration was stored."""
    if manifest.get("task") != "classification":
        return []
    return load_reference(store, model, version).classes()


def read_inputs(
    store: ObjectStore,
    target: MonitorTarget,
    served: Served,
    window: Window,
    sensitive: str | None,
    *,
    partitions: int | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> tuple[Inputs, dict[str, Any]]:
    """The window's predictions joined with their labels, and the labels' own summary; in
    ``partitions`` (None: as many as the stored bytes need, 1 in memory; module doc); each
    side sampled down to ``max_rows`` (performance.maxRows)."""
    count = partitions or stored_partitions(store, target.model, target.version)
    if count > 1:
        return _partitioned(store, target, served, window, (sensitive, count, max_rows))
    model, version = target.model, target.version
    features = [sensitive] if sensitive else []
    predictions = read_predictions_since(store, model, version, window.start, features)
    schema = LabelSchema(served.classes if served.task == "classification" else None)
    labels = read_labels(store, model, schema)
    joined = join_labels(predictions, labels.frame, now=window.now, label_delay=window.label_delay)
    recent = predictions[predictions[TS] > pd.Timestamp(window.recent_start)]
    matured, seen = sampled(joined.frame, rows_of(joined.frame, served, labelled=True,
                                                  sensitive=sensitive), max_rows)  # fmt: skip
    young, logged = sampled(recent, rows_of(recent, served, labelled=False,
                                            sensitive=sensitive), max_rows)  # fmt: skip
    notes = [JOIN_NOTE, *sample_notes((len(matured), seen), (len(young), logged)),
             *labels.problems[:5]]  # fmt: skip
    return Inputs(matured, young, joined.counts, sensitive, notes=tuple(notes)), labels.summary()


def sample_notes(joined: tuple[int, int], recent: tuple[int, int]) -> list[str]:
    """What the report says of a sample: (kept, seen) of each side."""
    sides = (("matured labelled", joined), ("recent", recent))
    return [
        f"{kept:,} of the {seen:,} {side} predictions judged (performance.maxRows: those "
        "with the smallest hash of request id and row)"
        for side, (kept, seen) in sides
        if kept < seen
    ]


def _partitioned(
    store: ObjectStore,
    target: MonitorTarget,
    served: Served,
    window: Window,
    how: tuple[str | None, int, int],
) -> tuple[Inputs, dict[str, Any]]:
    """read_inputs through :func:`bounded_join`: ``how`` (sensitive feature, partitions,
    maxRows)."""
    sensitive, count, max_rows = how
    span = Span(window.start, window.now, window.label_delay)
    found = bounded_join(store, (target.model, target.version), served, span,
                         recent_since=window.recent_start, sensitive=sensitive,
                         partitions=count, limit=max_rows)  # fmt: skip
    problems = found.labels.get("problems") or []
    kept = ((len(found.labelled), found.seen[0]), (len(found.recent), found.seen[1]))
    notes = (JOIN_NOTE, *sample_notes(*kept), *[str(p) for p in problems[:5]])
    return Inputs(found.labelled, found.recent, found.counts, sensitive, notes=notes), found.labels


def check_performance(
    store: ObjectStore,
    target: MonitorTarget,
    spec: Performance,
    *,
    now: datetime,
    sensitive: str | None = None,
    fairness_threshold: float = 0.1,
) -> dict[str, Any]:
    """The report section of one check's live performance (the summary's is derived from it:
    :func:`continuum.monitor.performance.performance_summary`)."""
    delay, span = (
        timedelta(seconds=spec.label_delay_seconds),
        timedelta(seconds=spec.window_seconds),
    )
    window = Window(now, delay, span)
    served, notes = served_version(store, target.model, target.version)
    try:
        inputs, labels = read_inputs(store, target, served, window, sensitive,
                                     max_rows=spec.max_rows)  # fmt: skip
        inputs = replace(inputs, fairness_threshold=fairness_threshold,
                         notes=(*notes, *inputs.notes))  # fmt: skip
        result = assess(spec, served, window, inputs)
    except (PerformanceMismatch, CalibrationInvalid) as exc:
        return unusable(str(exc))
    return result.to_json() | {"labels": labels}


def unusable(message: str) -> dict[str, Any]:
    """The section of a check whose spec.performance does not fit the served version."""
    return {"verdict": INSUFFICIENT, "basis": None, "reason": message, "error": message}
