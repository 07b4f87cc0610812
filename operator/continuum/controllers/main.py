"""``continuum operator``: run the kopf operator (namespaced or cluster-wide), alone or as one
of several replicas with ``--leader-elect`` (one runs the controllers; see
``continuum.controllers.election``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import kopf

from continuum import __version__
from continuum.controllers import election, lifecycle
from continuum.controllers.driftmonitor import handlers as driftmonitor
from continuum.controllers.modeldeployment import handlers as modeldeployment
from continuum.controllers.shared import metrics, resync
from continuum.controllers.trainingjob import handlers as trainingjob

FATAL_EXIT_CODE = 1
logger = logging.getLogger(__name__)
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
    parser.add_argument(
        "--resync-seconds", type=_seconds, default=resync.DEFAULT_PERIOD, metavar="SECONDS",
        help="reconcile every object again once per this period, spread by object "
        f"(0: never; default {resync.DEFAULT_PERIOD:g})",
    )  # fmt: skip
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.add_argument("--log-format", choices=["plain", "full", "json"], default="full")
    add_election_arguments(parser)
    return parser


def add_election_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = election.Timings()
    group = parser.add_argument_group("leader election (several replicas, one active)")
    group.add_argument(
        "--leader-elect", action="store_true",
        help="run the controllers only while holding the leader Lease; wait as a standby before",
    )  # fmt: skip
    group.add_argument(
        "--leader-election-namespace", default=None,
        help="namespace of the Lease (default: $POD_NAMESPACE, else the pod's namespace)",
    )  # fmt: skip
    group.add_argument(
        "--leader-election-name", default=election.LEASE_NAME,
        help=f"name of the Lease (default {election.LEASE_NAME}; one per operator installation)",
    )  # fmt: skip
    for flag, value, what in (
        ("lease-duration", defaults.lease_duration, "a Lease not renewed is taken over"),
        ("renew-deadline", defaults.renew_deadline, "a leader that cannot renew exits"),
        ("retry-period", defaults.retry_period, "between two tries to acquire or renew"),
    ):
        group.add_argument(
            f"--leader-election-{flag}", type=float, default=value, metavar="SECONDS",
            help=f"{what}: seconds (default {value:g})",
        )  # fmt: skip


def election_settings(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[election.Timings, str]:
    """The timings and the Lease's namespace; a usage error (exit 2) when they do not fit."""
    timings = election.Timings(
        lease_duration=args.leader_election_lease_duration,
        renew_deadline=args.leader_election_renew_deadline,
        retry_period=args.leader_election_retry_period,
    )
    problem = timings.problem()
    if problem:
        parser.error(f"leader election timings: {problem}")
    namespace = args.leader_election_namespace or election.default_namespace()
    if not namespace:
        parser.error(
            "--leader-elect needs the Lease's namespace: not in a pod and no $POD_NAMESPACE, "
            "so give --leader-election-namespace"
        )
    return timings, namespace


def main(argv: Sequence[str] | None = None) -> int:
    """Run the operator until it is told to stop (SIGINT/SIGTERM); 0 on a clean exit.

    With ``--leader-elect``, a replica that loses its Lease ends the process itself
    (non-zero), see ``continuum.controllers.election``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    elect = election_settings(parser, args) if args.leader_elect else None
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat[args.log_format.upper()])
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    options = kopf_options(args)
    if elect is None:
        election.IS_LEADER.set(1)  # the only replica: it runs the controllers
        return until_stopped(lambda: run_kopf(options))
    timings, namespace = elect

    async def operate(stop: asyncio.Event) -> None:
        await kopf.operator(**options, stop_flag=stop)

    return until_stopped(
        lambda: asyncio.run(
            election.run_elected(
                operate,
                namespace=namespace,
                name=args.leader_election_name,
                timings=timings,
                liveness=options["liveness_endpoint"],
            )
        )
    )


def run_kopf(options: dict[str, Any]) -> int:
    """kopf alone until it stops: 0 (an error raises)."""
    kopf.run(**options)
    return 0


def until_stopped(run: Callable[[], int]) -> int:
    """``run()``'s exit code; ``FATAL_EXIT_CODE`` with one log line naming the error when
    kopf stopped on a fatal one (a watch it could not restart, say), so that Kubernetes
    restarts the container. What would keep the process up after that is
    ``shared.exiting``'s to end."""
    try:
        return run()
    except Exception as exc:
        logger.critical(fatal_message(exc), exc_info=exc)
        return FATAL_EXIT_CODE


def fatal_message(exc: BaseException) -> str:
    return (
        f"kopf stopped on a fatal error ({type(exc).__name__}: {exc}); exiting with code "
        f"{FATAL_EXIT_CODE} so that Kubernetes restarts the operator"
    )


def kopf_options(args: argparse.Namespace) -> dict[str, Any]:
    """What ``kopf.run`` (alone) and ``kopf.operator`` (under leader election) are given."""
    return {
        "standalone": True,  # no kopf peering: the Lease decides who runs (--leader-elect)
        "clusterwide": not args.namespace,
        "namespaces": args.namespace,
        "liveness_endpoint": args.liveness or None,
        "memo": kopf.Memo(image=args.image, resync_seconds=args.resync_seconds),
    }


def _seconds(text: str) -> float:
    """A period in seconds, 0 or more (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 (off) or a positive number: {text!r}")
    return value
