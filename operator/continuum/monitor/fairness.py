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


def prediction_rates(
    groups: pd.Series, predictions: pd.Series, positive: str, feature: str, threshold: float
) -> FairnessResult:
    is_positive = predictions.astype(str).eq(positive) & predictions.notna()
    names = groups.astype(object).where(groups.notna(), MISSING_GROUP).astype(str)
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
