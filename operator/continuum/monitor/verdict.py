"""From statistics to verdicts: correction across features, effect-size gate, dataset share.

A feature drifts only when its test is significant after the correction **and** the shift is
big enough to matter: its effect size (KS D for numeric, Cramér's V for categorical) reaches
``ksEffectThreshold`` or its PSI reaches ``psiThreshold``. With 100 000 rows a KS test finds a
shift of a hundredth of a standard deviation "significant"; the effect gate keeps that quiet.

A feature also drifts when its share of missing values moved: the two-proportion test
(``stats.missing_shift``) significant after the same correction, and the shares at least
``missingShareThreshold`` apart (absolute, 0.05 = 5 percentage points). Both tests' p-values
are corrected together, as one family: every test run counts against the error rate.

p-values are never reported as 0: one below ``P_FLOOR`` (the smallest normal double; scipy
returns 0.0 for a KS p-value below about 1e-308, e.g. D = 0.87 on 2,000 + 2,000 values) is
raised to it before the correction and the decision says it underflowed, so the reported
p-values are then upper bounds. The same numbers go into the report, the summary, the
DriftMonitor's status and the metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from continuum.api.driftmonitor import P_VALUE_FLOOR, DriftTests
from continuum.monitor.corrections import adjust
from continuum.monitor.stats import FeatureStats, MissingShift

DRIFT = "Drift"
NO_DRIFT = "NoDrift"
INSUFFICIENT_DATA = "InsufficientData"
P_FLOOR = P_VALUE_FLOOR  # sys.float_info.min, 2.2250738585072014e-308


def floored(p_value: float) -> float:
    """The p-value, or P_FLOOR when it underflowed below it (0.0 included)."""
    return p_value if p_value >= P_FLOOR else P_FLOOR


def underflowed(p_value: float | None) -> bool:
    return p_value is not None and p_value < P_FLOOR


@dataclass(frozen=True)
class Decision:
    p_adjusted: float | None
    significant: bool
    large_effect: bool
    drifted: bool  # the distribution or the missing share
    reason: str
    missing_p_adjusted: float | None = None
    missing_drifted: bool = False
    p_underflow: bool = False  # the test's p-value was under P_FLOOR: p_adjusted is a bound
    missing_underflow: bool = False


@dataclass(frozen=True)
class DatasetVerdict:
    verdict: str
    dataset_drift: bool | None
    share: float | None
    drifted: int
    tested: int


def decide_features(
    results: Sequence[FeatureStats | None],
    tests: DriftTests,
    missing: Sequence[MissingShift | None] | None = None,
) -> list[Decision]:
    """One decision per feature; ``None`` (no data to test) never drifts."""
    shifts = list(missing) if missing is not None else [None] * len(results)
    raw: dict[tuple[str, int], float] = {
        ("values", i): floored(r.p_value)
        for i, r in enumerate(results)
        if r and r.p_value is not None
    }
    raw |= {("missing", i): floored(m.p_value) for i, m in enumerate(shifts) if m is not None}
    adjusted = dict(zip(raw, adjust(list(raw.values()), tests.correction), strict=True))
    return [
        _with_missing(
            _decide(r, adjusted.get(("values", i)), tests),
            shifts[i],
            adjusted.get(("missing", i)),
            tests,
        )
        for i, r in enumerate(results)
    ]


def _decide(result: FeatureStats | None, p_adjusted: float | None, tests: DriftTests) -> Decision:
    if result is None or p_adjusted is None:
        return Decision(None, False, False, False, "not tested: no values on one side")
    significant = p_adjusted < tests.p_value
    large = is_large_effect(result, tests)
    reason = _reason(significant, large)
    return Decision(
        p_adjusted,
        significant,
        large,
        significant and large,
        reason,
        p_underflow=underflowed(result.p_value),
    )


def _with_missing(
    decision: Decision, shift: MissingShift | None, p_adjusted: float | None, tests: DriftTests
) -> Decision:
    if shift is None or p_adjusted is None:
        return decision
    decision = replace(decision, missing_underflow=underflowed(shift.p_value))
    significant = p_adjusted < tests.p_value
    large = abs(shift.difference) >= tests.missing_share_threshold
    moved = f"missing share {shift.reference:.1%} -> {shift.current:.1%}"
    if significant and large:
        return replace(
            decision,
            drifted=True,
            missing_p_adjusted=p_adjusted,
            missing_drifted=True,
            reason=f"{decision.reason}; {moved}: significant and large: drift",
        )
    return replace(decision, missing_p_adjusted=p_adjusted)


def is_large_effect(result: FeatureStats, tests: DriftTests) -> bool:
    effect = result.effect_size is not None and result.effect_size >= tests.ks_effect_threshold
    return effect or (result.psi is not None and result.psi >= tests.psi_threshold)


def _reason(significant: bool, large: bool) -> str:
    if significant and large:
        return "significant and large: drift"
    if significant:
        return "significant but too small to matter (effect size and PSI under thresholds)"
    if large:
        return "large but not significant after correction (too few rows to be sure)"
    return "neither significant nor large"


def dataset_verdict(decisions: Sequence[Decision], drift_share: float) -> DatasetVerdict:
    tested = sum(1 for d in decisions if (d.p_adjusted, d.missing_p_adjusted) != (None, None))
    drifted = sum(1 for d in decisions if d.drifted)
    if tested == 0:
        return DatasetVerdict(INSUFFICIENT_DATA, None, None, 0, 0)
    share = drifted / tested
    dataset_drift = share >= drift_share
    return DatasetVerdict(
        DRIFT if dataset_drift else NO_DRIFT, dataset_drift, share, drifted, tested
    )


def insufficient() -> DatasetVerdict:
    return DatasetVerdict(INSUFFICIENT_DATA, None, None, 0, 0)
