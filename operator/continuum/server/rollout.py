"""Champion and candidate in one server: weighted routing, shadow scoring, counters (issue 18).

During a progressive rollout the operator starts the server pods with the candidate beside
the champion (``CONTINUUM_CANDIDATE_VERSION``, verified exactly like the champion: a candidate
that fails verification leaves the pod unready), the share of requests the candidate answers
(``CONTINUUM_CANDIDATE_WEIGHT``, percent; 0 is shadow) and the step the pod counts for
(``CONTINUUM_ROLLOUT_STEP``). Per request (``Rollout.predict``):

* the request's id is hashed (blake2b) into 0..99; below the weight the candidate answers;
  the same id always gets the same version;
* the other version scores the same rows after the answer (a task; at most
  ``MAX_COPIES_IN_FLIGHT`` at once, else the copy is skipped and counted), and the two
  answers are compared: equal labels, or for a regressor a relative difference within
  ``CONTINUUM_AGREEMENT_TOLERANCE``;
* a candidate that fails on a request routed to it is counted and the champion answers: the
  client never sees the candidate's failure. Rows are decoded against the champion's schema,
  so a missing value the champion imputes but the candidate does not is the candidate's
  error (``Rollout._check_candidate``), not a silent NaN: its pipeline would answer a label
  with NaN probabilities (seen on a LogisticRegression trained with ``impute: none``).

**Realised comparison, when labels come back during the step.** Both versions score every
request (one answers, the other scores the copy), so the pod remembers both answers of the
last ``RECENT_REQUESTS`` compared requests by request id (``Recent``). A label posted to this
pod's feedback endpoint for one of them (``Rollout.labelled``) scores both versions on that
same row: equal labels for a classifier (accuracy), the absolute error for a regressor. The
comparison is paired — the same rows for both versions — so it stays fair whichever share of
the requests gets labels, and whichever pod a label reaches: a label for a request another
pod (or an older, forgotten request) compared is counted as ``unmatched`` and nothing else.
A repeated label for the same row counts once.

``Counters.snapshot`` is the ``GET /v2/rollout`` answer the operator reads through the pod
proxy (``controllers/modeldeployment/analysis.counters_from`` reads it). Counters live in
memory: a restarted pod counts from zero again.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import logging
import math
import time
from collections import Counter as Tally
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from continuum.errors import ConfigError
from continuum.server.batching import Batcher
from continuum.server.errors import InputInvalid, ServingError
from continuum.server.inputs import FeatureRows
from continuum.server.model import Prediction, ServedModel

log = logging.getLogger(__name__)
CANDIDATE_ENV = "CONTINUUM_CANDIDATE_VERSION"
WEIGHT_ENV = "CONTINUUM_CANDIDATE_WEIGHT"
STEP_ENV = "CONTINUUM_ROLLOUT_STEP"
TOLERANCE_ENV = "CONTINUUM_AGREEMENT_TOLERANCE"
MAX_COPIES_IN_FLIGHT = 256
# Scoring latency buckets, seconds: 20 us to ~10 s, each 1.25x the one before (59 bounds), so
# a p99 read from them is within 25% before interpolation; the last bucket is +Inf.
LATENCY_BOUNDS = tuple(round(2e-5 * 1.25**i, 9) for i in range(59))
TINY = 1e-12
# Requests whose two answers are kept for labels posted during the step. Measured with
# tracemalloc: 545 bytes per one-row request (two small arrays, its id, the entry), 681 for 16
# rows, so 20,000 requests hold 11-14 MB per pod; at 100 req/s they are the last 200 s, the
# horizon of a label posted back by a live feedback loop.
RECENT_REQUESTS = 20_000


@dataclass(frozen=True)
class RolloutSettings:
    """What this pod runs beside the champion (``candidate`` None: nothing)."""

    candidate: int | None = None
    weight: int = 0
    step: str = ""
    tolerance: float = 0.05


def rollout_from_env(env: Mapping[str, str]) -> RolloutSettings:
    """The rollout settings from the pod's environment; ConfigError names a bad variable."""
    text = env.get(CANDIDATE_ENV, "").strip()
    if not text:
        return RolloutSettings()
    return RolloutSettings(
        candidate=_int(CANDIDATE_ENV, text, 1, 999_999_999),
        weight=_int(WEIGHT_ENV, env.get(WEIGHT_ENV, "0"), 0, 100),
        step=env.get(STEP_ENV, "").strip(),
        tolerance=_float(TOLERANCE_ENV, env.get(TOLERANCE_ENV, "0.05")),
    )


def _int(name: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name} = {text!r}: must be a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} = {text!r}: must be between {low} and {high}")
    return value


def _float(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} = {text!r}: must be a number") from None
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{name} = {text!r}: must be a finite number >= 0")
    return value


