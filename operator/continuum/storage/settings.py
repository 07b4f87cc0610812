"""How to reach S3: endpoint, bucket, region, addressing, CA bundle and credentials, from env.

The same variables configure the trainer, the server and the monitor; the operator sets them
on the pod from the Secret the spec names (credentials), from the spec (endpoint, bucket,
region, path style) and from a read-only mount of the CA bundle the spec names
(``AWS_CA_BUNDLE``, see ``continuum.controllers.shared.pods``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from continuum.errors import ConfigError

ENV_ACCESS_KEY = "AWS_ACCESS_KEY_ID"
ENV_SECRET_KEY = "AWS_SECRET_ACCESS_KEY"
ENV_SESSION_TOKEN = "AWS_SESSION_TOKEN"
# AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL are the names the AWS SDKs already understand.
ENV_ENDPOINTS = ("CONTINUUM_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
ENV_BUCKET = "CONTINUUM_S3_BUCKET"
ENV_REGIONS = ("AWS_REGION", "AWS_DEFAULT_REGION")
ENV_CA_BUNDLE = "AWS_CA_BUNDLE"
ENV_PATH_STYLE = "CONTINUUM_S3_PATH_STYLE"
ENV_SSE = "CONTINUUM_S3_SSE"
ENV_SSE_KMS_KEY_ID = "CONTINUUM_S3_SSE_KMS_KEY_ID"
SSE_TYPES = ("SSE-S3", "SSE-KMS")
DEFAULT_REGION = "us-east-1"
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


@dataclass(frozen=True)
class S3Settings:
    """Connection settings for one bucket. Secrets are kept out of ``repr``/``str``."""

    bucket: str
    endpoint_url: str | None = None
    region: str = DEFAULT_REGION
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    # MinIO and most self-hosted servers only answer path-style requests (endpoint/bucket/key).
    path_style: bool = True
    # spec.storage.encryption: SSE-S3 or SSE-KMS on every write, with an optional KMS key
    sse: str | None = None
    sse_kms_key_id: str | None = None

    def __post_init__(self) -> None:
        if self.sse is not None and self.sse not in SSE_TYPES:
            raise ConfigError(
                f"{ENV_SSE} must be SSE-S3 or SSE-KMS (spec.storage.encryption.type), "
                f"got {self.sse!r}"
            )
        if self.sse_kms_key_id is not None and self.sse != "SSE-KMS":
            raise ConfigError(
                f"{ENV_SSE_KMS_KEY_ID} is set but {ENV_SSE} is {self.sse!r}: a KMS key id "
                "needs SSE-KMS (spec.storage.encryption)"
            )

    def encryption_args(self) -> dict[str, str]:
        """The PutObject arguments that ask the server to encrypt (none without ``sse``)."""
        if self.sse == "SSE-S3":
            return {"ServerSideEncryption": "AES256"}
        if self.sse == "SSE-KMS":
            key = {"SSEKMSKeyId": self.sse_kms_key_id} if self.sse_kms_key_id else {}
            return {"ServerSideEncryption": "aws:kms", **key}
        return {}

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        endpoint_url: str | None = None,
        bucket: str | None = None,
    ) -> S3Settings:
        """Build settings from ``env`` (default ``os.environ``); arguments win over env."""
        env = os.environ if env is None else env
        chosen_bucket = bucket or env.get(ENV_BUCKET)
        if not chosen_bucket:
            raise ConfigError(f"no S3 bucket given: set spec.storage.bucket or {ENV_BUCKET}")
        return cls(
            bucket=chosen_bucket,
            endpoint_url=endpoint_url or _first_set(env, ENV_ENDPOINTS),
            region=_first_set(env, ENV_REGIONS) or DEFAULT_REGION,
            access_key=env.get(ENV_ACCESS_KEY) or None,
            secret_key=env.get(ENV_SECRET_KEY) or None,
            session_token=env.get(ENV_SESSION_TOKEN) or None,
            ca_bundle=env.get(ENV_CA_BUNDLE) or None,
            path_style=_path_style(env),
            sse=env.get(ENV_SSE, "").strip() or None,
            sse_kms_key_id=env.get(ENV_SSE_KMS_KEY_ID, "").strip() or None,
        )

    def __str__(self) -> str:
        return repr(self)


def _path_style(env: Mapping[str, str]) -> bool:
    text = env.get(ENV_PATH_STYLE, "").strip()
    if not text:
        return True
    try:
        return _BOOLEANS[text.lower()]
    except KeyError:
        raise ConfigError(
            f"{ENV_PATH_STYLE} must be true, false, 1 or 0, got {text!r} "
            "(set from spec.storage.pathStyle)"
        ) from None


def _first_set(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((env[name] for name in names if env.get(name)), None)
