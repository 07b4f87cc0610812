"""Which cluster `make demo` runs on, and whether that cluster has what the demo needs.

Two targets (hack/demo.sh asks this script, then follows the answer):

    local    (default) the local cluster of hack/cluster-up.sh: brought up or reused, the image
             built and loaded into it, MinIO already running as a host process behind it.
    current  the current context of the user's kubeconfig (KUBECONFIG or ~/.kube/config).
             Nothing local is built or started unless the plan says so; MinIO is installed
             into the cluster as a Deployment + Service `minio` in continuum-system, the
             address the examples/ manifests use.

Chosen with DEMO_CLUSTER=local|current, or USE_CURRENT_CONTEXT=1 (a shorthand for current).

    python hack/demo/preflight.py mode     prints `local` or `current`
    python hack/demo/preflight.py check    (current) looks at the cluster with kubectl, kind and
                                           docker and prints shell assignments for demo.sh

Both exit 2 after printing every problem found, each with what to do about it, so a user fixes
them all in one go rather than one per run. The decisions are pure functions of the environment
and of :class:`Facts`, unit-tested without a cluster in tests/unit/test_demo_preflight.py.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCAL, CURRENT = "local", "current"
TRUE = {"1", "true", "yes", "on"}
FALSE = {"", "0", "false", "no", "off"}
SYSTEM_NS = "continuum-system"
# The demo labels what it installs, so that a rerun updates its own MinIO and never replaces
# one the user (or `make cluster-up`) put there.
DEMO_LABEL = "app.kubernetes.io/part-of=continuum-demo"
ABSENT, OURS, FOREIGN = "absent", "ours", "foreign"
MIN_HELM = (3, 17)


class PreflightError(Exception):
    """What keeps the demo from running; one problem per line, each saying what to do."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(f"  - {p}" for p in problems))
        self.problems = problems


def demo_target(env: Mapping[str, str]) -> str:
    """`local` or `current`, from DEMO_CLUSTER and USE_CURRENT_CONTEXT."""
    chosen = env.get("DEMO_CLUSTER", "").strip().lower()
    shorthand = env.get("USE_CURRENT_CONTEXT", "").strip().lower()
    problems = []
    if chosen not in {"", LOCAL, CURRENT}:
        problems.append(
            f"DEMO_CLUSTER={env['DEMO_CLUSTER']!r} is not a demo target: use DEMO_CLUSTER=local "
            "(the local cluster, the default) or DEMO_CLUSTER=current (your current kube context)"
        )
    if shorthand not in TRUE | FALSE:
        problems.append(
            f"USE_CURRENT_CONTEXT={env['USE_CURRENT_CONTEXT']!r} is neither true nor false: "
            "use USE_CURRENT_CONTEXT=1 for your current kube context"
        )
    if not problems and shorthand in TRUE and chosen == LOCAL:
        problems.append(
            "USE_CURRENT_CONTEXT=1 and DEMO_CLUSTER=local contradict each other: set only one"
        )
    if problems:
        raise PreflightError(problems)
    return CURRENT if shorthand in TRUE or chosen == CURRENT else LOCAL


@dataclass(frozen=True)
class Facts:
    """What the current-context demo needs to know about this machine and the cluster."""

    context: str  # "" when the kubeconfig has no current context
    reach_error: str  # "" when the API server answered
    default_image: str  # continuum:<project version>
    image: str  # IMAGE as given, "" when not given
    minio_image: str  # MINIO_IMAGE as given, "" when not given
    minio_service: str  # ABSENT, OURS or FOREIGN: Service continuum-system/minio
    have_kind: bool  # `kind` on PATH
    helm_version: str  # `helm version --short`, "" when there is no helm
    local_images: frozenset[str] = frozenset()  # images the local Docker engine holds


@dataclass(frozen=True)
class Plan:
    """What demo.sh does on the current context (printed as shell assignments)."""

    context: str
    image: str
    build_image: bool  # build continuum:<version> here with hack/image.sh
    kind_cluster: str  # "" unless the image(s) go in with `kind load docker-image`
    kind_load: tuple[str, ...]
    minio_image: str

    def shell(self) -> str:
        values = {
            "DEMO_CONTEXT": self.context,
            "DEMO_IMAGE": self.image,
            "DEMO_BUILD_IMAGE": "1" if self.build_image else "0",
            "DEMO_KIND_CLUSTER": self.kind_cluster,
            "DEMO_KIND_LOAD": " ".join(self.kind_load),
            "DEMO_MINIO_IMAGE": self.minio_image,
        }
        return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())


def kind_cluster_of(context: str) -> str:
    """kind names its contexts `kind-<cluster>`; "" for any other context."""
    return context.removeprefix("kind-") if context.startswith("kind-") else ""


def plan_current(facts: Facts) -> Plan:
    """The plan for the current context, or every reason it cannot run."""
    problems = cluster_problems(facts)
    if problems:  # the rest is about that cluster: what it can pull, what runs in it
        raise PreflightError(problems)
    kind = kind_cluster_of(facts.context)
    image = facts.image or facts.default_image
    problems += image_problems(facts, kind)
    problems += minio_problems(facts)
    problems += helm_problems(facts.helm_version)
    if problems:
        raise PreflightError(problems)
    return Plan(facts.context, image, not facts.image, kind, kind_loads(facts, kind, image),
                facts.minio_image)  # fmt: skip


