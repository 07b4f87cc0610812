"""The drift check under the inference log's privacy policy (``spec.inferenceLog``).

**Dropped** features are never in the log, so they are left out of the check — reference and
window alike — and the report says so in a note (rather than testing a feature whose logged
values are all missing, which the missing-share test would call drift).

**Hashed** features are in the log as ``hmac:<hex>`` (:mod:`continuum.storage.privacy`). The
reference sample in S3 stays as the trainer wrote it, and the check hashes its values at
check time with the same key, which the drift-check pod gets the way the server does (a
``secretKeyRef`` to ``spec.inferenceLog.hashKey``). Chosen over a second, hashed baseline
written by someone else: the trainer does not know how a later ModelDeployment logs, a key
rotation needs no baseline rewrite, and hashing the reference sample is cheap: 26 ms for a
5,000-row categorical column (MAX_REFERENCE_ROWS), 5 µs a value, measured 2026-12-04 on this
2-core machine. Window values without the prefix — logged before hashing was turned on — are
hashed too, so a window that straddles the change compares like with like. A hashed feature is
tested as a categorical whatever its kind (a hash has no order), with a note.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from continuum.monitor.reference import CATEGORICAL, NUMERIC, FeatureSpec, Reference
from continuum.monitor.window import CurrentWindow
from continuum.storage.privacy import LogPolicy, hash_value


def redact_reference(reference: Reference, policy: LogPolicy) -> tuple[Reference, list[str]]:
    """The reference as the log sees it: dropped features gone, hashed ones hashed; notes."""
    if not policy.active:
        return reference, []
    kept = tuple(_as_logged(spec, policy) for spec in reference.features if policy.keeps(spec.name))
    frame = reference.frame.copy()
    for spec in kept:
        if spec.name in policy.hashed:
            frame[spec.name] = hash_column(frame[spec.name], policy)
    return replace(reference, features=kept, frame=frame), policy_notes(reference, policy)


def redact_window(window: CurrentWindow, policy: LogPolicy) -> CurrentWindow:
    """Hashed features' window values all hashed (plain ones logged before hashing began)."""
    present = [name for name in sorted(policy.hashed) if name in window.frame.columns]
    if not present:
        return window
    frame = window.frame.copy()
    for name in present:
        frame[name] = hash_column(frame[name], policy)
    return replace(window, frame=frame)


def hash_column(values: pd.Series, policy: LogPolicy) -> pd.Series:
    key = policy.key
    if key is None:  # LogPolicy refuses hashed features without a key
        raise ValueError("a hashed feature needs the HMAC key")
    hashed = [hash_value(value, key) for value in values.tolist()]
    return pd.Series(hashed, index=values.index, dtype=object)


def policy_notes(reference: Reference, policy: LogPolicy) -> list[str]:
    """One note per feature the policy touches, in feature order."""
    notes = []
    for spec in reference.features:
        if spec.name in policy.drop:
            notes.append(
                f"{spec.name}: dropped from the inference log (spec.inferenceLog.drop): "
                "not checked for drift"
            )
        elif spec.name in policy.hashed:
            as_category = (
                " (a numeric feature: tested as categories)" if spec.kind == NUMERIC else ""
            )
            notes.append(
                f"{spec.name}: hashed in the inference log (spec.inferenceLog.hash, "
                f"HMAC-SHA256): compared with the reference sample hashed with the same key"
                f"{as_category}"
            )
    return notes


def _as_logged(spec: FeatureSpec, policy: LogPolicy) -> FeatureSpec:
    return FeatureSpec(spec.name, CATEGORICAL) if spec.name in policy.hashed else spec
