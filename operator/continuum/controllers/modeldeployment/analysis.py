"""Pure analysis of a progressive rollout: the servers' counters -> signals -> a verdict.

The model servers count, per rollout step and per version (``GET /v2/rollout``, see
``server/rollout.py``): requests scored and answered, scoring errors, a latency histogram,
and for every request both versions scored, how many rows agreed and each version's
prediction distribution. ``counters_from`` reads one pod's answer, ``merge`` sums pods, and
``decide`` compares the sums with ``spec.rollout.analysis``:

* ``errorRate``: the candidate's scoring errors over the requests it scored;
* ``latencyRatio``: the candidate's p99 scoring latency over the champion's (from the
  histograms, linear within a bucket);
* ``agreement``: the share of compared rows the two versions answered alike (classifier:
  equal labels; regressor: relative difference within ``regressionTolerance``, counted by
  the server, which is told the tolerance);
* ``distributionDistance``: classifier, total variation between the label shares; regressor,
  the difference of the means in champion standard deviations;
* ``realisedDrop``, when labels come back during the step (posted to the servers' feedback
  endpoint, which score both versions on each labelled row they compared): classifier, the
  champion's accuracy minus the candidate's; regressor, the candidate's mean absolute error
  over the champion's, minus 1. Paired (same rows for both), judged from ``minLabels``
  labelled rows on; below that it never holds a step: labels may never come.

No signal is judged before the step has its minimum requests: a verdict on 3 requests would
be noise. Then a failed signal rolls back at once; a step with its minimum requests *and*
time, every signal passing, advances (or promotes after the last step).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from continuum.api import Analysis, SignalEvidence
from continuum.api.rollout import Signal, Verdict
from continuum.errors import ContinuumError

P99 = 0.99
TINY = 1e-12


@dataclass(frozen=True)
class VersionCounts:
    """One version's counters at one step (summed over pods)."""

    scored: int = 0  # requests this version predicted (answered or compared)
    answered: int = 0  # requests whose answer went back to the client
    errors: int = 0  # requests whose scoring raised
    latency: tuple[int, ...] = ()  # counts per bucket of ``Counters.bounds`` (+Inf last)
    labels: Mapping[str, int] = field(default_factory=dict)  # classifier: rows per label
    moments: tuple[int, float, float] = (0, 0.0, 0.0)  # regressor: rows, sum, sum of squares


@dataclass(frozen=True)
class RealisedCounts:
    """Both versions on the labelled rows: correct answers (``accuracy``) or the sum of
    absolute errors (``meanAbsoluteError``), over the same ``rows``."""

    metric: str = "accuracy"
    rows: int = 0
    champion: float = 0.0
    candidate: float = 0.0


@dataclass(frozen=True)
class Counters:
    """What the servers of one step measured."""

    step: str
    bounds: tuple[float, ...]  # latency bucket upper bounds, seconds (the last bucket: +Inf)
    champion: VersionCounts
    candidate: VersionCounts
    compared_rows: int = 0
    agreed_rows: int = 0
    pods: int = 1
    realised: RealisedCounts = RealisedCounts()


@dataclass(frozen=True)
class Stage:
    """One step of the rollout as the spec sets it (``weight`` 0: shadow)."""

    name: str
    weight: int
    min_requests: int
    min_seconds: int

    @property
    def shadow(self) -> bool:
        return self.weight == 0


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    evidence: list[SignalEvidence]
    message: str
    failed: Signal | None = None


class EvidenceInvalid(ContinuumError):  # noqa: N818 -- an outcome, named like the errors
    """A server's /v2/rollout answer is not what this operator reads.

    Under the package's root like every error it raises on purpose (``continuum.errors``
    draws it): the reconcile names the pod and waits rather than failing.
    """


