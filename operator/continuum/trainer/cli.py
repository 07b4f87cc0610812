"""``continuum train``: run one training inside the Job and report how it went.

Reads the TrainingJob spec (JSON) from ``--spec PATH`` or the ``CONTINUUM_SPEC`` variable,
S3 credentials from the environment, and exits 0 on success (qualified or not) or 1 on
failure, having written the outcome to the termination message either way.

Every S3 call rides out an outage of up to ``CONTINUUM_S3_RETRY_SECONDS`` (default 180 s:
a restarting or briefly stopped MinIO), logging an ``s3_unavailable`` line before each wait;
a Job retry would redo the whole download and fit, and the Job's backoff limit is small.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from continuum.errors import ConfigError
from continuum.storage import (
    ObjectStore,
    RetryNotice,
    RetryPolicy,
    S3Settings,
    latest_qualified_version,
)
from continuum.trainer.config import TrainingConfig
from continuum.trainer.result import termination_message
from continuum.trainer.run import run_training
from continuum.workload import emit, run

ENV_SPEC = "CONTINUUM_SPEC"
ENV_TRAINING_JOB = "CONTINUUM_TRAINING_JOB"
ENV_CHAMPION = "CONTINUUM_CHAMPION_VERSION"
ENV_MAX_DATASET_BYTES = "CONTINUUM_MAX_DATASET_BYTES"
ENV_S3_RETRY_SECONDS = "CONTINUUM_S3_RETRY_SECONDS"
DEFAULT_S3_RETRY_SECONDS = 180.0
# CONTINUUM_CHAMPION_VERSION=none: compare against nothing; unset: the newest qualified version.
NO_CHAMPION = "none"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="continuum train", description=__doc__)
    parser.add_argument("--spec", help=f"path of the spec JSON (default: ${ENV_SPEC})")
    parser.add_argument(
        "--champion",
        help=f"version to beat, or '{NO_CHAMPION}' (default: ${ENV_CHAMPION}, else the newest "
        "qualified version)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(lambda: train(args.spec, args.champion, os.environ), render=termination_message)


def train(spec_path: str | None, champion: str | None, env: Mapping[str, str]) -> dict[str, Any]:
    config = load_config(spec_path, env)
    storage = config.spec.storage
    if storage is None:  # the operator fills it in (spec or namespace default) before the Job
        raise ConfigError("spec.storage is not set in CONTINUUM_SPEC: the operator sets it")
    settings = S3Settings.from_env(env, endpoint_url=storage.endpoint, bucket=storage.bucket)
    store = ObjectStore(settings, retry=s3_retry(env))
    store.check_bucket()  # a wrong endpoint, bucket or credential fails here, before any work
    champion_version = choose_champion(store, config, champion or env.get(ENV_CHAMPION))
    result = run_training(config, store, champion_version=champion_version)
    return result.summary()


def s3_retry(env: Mapping[str, str]) -> RetryPolicy | None:
    """How long S3 may be unavailable before the run fails (0: no retries beyond botocore's)."""
    text = env.get(ENV_S3_RETRY_SECONDS, "")
    try:
        seconds = float(text) if text else DEFAULT_S3_RETRY_SECONDS
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        raise ConfigError(f"{ENV_S3_RETRY_SECONDS} must be 0 … 3600 seconds, got {text!r}")
    return RetryPolicy(seconds, on_retry=_log_retry) if seconds else None


def _log_retry(notice: RetryNotice) -> None:
    emit(
        "s3_unavailable", stream=sys.stderr, attempt=notice.attempt,
        retry_in=notice.delay, waited=round(notice.waited, 1), message=notice.error.message,
    )  # fmt: skip


def load_config(spec_path: str | None, env: Mapping[str, str]) -> TrainingConfig:
    document = read_spec_document(spec_path, env)
    spec, name = unwrap_resource(document)
    config = TrainingConfig.from_spec(spec, training_job=env.get(ENV_TRAINING_JOB) or name)
    limit = env.get(ENV_MAX_DATASET_BYTES)
    if limit:
        config = _with_limit(config, limit)
    return config


def read_spec_document(spec_path: str | None, env: Mapping[str, str]) -> Any:
    if spec_path:
        text, source = Path(spec_path).read_text(encoding="utf-8"), spec_path
    elif env.get(ENV_SPEC):
        text, source = env[ENV_SPEC], f"${ENV_SPEC}"
    else:
        raise ConfigError(f"no spec given: pass --spec PATH or set {ENV_SPEC} to the spec JSON")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"spec in {source} is not valid JSON: {exc}") from exc


def unwrap_resource(document: Any) -> tuple[Mapping[str, Any], str | None]:
    """Accept a bare spec or a whole TrainingJob object (then its name names the run)."""
    if not isinstance(document, dict):
        raise ConfigError("the spec must be a JSON object")
    if isinstance(document.get("spec"), dict):
        name = document.get("metadata", {}).get("name")
        return document["spec"], name if isinstance(name, str) else None
    return document, None


def choose_champion(
    store: ObjectStore, config: TrainingConfig, requested: str | None
) -> int | None:
    """The version to beat: none, the one requested, or the newest qualified one."""
    if config.spec.evaluation.must_beat == "none" or requested == NO_CHAMPION:
        return None
    if not requested:
        return latest_qualified_version(store, config.spec.model)
    if not requested.isdigit() or int(requested) < 1:
        raise ConfigError(f"champion version must be a number >= 1 or 'none', got {requested!r}")
    return int(requested)


def _with_limit(config: TrainingConfig, limit: str) -> TrainingConfig:
    if not limit.isdigit():
        raise ConfigError(f"{ENV_MAX_DATASET_BYTES} must be a number of bytes, got {limit!r}")
    return replace(config, max_dataset_bytes=int(limit))


if __name__ == "__main__":
    sys.exit(main())
