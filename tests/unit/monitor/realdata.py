"""Frames shaped like real exports, read the way a check reads them.

The reference sample is Parquet written by pandas/pyarrow (the trainer's ``to_parquet``), read
back with its dtypes; the window is what the inference log holds: each row as the JSON a client
sent (``to_json``: ISO dates, ``null`` for every kind of missing value).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from continuum.monitor.reference import CATEGORICAL, NUMERIC, FeatureSpec, Reference
from continuum.monitor.settings import parse_check_settings
from tests.kit.datasets import as_parquet, real_shaped_frame

# real_shaped_frame's columns as the trainer would declare them (customer_id: ID-like)
KINDS = {
    "plan": CATEGORICAL,
    "tenure": NUMERIC,
    "region": CATEGORICAL,
    "autopay": CATEGORICAL,
    "signed_up": CATEGORICAL,
    "charges": NUMERIC,
    "store": CATEGORICAL,
}
UNUSED_PLAN = "enterprise"  # a category of the dtype that no row holds


def export_frame(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    """real_shaped_frame with a category list holding an unused value, and integer codes
    that Parquet stores as float (NaN-holding) next to the nullable Int64 ones."""
    frame = real_shaped_frame(rows, seed)
    frame["plan"] = frame["plan"].cat.add_categories([UNUSED_PLAN])
    rng = np.random.default_rng(seed + 100)
    codes = rng.integers(1, 5, rows).astype("float64")
    codes[rng.random(rows) < 0.05] = np.nan
    frame["store"] = codes  # 1.0, 2.0, ... in Parquet; 1, 2, ... in the JSON log
    return frame


def reference_of(frame: pd.DataFrame, kinds: dict[str, str]) -> Reference:
    features = tuple(FeatureSpec(name, kind) for name, kind in kinds.items())
    return Reference(features, as_parquet(frame), None, None)


def check_settings(min_samples: int = 50, **tests: object):
    return parse_check_settings(
        {"window": {"maxRows": 100_000, "minSamples": min_samples}, "tests": tests}
    )


def id_like_frame(rows: int = 900, distinct: int = 150, seed: int = 0) -> pd.DataFrame:
    """A categorical column with ``distinct`` values in ``rows`` rows, stored as a Parquet
    category, shaped like free text or IDs: 70% of the values occur once (split randomly, most
    are on one side only), the others share the remaining rows with Zipf-like frequencies."""
    rng = np.random.default_rng(seed)
    singletons = int(distinct * 0.7)
    common = distinct - singletons
    weights = 1.0 / np.arange(1, common + 1)
    names = [f"K{i:04d}" for i in range(distinct)]
    repeated = rng.choice(names[:common], rows - singletons, p=weights / weights.sum())
    values = rng.permutation(np.concatenate([repeated, names[common:]]))
    return pd.DataFrame({"key": pd.Categorical(values), "amount": rng.lognormal(3, 1, rows)})
