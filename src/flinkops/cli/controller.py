"""``flinkops controller run|start|stop|status``: the local controller daemon.

The daemon itself (start, stop, pid file, the loop) is reached through the service layer's local target, the one
place that builds it. On Kubernetes the operator reconciles in the cluster, so ``start``/``stop``/``status``
refuse with a pointer there.

Registered on ``cli.app.app`` by ``cli.main``.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Annotated

import typer

from flinkops.cli import target
from flinkops.cli.output import main_guard, out

__all__ = ["controller_app"]

controller_app = typer.Typer(help="Run or manage the controller daemon that reconciles resources.")

_IN_CLUSTER = "the operator runs in the cluster: kubectl -n <operator namespace> get pods,lease"


@controller_app.command("run")
def controller_run(
    pid_file: Annotated[bool, typer.Option("--pid-file", hidden=True)] = False,
    poll: Annotated[float, typer.Option(help="Seconds between checks for changed resources.")] = 0.5,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            help="Serve Prometheus metrics (/metrics) and a liveness probe (/healthz) on 127.0.0.1:PORT (0: a free "
            "port, logged); the same families as the operator's.",
            min=0,
            max=65535,
        ),
    ] = None,
) -> None:
    """Run the controller in the foreground (Ctrl-C stops it; Flink clusters keep running)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per REST call drowns the useful ones
    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    target.local().run_controller(lambda: stopping, poll, pid_file=pid_file, metrics_port=metrics_port)


@controller_app.command("start")
@main_guard
def controller_start() -> None:
    """Start the controller daemon in the background (no-op when it runs)."""
    target.local_only("controller", _IN_CLUSTER)
    state = target.local().start_controller()
    out.print(f"controller running (pid {state.pid}); log: {state.log_file}")


@controller_app.command("stop")
@main_guard
def controller_stop() -> None:
    """Stop the controller daemon. Running Flink clusters keep running and are adopted on the next start."""
    target.local_only("controller", _IN_CLUSTER)
    stopped = target.local().stop_controller()
    out.print("controller stopped" if stopped else "controller was not running")


@controller_app.command("status")
@main_guard
def controller_status() -> None:
    """Whether the controller daemon runs, and what it manages. Exit 1 when it is not running."""
    target.local_only("controller", _IN_CLUSTER)
    local = target.local()
    state = local.controller_state()
    if state.running:
        out.print(f"controller running (pid {state.pid}); home {local.home}; log: {state.log_file}")
    else:
        out.print(f"controller not running; home {local.home}")
    out.print(f"{len(local.documents())} resource(s)")
    if not state.running:
        raise typer.Exit(1)
