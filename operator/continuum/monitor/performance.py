"""Live performance of the served version, pure: joined predictions -> metric, interval, verdict.

What a check with ``spec.performance`` computes (the I/O is :mod:`continuum.monitor.live`):

* **realised**: the predictions answered in the ``windowSeconds`` before ``now -
  labelDelaySeconds`` (matured: their labels had time to arrive), joined with their labels
  (:func:`continuum.storage.ground_truth.join_labels`), the metric on them with its interval
  (:mod:`continuum.monitor.intervals`);
* **estimated** (``estimate: true``, classifiers with logged probabilities and a calibration
  beside the model): the metric estimated from the calibrated probabilities of the predictions
  answered in the last ``windowSeconds`` (:mod:`continuum.monitor.estimation`), and, for the
  realised window too, so the report shows estimate and realised side by side on the same rows;
* the **verdict**: ``Degraded`` when the whole interval is past ``holdout - maxDrop`` (below it;
  above ``holdout + maxDrop`` for rmse and mae), ``Held`` otherwise. Each of the two counts
  when it rests on at least ``minLabels`` predictions (labelled ones for realised); the
  verdict is Degraded when either is (realised named first: labels outrank the estimate),
  else Held when either is conclusive, else ``InsufficientData``. Either, not realised alone:
  the two judge different stretches (realised the matured window, the estimate the newest),
  and a covariate shift that hurts must show before its labels arrive, when the older matured
  window still looks healthy. Requiring the whole interval to clear the allowed drop is the
  false-alarm discipline of the drift tests: each side calls a healthy model degraded in at
  most about (1 - confidence) / 2 of checks, so the verdict in at most 1 - confidence (5% at
  0.95), fewer with a maxDrop; the operator then needs ``consecutiveChecks`` of them in a
  row;
* a **timeline**: the span split into ``CHUNKS`` equal stretches of time, each with its
  realised and estimated metric, for the report's plot; a confusion matrix of the realised
  window; error-rate fairness when ``sensitiveFeature`` is set (:mod:`fairness`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from continuum.api.driftmonitor import Performance
from continuum.errors import ContinuumError
from continuum.monitor.estimation import ESTIMABLE, Calibration, class_codes, estimate
from continuum.monitor.fairness import ErrorRateFairness, error_rates, group_names
from continuum.monitor.intervals import (
    Interval,
    Labelled,
    check_metric,
    confusion,
    higher_is_better,
    is_classification,
    realised,
)
from continuum.storage.ground_truth import PREDICTION, PROBA, TS, JoinCounts
from continuum.storage.labels import ID, LABEL, ROW

CHUNKS = 8
MIN_CHUNK_ROWS = 20  # a chunk's metric over fewer rows is left out of the timeline
DEGRADED, HELD, INSUFFICIENT = "Degraded", "Held", "InsufficientData"
REALISED, ESTIMATED = "realised", "estimated"


class PerformanceMismatch(ContinuumError):  # noqa: N818 -- an outcome, named like the errors
    """spec.performance does not fit the served version (the message says what to change)."""


@dataclass(frozen=True)
class Served:
    """What the served version says about itself: task, classes, holdout metrics."""

    task: str | None
    classes: tuple[str, ...]  # the model's class order (probability columns); () regressors
    holdout: Mapping[str, float]
    qualified_on: str | None  # the manifest's evaluation.metric
    calibration: Calibration | None = None


@dataclass(frozen=True)
class Window:
    """The times of one check: now, and the spans judged (realised, estimated)."""

    now: datetime
    label_delay: timedelta
    span: timedelta

    @property
    def matured_end(self) -> datetime:
        return self.now - self.label_delay

    @property
    def start(self) -> datetime:
        return self.matured_end - self.span

    @property
    def recent_start(self) -> datetime:
        return self.now - self.span


@dataclass(frozen=True)
class Chunk:
    start: datetime
    end: datetime
    rows: int
    realised: Interval | None
    estimated: Interval | None

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows": self.rows,
            "realised": self.realised.to_json() if self.realised else None,
            "estimated": self.estimated.to_json() if self.estimated else None,
        }


@dataclass(frozen=True)
class PerformanceResult:
    metric: str
    holdout: float | None
    verdict: str
    basis: str | None
    reason: str
    realised: Interval | None
    estimated: Interval | None  # newest window
    estimated_on_realised: Interval | None  # the realised window's rows, for the comparison
    confusion: Mapping[str, Any] | None
    timeline: tuple[Chunk, ...]
    join: JoinCounts | None
    fairness: ErrorRateFairness | None
    settings: Performance
    window: Window
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        s, w = self.settings, self.window
        return {
            "metric": self.metric,
            "higherIsBetter": higher_is_better(self.metric),
            "holdout": self.holdout,
            "maxDrop": s.max_drop,
            "bound": _bound(self.metric, self.holdout, s.max_drop),
            "confidence": s.confidence,
            "verdict": self.verdict,
            "basis": self.basis,
            "reason": self.reason,
            "realised": _json(self.realised),
            "estimated": _json(self.estimated),
            "estimatedOnRealisedWindow": _json(self.estimated_on_realised),
            "window": {
                "matured": [w.start.isoformat(), w.matured_end.isoformat()],
                "recent": [w.recent_start.isoformat(), w.now.isoformat()],
                "labelDelaySeconds": s.label_delay_seconds,
                "windowSeconds": s.window_seconds,
            },
            "confusionMatrix": self.confusion,
            "timeline": [chunk.to_json() for chunk in self.timeline],
            "join": self.join.as_dict() if self.join else None,
            "fairness": self.fairness.to_json() if self.fairness else None,
            "notes": list(self.notes),
        }


def _json(interval: Interval | None) -> dict[str, Any] | None:
    return interval.to_json() if interval else None


SUMMARY_KEYS = ("metric", "verdict", "basis", "holdout", "maxDrop")
INTERVAL_KEYS = ("value", "lower", "upper", "rows")
MAX_SUMMARY_REASON = 300


def performance_summary(section: Mapping[str, Any]) -> dict[str, Any]:
    """The few numbers of a report's performance section that the operator puts in
    status.performance and the gauges (the pod's termination message must stay small)."""
    summary = {key: section.get(key) for key in SUMMARY_KEYS}
    summary["reason"] = str(section.get("reason") or "")[:MAX_SUMMARY_REASON]
    for kind in (REALISED, ESTIMATED):
        interval = section.get(kind)
        if isinstance(interval, Mapping) and interval.get("value") is not None:
            summary[kind] = {k: interval.get(k) for k in INTERVAL_KEYS}
        else:
            summary[kind] = None
    return summary


def _bound(metric: str, holdout: float | None, max_drop: float) -> float | None:
    if holdout is None:
        return None
    return holdout - max_drop if higher_is_better(metric) else holdout + max_drop


# ---------------------------------------------------------------- settings against the model


def chosen_metric(spec: Performance, served: Served) -> str:
    """spec.performance.metric, else the one the version was qualified on; checked against
    the model's task and, with ``estimate``, against what can be estimated."""
    metric = spec.metric or served.qualified_on
    if metric is None:
        raise PerformanceMismatch(
            "performance.metric is not set and the served version's manifest names no "
            "evaluation.metric: set performance.metric"
        )
    check_metric(metric)
    classifier = served.task == "classification"
    if is_classification(metric) != classifier:
        kind = "a classifier" if classifier else "a regressor"
        raise PerformanceMismatch(
            f"performance.metric {metric} does not fit the served version, {kind}: "
            "r2, rmse and mae are for regressors, the others for classifiers"
        )
    return metric


# ---------------------------------------------------------------- rows from the joined frame


@dataclass(frozen=True)
class Arrays:
    """Rows' predictions as codes, their probabilities, and what had to be left out."""

    predicted: np.ndarray[Any, Any]
    truth: np.ndarray[Any, Any] | None  # None: no labels on these rows
    scores: np.ndarray[Any, Any] | None  # n x k, None when some row lacks them
    left_out: int  # rows whose prediction or label is not a class of the model


@dataclass(frozen=True)
class Rows:
    """Predictions as the assessment reads them: answer times, codes, probabilities, groups.

    Why not the joined frame: a frame row holds Python objects (two strings, a list of
    probabilities), about 250 bytes, where these arrays take about 40 (8 + 8 + 8 + 8k + a
    group code). Built a frame at a time (:func:`rows_of`) and joined (:func:`joined_rows`),
    they let the bounded join keep one partition's frames at a time (monitor.bounded_join).
    """

    ts: np.ndarray[Any, Any]  # answer times, int64 ns since the epoch (UTC); NaT the minimum
    predicted: np.ndarray[Any, Any]  # class codes, -1 none of the classes; values (regressors)
    truth: np.ndarray[Any, Any] | None  # the labels the same way; None: unlabelled rows
    scores: np.ndarray[Any, Any] | None  # n x k probabilities; None when some row lacks them
    groups: pd.Categorical | None  # the sensitive feature's group names; None: none asked for

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, keep: np.ndarray[Any, Any]) -> Rows:
        """The rows a boolean mask or an index array picks, in its order."""
        return Rows(
            self.ts[keep], self.predicted[keep], _picked(self.truth, keep),
            _picked(self.scores, keep),
            self.groups[keep] if self.groups is not None else None,
        )  # fmt: skip

    def within(self, start: datetime | pd.Timestamp, end: datetime | pd.Timestamp) -> Rows:
        """The rows answered after ``start``, up to ``end`` included."""
        return self.take((self.ts > _ns(start)) & (self.ts <= _ns(end)))

    def after(self, start: datetime | pd.Timestamp) -> Rows:
        return self.take(self.ts > _ns(start))

    def arrays(self, served: Served) -> Arrays:
        """The rows whose prediction (and label) is a class of the model, as the metrics
        take them; regressors' rows all count."""
        if served.task != "classification":
            return Arrays(self.predicted, self.truth, None, 0)
        keep = self.predicted >= 0
        if self.truth is not None:
            keep &= self.truth >= 0
        return Arrays(self.predicted[keep], _picked(self.truth, keep),
                      _picked(self.scores, keep), int((~keep).sum()))  # fmt: skip


