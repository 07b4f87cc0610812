"""NannyML's side of bench/performance_vs_nannyml.py; runs in NannyML's own venv.

    <nannyml-venv>/bin/python bench/performance_nannyml_runner.py DIR CHUNK OUT

Reads DIR/reference.parquet (proba, pred, label) and DIR/analysis.parquet (proba, pred),
fits CBPE on the reference and estimates accuracy, f1 and roc_auc per chunk of CHUNK rows;
writes the estimates, NannyML's confidence bands and the import, fit and estimate times to OUT.
"""

from __future__ import annotations

import json
import sys
import time

began = time.perf_counter()
import nannyml as nml  # noqa: E402
import pandas as pd  # noqa: E402

METRICS = ["accuracy", "f1", "roc_auc"]


def main(folder: str, chunk: int, out: str) -> None:
    imported = time.perf_counter() - began
    reference = pd.read_parquet(f"{folder}/reference.parquet")
    analysis = pd.read_parquet(f"{folder}/analysis.parquet")
    start = time.perf_counter()
    estimator = nml.CBPE(
        y_pred_proba="proba", y_pred="pred", y_true="label",
        problem_type="classification_binary", metrics=METRICS, chunk_size=chunk,
    )  # fmt: skip
    estimator.fit(reference)
    fitted = time.perf_counter() - start
    start = time.perf_counter()
    result = estimator.estimate(analysis)
    estimated = time.perf_counter() - start
    frame = result.filter(period="analysis").to_df()
    chunks = {
        metric: [
            {
                "value": float(row[(metric, "value")]),
                "lower": float(row[(metric, "lower_confidence_boundary")]),
                "upper": float(row[(metric, "upper_confidence_boundary")]),
                "samplingError": float(row[(metric, "sampling_error")]),
            }
            for _, row in frame.iterrows()
        ]
        for metric in METRICS
    }
    document = {
        "version": nml.__version__,
        "seconds": {"import": imported, "fit": fitted, "estimate": estimated},
        "chunks": chunks,
    }
    with open(out, "w") as handle:
        json.dump(document, handle)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
