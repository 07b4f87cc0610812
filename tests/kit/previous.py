"""The previous release of this repository: its tree, chart, CRDs and image, for the upgrade test.

There are no tags: the previous release is the commit pinned as ``PREVIOUS_RELEASE`` in
hack/versions.env (moved at each release, see docs/operations.md). Its tree is checked out with
``git worktree add`` (the CI clone is a normal clone with history; a missing commit fails the
test with the command that fetches it, never skips it) and its image is built by that tree's
own hack/image.sh under ``continuum:<its version>-prev``, so it never replaces this tree's image.
The build is hack/image.sh's, caches included: docker's layer cache and containerd's copy are
reused while that tree's sources are unchanged (its wheel is byte-identical: SOURCE_DATE_EPOCH
is the commit's time), so a rerun costs a wheel build and a cached ``docker build``.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.kit import REPO, versions

PIN = "PREVIOUS_RELEASE"
REVISION_LABEL = "org.opencontainers.image.revision"
BUILD_TIMEOUT = 1800  # a cold build: wheelhouse from the cache, docker build, containerd import


@dataclass(frozen=True)
class PreviousRelease:
    """The previous release's tree, checked out at ``tree``."""

    commit: str
    tree: Path

    @property
    def version(self) -> str:
        pyproject = tomllib.loads((self.tree / "pyproject.toml").read_text())
        return str(pyproject["project"]["version"])

    @property
    def image(self) -> str:
        return f"continuum:{self.version}-prev"

    @property
    def chart(self) -> Path:
        return self.tree / "charts/continuum"

    @property
    def crds(self) -> Path:
        return self.tree / "crds"


def pinned_commit() -> str:
    """The full hash pinned as PREVIOUS_RELEASE in hack/versions.env."""
    commit = versions.pins().get(PIN, "")
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        pytest.fail(
            f"{PIN} in {versions.VERSIONS_FILE} must be the full 40-hex hash of the previous "
            f"release's commit, not {commit!r}"
        )
    return commit


def require_commit(commit: str) -> None:
    """Fail, naming the commit and how to fetch it, when this clone does not have it."""
    found = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{commit}^{{commit}}"],
        capture_output=True, check=False, timeout=30,
    )  # fmt: skip
    if found.returncode != 0:
        pytest.fail(
            f"the previous release {commit} ({PIN} in hack/versions.env) is not in the clone at "
            f"{REPO}: fetch it with `git -C {REPO} fetch origin {commit}` (a shallow clone: "
            "`git fetch --unshallow`), then rerun"
        )


def _git(*args: str) -> None:
    done = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode != 0:
        pytest.fail(f"git {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


@contextmanager
def checked_out(commit: str, parent: Path) -> Iterator[PreviousRelease]:
    """The previous release's tree in a detached worktree under ``parent``, removed afterwards."""
    require_commit(commit)
    tree = parent / f"continuum-{commit[:12]}"
    _git("worktree", "add", "--detach", str(tree), commit)
    try:
        yield PreviousRelease(commit, tree)
    finally:
        _git("worktree", "remove", "--force", str(tree))


def build_image(release: PreviousRelease) -> str:
    """Build (or find cached) the previous release's image with its own hack/image.sh."""
    script = release.tree / "hack/image.sh"
    env = {**os.environ, "IMAGE": release.image}
    done = subprocess.run(
        [str(script)], env=env, capture_output=True, text=True, check=False,
        timeout=BUILD_TIMEOUT,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"{script} (IMAGE={release.image}) failed:\n{done.stderr[-6000:]}")
    revision = image_revision(release.image)
    assert revision == release.commit[:12], (
        f"{release.image} says it was built from {revision!r}, not {release.commit[:12]}"
    )
    return release.image


def image_revision(image: str) -> str:
    """The commit hack/image.sh stamped into ``image`` (its OCI revision label)."""
    fmt = f'{{{{index .Config.Labels "{REVISION_LABEL}"}}}}'
    done = subprocess.run(
        ["docker", "image", "inspect", image, "--format", fmt],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout.strip()