def kind_loads(facts: Facts, kind: str, image: str) -> tuple[str, ...]:
    """The images to `kind load docker-image`: kind nodes cannot pull an image that exists
    only in this machine's Docker engine (the one built here, or any given one found there)."""
    if not kind:
        return ()
    built_here = not facts.image
    wanted = [image] if built_here or image in facts.local_images else []
    if facts.minio_image in facts.local_images:
        wanted.append(facts.minio_image)
    return tuple(wanted)


def helm_problems(version: str) -> list[str]:
    """Helm 3.17 or newer: the demo installs the chart with --take-ownership (3.17+)."""
    if not version:
        return [
            "no helm binary: install Helm >= 3.17 (https://helm.sh/docs/intro/install/) or run "
            "`make tools`; the demo installs the operator with charts/continuum"
        ]
    found = re.match(r"v?(\d+)\.(\d+)", version.strip())
    if found and (int(found[1]), int(found[2])) >= MIN_HELM:
        return []
    return [
        f"helm {version.strip()} is too old: the demo needs Helm >= 3.17 (it installs the chart "
        "with --take-ownership)"
    ]


def cluster_problems(facts: Facts) -> list[str]:
    if not facts.context:
        return [
            "your kubeconfig has no current context: pick one with `kubectl config "
            "use-context <name>` (or set KUBECONFIG), or drop DEMO_CLUSTER=current to use the "
            "local cluster"
        ]
    if facts.reach_error:
        last = (facts.reach_error.strip().splitlines() or ["no answer"])[-1]
        return [
            f"kubectl cannot reach the API server of the current context {facts.context!r} "
            f"({last}): check `kubectl --context {facts.context} get --raw /readyz`"
        ]
    return []


def image_problems(facts: Facts, kind: str) -> list[str]:
    if kind and not facts.have_kind:
        return [
            f"the current context {facts.context!r} is a kind cluster, but `kind` is not on "
            "PATH: it is needed to load the image into the cluster (`kind load docker-image`)"
        ]
    if kind or facts.image:
        return []
    return [
        f"the cluster of context {facts.context!r} cannot use an image built on this machine: "
        f"build {facts.default_image} (`make image`), push it to a registry that cluster pulls "
        f"from, and pass IMAGE=<registry>/{facts.default_image} (for kind, use its "
        "kind-<name> context and the demo loads the image itself)"
    ]


def minio_problems(facts: Facts) -> list[str]:
    if facts.minio_service == FOREIGN:
        return [
            f"Service {SYSTEM_NS}/minio exists and was not installed by the demo (no label "
            f"{DEMO_LABEL}); the demo will not replace it. This is the case on the local "
            "cluster of `make cluster-up`: run `make demo` without DEMO_CLUSTER there"
        ]
    if facts.minio_image:
        return []
    return [
        f"MINIO_IMAGE is not set: the demo installs MinIO into the cluster (Deployment + Service "
        f"{SYSTEM_NS}/minio, which examples/ use) and needs a MinIO server image that cluster "
        "can run, e.g. MINIO_IMAGE=quay.io/minio/minio:<RELEASE tag> (pushed to a registry the "
        "cluster pulls from, or in this machine's Docker engine for kind)"
    ]


# ---------------------------------------------------------------------------- looking around


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def gather(env: Mapping[str, str]) -> Facts:
    """The facts, from kubectl (env KUBECTL), helm (env HELM), kind and docker."""
    kubectl = env.get("KUBECTL", "kubectl")
    context = run(kubectl, "config", "current-context").stdout.strip()
    reach = run(kubectl, "--context", context, "get", "--raw", "/readyz") if context else None
    reach_error = "" if reach is None or reach.returncode == 0 else (reach.stderr or "no answer")
    images = [env.get("IMAGE", ""), env.get("MINIO_IMAGE", "")]
    return Facts(
        context=context,
        reach_error=reach_error,
        default_image=f"continuum:{project_version()}",
        image=env.get("IMAGE", ""),
        minio_image=env.get("MINIO_IMAGE", ""),
        minio_service=minio_service(kubectl, context) if context and not reach_error else ABSENT,
        have_kind=shutil.which("kind") is not None,
        helm_version=helm_version(env.get("HELM", "helm")),
        local_images=frozenset(i for i in images if i and docker_has(i)),
    )


def minio_service(kubectl: str, context: str) -> str:
    found = run(kubectl, "--context", context, "-n", SYSTEM_NS, "get", "service", "minio",
                "-o", "jsonpath={.metadata.labels}", "--ignore-not-found")  # fmt: skip
    if not found.stdout.strip():
        return ABSENT
    return OURS if '"app.kubernetes.io/part-of":"continuum-demo"' in found.stdout else FOREIGN


def helm_version(helm: str) -> str:
    if not shutil.which(helm):
        return ""
    return run(helm, "version", "--short").stdout.strip() or "(unknown version)"


def docker_has(image: str) -> bool:
    return (
        shutil.which("docker") is not None
        and run("docker", "image", "inspect", image).returncode == 0
    )


def project_version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def main(argv: list[str]) -> int:
    try:
        if argv == ["mode"]:
            print(demo_target(os.environ))
        elif argv == ["check"]:
            print(plan_current(gather(os.environ)).shell(), end="")
        else:
            print("usage: preflight.py mode|check", file=sys.stderr)
            return 64
    except PreflightError as err:
        print(f"error: make demo cannot run yet:\n{err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
