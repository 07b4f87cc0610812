"""A private MinIO for a test: the pinned binary on a free port, with the settings the test
needs (a KMS key, TLS certificates), stopped and its data removed afterwards.

The cluster's own MinIO is shared by every test; a case that needs a server configured
otherwise (encryption with a KMS, https only) starts one of these beside it.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.kit import versions
from tests.kit.cluster import free_port, wait_until


@contextmanager
def private_minio(
    work: Path,
    *,
    host: str,
    env: Mapping[str, str],
    args: Sequence[str] = (),
    ca_file: Path | None = None,
) -> Iterator[str]:
    """Run ``minio server`` on ``host`` (https when ``ca_file`` is given) and yield its
    endpoint once it answers ready; ``env`` holds MINIO_ROOT_USER/PASSWORD and any other
    server setting. ``work`` (data, log) is removed afterwards."""
    port, scheme = free_port(host), "https" if ca_file else "http"
    log = work / "minio.log"
    console = f"127.0.0.1:{free_port()}"
    command = [str(versions.minio()), "server", "--quiet", "--address", f"{host}:{port}",
               "--console-address", console, *args, str(work / "data")]  # fmt: skip
    settings = {**os.environ, "MINIO_UPDATE": "off", "MINIO_BROWSER": "off", **env}
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=settings, stdout=out, stderr=subprocess.STDOUT)
    endpoint = f"{scheme}://{host}:{port}"
    try:
        _wait_ready(process, log, endpoint, ca_file)
        yield endpoint
    finally:
        _stop(process)
        shutil.rmtree(work, ignore_errors=True)


def _wait_ready(
    process: subprocess.Popen[bytes], log: Path, endpoint: str, ca: Path | None
) -> None:
    def up() -> bool:
        assert process.poll() is None, log.read_text(errors="replace")
        return _ready(f"{endpoint}/minio/health/ready", ca)

    wait_until(f"the private MinIO at {endpoint}", up, timeout=60, every=0.5)


def _ready(url: str, ca_file: Path | None) -> bool:
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
