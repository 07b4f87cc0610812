"""Hyperparameter search, the pure part: plan the trials, score one, pick the winner.

A search is a list of *trials* (candidate parameter sets, numbered from 0) planned from a
bounded space before any data is read, each one scored by k-fold cross-validation on the
training rows, and a winner chosen from the trials' fold scores. Each step is a function with
no I/O, so trials can run anywhere (one process, or one pod each of an Indexed Job) and the
choice is the same:

- :func:`plan_trials`: ``grid`` is scikit-learn's ``ParameterGrid`` order, ``random`` its
  ``ParameterSampler`` with the search seed (lists sampled uniformly; ``uniform``,
  ``logUniform`` and ``randint`` ranges as scipy distributions), so the candidates are the
  ones ``GridSearchCV`` / ``RandomizedSearchCV`` would try. Every candidate is checked
  against the estimator (names, types, ranges) by :func:`build_estimator` before any trial
  runs, and the plan is refused above the trial budget;
- :func:`cv_folds`: the folds ``GridSearchCV(cv=k)`` uses (stratified for classifiers, not
  shuffled);
- :func:`score_trial`: one candidate's fold scores with the TrainingJob's own metric (the
  numbers of ``continuum.trainer.evaluation``), or its error;
- :func:`select`: ``GridSearchCV``'s choice — the best mean fold score, ties to the lowest
  trial index, failed trials (no score) never chosen — and a bounded summary of the trials.

The same seed and data give the same plan, the same folds, the same scores and the same winner,
which the unit tests hold to ``GridSearchCV`` and ``RandomizedSearchCV`` run in one process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from math import prod
from typing import Any

import numpy as np
from scipy import stats  # type: ignore[import-untyped]
from scipy.stats import rankdata  # type: ignore[import-untyped]
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid, ParameterSampler, check_cv

from continuum.api.trainingjob import Estimator
from continuum.errors import ConfigError, TrainingError
from continuum.trainer.evaluation import METRICS, evaluate
from continuum.trainer.pipeline import ESTIMATOR_STEP, build_estimator
from continuum.trainer.validation import CLASSIFICATION

MAX_TRIALS = 256  # a search's trials: each one is a pod of the fan-out
MAX_SUMMARY_TRIALS = 20  # trials kept in status and manifest (the best ones)
RANGES = ("uniform", "logUniform", "randint")


@dataclass(frozen=True)
class Trial:
    index: int
    params: Mapping[str, Any]


@dataclass(frozen=True)
class TrialResult:
    index: int
    params: Mapping[str, Any]
    scores: tuple[float, ...] = ()  # one per fold; empty when the trial failed
    error: str | None = None


@dataclass(frozen=True)
class Selection:
    best: TrialResult
    mean: float  # the best mean fold score, in the metric's own direction
    failed: int
    summary: list[dict[str, Any]]  # the best trials, ranked, at most MAX_SUMMARY_TRIALS


def plan_trials(
    estimator: Estimator,
    space: Mapping[str, Any],
    *,
    strategy: str,
    budget: int,
    seed: int,
) -> list[Trial]:
    """The trials of a search over ``space`` (parameter name -> list of values, or for
    ``random`` a range ``{"uniform"|"logUniform"|"randint": [low, high]}``)."""
    if not space:
        raise ConfigError("search.space is empty: give at least one parameter and its values")
    if not 1 <= budget <= MAX_TRIALS:
        raise ConfigError(f"search.trials must be 1 … {MAX_TRIALS}, got {budget}")
    candidates = _candidates(space, strategy, budget, seed)
    for candidate in candidates:
        _check_candidate(estimator, candidate, seed)
    return [Trial(index, _plain(candidate)) for index, candidate in enumerate(candidates)]


def _candidates(
    space: Mapping[str, Any], strategy: str, budget: int, seed: int
) -> list[dict[str, Any]]:
    if strategy == "grid":
        sizes = [_grid_values(name, values) for name, values in space.items()]
        if prod(sizes) > budget:
            raise ConfigError(
                f"search.space has {prod(sizes)} grid points, more than search.trials={budget}: "
                "remove values, raise the budget (at most "
                f"{MAX_TRIALS}) or use strategy random"
            )
        return [dict(point) for point in ParameterGrid(dict(space))]
    if strategy == "random":
        distributions = {name: _distribution(name, values) for name, values in space.items()}
        sampler = ParameterSampler(distributions, n_iter=budget, random_state=seed)
        return [dict(point) for point in islice(sampler, budget)]
    raise ConfigError(f"search.strategy must be grid or random, got {strategy!r}")


def _grid_values(name: str, values: Any) -> int:
    if not isinstance(values, list) or not values:
        raise ConfigError(
            f"search.space.{name} must be a non-empty list of values for strategy grid"
        )
    return len(values)


def _distribution(name: str, values: Any) -> Any:
    if isinstance(values, list) and values:
        return values
    if isinstance(values, Mapping) and len(values) == 1 and next(iter(values)) in RANGES:
        kind, bounds = next(iter(values.items()))
        low, high = _bounds(name, kind, bounds)
        if kind == "uniform":
            return stats.uniform(low, high - low)
        if kind == "logUniform":
            return stats.loguniform(low, high)
        return stats.randint(int(low), int(high) + 1)
    raise ConfigError(
        f"search.space.{name} must be a non-empty list of values or one of "
        f"{', '.join(RANGES)}: [low, high]"
    )


def _bounds(name: str, kind: str, bounds: Any) -> tuple[float, float]:
    numbers = isinstance(bounds, list) and len(bounds) == 2
    numbers = numbers and all(
        isinstance(b, int | float) and not isinstance(b, bool) for b in bounds
    )
    if not numbers or not bounds[0] < bounds[1] or (kind == "logUniform" and bounds[0] <= 0):
        raise ConfigError(
            f"search.space.{name}.{kind} must be [low, high] with low < high"
            + (" and low > 0" if kind == "logUniform" else "")
        )
    return float(bounds[0]), float(bounds[1])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_candidate(estimator: Estimator, candidate: Mapping[str, Any], seed: int) -> None:
    merged = estimator.model_copy(update={"params": {**estimator.params, **_plain(candidate)}})
    try:
        build_estimator(merged, seed)
    except ConfigError as exc:
        raise ConfigError(f"search candidate {dict(_plain(candidate))}: {exc}") from exc


def _plain(candidate: Mapping[str, Any]) -> dict[str, Any]:
    """numpy scalars (from scipy distributions) as Python numbers, for JSON and the API."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in candidate.items()}


