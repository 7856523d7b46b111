"""``flinkops cost [NAME]``: what each deployment's runs cost, as a table or ``-o json``.

The figures come from ``flinkops.service.cost`` (the arithmetic is ``flinkops.core.cost``); this module parses
and prints. ``cost_lines`` is also what ``describe`` prints under "Cost".

Registered on ``cli.app.app`` when ``cli.main`` imports this module.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flinkops.cli import target
from flinkops.cli.app import NamespaceOpt, app
from flinkops.cli.listing import _table
from flinkops.cli.output import main_guard
from flinkops.errors import InvalidInput, Problem

if TYPE_CHECKING:
    from flinkops.core.cost import DeploymentCost, RunCost

__all__ = ["cost_lines"]


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value / 1000:.1f}s"


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _row(run: RunCost | None, cost: DeploymentCost) -> list[str]:
    """One table row: a run, or (``run`` None) the resource's totals."""

    def get(field: str) -> float | None:
        value: float | None = getattr(run, field) if run is not None else cost.total(field)
        return value

    if run is not None:
        wall, eff = run.wall_ms, run.efficiency
        what = f"g{run.generation} " + ("(running)" if run.live else run.end_state or run.reason)
    else:
        wall, eff, what = cost.wall_ms, cost.efficiency, "total"
    checkpoints = get("checkpoints")
    return [
        what,
        _ms(wall),
        _num(get("vcpu_seconds")),
        _num(get("gib_seconds")),
        _num(get("slot_seconds")),
        "-" if eff is None else f"{eff:.0%}",
        _ms(_int(get("idle_tail_ms"))),
        _ms(_int(get("downtime_ms"))),
        "-" if checkpoints is None else str(int(checkpoints)),
        _num(get("kpu_hours"), 4),
        _num(get("cu_hours"), 4),
        _money(get("price")),
        _money(get("aws_price")),
        _money(get("ververica_price")),
    ]


HEADERS = [
    "RUN",
    "WALL",
    "VCPU-S",
    "GIB-S",
    "SLOT-S",
    "BUSY",
    "IDLE",
    "DOWN",
    "CKPTS",
    "KPU-H",
    "CU-H",
    "PRICE",
    "AWS MSF",
    "VERVERICA",
]


def _footer(found: list[DeploymentCost]) -> list[str]:
    currency = found[0].currency if found else "USD"
    notes = sorted({n for c in found for run in c.runs for n in run.notes})
    return [
        "PRICE: requested vCPU-h and GiB-h at the compute rates; AWS MSF: KPU-h x kpuHour; VERVERICA: CU-h x cuHour",
        f"amounts in {currency}; '-': not known, or no rate in the price table (flinkops cost --help)",
        *(f"note: {n}" for n in notes),
    ]


_USED_HELP = (
    "USED: what Flink's metrics say the runs used: vCPU-s (JVM CPU time) and GiB-s (memory in use, sampled), "
    "with their share of the requested; GiB-h of checkpointed state held; bytes the checkpoints uploaded"
)


def _bytes(value: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} B"


def _share(value: float | None) -> str:
    return "" if value is None else f" ({value:.0%})"


def used_line(cost: DeploymentCost, prefix: str = "") -> str | None:
    """What the resource's runs used, from Flink's metrics, beside what they requested (one line; the table has no
    room for it at 120 columns); None when nothing was measured."""
    cpu, gib = cost.total("used_vcpu_seconds"), cost.total("used_gib_seconds")
    state, written = cost.total("state_gib_hours"), cost.total("checkpoint_bytes")
    parts = []
    if cpu is not None:
        parts.append(f"{_num(cpu)} vCPU-s{_share(cost.cpu_utilisation)}")
    if gib is not None:
        parts.append(f"{_num(gib)} GiB-s{_share(cost.memory_utilisation)}")
    if state is not None:
        parts.append(f"state {_num(state, 4)} GiB-h")
    if written is not None:
        parts.append(f"checkpoints wrote {_bytes(written)}")
    return f"{prefix}used: {', '.join(parts)}" if parts else None


def cost_lines(cost: DeploymentCost) -> list[str]:
    """The cost table of one resource (its runs, then its total), as lines."""
    rows = [_row(run, cost) for run in cost.runs] + [_row(None, cost)]
    used = used_line(cost)
    return [*_table(HEADERS, rows, bold=False).splitlines(), *([used] if used else []), *_footer([cost])]


@app.command()
@main_guard
def cost(
    name: Annotated[str | None, typer.Argument(help="One FlinkDeployment or FlinkSessionJob (default: all).")] = None,
    namespace: NamespaceOpt = "default",
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")] = False,
    since: Annotated[
        str | None, typer.Option("--since", metavar="DURATION", help="Only the last DURATION (24h, 30min, 7d).")
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table (default) or json.")] = "table",
    prices: Annotated[
        Path | None,
        typer.Option(
            "--prices",
            metavar="FILE",
            help="Price table (YAML). Default: $FLINKOPS_HOME/prices.yaml when it exists, else the built-in "
            "rates (USD, AWS us-east-1 list prices: compute.vcpuHour 0.04048, compute.gibHour 0.004445, "
            "awsManagedFlink.kpuHour 0.11 and orchestrationKpus 1; ververica.cuHour unset). Fields: currency, "
            "compute.{vcpuHour,gibHour}, awsManagedFlink.{kpuHour,orchestrationKpus}, ververica.cuHour.",
        ),
    ] = None,
) -> None:
    """What each run cost: wall time, requested vCPU-seconds and GiB-seconds, slot-seconds, the idle tail (job
    ended, cluster still up), downtime, checkpoints, AWS Managed Flink KPU-hours (1 KPU = 1 vCPU + 4 GB; the
    TaskManagers rounded up to whole KPUs, plus the orchestration KPU) and Ververica CU-hours (1 CU = 1 CPU +
    4 GiB, not rounded), and a price from the price table. Below the table, what the runs used as Flink's
    metrics tell it (application deployments): vCPU-seconds of JVM CPU time and GiB-seconds of memory in use with
    their share of the requested, the GiB-hours of checkpointed state held and the bytes the checkpoints uploaded
    (S3 request counts are not measurable from Flink); -o json has them per run (usedVcpuSeconds,
    usedGibSeconds, cpuUtilisation, memoryUtilisation, stateGibHours, checkpointBytes)."""
    from flinkops.service.cost import as_dict, costs, load_prices

    if output not in ("table", "json"):
        raise InvalidInput([Problem("--output", f"unknown format {output!r}", "use table or json")])
    where = target.current()
    table = load_prices(prices, where.home)
    found = costs(where, name, None if all_namespaces and name is None else namespace, table, since=since)
    if output == "json":
        docs = [as_dict(c) for c in found]
        body = docs[0] if name is not None else {"kind": "CostList", "items": docs}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    if not found:
        sys.stderr.write("No resources found.\n")
        return
    single = name is not None
    headers = HEADERS if single else ["NAMESPACE", "NAME", *HEADERS]
    rows = []
    for c in found:
        prefix = [] if single else [c.namespace, c.name]
        rows += [[*prefix, *_row(run, c)] for run in c.runs]
        rows.append([*prefix, *_row(None, c)])
    sys.stdout.write(_table(headers, rows, bold=sys.stdout.isatty()))
    used = [line for c in found if (line := used_line(c, "" if single else f"{c.namespace}/{c.name} "))]
    lines = [*used, *([_USED_HELP] if used else []), *_footer(found)]
    sys.stdout.write("".join(line + "\n" for line in lines))
