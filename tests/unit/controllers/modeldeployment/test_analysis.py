"""The analysis of a progressive rollout: counters -> signals -> verdict (issue 18)."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta
from typing import Any

import pytest

from continuum.api import Analysis
from continuum.controllers.modeldeployment.analysis import (
    Counters,
    EvidenceInvalid,
    RealisedCounts,
    Stage,
    VersionCounts,
    counters_from,
    decide,
    distribution_distance,
    latency_ratio,
    mean_shift,
    merge,
    quantile,
    realised_drop,
    total_variation,
)
from tests.unit.controllers.modeldeployment.builders import NOW

BOUNDS = (0.001, 0.002, 0.004, 0.008)  # seconds; the fifth bucket is +Inf
SHADOW = Stage("Shadow", 0, min_requests=100, min_seconds=60)
CANARY = Stage("Canary 10%", 10, min_requests=50, min_seconds=30)
LONG_AGO = NOW - timedelta(hours=1)


def version(scored: int = 200, *, answered: int = 0, errors: int = 0,
            latency: tuple[int, ...] = (0, 200, 0, 0, 0),
            labels: dict[str, int] | None = None) -> VersionCounts:  # fmt: skip
    return VersionCounts(scored, answered, errors, latency, labels or {"no": 150, "yes": 50})


def counters(champion: VersionCounts | None = None, candidate: VersionCounts | None = None,
             *, compared: int = 200, agreed: int = 200) -> Counters:  # fmt: skip
    return Counters("v3-step0", BOUNDS, champion or version(), candidate or version(),
                    compared, agreed)  # fmt: skip


def pod_answer(**candidate: Any) -> dict[str, Any]:
    side = {"scored": 10, "answered": 1, "errors": 0, "latency": [0, 10, 0, 0, 0],
            "labels": {"no": 7, "yes": 3}}  # fmt: skip
    return {
        "step": "v3-step1",
        "latencyBounds": list(BOUNDS),
        "champion": {**side, "answered": 9},
        "candidate": {**side, **candidate},
        "compared": {"requests": 10, "rows": 10, "agreed": 9},
    }


# ---------------------------------------------------------------- reading and summing pods


def test_a_pod_answer_is_read_and_pods_are_summed() -> None:
    one = counters_from(pod_answer())
    two = counters_from(pod_answer(errors=2, labels={"maybe": 1}))
    total = merge([one, two])
    assert total is not None
    assert (total.pods, total.compared_rows, total.agreed_rows) == (2, 20, 18)
    assert total.candidate.errors == 2
    assert total.candidate.latency == (0, 20, 0, 0, 0)
    assert total.candidate.labels == {"no": 7, "yes": 3, "maybe": 1}
    assert total.champion.answered == 18


def test_an_unreadable_answer_names_what_is_missing() -> None:
    broken = pod_answer()
    del broken["latencyBounds"]
    with pytest.raises(EvidenceInvalid, match="latencyBounds"):
        counters_from(broken)


def test_pods_of_another_step_are_not_summed_together() -> None:
    other = counters_from({**pod_answer(), "step": "v3-step0"})
    with pytest.raises(EvidenceInvalid, match="step"):
        merge([counters_from(pod_answer()), other])
    assert merge([]) is None


# ---------------------------------------------------------------- signals


def test_quantile_is_linear_within_its_bucket() -> None:
    assert quantile(BOUNDS, (0, 100, 0, 0, 0), 0.5) == pytest.approx(0.0015)
    assert quantile(BOUNDS, (100, 0, 0, 0, 0), 0.99) == pytest.approx(0.00099)
    assert quantile(BOUNDS, (0, 0, 0, 0, 5), 0.99) == 0.008, "+Inf answers its lower bound"
    assert quantile(BOUNDS, (0, 0, 0, 0, 0), 0.99) is None


def test_latency_ratio_compares_p99s() -> None:
    slow = version(latency=(0, 0, 0, 200, 0))  # 4-8 ms against 1-2 ms
    ratio = latency_ratio(counters(candidate=slow))
    assert ratio is not None
    assert ratio == pytest.approx(0.00796 / 0.00199, rel=1e-3)
    assert latency_ratio(counters()) == pytest.approx(1.0)


def test_total_variation_of_label_shares() -> None:
    assert total_variation({"a": 5, "b": 5}, {"a": 50, "b": 50}) == 0
    assert total_variation({"a": 10}, {"b": 3}) == 1
    assert total_variation({"a": 3, "b": 1}, {"a": 1, "b": 1}) == pytest.approx(0.25)
    assert total_variation({}, {"a": 1}) is None


def test_regressors_compare_means_in_champion_deviations() -> None:
    champion = (4, 10.0, 30.0)  # values 1, 2, 3, 4: mean 2.5, std sqrt(1.25)
    candidate = (2, 7.0, 0.0)  # mean 3.5
    assert mean_shift(champion, candidate) == pytest.approx(1 / math.sqrt(1.25))
    assert mean_shift((3, 6.0, 12.0), (1, 2.0, 4.0)) == 0.0, "constant and equal"
    assert mean_shift((3, 6.0, 12.0), (1, 3.0, 9.0)) == math.inf
    plain = VersionCounts(10, 0, 0, (), {}, champion)
    moved = VersionCounts(10, 0, 0, (), {}, candidate)
    assert distribution_distance(counters(plain, moved)) == pytest.approx(0.894, rel=1e-3)


# ---------------------------------------------------------------- decide


def verdict(c: Counters | None, stage: Stage = SHADOW, **kwargs: Any) -> tuple[str, str]:
    found = decide(c, stage, Analysis(), started=kwargs.pop("started", LONG_AGO), now=NOW,
                   last=kwargs.pop("last", False), **kwargs)  # fmt: skip
    return found.verdict, found.message


def test_a_good_shadow_with_enough_requests_and_time_advances() -> None:
    found = decide(counters(), SHADOW, Analysis(), started=LONG_AGO, now=NOW, last=False)
    assert found.verdict == "Advance"
    assert {e.signal: e.passed for e in found.evidence} == {
        "errorRate": True, "latencyRatio": True, "agreement": True, "distributionDistance": True,
        "realisedDrop": None,  # no labels came back: shown, not judged, holds nothing
    }  # fmt: skip
    assert verdict(counters(), last=True)[0] == "Promote"


def test_too_few_requests_waits_and_judges_nothing() -> None:
    few = counters(candidate=version(scored=40, errors=40), compared=40, agreed=0)
    found = decide(few, SHADOW, Analysis(), started=LONG_AGO, now=NOW, last=False)
    assert found.verdict == "Wait"
    assert "40/100 requests compared" in found.message
    assert all(e.passed is None for e in found.evidence)
    assert found.evidence[0].value == 1.0, "the value is shown before it is judged"


def test_the_minimum_time_holds_a_good_step() -> None:
    assert verdict(counters(), started=NOW - timedelta(seconds=20)) == ("Wait", "Shadow: 20/60s")


def test_a_canary_step_counts_answered_requests() -> None:
    routed = counters(candidate=version(answered=49))
    assert verdict(routed, CANARY)[0] == "Wait"
    assert verdict(counters(candidate=version(answered=50)), CANARY)[0] == "Advance"


@pytest.mark.parametrize(
    ("candidate", "agreed", "signal"),
    [
        (version(errors=3), 200, "errorRate"),
        (version(latency=(0, 0, 0, 200, 0)), 200, "latencyRatio"),
        (version(), 180, "agreement"),
        (version(labels={"no": 100, "yes": 100}), 200, "distributionDistance"),
    ],
)
def test_each_failed_signal_rolls_back_and_is_named(
    candidate: VersionCounts, agreed: int, signal: str
) -> None:
    found = decide(counters(candidate=candidate, agreed=agreed), SHADOW, Analysis(),
                   started=LONG_AGO, now=NOW, last=False)  # fmt: skip
    assert found.verdict == "RollBack"
    assert found.failed == signal
    assert signal in found.message
    assert "threshold" in found.message


def test_a_failure_rolls_back_before_the_minimum_time_and_while_paused() -> None:
    bad = counters(agreed=100)
    assert verdict(bad, started=NOW)[0] == "RollBack"
    assert verdict(bad, paused=True)[0] == "RollBack"
    assert verdict(counters(), paused=True)[0] == "Paused"


def test_thresholds_come_from_the_spec() -> None:
    lenient = Analysis(min_agreement=0.4)
    found = decide(counters(agreed=100), SHADOW, lenient, started=LONG_AGO, now=NOW, last=False)
    assert found.verdict == "Advance"
    assert [e.threshold for e in found.evidence if e.signal == "agreement"] == [0.4]


def test_no_counters_at_all_waits() -> None:
    assert verdict(None) == ("Wait", "Shadow: waiting for 0/100 requests compared")


# ---------------------------------------------------------------- realised, with labels


def labelled(rows: int, champion: float, candidate: float, metric: str = "accuracy") -> Counters:
    realised = RealisedCounts(metric, rows, champion, candidate)
    return dataclasses.replace(counters(), realised=realised)


def test_realised_drop_is_paired_accuracy_points_or_relative_error() -> None:
    assert realised_drop(labelled(100, 90, 80), 30) == pytest.approx(0.10)
    assert realised_drop(labelled(100, 80, 90), 30) == pytest.approx(-0.10), "better: negative"
    assert realised_drop(labelled(29, 29, 0), 30) is None, "too few labels: not measured"
    mae = "meanAbsoluteError"
    assert realised_drop(labelled(50, 10.0, 12.0, mae), 30) == pytest.approx(0.2)
    assert realised_drop(labelled(50, 0.0, 0.0, mae), 30) == 0.0
    assert realised_drop(labelled(50, 0.0, 1.0, mae), 30) == math.inf


def test_a_candidate_worse_on_labels_rolls_back_and_too_few_labels_never_hold() -> None:
    worse = decide(labelled(60, 54, 45), SHADOW, Analysis(), started=LONG_AGO, now=NOW,
                   last=False)  # fmt: skip
    assert (worse.verdict, worse.failed) == ("RollBack", "realisedDrop")
    assert "realisedDrop 0.15 is above its threshold 0.05" in worse.message
    few = decide(labelled(10, 10, 0), SHADOW, Analysis(), started=LONG_AGO, now=NOW, last=False)
    assert few.verdict == "Advance"
    lenient = Analysis(max_realised_drop=0.2, min_labels=100)
    assert decide(labelled(100, 90, 75), SHADOW, lenient, started=LONG_AGO, now=NOW,
                  last=False).verdict == "Advance"  # fmt: skip


def test_realised_counts_are_read_and_summed_over_pods() -> None:
    realised = {"metric": "accuracy", "rows": 40, "champion": 36.0, "candidate": 30.0,
                "unmatched": 5, "repeated": 0}  # fmt: skip
    one = counters_from({**pod_answer(), "realised": realised})
    assert one.realised == RealisedCounts("accuracy", 40, 36.0, 30.0)
    both = merge([one, one])
    assert both is not None
    assert both.realised == RealisedCounts("accuracy", 80, 72.0, 60.0)
    assert counters_from(pod_answer()).realised.rows == 0, "a server without realised counting"
    with pytest.raises(EvidenceInvalid, match="realised metric 'f1'"):
        counters_from({**pod_answer(), "realised": {**realised, "metric": "f1"}})
