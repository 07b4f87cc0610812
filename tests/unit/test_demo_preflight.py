"""`make demo` on the current kube context: choosing the target, and the preflight's decisions.

hack/demo/preflight.py decides from the environment and a few facts about the cluster whether
the demo can run there and how (build the image, `kind load` it, install MinIO); these tests
feed it facts directly, and run hack/demo.sh itself up to the preflight with a stand-in kubectl
that has no current context, to show the whole wiring stops with a clear message before it
builds or starts anything.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_preflight() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_preflight", REPO / "hack/demo/preflight.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


pf = load_preflight()

REMOTE = pf.Facts(
    context="prod-eu",
    reach_error="",
    default_image="continuum:0.1.0",
    image="registry.example/continuum:0.1.0",
    minio_image="registry.example/minio:2025",
    minio_service=pf.ABSENT,
    have_kind=False,
    helm_version="v3.19.0+g3d8990f",
)
KIND = replace(REMOTE, context="kind-continuum", image="", minio_image="minio:dev", have_kind=True)


def problems_of(facts: object) -> list[str]:
    with pytest.raises(pf.PreflightError) as refused:
        pf.plan_current(facts)
    return list(refused.value.problems)


# ---------------------------------------------------------------------------- the target


@pytest.mark.parametrize(
    ("env", "target"),
    [
        ({}, "local"),
        ({"DEMO_CLUSTER": "local"}, "local"),
        ({"DEMO_CLUSTER": "current"}, "current"),
        ({"DEMO_CLUSTER": " Current "}, "current"),
        ({"USE_CURRENT_CONTEXT": "1"}, "current"),
        ({"USE_CURRENT_CONTEXT": "yes"}, "current"),
        ({"USE_CURRENT_CONTEXT": "0"}, "local"),
        ({"USE_CURRENT_CONTEXT": ""}, "local"),
        ({"USE_CURRENT_CONTEXT": "true", "DEMO_CLUSTER": "current"}, "current"),
    ],
)
def test_the_target_comes_from_demo_cluster_or_use_current_context(
    env: dict[str, str], target: str
) -> None:
    assert pf.demo_target(env) == target


def test_an_unknown_target_names_the_ones_there_are() -> None:
    with pytest.raises(pf.PreflightError) as refused:
        pf.demo_target({"DEMO_CLUSTER": "kind"})
    assert "DEMO_CLUSTER='kind'" in str(refused.value)
    assert "DEMO_CLUSTER=local" in str(refused.value)
    assert "DEMO_CLUSTER=current" in str(refused.value)


def test_a_shorthand_that_is_not_a_boolean_is_refused() -> None:
    with pytest.raises(pf.PreflightError, match="USE_CURRENT_CONTEXT='maybe'"):
        pf.demo_target({"USE_CURRENT_CONTEXT": "maybe"})


def test_contradicting_settings_are_refused() -> None:
    with pytest.raises(pf.PreflightError, match="contradict"):
        pf.demo_target({"USE_CURRENT_CONTEXT": "1", "DEMO_CLUSTER": "local"})


# ---------------------------------------------------------------------------- the plan


def test_a_remote_cluster_uses_the_given_images_and_builds_nothing() -> None:
    plan = pf.plan_current(REMOTE)
    assert plan.context == "prod-eu"
    assert plan.image == "registry.example/continuum:0.1.0"
    assert plan.minio_image == "registry.example/minio:2025"
    assert not plan.build_image
    assert (plan.kind_cluster, plan.kind_load) == ("", ())


def test_a_remote_cluster_without_image_is_told_to_push_it() -> None:
    [problem] = problems_of(replace(REMOTE, image=""))
    assert "'prod-eu'" in problem
    assert "IMAGE=<registry>/continuum:0.1.0" in problem
    assert "make image" in problem


def test_kind_builds_the_image_here_and_loads_it_with_the_local_minio_image() -> None:
    plan = pf.plan_current(replace(KIND, local_images=frozenset({"minio:dev"})))
    assert plan.build_image
    assert plan.image == "continuum:0.1.0"
    assert plan.kind_cluster == "continuum"
    assert plan.kind_load == ("continuum:0.1.0", "minio:dev")


def test_kind_leaves_images_it_does_not_have_here_to_the_node_to_pull() -> None:
    facts = replace(KIND, image="registry.example/continuum:0.1.0")
    plan = pf.plan_current(facts)
    assert not plan.build_image
    assert plan.kind_load == ()


def test_kind_without_the_kind_command_says_what_it_is_for() -> None:
    [problem] = problems_of(replace(KIND, have_kind=False))
    assert "kind load docker-image" in problem
    assert "'kind-continuum'" in problem


def test_minio_image_is_a_stated_precondition() -> None:
    [problem] = problems_of(replace(REMOTE, minio_image=""))
    assert problem.startswith("MINIO_IMAGE is not set")
    assert "continuum-system/minio" in problem


def test_a_minio_the_demo_did_not_install_is_never_replaced() -> None:
    [problem] = problems_of(replace(REMOTE, minio_service=pf.FOREIGN))
    assert "was not installed by the demo" in problem
    assert "without DEMO_CLUSTER" in problem  # the local cluster's own MinIO is the usual case
    assert pf.plan_current(replace(REMOTE, minio_service=pf.OURS)).minio_image  # a rerun


@pytest.mark.parametrize(
    ("version", "ok"),
    [("v3.17.0+gabc", True), ("v4.0.1", True), ("v3.16.4+g1", False), ("(unknown version)", False)],
)
def test_helm_must_know_take_ownership(version: str, ok: bool) -> None:
    facts = replace(REMOTE, helm_version=version)
    if ok:
        assert pf.plan_current(facts)
    else:
        [problem] = problems_of(facts)
        assert "Helm >= 3.17" in problem


def test_every_problem_is_reported_at_once() -> None:
    facts = replace(REMOTE, image="", minio_image="", helm_version="")
    problems = problems_of(facts)
    assert len(problems) == 3
    assert any("IMAGE=" in p for p in problems)
    assert any("MINIO_IMAGE" in p for p in problems)
    assert any("helm" in p for p in problems)


def test_no_current_context_or_no_answer_stops_before_anything_else() -> None:
    [problem] = problems_of(replace(REMOTE, context="", image="", minio_image=""))
    assert "no current context" in problem
    unreachable = replace(REMOTE, reach_error="E1\nUnable to connect to the server: timeout\n")
    [problem] = problems_of(unreachable)
    assert "cannot reach the API server of the current context 'prod-eu'" in problem
    assert "Unable to connect to the server: timeout" in problem


def test_the_plan_reads_back_in_bash_exactly() -> None:
    plan = pf.Plan("ctx 'a'", "r/continuum:1", True, "k", ("i1", "i 2"), "m$x")
    script = plan.shell() + 'printf "%s|" "$DEMO_CONTEXT" "$DEMO_IMAGE" "$DEMO_BUILD_IMAGE" '
    script += '"$DEMO_KIND_CLUSTER" "$DEMO_KIND_LOAD" "$DEMO_MINIO_IMAGE"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout == "ctx 'a'|r/continuum:1|1|k|i1 i 2|m$x|"


# ---------------------------------------------------------------------------- the scripts


def test_the_command_line_exits_2_with_the_message() -> None:
    env = {**os.environ, "DEMO_CLUSTER": "somewhere"}
    done = subprocess.run(
        [sys.executable, str(REPO / "hack/demo/preflight.py"), "mode"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "error: make demo cannot run yet" in done.stderr
    assert "DEMO_CLUSTER='somewhere'" in done.stderr


def test_demo_sh_stops_at_the_preflight_without_building_or_starting_anything(
    tmp_path: Path,
) -> None:
    # A kubectl with no current context; an empty cache so the cached kubectl is not found.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "kubectl"
    stub.write_text('#!/bin/sh\necho "error: current-context is not set" >&2\nexit 1\n')
    stub.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CONTINUUM_CACHE": str(tmp_path / "cache"),
        "DEMO_OUT": str(tmp_path / "out"),
        "DEMO_KUBECONFIG": str(tmp_path / "no-such-kubeconfig"),
        "USE_CURRENT_CONTEXT": "1",
    }
    done = subprocess.run(
        [str(REPO / "hack/demo.sh")], env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "no current context" in done.stderr
    assert "cluster-up" not in done.stderr
    assert "Building" not in done.stderr


def test_make_demo_passes_only_the_users_own_kubeconfig() -> None:
    # The Makefile exports the local cluster's kubeconfig when the user set none; the demo on
    # the current context must see the user's (or none: kubectl's default), never that one.
    def dry_run(**extra: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"} | extra
        out = subprocess.run(
            ["make", "-n", "-C", str(REPO), "demo"], env=env, capture_output=True, text=True,
            check=True,
        ).stdout  # fmt: skip
        return next(line for line in out.splitlines() if "hack/demo.sh" in line)

    assert dry_run().startswith("DEMO_KUBECONFIG='' ")
    assert dry_run(KUBECONFIG="/home/me/kc").startswith("DEMO_KUBECONFIG='/home/me/kc' ")


def test_demo_sh_hands_loop_py_the_settings_of_its_kind_of_cluster(tmp_path: Path) -> None:
    stub = tmp_path / "python"
    stub.write_text('#!/bin/sh\necho "$KUBECONFIG|$IMAGE|${DEMO_CLUSTER-}|${DEMO_S3_ENV-}|$1"\n')
    stub.chmod(0o755)
    script = (
        f"source {REPO / 'hack/demo.sh'}; VENV_PY={stub}; "
        "run_loop continuum:9 KUBECONFIG=/k DEMO_CLUSTER=current DEMO_S3_ENV=/s3.env"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DEMO_CLUSTER", "DEMO_S3_ENV"}}
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"/k|continuum:9|current|/s3.env|{REPO / 'hack/demo/loop.py'}\n"
