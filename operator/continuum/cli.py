"""The `continuum` command line: one entry point per workload.

    continuum operator ...   run the kopf operator (continuum.controllers)
    continuum train ...      train one model inside a TrainingJob's Job (continuum.trainer)
    continuum serve ...      serve one model version (continuum.server)
    continuum monitor ...    run one drift check (continuum.monitor)
    continuum lineage ...    a model's trigger -> training -> serving chain, and what replays it
    continuum rollout ...    a progressive rollout: status, promote, abort, pause, resume
    continuum version        print the version

Each workload parses its own options; `continuum <workload> --help` lists them. Workload
modules are imported only when chosen, so `continuum train` never loads the operator, and the
operator never loads the ML stack.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from continuum import __version__

WORKLOADS: dict[str, str] = {
    "operator": "continuum.controllers",
    "train": "continuum.trainer.cli",
    "serve": "continuum.server",
    "monitor": "continuum.monitor",
    "lineage": "continuum.lineage",
    "rollout": "continuum.rollouts",
}


# Libraries a workload's process must not load even when they are installed. kopf imports the
# official Kubernetes client (and its async sibling, and pykube) whenever it can, to recognise
# their model objects and to log in with them; the operator hands kopf plain dicts and logs in
# with ``continuum.kube.login``, so the client would only cost memory: about 20 MB and 400
# modules before the first object (measured with ``python -X importtime``, ``/proc/self/status``).
KEPT_OUT: dict[str, tuple[str, ...]] = {
    "operator": ("kubernetes", "kubernetes_asyncio", "pykube"),
}


def keep_out(modules: Sequence[str]) -> None:
    """Make ``import <module>`` fail with ImportError in this process (unless already loaded)."""
    for name in modules:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "not importable"


def usage() -> str:
    return (__doc__ or "").strip()


def load_workload(name: str) -> Callable[[Sequence[str]], int]:
    module = importlib.import_module(WORKLOADS[name])
    entry: Callable[[Sequence[str]], int] | None = getattr(module, "main", None)
    if entry is None:
        raise SystemExit(f"continuum {name}: not available in this build")
    return entry


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(usage())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command in {"version", "--version"}:
        print(__version__)
        return 0
    if command not in WORKLOADS:
        print(f"continuum: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    keep_out(KEPT_OUT.get(command, ()))
    return load_workload(command)(rest)


if __name__ == "__main__":
    sys.exit(main())
