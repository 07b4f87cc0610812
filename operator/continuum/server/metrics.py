"""Prometheus metrics of the model server, on a registry of its own (one per app).

Names (all prefixed ``continuum_server_``)::

    requests_total{model,version,endpoint,status}           inference requests answered
                                                            (status 499: the client left first)
    request_duration_seconds{model,version,endpoint,status} latency histogram
    in_flight_requests{model,version}                       inference requests being served
    batch_rows{model,version}                               rows per predict call (histogram)
    predictions_total{model,version,class}                  classifiers: predicted labels
    prediction_value{model,version}                         regressors: predicted values
    model_info{model,version,sha256,sklearn_version}        1 once the model is verified
    model_scoring{model,version,path,entry,exactness,reason}
                                                            1 once loaded: how it is scored
                                                            (path compiled | scikit-learn)
    model_ready{model,version}                              1 when serving, 0 otherwise
    inference_log_rows_total{model,version}                 rows written to the inference log
    inference_log_dropped_rows_total{model,version,reason}  rows lost: buffer_full | write_failed
    feedback_labels_total{model,version,outcome}            posted labels: accepted | rejected
                                                            (bad) | refused (buffer full, 503)
    feedback_written_labels_total{model,version}            posted labels written to S3
    feedback_dropped_labels_total{model,version,reason}     accepted labels lost (write_failed:
                                                            the last write at shutdown failed)
"""

from __future__ import annotations

from collections import Counter as Tally
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from continuum.server.model import ServedModel

PREFIX = "continuum_server_"
# Why inference log rows are lost (label `reason`): back-pressure, or an S3 write that failed.
DROP_REASONS = ("buffer_full", "write_failed")
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
# Regression targets can be of any scale: symmetric decades from 1e-3 to 1e6.
_DECADES = tuple(10.0**exp for exp in range(-3, 7))
VALUE_BUCKETS = (*sorted(-d for d in _DECADES), 0.0, *_DECADES)


