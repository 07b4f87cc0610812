"""Request and response bodies of the Open Inference Protocol v2 (REST) and of KServe v1.

These pydantic models are the server's OpenAPI description (what clients and fuzzers read)
and the parser of JSON bodies. Unknown fields are ignored, as the protocol allows extensions.
Tensor ``data`` is left as JSON values here: checking it against the model's features is
:mod:`continuum.server.inputs`' job, so a mistake is reported with the feature it concerns.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Parameters = dict[str, Any]


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RequestInput(_Message):
    name: str = Field(description="A feature name, or any name for one [N, n_features] tensor.")
    shape: list[int] = Field(description="[N] or [N, 1] per feature; [N, n_features] for all.")
    datatype: str = Field(description="FP32, FP64, INT32, INT64 or BYTES.")
    parameters: Parameters | None = Field(
        None, description="binary_data_size: the tensor's bytes follow the JSON header."
    )
    data: list[Any] | None = Field(
        None, description="Row-major values (flat or nested); absent for binary tensors."
    )


class RequestOutput(_Message):
    name: str = Field(description="predict or predict_proba.")
    parameters: Parameters | None = None


class InferenceRequest(_Message):
    id: str | None = Field(None, description="Echoed in the response.")
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(
        None, description="Outputs to return; all of them when absent."
    )


class ResponseOutput(_Message):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any]


class InferenceResponse(_Message):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class TensorMetadata(_Message):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 marks the variable batch dimension.")


class ModelMetadata(_Message):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: Parameters | None = None


class ServerMetadata(_Message):
    name: str
    version: str
    extensions: list[str]


class Liveness(_Message):
    live: bool


class Readiness(_Message):
    ready: bool
    reason: str | None = Field(None, description="Why the model is not ready, if it is not.")


class PredictRequest(_Message):
    """KServe v1: one instance per row, by feature name (object) or in schema order (array)."""

    instances: list[dict[str, Any] | list[Any]] = Field(min_length=1)


class PredictResponse(_Message):
    predictions: list[Any]
    probabilities: list[list[float]] | None = Field(
        None, description="Classifiers: one row per instance, columns in `classes` order."
    )
    classes: list[Any] | None = None


class ErrorBody(_Message):
    error: str = Field(description="What was wrong, naming the input or feature concerned.")


class FeedbackLabel(_Message):
    id: str | int = Field(description="The prediction's request id (answered id / x-request-id).")
    row: int | None = Field(None, description="Row index within the request, 0-based; default 0.")
    label: Any = Field(description="A class of the model, or a finite number for a regressor.")
    time: str | None = Field(
        None, description="When the label became known (ISO 8601); default: when received."
    )


class FeedbackRequest(_Message):
    labels: list[FeedbackLabel] = Field(
        description="One or many labels (a single label object is accepted too)."
    )


class FeedbackResponse(_Message):
    accepted: int = Field(description="Labels kept: buffered and written to labels/<model>/.")
    rejected: int = Field(description="Labels refused, each named in problems.")
    problems: list[str] = Field(description="labels[i]: what is wrong with it (first 20).")