def _picked(values: np.ndarray[Any, Any] | None, keep: np.ndarray[Any, Any]) -> Any:
    return values[keep] if values is not None else None


def _ns(moment: datetime | pd.Timestamp) -> int:
    return int(pd.Timestamp(moment).as_unit("ns").value)


def rows_of(
    frame: pd.DataFrame, served: Served, *, labelled: bool, sensitive: str | None = None
) -> Rows:
    """A frame of storage.ground_truth (joined with labels when ``labelled``) as Rows."""
    times = pd.DatetimeIndex(pd.to_datetime(frame[TS], utc=True)).as_unit("ns")
    ts = np.array(times.asi8, dtype=np.int64)  # a copy: a view would keep the frame's block
    groups = pd.Categorical(group_names(frame[sensitive])) if sensitive in frame.columns else None
    if served.task != "classification":
        truth = frame[LABEL].to_numpy(np.float64) if labelled else None
        return Rows(ts, frame[PREDICTION].to_numpy(np.float64), truth, None, groups)
    predicted = class_codes(frame[PREDICTION].tolist(), served.classes)
    truth = class_codes(frame[LABEL].tolist(), served.classes) if labelled else None
    scores = _scores(frame[PROBA].tolist(), len(served.classes))
    return Rows(ts, predicted, truth, scores, groups)


