"""``flinkops autoscaler NAME``: the autoscaler's newest evaluation of a FlinkDeployment and its recent decisions,
as text or ``-o json``.

The figures come from ``flinkops.service.autoscaling`` (the controller's record in ``status.autoscaler``); this
module parses and prints.

Registered on ``cli.app.app`` when ``cli.main`` imports this module.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from flinkops.cli import target
from flinkops.cli.app import NamespaceOpt, app
from flinkops.cli.listing import _table, timestamp
from flinkops.cli.output import main_guard
from flinkops.core.autoscaler import rate_text
from flinkops.errors import InvalidInput, Problem

if TYPE_CHECKING:
    from flinkops.service.autoscaling import AutoscalerReport

__all__ = ["autoscaler_lines"]


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _seconds(ms: int) -> str:
    s = ms / 1000
    if s >= 3600 and s % 3600 == 0:
        return f"{s / 3600:.0f} h"
    if s >= 60 and s % 60 == 0:
        return f"{s / 60:.0f} min"
    return f"{s:.0f} s"


def autoscaler_lines(found: AutoscalerReport) -> list[str]:
    s = found.settings
    how = "in place (adaptive scheduler)" if found.in_place else "by a savepoint upgrade (no adaptive scheduler)"
    mode = "rescales " + how if s.scaling_enabled else "recommends only (scaling.enabled: false)"
    lines = [
        f"{found.namespace}/{found.name}: autoscaler {'on, ' + mode if s.enabled else 'off'}",
        f"settings: target {s.target_utilization:.0%} busy ({s.lower_utilization:.0%}..{s.upper_utilization:.0%}), "
        f"window {_seconds(s.metrics_window_ms)}, stabilization {_seconds(s.stabilization_ms)}, scale down after "
        f"{_seconds(s.scale_down_interval_ms)} low, catch up in {_seconds(s.catch_up_ms)}, parallelism "
        f"{s.vertex_min_parallelism}..{s.vertex_max_parallelism}",
    ]
    r = found.record
    if r is None:
        lines.append(
            "no evaluation yet: the job has not run with the autoscaler on"
            if s.enabled
            else 'set job.autoscaler.enabled: "true" in flinkConfiguration to turn it on'
        )
        return lines
    set_by = ""
    if r.parallelism is not None and r.parallelism != found.spec_parallelism:
        set_by = f", set by the autoscaler (the spec says {found.spec_parallelism})"
    lines += [
        f"state:    {r.state} ({timestamp(r.evaluated_at)}): {r.reason}",
        f"job:      {r.job_id or '-'} at parallelism {r.current_parallelism or '-'}{set_by}"
        + (f"; last rescale {timestamp(r.last_rescale_at)}" if r.last_rescale_at else ""),
    ]
    if r.measured_at is not None:
        lines.append(
            f"measured: {r.window_samples} samples from {timestamp(r.window_from)} to {timestamp(r.measured_at)}"
        )
    if r.vertices:
        headers = ["VERTEX", "PAR", "BUSY", "BACKPR", "IN/S", "LAG", "PARTS", "KEYGRP", "TRUE/S", "TARGET/S", "NEEDS"]
        rows = [
            [
                v.name[:40],
                str(v.parallelism or "-"),
                _share(v.busy),
                _share(v.backpressure),
                rate_text(v.input_rate),
                rate_text(v.lag),
                str(v.partitions or "-"),
                str(v.max_parallelism or "-"),
                rate_text(v.true_processing_rate),
                rate_text(v.target_rate),
                str(v.needed_parallelism or "-"),
            ]
            for v in r.vertices
        ]
        lines += ["", *_table(headers, rows, bold=False).splitlines()]
        lines += [f"  {v.name[:40]}: {v.why}" for v in r.vertices if v.why]
    if r.history:
        lines += ["", "decisions (newest last):"]
        for h in r.history:
            effect = {True: "effective", False: "INEFFECTIVE", None: "not judged yet"}[h.effective]
            rates = (
                f", true rate {rate_text(h.rate_before)} → {rate_text(h.rate_after)}/s"
                if h.rate_after is not None
                else ""
            )
            lines.append(
                f"  {timestamp(h.at)}  {h.from_parallelism} → {h.to_parallelism} {h.how} ({effect}{rates}): {h.reason}"
            )
    if r.blocked_above is not None:
        lines.append(f"no scale-up above {r.blocked_above}: a scale-up to it did not raise the throughput")
    return lines


@app.command()
@main_guard
def autoscaler(
    name: Annotated[str, typer.Argument(help="The FlinkDeployment.")],
    namespace: NamespaceOpt = "default",
    output: Annotated[str, typer.Option("--output", "-o", help="text (default) or json.")] = "text",
) -> None:
    """What the autoscaler decided for a job, and why. Turn it on with flinkConfiguration
    job.autoscaler.enabled: "true" (the reference operator's job.autoscaler.* keys and defaults; see the README).
    Each pass the controller reads every vertex's busy time, records in/out, back pressure, Kafka lag and
    partitions, and key groups; over a metrics window it works out each vertex's true processing rate (records/s
    at 100 % busy), the rate it must handle (plus a backlog to catch up) and the parallelism that needs at the
    target utilization, then rescales the job (in place with the adaptive scheduler), recommends only, or holds
    and says why (collecting, stabilizing, load low but not for long enough, metrics missing or stale). Shown:
    the state and reason, per vertex PAR(allelism), BUSY and BACKPR(essure) shares, IN/S, LAG, Kafka PARTS,
    KEYGRP (max parallelism), TRUE/S, TARGET/S and NEEDS with the reasoning, and the recent decisions with
    whether each raised the throughput. -o json: the same, with the settings."""
    from flinkops.service.autoscaling import as_dict, report

    if output not in ("text", "table", "json"):
        raise InvalidInput([Problem("--output", f"unknown format {output!r}", "use text or json")])
    found = report(target.current(), name, namespace)
    if output == "json":
        sys.stdout.write(json.dumps(as_dict(found), indent=2) + "\n")
        return
    sys.stdout.write("".join(line + "\n" for line in autoscaler_lines(found)))
