"""Every dataset the tests and benchmarks generate, seeded: the same call gives the same data.

Three families:

- ``two_class_rows``: the cluster tier's training table (sepal, petal, width, colour -> label),
  two classes ``gap`` standard deviations apart on each numeric feature; moved by ``shift`` it
  is the drifted traffic. It is hack/demo/loop.py's ``customers`` with other names and scales:
  the same draws, one class in two.
- ``customers`` / ``churn_dataset``: churn customers (tenure, charges, plan -> churned) for the
  trainer, server and monitor against MinIO and the monitor's unit tests.
- ``real_shaped_frame`` / ``real_shaped_parquet``: a table with the dtypes real exports carry
  (category, nullable Int64, string, boolean, datetime, NaN-holding floats, a rare and an
  ID-like category), for the tests of what the trainer and the monitor make of them.

The draws are kept in the order the copies this replaces made them, so every test gets the rows
it got before and its figures and thresholds hold.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

FEATURES = ("sepal", "petal", "width", "colour")
COLOURS = ("red", "green", "blue")
PLANS = ("basic", "plus", "pro")

# ---------------------------------------------------------------------------- two classes


def two_class_rows(
    count: int = 240,
    seed: int = 7,
    *,
    shift: float = 0.0,
    gap: float = 3.0,
    colours: Sequence[str] = COLOURS,
    labels: Sequence[Any] = ("no", "yes"),
    decimals: int | None = 4,
) -> list[dict[str, Any]]:
    """``count`` rows alternating ``labels[0]`` and ``labels[1]``; the numeric features of the
    second class are ``gap`` higher, all of them ``shift`` higher (``decimals=None``: unrounded).
    ``gap=0`` makes both classes one distribution (traffic whose label does not matter)."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        centre = (gap if i % 2 else 0.0) + shift
        row: dict[str, Any] = {}
        for name in FEATURES[:3]:
            value = rng.gauss(centre, 1.0)
            row[name] = value if decimals is None else round(value, decimals)
        row["colour"] = rng.choice(colours)
        row["label"] = labels[i % 2]
        rows.append(row)
    return rows


def as_csv(rows: Sequence[Mapping[str, Any]], drop: str | None = None) -> bytes:
    """The rows as CSV with a header (the first row's columns, without ``drop``)."""
    out = io.StringIO()
    columns = [name for name in rows[0] if name != drop]
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def dataset_csv(rows: int = 240, seed: int = 7, drop: str | None = None) -> bytes:
    """The cluster tier's training CSV: separable, 240 rows; ``drop`` leaves out one column."""
    return as_csv(two_class_rows(rows, seed), drop=drop)


# ---------------------------------------------------------------------------- churn customers


def customers(
    rows: int,
    seed: int | np.random.Generator,
    *,
    shift: float = 0.0,
    whole_months: bool = False,
) -> pd.DataFrame:
    """tenure, charges and plan of ``rows`` customers, as the server logs them.

    ``shift`` moves tenure and charges by that many standard deviations (plan stays put);
    ``whole_months`` draws tenure as whole months in [0, 72) instead (a training export).
    ``seed`` may be a generator, to draw more from it afterwards (see ``churn_dataset``).
    """
    rng = np.random.default_rng(seed)
    if whole_months:
        tenure = rng.integers(0, 72, rows).astype(float)
    else:
        tenure = rng.normal(36 + 12 * shift, 12, rows)
    charges = rng.normal(70 + 20 * shift, 20, rows)
    return pd.DataFrame(
        {"tenure": tenure, "charges": charges, "plan": rng.choice(list(PLANS), rows)}
    )


def churn_labels(frame: pd.DataFrame, noise: np.random.Generator) -> np.ndarray:
    """yes/no: short tenure, high charges and the basic plan churn, with noise of sd 0.5."""
    score = -0.05 * frame["tenure"] + 0.03 * frame["charges"] + (frame["plan"] == "basic")
    return np.where(score + noise.normal(0, 0.5, len(frame)) > 0.3, "yes", "no")


def churn_dataset(rows: int = 500, seed: int = 1) -> pd.DataFrame:
    """A churn training export: whole-month tenure, charges, plan and the ``churned`` label."""
    rng = np.random.default_rng(seed)
    frame = customers(rows, rng, whole_months=True)
    frame["churned"] = churn_labels(frame, rng)
    return frame


# ---------------------------------------------------------------------------- real-shaped

RARE_PLAN = "legacy"  # about 0.5% of the rows
REGIONS = ("north", "south", "east", "west")


def real_shaped_frame(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Churn customers with the dtypes of a real export, missing values in every nullable column.

    ``customer_id`` is a category with one level per row (ID-like), ``plan`` a category with a
    rare level; ``tenure`` nullable Int64, ``region`` string, ``autopay`` boolean, ``signed_up``
    a UTC datetime, ``charges`` a float with NaN; about 5% missing in each.
    """
    rng = np.random.default_rng(seed)
    plans = rng.choice([*PLANS, RARE_PLAN], rows, p=[0.4, 0.35, 0.245, 0.005])
    frame = pd.DataFrame(
        {
            "customer_id": pd.Categorical([f"C{i:07d}" for i in rng.permutation(rows)]),
            "plan": pd.Categorical(plans, categories=[*PLANS, RARE_PLAN]),
            "tenure": pd.array(rng.integers(0, 72, rows), dtype="Int64"),
            "region": pd.array(rng.choice(REGIONS, rows), dtype="string"),
            "autopay": pd.array(rng.random(rows) < 0.6, dtype="boolean"),
            "signed_up": pd.Timestamp("2020-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 5 * 365 * 86400, rows), unit="s"),
            "charges": rng.normal(70, 20, rows).round(2),
        }
    )
    for column in ("tenure", "region", "autopay", "signed_up", "charges"):
        frame.loc[rng.random(rows) < 0.05, column] = None
    frame["churned"] = np.where(rng.random(rows) < 0.25, "yes", "no")
    return frame


def real_shaped_parquet(rows: int = 2000, seed: int = 0) -> bytes:
    """``real_shaped_frame`` as Parquet (pyarrow), dtypes kept for pandas to read back."""
    return bytes(real_shaped_frame(rows, seed).to_parquet(index=False, engine="pyarrow"))


# ---------------------------------------------------------------------------- round trips


def as_parquet(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame written to Parquet by pandas/pyarrow and read back, as the trainer's sample."""
    return pd.read_parquet(io.BytesIO(frame.to_parquet(index=False, engine="pyarrow")))


def as_logged(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the inference log gives it back: each row through ``json`` (floats in
    full, every kind of missing value ``null``, timestamps ISO 8601), object columns."""
    records = [{k: _json_value(v) for k, v in row.items()} for row in frame.to_dict("records")]
    rows = json.loads(json.dumps(records))
    return pd.DataFrame(rows, columns=list(frame.columns), dtype=object)


def _json_value(value: object) -> object:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, float) and np.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value
