"""examples/*.yaml pass the real API server's validation (`kubectl apply --dry-run=server`).

The CRDs' OpenAPI schemas and CEL rules accept the examples as written; server-side dry run
persists nothing, so this needs no operator and no S3.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.kit import REPO

EXAMPLES = REPO / "examples"


def dry_run(kubectl: list[str], ns: str, *files: str) -> subprocess.CompletedProcess[str]:
    args = [arg for path in files for arg in ("-f", path)]
    return subprocess.run(
        [*kubectl, "apply", "--dry-run=server", "--validate=strict", "-n", ns, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_examples_pass_server_side_validation(
    kubectl: list[str],
    namespace: str,
    crds: None,
) -> None:
    result = dry_run(kubectl, namespace, str(EXAMPLES))
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == [
        "driftmonitor.continuum.dev/churn-drift created (server dry run)",
        "driftmonitor.continuum.dev/churn-outcomes created (server dry run)",
        "modeldeployment.continuum.dev/churn created (server dry run)",
        "trainingjob.continuum.dev/churn-v1 created (server dry run)",
    ]


def test_server_side_dry_run_rejects_a_broken_example(
    kubectl: list[str],
    namespace: str,
    crds: None,
    tmp_path: Path,
) -> None:
    """The check above can fail: a misspelt field and a CEL violation are both refused."""
    text = (EXAMPLES / "driftmonitor.yaml").read_text()
    typo = tmp_path / "typo.yaml"
    typo.write_text(text.replace("consecutiveChecks:", "consecutiveCheck:"))
    result = dry_run(kubectl, namespace, str(typo))
    assert result.returncode != 0
    assert "consecutiveCheck" in result.stderr
    window = tmp_path / "window.yaml"
    window.write_text(text.replace("minSamples: 100", "minSamples: 1000"))
    result = dry_run(kubectl, namespace, str(window))
    assert result.returncode != 0
    assert "minSamples must not exceed" in result.stderr
