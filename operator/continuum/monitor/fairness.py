"""Prediction-rate fairness: how often each group of the sensitive feature gets the positive class.

The positive class is the last class label in sorted order — the one the trainer's metrics
call positive (f1, precision and recall use ``pos_label=classes[-1]``), so "positive" means
the same thing in the model's evaluation and here. Groups with fewer than ``MIN_GROUP_ROWS``
rows are listed but left out of the gap: a rate over five rows is noise, not evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

MIN_GROUP_ROWS = 20
MISSING_GROUP = "(missing)"


@dataclass(frozen=True)
class GroupRate:
    group: str
    rows: int
    positive_rate: float
    counted: bool  # enough rows to take part in the gap


@dataclass(frozen=True)
class FairnessResult:
    feature: str
    positive_class: str
    threshold: float
    groups: tuple[GroupRate, ...]
    gap: float | None  # max - min positive rate over counted groups; None with < 2 of them
    flagged: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "positiveClass": self.positive_class,
            "threshold": self.threshold,
            "gap": self.gap,
            "flagged": self.flagged,
            "minGroupRows": MIN_GROUP_ROWS,
            "groups": [
                {"group": g.group, "rows": g.rows, "positiveRate": g.positive_rate,
                 "counted": g.counted}
                for g in self.groups
            ],
        }  # fmt: skip

    def summary(self) -> dict[str, Any]:
        return {"feature": self.feature, "gap": self.gap, "flagged": self.flagged}


def positive_class(classes: Sequence[str], predictions: pd.Series) -> str | None:
    """The last class in sorted order; from the predictions when the classes are unknown."""
    labels = sorted(classes) or sorted(set(predictions.dropna().astype(str)))
    return labels[-1] if labels else None


def group_names(values: pd.Series) -> pd.Series:
    """The values as the group names fairness reports, missing ones :data:`MISSING_GROUP`."""
    return values.astype(object).where(values.notna(), MISSING_GROUP).astype(str)


def prediction_rates(
    groups: pd.Series, predictions: pd.Series, positive: str, feature: str, threshold: float
) -> FairnessResult:
    is_positive = predictions.astype(str).eq(positive) & predictions.notna()
    names = group_names(groups)
    table = is_positive.groupby(names).agg(["size", "mean"]).sort_index()
    rates = tuple(
        GroupRate(
            str(name), int(row["size"]), float(row["mean"]), int(row["size"]) >= MIN_GROUP_ROWS
        )
        for name, row in table.iterrows()
    )
    counted = [g.positive_rate for g in rates if g.counted]
    gap = max(counted) - min(counted) if len(counted) >= 2 else None
    return FairnessResult(
        feature, positive, threshold, rates, gap, gap is not None and gap > threshold
    )


# ---------------------------------------------------------------- with labels (issue 16)


@dataclass(frozen=True)
class GroupErrors:
    group: str
    positives: int  # labelled rows whose true class is the positive one
    negatives: int
    tpr: float | None  # P(predicted positive | truly positive); None with no positives
    fpr: float | None  # P(predicted positive | truly negative)


@dataclass(frozen=True)
class ErrorRateFairness:
    """Equal opportunity (the TPR gap) and equalised odds (the larger of the TPR and FPR
    gaps) between the groups of the sensitive feature, on labelled predictions.

    A group takes part in the TPR gap with at least ``MIN_GROUP_ROWS`` truly positive rows,
    in the FPR gap with as many truly negative ones: the same rule as the positive-rate gap.
    """

    feature: str
    positive_class: str
    threshold: float
    groups: tuple[GroupErrors, ...]
    tpr_gap: float | None
    fpr_gap: float | None

    @property
    def equalised_odds_gap(self) -> float | None:
        gaps = [g for g in (self.tpr_gap, self.fpr_gap) if g is not None]
        return max(gaps) if gaps else None

    @property
    def flagged(self) -> bool:
        gap = self.equalised_odds_gap
        return gap is not None and gap > self.threshold

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "positiveClass": self.positive_class,
            "threshold": self.threshold,
            "equalOpportunityGap": self.tpr_gap,
            "falsePositiveRateGap": self.fpr_gap,
            "equalisedOddsGap": self.equalised_odds_gap,
            "flagged": self.flagged,
            "minGroupRows": MIN_GROUP_ROWS,
            "groups": [
                {"group": g.group, "positives": g.positives, "negatives": g.negatives,
                 "truePositiveRate": g.tpr, "falsePositiveRate": g.fpr}
                for g in self.groups
            ],
        }  # fmt: skip


def error_rates(
    groups: pd.Series,
    truly_positive: pd.Series,
    predicted_positive: pd.Series,
    *,
    feature: str,
    positive: str,
    threshold: float,
) -> ErrorRateFairness:
    """TPR and FPR per group of ``groups`` and their gaps (class doc)."""
    names = group_names(groups)
    frame = pd.DataFrame(
        {"group": names.to_numpy(), "y": truly_positive.to_numpy(bool),
         "hit": predicted_positive.to_numpy(bool)}
    )  # fmt: skip
    rows = tuple(_group_errors(str(name), part) for name, part in frame.groupby("group", sort=True))
    tprs = [g.tpr for g in rows if g.tpr is not None and g.positives >= MIN_GROUP_ROWS]
    fprs = [g.fpr for g in rows if g.fpr is not None and g.negatives >= MIN_GROUP_ROWS]
    return ErrorRateFairness(feature, positive, threshold, rows, _gap(tprs), _gap(fprs))


def _group_errors(name: str, part: pd.DataFrame) -> GroupErrors:
    y, hit = part["y"].to_numpy(), part["hit"].to_numpy()
    positives, negatives = int(y.sum()), int((~y).sum())
    tpr = float(hit[y].mean()) if positives else None
    fpr = float(hit[~y].mean()) if negatives else None
    return GroupErrors(name, positives, negatives, tpr, fpr)


def _gap(rates: list[float]) -> float | None:
    return max(rates) - min(rates) if len(rates) >= 2 else None