def routes_to_candidate(request_id: str, weight: int) -> bool:
    """Whether the candidate answers this request: its id hashed into 0..99, below ``weight``."""
    if weight <= 0:
        return False
    if weight >= 100:
        return True
    digest = hashlib.blake2b(request_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 100 < weight


def check_pair(champion: ServedModel, candidate: ServedModel) -> str | None:
    """Why the two cannot be compared on the same requests (None: they can)."""
    if candidate.feature_names != champion.feature_names:
        return (f"candidate {candidate.name}/{candidate.version} has features "
                f"{list(candidate.feature_names)}, the champion {list(champion.feature_names)}: "
                "a rollout compares both on the same requests")  # fmt: skip
    kinds = [f"{a.name} ({a.kind} vs {b.kind})"
             for a, b in zip(champion.features, candidate.features, strict=True)
             if a.kind != b.kind]  # fmt: skip
    if kinds:
        return (f"candidate {candidate.name}/{candidate.version} reads features as another kind "
                f"than the champion: {', '.join(kinds)}")  # fmt: skip
    if candidate.is_classifier != champion.is_classifier:
        return "candidate and champion are not both classifiers or both regressors"
    return None


@dataclass
class VersionTally:
    """One version's counters at this pod's step."""

    version: int
    scored: int = 0
    answered: int = 0
    errors: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    labels: Tally[str] = field(default_factory=Tally)
    moments: list[float] = field(default_factory=lambda: [0, 0.0, 0.0])

    def timed(self, seconds: float) -> None:
        self.scored += 1
        self.latency[bisect.bisect_left(LATENCY_BOUNDS, seconds)] += 1

    def predicted(self, labels: np.ndarray, classifier: bool) -> None:
        if classifier:
            self.labels.update(str(label) for label in labels.tolist())
            return
        values = labels.astype(np.float64)
        self.moments[0] += len(values)
        self.moments[1] += float(values.sum())
        self.moments[2] += float(np.square(values).sum())

    def snapshot(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "scored": self.scored,
            "answered": self.answered,
            "errors": self.errors,
            "latency": list(self.latency),
            "labels": dict(self.labels),
            "moments": list(self.moments),
        }


def _missing(value: Any) -> bool:
    """A categorical value the decoder left missing (None, or the NaN it puts in its place)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def agreeing_rows(a: np.ndarray, b: np.ndarray, *, classifier: bool, tolerance: float) -> int:
    """Rows where two answers agree: equal labels, or values within a relative ``tolerance``."""
    if classifier:
        return int(np.count_nonzero(a == b))
    x, y = a.astype(np.float64), b.astype(np.float64)
    scale = np.maximum(np.abs(x), TINY)
    return int(np.count_nonzero(np.abs(x - y) <= tolerance * scale))


@dataclass(slots=True)
class Pair:
    """Both versions' answers to one compared request, and the rows labelled so far (a set
    only once one is: with an empty set each and no slots a one-row request cost 697 bytes
    in ``Recent``, 545 now; tracemalloc, 20,000 requests)."""

    champion: np.ndarray
    candidate: np.ndarray
    labelled: set[int] | None = None


class Recent:
    """The last ``capacity`` compared requests by id (the oldest forgotten first)."""

    def __init__(self, capacity: int = RECENT_REQUESTS) -> None:
        self.capacity = capacity
        self._pairs: OrderedDict[str, Pair] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pairs)

    def remember(self, request_id: str, champion: np.ndarray, candidate: np.ndarray) -> None:
        self._pairs[request_id] = Pair(champion, candidate)
        self._pairs.move_to_end(request_id)
        while len(self._pairs) > self.capacity:
            self._pairs.popitem(last=False)

    def get(self, request_id: str) -> Pair | None:
        return self._pairs.get(request_id)


@dataclass
class Realised:
    """Both versions scored on the labelled rows: correct answers (classifier) or the sum of
    absolute errors (regressor), over the same ``rows``."""

    classifier: bool
    rows: int = 0
    champion: float = 0.0
    candidate: float = 0.0
    unmatched: int = 0  # labels for a request (or row) this pod did not compare
    repeated: int = 0  # labels for a row already counted

    def score(self, pair: Pair, row: int, label: Any) -> None:
        if row >= len(pair.champion) or row >= len(pair.candidate):
            self.unmatched += 1
            return
        if pair.labelled is None:
            pair.labelled = set()
        elif row in pair.labelled:
            self.repeated += 1
            return
        pair.labelled.add(row)
        self.rows += 1
        self.champion += self._score(pair.champion[row], label)
        self.candidate += self._score(pair.candidate[row], label)

    def _score(self, answer: Any, label: Any) -> float:
        if self.classifier:
            return 1.0 if str(answer) == str(label) else 0.0
        return abs(float(answer) - float(label))

    def snapshot(self) -> dict[str, Any]:
        return {
            "metric": "accuracy" if self.classifier else "meanAbsoluteError",
            "rows": self.rows,
            "champion": self.champion,
            "candidate": self.candidate,
            "unmatched": self.unmatched,
            "repeated": self.repeated,
        }


@dataclass
class Counters:
    """What this pod measured for its step (``GET /v2/rollout``)."""

    step: str
    champion: VersionTally
    candidate: VersionTally
    weight: int
    compared_requests: int = 0
    compared_rows: int = 0
    agreed_rows: int = 0
    copies_skipped: int = 0
    realised: Realised = field(default_factory=lambda: Realised(classifier=True))

    def snapshot(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "weight": self.weight,
            "latencyBounds": list(LATENCY_BOUNDS),
            "champion": self.champion.snapshot(),
            "candidate": self.candidate.snapshot(),
            "compared": {"requests": self.compared_requests, "rows": self.compared_rows,
                         "agreed": self.agreed_rows, "skipped": self.copies_skipped},
            "realised": self.realised.snapshot(),
        }  # fmt: skip


@dataclass(frozen=True)
class Side:
    """One version and the batcher that scores it."""

    model: ServedModel
    batcher: Batcher
    tally: VersionTally


class Rollout:
    """Routes each request to the champion or the candidate and compares the two."""

    def __init__(self, settings: RolloutSettings, champion: Side, candidate: Side) -> None:
        self.settings = settings
        self.champion, self.candidate = champion, candidate
        self.classifier = champion.model.is_classifier
        self.counters = Counters(settings.step, champion.tally, candidate.tally, settings.weight,
                                 realised=Realised(self.classifier))  # fmt: skip
        self.recent = Recent()
        self._copies: set[asyncio.Task[None]] = set()
        imputed = {f.name for f in champion.model.features if f.nullable}
        # features the champion imputes and the candidate does not (usually none: no cost)
        self._strict = [f for f in candidate.model.features if not f.nullable and f.name in imputed]

    async def predict(self, rows: FeatureRows, request_id: str) -> tuple[ServedModel, Prediction]:
        """The answering model and its prediction; the other version scores a copy."""
        if routes_to_candidate(request_id, self.settings.weight):
            try:
                answer = await self._score(self.candidate, rows)
            except ServingError as exc:
                log.warning("candidate %s failed a request; the champion answers: %s",
                            self.candidate.model.version, exc.message)  # fmt: skip
                return self.champion.model, await self._answer(self.champion, rows)
            self.candidate.tally.answered += 1
            self._copy(self.champion, rows, answer, request_id, champion_answered=False)
            return self.candidate.model, answer
        answer = await self._answer(self.champion, rows)
        self._copy(self.candidate, rows, answer, request_id, champion_answered=True)
        return self.champion.model, answer

    def labelled(self, labels: Iterable[Mapping[str, Any]]) -> None:
        """Score both versions on the rows these labels (``id``, ``row``, ``label``) are for."""
        realised = self.counters.realised
        for label in labels:
            pair = self.recent.get(str(label["id"]))
            if pair is None:
                realised.unmatched += 1
                continue
            realised.score(pair, int(label.get("row") or 0), label["label"])

    async def _answer(self, side: Side, rows: FeatureRows) -> Prediction:
        prediction = await self._score(side, rows)
        side.tally.answered += 1
        return prediction

    async def _score(self, side: Side, rows: FeatureRows) -> Prediction:
        started = time.perf_counter()
        try:
            if side is self.candidate and self._strict:
                self._check_candidate(rows)
            prediction = await side.batcher.predict(rows)
        except ServingError:
            side.tally.errors += 1
            side.tally.timed(time.perf_counter() - started)
            raise
        side.tally.timed(time.perf_counter() - started)
        side.tally.predicted(prediction.labels, self.classifier)
        return prediction

    def _check_candidate(self, rows: FeatureRows) -> None:
        """InputInvalid when a row misses a value the candidate does not impute."""
        for feature in self._strict:
            column = rows.columns[feature.name]
            if column.dtype.kind == "f":
                missing = np.isnan(column)
            else:
                missing = np.array([_missing(v) for v in column.tolist()], dtype=bool)
            if missing.any():
                raise InputInvalid(
                    f"candidate {self.candidate.model.version}: feature {feature.name!r} is "
                    f"missing in row {int(np.argmax(missing))} and the candidate does not impute it"
                )

    def _copy(self, side: Side, rows: FeatureRows, answer: Prediction, request_id: str, *,
              champion_answered: bool) -> None:  # fmt: skip
        if len(self._copies) >= MAX_COPIES_IN_FLIGHT:
            self.counters.copies_skipped += 1
            return
        compare = self._compare(side, rows, answer, request_id, champion_answered)
        task = asyncio.create_task(compare)
        self._copies.add(task)
        task.add_done_callback(self._copies.discard)

    async def _compare(
        self,
        side: Side,
        rows: FeatureRows,
        answer: Prediction,
        request_id: str,
        champion_answered: bool,
    ) -> None:
        try:
            other = await self._score(side, rows)
        except ServingError:
            return  # counted as the version's error by _score
        champion, candidate = (answer, other) if champion_answered else (other, answer)
        counters = self.counters
        counters.compared_requests += 1
        counters.compared_rows += len(champion.labels)
        self.recent.remember(request_id, champion.labels, candidate.labels)
        counters.agreed_rows += agreeing_rows(champion.labels, candidate.labels,
                                              classifier=self.classifier,
                                              tolerance=self.settings.tolerance)  # fmt: skip

    async def stop(self) -> None:
        for task in list(self._copies):
            task.cancel()
        for task in list(self._copies):
            with contextlib.suppress(asyncio.CancelledError):
                await task
