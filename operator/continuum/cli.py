"""The `continuum` command line: one entry point per workload.

    continuum operator ...   run the kopf operator (continuum.controllers)
    continuum train ...      train one model inside a TrainingJob's Job (continuum.trainer)
    continuum serve ...      serve one model version (continuum.server)
    continuum monitor ...    run one drift check (continuum.monitor)
    continuum lineage ...    print a model's drift -> training -> serving chain
    continuum version        print the version

Each workload parses its own options; `continuum <workload> --help` lists them. Workload
modules are imported only when chosen, so `continuum train` never loads the operator.
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
}


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
    return load_workload(command)(rest)


if __name__ == "__main__":
    sys.exit(main())
