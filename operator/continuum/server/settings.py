"""Server settings, parsed once at startup from flags, then environment, then defaults.

Every flag has an environment variable, so the operator can configure the pod through ``env``
alone (the S3 variables are :class:`continuum.storage.S3Settings`'s). A bad value is a
ConfigError naming the flag, the variable and the accepted range.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from continuum.errors import ConfigError
from continuum.storage import S3Settings
from continuum.storage.layout import check_name
from continuum.storage.privacy import LogPolicy, policy_from_env


@dataclass(frozen=True)
class Option:
    """One setting: its flag, its environment variable, its default and its parser."""

    flag: str
    env: str
    default: str | None
    parse: Callable[[str], Any]
    help: str


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be between 0 and 1")
    return value


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in {"true", "false", "1", "0", "yes", "no", "on", "off"}:
        raise ValueError("must be true or false")
    return lowered in {"true", "1", "yes", "on"}


OPTIONS: tuple[Option, ...] = (
    Option("model", "CONTINUUM_MODEL", None, lambda s: check_name("model", s), "model name"),
    Option("version", "CONTINUUM_MODEL_VERSION", None, _int_between(1, 999_999_999),
           "model version to serve"),
    Option("host", "CONTINUUM_HOST", "0.0.0.0", str, "address to listen on"),
    Option("port", "CONTINUUM_PORT", "8080", _int_between(1, 65535), "HTTP port"),
    Option("max-batch-size", "CONTINUUM_MAX_BATCH_SIZE", "32", _int_between(1, 65536),
           "most rows per predict call (1 turns batching off)"),
    Option("max-latency-ms", "CONTINUUM_MAX_LATENCY_MS", "5", _int_between(0, 10_000),
           "longest wait for a batch to fill, in ms"),
    Option("max-request-bytes", "CONTINUUM_MAX_REQUEST_BYTES", str(1024 * 1024),
           _int_between(1024, 1024**3), "largest accepted request body"),
    Option("max-concurrent-requests", "CONTINUUM_MAX_CONCURRENT_REQUESTS", "1024",
           _int_between(1, 1_000_000), "inference requests in flight before answering 503"),
    Option("inference-log", "CONTINUUM_INFERENCE_LOG_ENABLED", "true", _bool,
           "log sampled rows to S3"),
    Option("log-sample-rate", "CONTINUUM_INFERENCE_LOG_SAMPLE_RATE", "1.0", _rate,
           "fraction of rows logged"),
    Option("log-flush-rows", "CONTINUUM_INFERENCE_LOG_FLUSH_ROWS", "1000",
           _int_between(1, 1_000_000), "write a log batch after this many rows"),
    Option("log-flush-seconds", "CONTINUUM_INFERENCE_LOG_FLUSH_SECONDS", "60",
           _int_between(1, 3600), "write a log batch at least this often"),
    Option("log-buffer-rows", "CONTINUUM_INFERENCE_LOG_BUFFER_ROWS", "10000",
           _int_between(1, 10_000_000), "rows held in memory before new ones are dropped"),
)  # fmt: skip


@dataclass(frozen=True)
class InferenceLogSettings:
    enabled: bool = True
    sample_rate: float = 1.0
    flush_rows: int = 1000
    flush_seconds: float = 60.0
    buffer_rows: int = 10_000
    # drop / hash of features (spec.inferenceLog.drop, .hash, .hashKey; env in storage.privacy)
    policy: LogPolicy = field(default_factory=LogPolicy)


@dataclass(frozen=True)
class ServerSettings:
    model: str
    version: int
    s3: S3Settings
    host: str = "0.0.0.0"
    port: int = 8080
    max_batch_size: int = 32
    max_latency_ms: int = 5
    max_request_bytes: int = 1024 * 1024
    max_concurrent_requests: int = 1024
    inference_log: InferenceLogSettings = InferenceLogSettings()


def parse_settings(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> ServerSettings:
    """Settings from ``argv`` (flags win) and ``env`` (default ``os.environ``)."""
    env = os.environ if env is None else env
    given = vars(_parser().parse_args(list(argv or [])))
    values = {option.flag: _value(option, given, env) for option in OPTIONS}
    s3 = S3Settings.from_env(env, endpoint_url=given["s3_endpoint"], bucket=given["bucket"])
    return _build(values, s3, policy_from_env(env))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="continuum serve", description="Serve one verified model version (OIP v2 REST)."
    )
    for option in OPTIONS:
        parser.add_argument(f"--{option.flag}", help=f"{option.help} (env {option.env})")
    parser.add_argument("--s3-endpoint", help="S3 endpoint URL (env CONTINUUM_S3_ENDPOINT)")
    parser.add_argument("--bucket", help="artefact bucket (env CONTINUUM_S3_BUCKET)")
    return parser


def _value(option: Option, given: dict[str, Any], env: Mapping[str, str]) -> Any:
    text = given.get(option.flag.replace("-", "_")) or env.get(option.env) or option.default
    if text is None:
        raise ConfigError(f"--{option.flag} is required: set it or {option.env}")
    try:
        return option.parse(text)
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(f"--{option.flag} / {option.env} = {text!r}: {exc}") from exc


def _build(values: dict[str, Any], s3: S3Settings, policy: LogPolicy) -> ServerSettings:
    log = InferenceLogSettings(
        enabled=values["inference-log"],
        sample_rate=values["log-sample-rate"],
        flush_rows=values["log-flush-rows"],
        flush_seconds=float(values["log-flush-seconds"]),
        buffer_rows=values["log-buffer-rows"],
        policy=policy,
    )
    return ServerSettings(
        model=values["model"],
        version=values["version"],
        s3=s3,
        host=values["host"],
        port=values["port"],
        max_batch_size=values["max-batch-size"],
        max_latency_ms=values["max-latency-ms"],
        max_request_bytes=values["max-request-bytes"],
        max_concurrent_requests=values["max-concurrent-requests"],
        inference_log=log,
    )