def counters_from(answer: Mapping[str, Any]) -> Counters:
    """One pod's ``GET /v2/rollout`` answer as ``Counters`` (EvidenceInvalid says what is off)."""
    try:
        compared = answer.get("compared") or {}
        return Counters(
            step=str(answer["step"]),
            bounds=tuple(float(b) for b in answer["latencyBounds"]),
            champion=_version(answer["champion"]),
            candidate=_version(answer["candidate"]),
            compared_rows=int(compared.get("rows", 0)),
            agreed_rows=int(compared.get("agreed", 0)),
            realised=_realised(answer.get("realised") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EvidenceInvalid(f"unexpected /v2/rollout answer ({exc!r}): {answer!r:.300}") from exc


def _realised(data: Mapping[str, Any]) -> RealisedCounts:
    """A server before realised counting answers none: no labelled rows."""
    metric = str(data.get("metric", "accuracy"))
    if metric not in ("accuracy", "meanAbsoluteError"):
        raise ValueError(f"realised metric {metric!r}")
    return RealisedCounts(metric, int(data.get("rows", 0)), float(data.get("champion", 0.0)),
                          float(data.get("candidate", 0.0)))  # fmt: skip


def _version(data: Mapping[str, Any]) -> VersionCounts:
    moments = data.get("moments") or [0, 0.0, 0.0]
    return VersionCounts(
        scored=int(data["scored"]),
        answered=int(data["answered"]),
        errors=int(data["errors"]),
        latency=tuple(int(c) for c in data["latency"]),
        labels={str(k): int(v) for k, v in (data.get("labels") or {}).items()},
        moments=(int(moments[0]), float(moments[1]), float(moments[2])),
    )


def merge(parts: Sequence[Counters]) -> Counters | None:
    """The sum of several pods' counters of the same step (None: no pod)."""
    if not parts:
        return None
    first = parts[0]
    for other in parts[1:]:
        if other.step != first.step or other.bounds != first.bounds:
            raise EvidenceInvalid(f"pods disagree on step or buckets: {first.step} vs {other.step}")
    return Counters(
        step=first.step,
        bounds=first.bounds,
        champion=_sum([p.champion for p in parts]),
        candidate=_sum([p.candidate for p in parts]),
        compared_rows=sum(p.compared_rows for p in parts),
        agreed_rows=sum(p.agreed_rows for p in parts),
        pods=sum(p.pods for p in parts),
        realised=_sum_realised([p.realised for p in parts]),
    )


def _sum_realised(parts: Sequence[RealisedCounts]) -> RealisedCounts:
    metrics = {p.metric for p in parts if p.rows}
    if len(metrics) > 1:
        raise EvidenceInvalid(f"pods disagree on the realised metric: {sorted(metrics)}")
    return RealisedCounts(
        metric=metrics.pop() if metrics else parts[0].metric,
        rows=sum(p.rows for p in parts),
        champion=math.fsum(p.champion for p in parts),
        candidate=math.fsum(p.candidate for p in parts),
    )


def _sum(parts: Sequence[VersionCounts]) -> VersionCounts:
    width = max(len(p.latency) for p in parts)
    latency = tuple(sum(p.latency[i] if i < len(p.latency) else 0 for p in parts)
                    for i in range(width))  # fmt: skip
    labels: dict[str, int] = {}
    for part in parts:
        for label, count in part.labels.items():
            labels[label] = labels.get(label, 0) + count
    moments = (
        sum(p.moments[0] for p in parts),
        math.fsum(p.moments[1] for p in parts),
        math.fsum(p.moments[2] for p in parts),
    )
    return VersionCounts(
        scored=sum(p.scored for p in parts),
        answered=sum(p.answered for p in parts),
        errors=sum(p.errors for p in parts),
        latency=latency,
        labels=labels,
        moments=moments,
    )


# -- signals ----------------------------------------------------------------------------------


def error_rate(c: Counters) -> float | None:
    scored = c.candidate.scored
    return c.candidate.errors / scored if scored else None


def quantile(bounds: Sequence[float], counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile of a histogram (linear within its bucket; the +Inf bucket answers
    its lower bound: a lower bound of the truth, as Prometheus' histogram_quantile does)."""
    total = sum(counts)
    if total == 0:
        return None
    rank, seen = q * total, 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower = bounds[index - 1] if index > 0 else 0.0
            if index >= len(bounds):
                return lower
            return lower + (bounds[index] - lower) * (rank - seen) / count
        seen += count
    return bounds[-1] if bounds else None


def latency_ratio(c: Counters) -> float | None:
    candidate = quantile(c.bounds, c.candidate.latency, P99)
    champion = quantile(c.bounds, c.champion.latency, P99)
    if candidate is None or champion is None:
        return None
    return candidate / max(champion, TINY)


def agreement(c: Counters) -> float | None:
    return c.agreed_rows / c.compared_rows if c.compared_rows else None


def distribution_distance(c: Counters) -> float | None:
    if c.champion.labels or c.candidate.labels:
        return total_variation(c.champion.labels, c.candidate.labels)
    return mean_shift(c.champion.moments, c.candidate.moments)


def total_variation(p: Mapping[str, int], q: Mapping[str, int]) -> float | None:
    """Half the L1 distance between two label distributions (0: same shares, 1: disjoint)."""
    np_, nq = sum(p.values()), sum(q.values())
    if not np_ or not nq:
        return None
    labels = set(p) | set(q)
    return 0.5 * math.fsum(abs(p.get(k, 0) / np_ - q.get(k, 0) / nq) for k in labels)


def mean_shift(
    champion: tuple[int, float, float], candidate: tuple[int, float, float]
) -> float | None:
    """|mean(candidate) - mean(champion)| in champion standard deviations."""
    n0, s0, ss0 = champion
    n1, s1, _ = candidate
    if not n0 or not n1:
        return None
    mean0 = s0 / n0
    std0 = math.sqrt(max(ss0 / n0 - mean0 * mean0, 0.0))
    shift = abs(s1 / n1 - mean0)
    if std0 <= TINY:
        return 0.0 if shift <= TINY else math.inf
    return shift / std0


def realised_drop(c: Counters, min_labels: int) -> float | None:
    """How much worse the candidate did than the champion on the same labelled rows."""
    r = c.realised
    if r.rows < max(min_labels, 1):
        return None
    if r.metric == "accuracy":
        return (r.champion - r.candidate) / r.rows
    if r.champion <= TINY:
        return 0.0 if r.candidate <= TINY else math.inf
    return r.candidate / r.champion - 1.0


def evidence(c: Counters | None, analysis: Analysis, *, enough: bool) -> list[SignalEvidence]:
    """Each signal with its threshold; ``passed`` is left unset until the step has ``enough``."""
    values: dict[Signal, float | None] = {
        "errorRate": error_rate(c) if c else None,
        "latencyRatio": latency_ratio(c) if c else None,
        "agreement": agreement(c) if c else None,
        "distributionDistance": distribution_distance(c) if c else None,
        "realisedDrop": realised_drop(c, analysis.min_labels) if c else None,
    }
    return [_judge(signal, value, analysis, enough) for signal, value in values.items()]


def threshold_of(signal: Signal, analysis: Analysis) -> float:
    return {
        "errorRate": analysis.max_error_rate,
        "latencyRatio": analysis.max_latency_ratio,
        "agreement": analysis.min_agreement,
        "distributionDistance": analysis.max_distribution_distance,
        "realisedDrop": analysis.max_realised_drop,
    }[signal]


def _judge(signal: Signal, value: float | None, analysis: Analysis, enough: bool) -> SignalEvidence:
    threshold = threshold_of(signal, analysis)
    shown = None if value is None or not math.isfinite(value) else round(value, 6)
    if not enough or value is None:
        return SignalEvidence(signal=signal, value=shown, threshold=threshold)
    passed = value >= threshold if signal == "agreement" else value <= threshold
    return SignalEvidence(signal=signal, value=shown, threshold=threshold, passed=passed)


# -- the decision -----------------------------------------------------------------------------


def requests_of(c: Counters | None, stage: Stage) -> int:
    """What a step's minimum counts: compared requests in shadow, answered ones in canary."""
    if c is None:
        return 0
    return c.candidate.scored if stage.shadow else c.candidate.answered


def decide(
    c: Counters | None,
    stage: Stage,
    analysis: Analysis,
    *,
    started: datetime,
    now: datetime,
    last: bool,
    paused: bool = False,
) -> Decision:
    """The verdict of one step from its counters (see the module)."""
    requests = requests_of(c, stage)
    enough = requests >= stage.min_requests
    found = evidence(c, analysis, enough=enough)
    failed = next((e for e in found if e.passed is False), None)
    if failed is not None:
        return Decision("RollBack", found, _failure(failed, stage), failed.signal)
    if paused:
        return Decision("Paused", found, f"{stage.name}: paused by spec.rollout.paused")
    if not enough:
        what = "compared" if stage.shadow else "answered by the candidate"
        wait = f"{requests}/{stage.min_requests} requests {what}"
        return Decision("Wait", found, f"{stage.name}: waiting for {wait}")
    elapsed = (now - started).total_seconds()
    if elapsed < stage.min_seconds:
        return Decision("Wait", found, f"{stage.name}: {elapsed:.0f}/{stage.min_seconds}s")
    verdict: Verdict = "Promote" if last else "Advance"
    return Decision(verdict, found, f"{stage.name}: every signal passed on {requests} requests")


def _failure(failed: SignalEvidence, stage: Stage) -> str:
    relation = "below" if failed.signal == "agreement" else "above"
    value = "inf" if failed.value is None else f"{failed.value:g}"
    return f"{stage.name}: {failed.signal} {value} is {relation} its threshold {failed.threshold:g}"