def joined_rows(parts: Sequence[Rows]) -> Rows:
    """The parts one after the other (at least one part). Probabilities only when every
    non-empty part has them, as :func:`rows_of` of their frames joined would give."""
    filled = [part for part in parts if len(part)] or [parts[0]]
    return Rows(
        np.concatenate([part.ts for part in parts]),
        np.concatenate([part.predicted for part in parts]),
        _joined([part.truth for part in parts]),
        _joined([part.scores for part in filled]),
        _joined_groups([part.groups for part in parts]),
    )


def _joined(arrays: Sequence[np.ndarray[Any, Any] | None]) -> np.ndarray[Any, Any] | None:
    present = [a for a in arrays if a is not None]
    return np.concatenate(present) if len(present) == len(arrays) else None


def _joined_groups(groups: Sequence[pd.Categorical | None]) -> pd.Categorical | None:
    if any(g is None for g in groups):
        return None
    return union_categoricals(list(groups))


def sample_keys(ids: pd.Series, rows: pd.Series) -> np.ndarray[Any, Any]:
    """Each prediction's sampling key, a hash of its request id and row (a missing row as 0,
    so a legacy row keys alike before and after the legacy row rule)."""
    index = pd.array(rows, dtype="Int64").fillna(0).to_numpy(np.int64)
    pairs = pd.DataFrame({"id": ids.astype(str).to_numpy(), "row": index})
    keys: np.ndarray[Any, Any] = pd.util.hash_pandas_object(pairs, index=False).to_numpy(np.uint64)
    return keys


