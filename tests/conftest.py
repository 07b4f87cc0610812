"""Shared fixtures: the real local cluster (kubeconfig) and the real MinIO behind it.

Cluster-tier fixtures start the cluster with `hack/cluster-up.sh` when it is not already up and
leave it running for the next run (`make cluster-down` stops it). Nothing here fakes the
Kubernetes API or S3.
"""

from __future__ import annotations

import os
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.kit import versions

REPO = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("CONTINUUM_STATE", "/var/lib/continuum-cluster"))
KUBECONFIG = Path(os.environ.get("CONTINUUM_KUBECONFIG", STATE_DIR / "kubeconfig"))
# Hypothesis keeps its example database and a cache of constants (which records this
# machine's absolute source paths) under ./.hypothesis by default: keep them out of the
# checkout. Read lazily by hypothesis, so setting it before the first test is enough.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path.home() / ".cache" / "continuum" / "hypothesis")
)


@dataclass(frozen=True)
class S3Settings:
    """Where the test MinIO listens and how to sign requests to it."""

    endpoint_url: str
    in_cluster_endpoint_url: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"


def _cluster_is_up() -> bool:
    if not KUBECONFIG.exists():
        return False
    probe = subprocess.run(
        [str(_kubectl()), "--kubeconfig", str(KUBECONFIG), "get", "--raw", "/readyz"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0 and (STATE_DIR / "s3.env").exists()


def _kubectl() -> Path:
    return versions.kubectl()


@pytest.fixture(scope="session")
def kubeconfig() -> Path:
    """The admin kubeconfig of the running local cluster (started here if needed)."""
    if not _cluster_is_up():
        if os.geteuid() != 0:
            pytest.fail(
                "the local cluster is down and starting it needs root: run `sudo make cluster-up`"
            )
        subprocess.run([str(REPO / "hack/cluster-up.sh")], check=True)
    return KUBECONFIG


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> list[str]:
    """argv prefix for kubectl against the local cluster."""
    return [str(_kubectl()), "--kubeconfig", str(kubeconfig)]


@pytest.fixture(scope="session")
def s3(kubeconfig: Path) -> S3Settings:
    """The real MinIO that cluster-up started (credentials from its s3.env)."""
    env = dict(
        line.split("=", 1)
        for line in (STATE_DIR / "s3.env").read_text().splitlines()
        if "=" in line
    )
    return S3Settings(
        endpoint_url=env["S3_ENDPOINT"],
        in_cluster_endpoint_url=env["S3_ENDPOINT_IN_CLUSTER"],
        access_key=env["AWS_ACCESS_KEY_ID"],
        secret_key=env["AWS_SECRET_ACCESS_KEY"],
        region=env.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


def s3_client(s3: S3Settings) -> Any:
    """A boto3 S3 client for the test MinIO."""
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name=s3.region,
    )


@pytest.fixture
def s3_bucket(s3: S3Settings) -> Iterator[str]:
    """A fresh, empty bucket, emptied and removed after the test."""
    client = s3_client(s3)
    name = f"test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield name
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=obj["Key"])
    client.delete_bucket(Bucket=name)


@pytest.fixture(scope="session")
def project_image(kubeconfig: Path) -> str:
    """The project image, built offline and loaded into the cluster's containerd."""
    subprocess.run([str(REPO / "hack/image.sh")], check=True)
    return "continuum:" + _project_version()


def _project_version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])