def cv_folds(y: Any, folds: int, task: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, test) row positions of each fold, as ``GridSearchCV(cv=folds)`` makes them."""
    splitter = check_cv(folds, y, classifier=task == CLASSIFICATION)
    return [(train, test) for train, test in splitter.split(np.zeros(len(y)), y)]


def score_trial(
    pipeline: Any,
    trial: Trial,
    x: Any,
    y: Any,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    metric: str,
    task: str,
) -> TrialResult:
    """Fit a clone of ``pipeline`` with the trial's params on each fold; its fold scores."""
    params = {f"{ESTIMATOR_STEP}__{name}": value for name, value in trial.params.items()}
    scores = []
    try:
        for train, test in folds:
            model = clone(pipeline).set_params(**params)
            model.fit(x.iloc[train], y.iloc[train])
            scores.append(evaluate(model, x.iloc[test], y.iloc[test], task)[metric])
    except Exception as exc:  # scikit-learn raises many types; a failed trial is counted
        return TrialResult(trial.index, _plain(trial.params), error=f"{type(exc).__name__}: {exc}")
    return TrialResult(trial.index, _plain(trial.params), tuple(scores))


def select(results: Sequence[TrialResult], metric: str) -> Selection:
    """GridSearchCV's winner: the best mean fold score (ties: the lowest index)."""
    ordered = sorted(results, key=lambda r: r.index)
    scored = [r for r in ordered if r.error is None and r.scores]
    if not scored:
        reasons = "; ".join(f"trial {r.index}: {r.error}" for r in ordered[:3])
        raise TrainingError(f"every one of the {len(ordered)} search trials failed ({reasons})")
    sign = 1.0 if METRICS[metric].higher_is_better else -1.0
    means = np.average(sign * np.array([r.scores for r in scored], dtype=np.float64), axis=1)
    ranks = rankdata(-means, method="min")
    best = int(np.argmin(ranks))
    summary = [
        {"index": r.index, "params": dict(r.params), "mean": float(sign * means[i]),
         "scores": list(r.scores), "rank": int(ranks[i])}
        for i, r in sorted(enumerate(scored), key=lambda item: (ranks[item[0]], item[1].index))
    ][:MAX_SUMMARY_TRIALS]  # fmt: skip
    return Selection(scored[best], float(sign * means[best]), len(ordered) - len(scored), summary)