class Sampler:
    """The rows of the ``limit`` smallest sampling keys (:func:`sample_keys`), added part by
    part in their order, ties at the cut all kept: so the same rows whichever parts they
    come in (all in memory, or partition by partition), and never more than about
    2 x ``limit`` held. ``positions``: each row's place in the order wanted at the end."""

    def __init__(self, limit: int) -> None:
        self.limit, self.seen, self.held = limit, 0, 0
        self.parts: list[tuple[np.ndarray[Any, Any], Rows, np.ndarray[Any, Any]]] = []

    def add(self, keys: np.ndarray[Any, Any], rows: Rows, positions: Any = None) -> None:
        at = np.arange(self.seen, self.seen + len(keys)) if positions is None else positions
        self.parts.append((keys, rows, at))
        self.seen, self.held = self.seen + len(keys), self.held + len(keys)
        if self.held > 2 * self.limit:
            self._prune()

    def _prune(self) -> None:
        if self.held <= self.limit:
            return
        keys = np.concatenate([k for k, _, _ in self.parts])
        cut = np.partition(keys, self.limit - 1)[self.limit - 1]
        self.parts = [(k[k <= cut], r.take(k <= cut), at[k <= cut]) for k, r, at in self.parts]
        self.held = sum(len(k) for k, _, _ in self.parts)

    def rows(self, empty: Rows) -> Rows:
        """The sample in ``positions`` order (``empty``: the Rows of no part)."""
        self._prune()
        if not self.parts:
            return empty
        positions = np.concatenate([at for _, _, at in self.parts])
        rows = joined_rows([r for _, r, _ in self.parts])
        return rows.take(np.argsort(positions, kind="stable"))


def sampled(frame: pd.DataFrame, rows: Rows, limit: int) -> tuple[Rows, int]:
    """``rows`` (of ``frame``, all in memory) sampled as :class:`Sampler` samples, and how
    many there were."""
    if len(rows) <= limit:
        return rows, len(rows)
    sampler = Sampler(limit)
    sampler.add(sample_keys(frame[ID], frame[ROW]), rows)
    return sampler.rows(rows), len(rows)


def arrays(frame: pd.DataFrame, served: Served, *, labelled: bool) -> Arrays:
    """A frame's rows (:func:`rows_of`) as the metrics take them (:meth:`Rows.arrays`)."""
    return rows_of(frame, served, labelled=labelled).arrays(served)


def _scores(values: Sequence[Any], k: int) -> np.ndarray[Any, Any] | None:
    """The logged probabilities as n x k, or None unless every row logged k of them."""
    if not values or any(not isinstance(v, list) or len(v) != k for v in values):
        return None
    return np.asarray(values, dtype=np.float64)


# ---------------------------------------------------------------- metrics of one frame