class ServerMetrics:
    def __init__(self, model: str, version: int) -> None:
        self.registry = CollectorRegistry()
        self.labels = {"model": model, "version": str(version)}
        self._define_requests()
        self._define_model()
        self._define_inference_log()
        self._define_feedback()
        self.in_flight = self._gauge("in_flight_requests", "Inference requests being served.")
        self.ready.labels(**self.labels).set(0)
        # Label look-ups cost more than the updates: each child is looked up once.
        self._request_children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._class_children: dict[str, Any] = {}
        self._batch_child = self.batch_rows.labels(**self.labels)

    def _define_requests(self) -> None:
        names = ["model", "version", "endpoint", "status"]
        self.requests = Counter(
            PREFIX + "requests_total", "Inference requests answered.", names,
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            PREFIX + "request_duration_seconds", "Inference request latency.", names,
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.batch_rows = Histogram(
            PREFIX + "batch_rows", "Rows per predict call.", ["model", "version"],
            buckets=BATCH_BUCKETS, registry=self.registry,
        )  # fmt: skip

    def _define_model(self) -> None:
        self.predictions = Counter(
            PREFIX + "predictions_total", "Predicted class labels.",
            ["model", "version", "class"], registry=self.registry,
        )  # fmt: skip
        self.values = Histogram(
            PREFIX + "prediction_value", "Predicted regression values.", ["model", "version"],
            buckets=VALUE_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.info = Gauge(
            PREFIX + "model_info", "The verified model being served.",
            ["model", "version", "sha256", "sklearn_version"], registry=self.registry,
        )  # fmt: skip
        self.ready = self._labelled_gauge("model_ready", "1 when a verified model is served.")
        self.scoring = Gauge(
            PREFIX + "model_scoring",
            "How the served model is scored: path compiled (verified bit-identical to "
            "scikit-learn at load) or scikit-learn (its own steps), and why.",
            ["model", "version", "path", "entry", "exactness", "reason"], registry=self.registry,
        )  # fmt: skip

    def _define_inference_log(self) -> None:
        self.log_rows = Counter(
            PREFIX + "inference_log_rows_total", "Rows written to the inference log.",
            ["model", "version"], registry=self.registry,
        )  # fmt: skip
        self.log_dropped_rows = Counter(
            PREFIX + "inference_log_dropped_rows_total",
            "Inference log rows lost (buffer_full: back-pressure; write_failed: S3 error).",
            ["model", "version", "reason"], registry=self.registry,
        )  # fmt: skip
        # At 0 from the start: a counter first seen at N shows no increase() in Prometheus, so
        # the first loss would not fire ContinuumInferenceLogRowsDropped (chart alerts).
        for reason in DROP_REASONS:
            self.log_dropped_rows.labels(**self.labels, reason=reason)

    def _define_feedback(self) -> None:
        self.feedback_labels = Counter(
            PREFIX + "feedback_labels_total",
            "Labels posted to the feedback endpoint (accepted, rejected as bad, refused: full).",
            ["model", "version", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.feedback_written_labels = Counter(
            PREFIX + "feedback_written_labels_total", "Posted labels written to S3.",
            ["model", "version"], registry=self.registry,
        )  # fmt: skip
        self.feedback_dropped_labels = Counter(
            PREFIX + "feedback_dropped_labels_total",
            "Accepted labels lost (write_failed: the last write at shutdown failed).",
            ["model", "version", "reason"], registry=self.registry,
        )  # fmt: skip
        for reason in DROP_REASONS:  # at 0 from the start, as the inference log's
            self.feedback_dropped_labels.labels(**self.labels, reason=reason)

    def _labelled_gauge(self, name: str, doc: str) -> Gauge:
        return Gauge(PREFIX + name, doc, ["model", "version"], registry=self.registry)

    def _gauge(self, name: str, doc: str) -> Gauge:
        """The one child of a model/version gauge (this server serves one version)."""
        gauge = self._labelled_gauge(name, doc).labels(**self.labels)
        gauge.set(0)
        return gauge

    def model_loaded(self, model: ServedModel, sklearn_version: str) -> None:
        self.info.labels(**self.labels, sha256=model.sha256, sklearn_version=sklearn_version).set(1)
        self.ready.labels(**self.labels).set(1)
        verdict = model.scoring
        self.scoring.labels(
            **self.labels, path=verdict.path, entry=verdict.entry or "",
            exactness=verdict.exactness or "", reason=verdict.reason,
        ).set(1)  # fmt: skip

    def request_done(self, endpoint: str, status: int, seconds: float) -> None:
        key = (endpoint, status)
        children = self._request_children.get(key)
        if children is None:
            labels = {**self.labels, "endpoint": endpoint, "status": str(status)}
            children = (self.requests.labels(**labels), self.latency.labels(**labels))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def batch(self, rows: int) -> None:
        self._batch_child.observe(rows)

    def predicted(self, model: ServedModel, labels: np.ndarray) -> None:
        if model.is_classifier:
            # str() of each label is the text numpy's astype(str) gives (ints, floats, bools, str)
            for label, count in Tally(labels.tolist()).items():
                self._class_child(str(label)).inc(count)
            return
        histogram = self.values.labels(**self.labels)
        for value in labels.astype(np.float64).tolist():
            histogram.observe(value)

    def _class_child(self, name: str) -> Any:
        child = self._class_children.get(name)
        if child is None:
            child = self.predictions.labels(**self.labels, **{"class": name})
            self._class_children[name] = child
        return child

    def log_written(self, rows: int) -> None:
        self.log_rows.labels(**self.labels).inc(rows)

    def log_dropped(self, rows: int, reason: str) -> None:
        self.log_dropped_rows.labels(**self.labels, reason=reason).inc(rows)

    def feedback_received(self, outcome: str, labels: int) -> None:
        self.feedback_labels.labels(**self.labels, outcome=outcome).inc(labels)

    def feedback_written(self, labels: int) -> None:
        self.feedback_written_labels.labels(**self.labels).inc(labels)

    def feedback_dropped(self, labels: int, reason: str) -> None:
        self.feedback_dropped_labels.labels(**self.labels, reason=reason).inc(labels)
