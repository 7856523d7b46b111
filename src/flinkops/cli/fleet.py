"""``flinkops ui`` (the fleet web page) and ``flinkops top`` (the fleet in the terminal, live).

Both show the rows of ``flinkops.service.fleet``. ``ui`` serves ``flinkops.web`` on 127.0.0.1 (the page's actions
have no sign-in of their own: the gateway is the door for other machines). ``top`` redraws a rich table every
``--interval`` seconds; ``--once`` prints one frame and exits (scripts, tests).

Registered on ``cli.app.app`` by ``cli.main``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from typing import TYPE_CHECKING, Annotated

import typer

from flinkops.cli import target
from flinkops.cli.app import app
from flinkops.cli.output import main_guard, out
from flinkops.errors import InvalidInput, NotFound, Problem

if TYPE_CHECKING:
    from rich.table import Table

    from flinkops.service.fleet import CostHook, FiguresHook, ReportHook, Row

__all__ = ["cost_hook", "frame"]

NameArg = Annotated[str | None, typer.Argument(help="One deployment or session job (default: the whole fleet).")]
AllNamespaces = Annotated[
    str | None, typer.Option("--namespace", "-n", help="Only this namespace (default: every namespace).")
]


def _known(name: str, namespace: str | None) -> tuple[str, str]:
    """``name`` must exist (exit 2 otherwise, with what to do): the kind it is and its namespace."""
    from flinkops.service.fleet import find

    try:
        found = find(target.current(), name, namespace or "default")
    except NotFound as exc:
        raise InvalidInput([Problem("NAME", str(exc), "see `flinkops get` for the names there are")]) from exc
    return str(found.get("kind")), namespace or "default"


# ------------------------------------------------------------------------------------------------ ui


@app.command()
@main_guard
def ui(
    name: NameArg = None,
    namespace: AllNamespaces = None,
    port: Annotated[int, typer.Option("--port", "-p", help="Port to serve on (0: any free port).")] = 8480,
    address: Annotated[
        str, typer.Option("--address", help="Address to bind: a loopback address (use the gateway for others).")
    ] = "127.0.0.1",
) -> None:
    """Serve the fleet web page until Ctrl-C: every deployment and session job (lifecycle, job state, checkpoint
    age, last savepoint, restarts, parallelism, cost, last error), a page per deployment (conditions, events, runs
    with downtime, snapshots, the plan of a pending change), and savepoint/suspend/resume/rollback behind a
    confirmation. With NAME, the address of its page is printed (exit 2 when there is no such resource)."""
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = address == "localhost"
    if not loopback:
        hint = "the page's actions have no sign-in of their own; serve it to others through `flinkops gateway`"
        raise InvalidInput([Problem("--address", f"{address} is not a loopback address", hint)])
    if not 0 <= port <= 65535:
        raise InvalidInput([Problem("--port", f"{port} is not a port number", "use 0..65535")])
    path = "/"
    if name is not None:
        from flinkops.web.app import detail_path

        kind, ns = _known(name, namespace)
        path = detail_path(kind, ns, name)
    elif namespace:
        path = f"/?namespace={namespace}"
    _serve(address, port, path)


def _serve(address: str, port: int, path: str) -> None:
    import asyncio

    from aiohttp import web

    from flinkops.web.app import FleetPage
    from flinkops.web.live import LiveWatch

    where = target.current()
    page = FleetPage(where, watch=LiveWatch(where), cost=cost_hook(), report=report_hook())

    async def main() -> None:
        runner = web.AppRunner(page.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, address, port)
        await site.start()
        bound = port
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            bound = server.sockets[0].getsockname()[1]
        out.print(f"fleet page on http://{address}:{bound}{path} (Ctrl-C stops it)")
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


# ------------------------------------------------------------------------------------------------ top


def cost_hook() -> CostHook | None:
    """The cost column's source: each resource's price so far from ``service.cost`` (the home's price table)."""
    from flinkops.service.cost import price_column

    return price_column(target.current())


def report_hook() -> ReportHook:
    """A deployment page's cost section: the runs priced by ``service.cost`` (the home's price table)."""
    from flinkops.service.cost import cost_report

    return cost_report(target.current())


def _number(value: float | None, fmt: str) -> str:
    return "?" if value is None else format(value, fmt)


def frame(rows: list[Row], now_ms: int, figures: FiguresHook | None) -> Table:
    """One frame of ``top``: a row per resource."""
    from rich.table import Table

    from flinkops.web.app import age

    styles = {"STABLE": "green", "FAILED": "red", "ROLLED_BACK": "red", "SUSPENDED": "dim"}
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("NAMESPACE", "NAME", "LIFECYCLE", "JOB", "REC/S IN", "REC/S OUT", "BACKPRESSURE"):
        table.add_column(column, no_wrap=True, justify="right" if column.startswith(("REC", "BACK")) else "left")
    for column in ("CHECKPOINT AGE", "RESTARTS", "COST"):
        table.add_column(column, no_wrap=True, justify="right")
    for row in rows:
        live = figures(row) if figures is not None and row.job_state == "RUNNING" else None
        checkpoint = row.checkpoint_age_s(now_ms)
        style = styles.get(row.lifecycle, "yellow")
        table.add_row(
            row.namespace,
            row.name,
            f"[{style}]{row.lifecycle}[/{style}]",
            row.job_state or "?",
            _number(live.records_in_per_second if live else None, ".1f"),
            _number(live.records_out_per_second if live else None, ".1f"),
            _number(live.backpressure_ratio * 100 if live and live.backpressure_ratio is not None else None, ".0f")
            + ("%" if live and live.backpressure_ratio is not None else ""),
            age(checkpoint) if checkpoint is not None else "?",
            str(row.restarts),
            row.cost if row.cost is not None else "?",
        )
    return table


@app.command()
@main_guard
def top(
    name: NameArg = None,
    namespace: AllNamespaces = None,
    interval: Annotated[float, typer.Option("--interval", "-i", help="Seconds between frames.")] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
) -> None:
    """The fleet live in the terminal: per deployment and session job its lifecycle, job state, records/s in and
    out, backpressure, checkpoint age, restarts and cost so far (``?``: not known, e.g. Flink did not answer).
    Exit 2 for a NAME that does not exist."""
    from flinkops.service.fleet import rows

    if interval <= 0:
        raise InvalidInput([Problem("--interval", f"{interval} is not a positive number of seconds")])
    where = target.current()
    wanted: tuple[str, str] | None = None
    if name is not None:
        wanted = (_known(name, namespace)[1], name)
    cost = cost_hook()
    from flinkops.web.live import LiveWatch

    watch = LiveWatch(where)

    def build() -> Table:
        found = rows(where, namespace if wanted is None else wanted[0], cost=cost)
        if wanted is not None:
            found = [r for r in found if (r.namespace, r.name) == wanted]
        watch.refresh(found)  # records/s, backpressure, Flink's own periodic checkpoints: from the JobManagers
        return frame(watch.apply(found), int(where.clock.now() * 1000), watch.figures)

    try:
        if once:
            out.print(build())
            return
        from rich.console import Console
        from rich.live import Live

        # Live needs the console itself (it enters it as a context manager), not the lazy stand-in `out`.
        with Live(build(), console=Console(highlight=False), auto_refresh=False, screen=False) as live:
            while True:
                time.sleep(interval)
                live.update(build(), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        watch.close()