def realised_of(metric: str, data: Arrays, served: Served, confidence: float) -> Interval:
    assert data.truth is not None
    labelled = Labelled(data.truth, data.predicted, data.scores, served.classes)
    return realised(metric, labelled, confidence)


def estimated_of(metric: str, data: Arrays, served: Served, confidence: float) -> Interval | None:
    """The estimate, or None when it cannot be made (no calibration, no probabilities)."""
    if served.calibration is None or data.scores is None or metric not in ESTIMABLE:
        return None
    calibrated = served.calibration.apply(data.scores)
    return estimate(metric, calibrated, data.predicted, data.scores, confidence=confidence)


def estimate_gaps(metric: str, served: Served, spec: Performance) -> list[str]:
    """Why no estimate will be made, if it was asked for and cannot be."""
    if not spec.estimate:
        return []
    if served.task != "classification":
        return ["estimate: regressors give no probabilities; only realised performance"]
    if metric not in ESTIMABLE:
        return [f"estimate: {metric} cannot be estimated (estimable: {', '.join(ESTIMABLE)})"]
    if served.calibration is None:
        return [
            "estimate: the served version has no baseline/calibration.json (trained before "
            "issue 16, or a model without probabilities): retrain it to estimate performance"
        ]
    return []


# ---------------------------------------------------------------- the check


@dataclass(frozen=True)
class Evidence:
    """What the verdict is drawn from."""

    metric: str
    holdout: float | None
    realised: Interval | None
    estimated: Interval | None
    min_rows: int
    max_drop: float


def verdict(evidence: Evidence) -> tuple[str, str | None, str]:
    """(verdict, basis, reason): Degraded if either side is, realised first (module doc)."""
    e = evidence
    if e.holdout is None:
        return INSUFFICIENT, None, f"the served version's manifest has no holdout {e.metric}"
    conclusive = [
        (basis, interval, judge(e.metric, e.holdout, interval, e.max_drop))
        for basis, interval in ((REALISED, e.realised), (ESTIMATED, e.estimated))
        if interval is not None and interval.value is not None and interval.rows >= e.min_rows
    ]
    ranked = sorted(conclusive, key=lambda item: item[2] != DEGRADED)  # stable: realised first
    if ranked:
        basis, interval, found = ranked[0]
        return found, basis, describe(e.metric, e.holdout, interval, e.max_drop, basis)
    rows = e.realised.rows if e.realised else 0
    return (
        INSUFFICIENT,
        None,
        (
            f"{rows} matured labelled predictions, fewer than minLabels={e.min_rows}"
            + ("" if e.estimated is None else f"; estimate over {e.estimated.rows} predictions")
        ),
    )


def judge(metric: str, holdout: float, interval: Interval, max_drop: float) -> str:
    """Degraded when the whole interval is past the allowed drop, else Held."""
    low, high = interval.lower, interval.upper
    if low is None or high is None or not np.isfinite([low, high]).all():
        return HELD
    if higher_is_better(metric):
        return DEGRADED if high < holdout - max_drop else HELD
    return DEGRADED if low > holdout + max_drop else HELD


def describe(metric: str, holdout: float, interval: Interval, max_drop: float, basis: str) -> str:
    bound = _bound(metric, holdout, max_drop)
    past = judge(metric, holdout, interval, max_drop) == DEGRADED
    side = ("below" if higher_is_better(metric) else "above") if past else "reaches"
    return (
        f"{basis} {metric} {interval.value:.4g} [{interval.lower:.4g}, {interval.upper:.4g}] "
        f"over {interval.rows} predictions {side} holdout {holdout:.4g} "
        f"{'-' if higher_is_better(metric) else '+'} maxDrop {max_drop:g} = {bound:.4g}"
    )


@dataclass(frozen=True)
class Context:
    """What every metric of one check is computed with."""

    metric: str
    served: Served
    spec: Performance


