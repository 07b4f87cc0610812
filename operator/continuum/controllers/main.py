"""``continuum operator``: run the kopf operator (namespaced or cluster-wide)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import kopf

from continuum import __version__
from continuum.controllers import lifecycle
from continuum.controllers.driftmonitor import handlers as driftmonitor
from continuum.controllers.modeldeployment import handlers as modeldeployment
from continuum.controllers.shared import metrics
from continuum.controllers.trainingjob import handlers as trainingjob

ENV_IMAGE = "CONTINUUM_IMAGE"
DEFAULT_IMAGE = f"continuum:{__version__}"
DEFAULT_LIVENESS = "http://0.0.0.0:8081/healthz"
HANDLER_MODULES = (
    lifecycle,
    trainingjob,
    modeldeployment,
    driftmonitor,
)  # importing them registers their handlers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="continuum operator", description=__doc__)
    parser.add_argument(
        "-n", "--namespace", action="append", default=[],
        help="watch this namespace (repeatable); default: all namespaces",
    )  # fmt: skip
    parser.add_argument(
        "--metrics-port", type=int, default=8080,
        help="port of the Prometheus /metrics endpoint (0: off; default 8080)",
    )  # fmt: skip
    parser.add_argument(
        "--image", default=os.environ.get(ENV_IMAGE) or DEFAULT_IMAGE,
        help=f"image of the trainer Jobs (default: ${ENV_IMAGE} or {DEFAULT_IMAGE})",
    )  # fmt: skip
    parser.add_argument(
        "--liveness", default=DEFAULT_LIVENESS,
        help=f"liveness endpoint URL ('' disables; default {DEFAULT_LIVENESS})",
    )  # fmt: skip
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.add_argument("--log-format", choices=["plain", "full", "json"], default="full")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the operator until it is told to stop (SIGINT/SIGTERM); 0 on a clean exit."""
    args = build_parser().parse_args(argv)
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat[args.log_format.upper()])
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    kopf.run(
        standalone=True,
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=args.liveness or None,
        memo=kopf.Memo(image=args.image),
    )
    return 0
