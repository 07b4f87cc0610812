"""The host stays safe while the cluster runs: traffic guard in place, kernel settings restored."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.kit import REPO
from tests.kit.cluster import STATE_DIR


def _config() -> dict[str, str]:
    """The top-level ``NAME=value`` assignments of the cluster's config (comments dropped, so a
    ``# shellcheck disable=...`` line is no assignment)."""
    lines = (REPO / "hack/cluster/config.sh").read_text().splitlines()
    code = (line.split("#")[0] for line in lines if not line.startswith(" "))
    pairs = (text.strip().split("=", 1) for text in code if "=" in text)
    return {k: v.strip('"') for k, v in pairs if k}


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def test_service_and_pod_ranges_are_blackholed(kubeconfig: Path) -> None:
    cfg = _config()
    blackholes = _run("ip", "route", "show", "type", "blackhole")
    assert cfg["SERVICE_CIDR"] in blackholes
    assert cfg["POD_GUARD_CIDR"] in blackholes


def test_forward_guard_confines_pods_to_their_bridge(kubeconfig: Path) -> None:
    cfg = _config()
    # mangle FORWARD runs before filter FORWARD, where kube-proxy puts its own ACCEPT rules.
    forward = _run("iptables", "-t", "mangle", "-S", "FORWARD").splitlines()
    assert forward[1] == f"-A FORWARD -j {cfg['GUARD_CHAIN']}", "the guard must be the first rule"
    guard = _run("iptables", "-t", "mangle", "-S", cfg["GUARD_CHAIN"])
    assert f"-i {cfg['POD_BRIDGE']} -j DROP" in guard
    assert f"-o {cfg['POD_BRIDGE']} -j DROP" in guard


def test_kernel_settings_the_kubelet_changed_are_restored(kubeconfig: Path) -> None:
    saved = dict(
        line.split("=", 1) for line in (STATE_DIR / "sysctl.saved").read_text().splitlines()
    )
    for key in ("kernel.panic_on_oops", "kernel.panic", "vm.overcommit_memory"):
        assert _run("sysctl", "-n", key).strip() == saved[key], key


def test_pods_get_no_host_resolvers(kubeconfig: Path) -> None:
    resolv = (STATE_DIR / "kubelet/resolv.conf").read_text()
    assert "nameserver" not in resolv
    corefile = (STATE_DIR / "coredns/Corefile").read_text()
    assert "forward" not in corefile