def timeline(context: Context, labelled: Rows, recent: Rows, window: Window) -> tuple[Chunk, ...]:
    """The span from the realised window's start to now in CHUNKS stretches of time."""
    edges = pd.date_range(window.start, window.now, periods=CHUNKS + 1)
    chunks = []
    for start, end in itertools.pairwise(edges):
        rows, judged = recent.within(start, end), labelled.within(start, end)
        chunks.append(_chunk(context, rows, judged, (start, end)))
    return tuple(chunks)


def _chunk(
    context: Context, rows: Rows, judged: Rows, span: tuple[pd.Timestamp, pd.Timestamp]
) -> Chunk:
    metric, served, confidence = context.metric, context.served, context.spec.confidence
    real = est = None
    if len(judged) >= MIN_CHUNK_ROWS:
        real = realised_of(metric, judged.arrays(served), served, confidence)
    if context.spec.estimate and len(rows) >= MIN_CHUNK_ROWS:
        est = estimated_of(metric, rows.arrays(served), served, confidence)
    return Chunk(span[0].to_pydatetime(), span[1].to_pydatetime(), len(rows), real, est)


def confusion_json(data: Arrays, served: Served) -> dict[str, Any] | None:
    if served.task != "classification" or data.truth is None or not data.truth.size:
        return None
    k = len(served.classes)
    matrix = confusion(data.truth, data.predicted, k).astype(int)
    return {"classes": list(served.classes), "rows": "true class", "columns": "predicted",
            "matrix": matrix.tolist()}  # fmt: skip


@dataclass(frozen=True)
class Inputs:
    """One check's joined and unjoined predictions (:func:`rows_of` their frames)."""

    labelled: Rows  # matured, joined with labels (join_labels().frame), its order
    recent: Rows  # every prediction answered in the recent window
    join: JoinCounts | None
    sensitive: str | None = None
    fairness_threshold: float = 0.1
    notes: tuple[str, ...] = ()


def assess(spec: Performance, served: Served, window: Window, inputs: Inputs) -> PerformanceResult:
    """The performance section of one check (module doc)."""
    metric = chosen_metric(spec, served)
    notes = [*inputs.notes, *estimate_gaps(metric, served, spec)]
    labelled = inputs.labelled.after(window.start)
    judged, recent = labelled.arrays(served), inputs.recent.arrays(served)
    notes += _left_out_notes(judged, recent)
    real = realised_of(metric, judged, served, spec.confidence)
    est = est_same = None
    if spec.estimate:
        est = estimated_of(metric, recent, served, spec.confidence)
        if judged.predicted.size:
            est_same = estimated_of(metric, judged, served, spec.confidence)
    holdout = served.holdout.get(metric)
    found = verdict(Evidence(metric, holdout, real, est, spec.min_labels, spec.max_drop))
    return PerformanceResult(
        metric=metric, holdout=holdout, verdict=found[0], basis=found[1], reason=found[2],
        realised=real, estimated=est, estimated_on_realised=est_same,
        confusion=confusion_json(judged, served),
        timeline=timeline(Context(metric, served, spec), labelled, inputs.recent, window),
        join=inputs.join, fairness=_fairness(labelled, served, inputs), settings=spec,
        window=window, notes=tuple(notes),
    )  # fmt: skip


def _left_out_notes(judged: Arrays, recent: Arrays) -> list[str]:
    notes = []
    if judged.left_out:
        notes.append(f"{judged.left_out} labelled predictions left out: prediction or label "
                     "not a class of the model")  # fmt: skip
    if recent.left_out:
        notes.append(f"{recent.left_out} recent predictions left out: not a class of the model")
    return notes


def _fairness(labelled: Rows, served: Served, inputs: Inputs) -> ErrorRateFairness | None:
    feature = inputs.sensitive
    if feature is None or served.task != "classification" or labelled.groups is None:
        return None
    if not len(labelled) or labelled.truth is None:
        return None
    positive, code = served.classes[-1], len(served.classes) - 1
    return error_rates(
        pd.Series(labelled.groups),
        pd.Series(labelled.truth == code),
        pd.Series(labelled.predicted == code),
        feature=feature,
        positive=positive,
        threshold=inputs.fairness_threshold,
    )
