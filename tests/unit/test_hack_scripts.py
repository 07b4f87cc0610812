"""The shell scripts that build and run the local cluster parse, and keep their safety rules."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.kit.versions import pins

HACK = Path(__file__).resolve().parents[2] / "hack"
SCRIPTS = sorted(HACK.rglob("*.sh"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(HACK)))
def test_script_parses(script: Path) -> None:
    result = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(HACK)))
def test_no_grep_q_at_the_end_of_a_pipe(script: Path) -> None:
    # Under `set -o pipefail`, `producer | grep -q x` fails when grep exits before the producer
    # has written everything (SIGPIPE), so a match can look like a miss.
    offenders = [
        line
        for line in script.read_text().splitlines()
        if re.search(r"\|\s*grep\s+-[a-zA-Z]*q", line)
    ]
    assert offenders == []


def test_versions_are_pinned() -> None:
    assert pins()["KUBE_VERSION"].startswith("1.34.")
    assert all(value and "latest" not in value for value in pins().values())
