"""CLI commands about a job's state: savepoint, checkpoint, snapshots, restore, rollback, plan.

They call ``flinkops.service`` (``snapshots``, ``changes``, ``planning``), which changes a resource the way a user
editing its YAML would (a nonce, ``initialSavepointPath``, the last stable spec) so the controller stays the only
thing that acts; ``plan`` changes nothing at all. This module only parses and prints.

Registered on ``cli.app.app`` when ``cli.main`` imports this module.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flinkops.cli import target
from flinkops.cli.app import FileOpt, NamespaceOpt, TimeoutOpt, UsrlibOpt, WaitOpt, app
from flinkops.cli.output import main_guard, out
from flinkops.errors import InvalidInput, Problem

if TYPE_CHECKING:
    from flinkops.service.planning import Downtime, ResourcePlan
    from flinkops.service.snapshots import TriggerKind

__all__: list[str] = []


def size(n: int) -> str:
    """Bytes for people: ``512 B``, ``1.5 KiB``, ``3.2 GiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


# ------------------------------------------------------------------------------------------------ savepoint


@app.command()
@main_guard
def savepoint(
    name: str, namespace: NamespaceOpt = "default", wait: WaitOpt = True, timeout: TimeoutOpt = 300.0
) -> None:
    """Take a savepoint of the running job now (bumps spec.job.savepointTriggerNonce) and print its path.

    The format follows kubernetes.operator.savepoint.format.type (CANONICAL or NATIVE); the savepoint goes to
    the deployment's savepoint directory and into status.jobStatus.savepointInfo.
    """
    from flinkops.api.models import Savepoint

    taken = _take(name, namespace, "savepoint", wait, timeout)
    if isinstance(taken, Savepoint):
        out.print(f"savepoint completed: {taken.location}")


@app.command()
@main_guard
def checkpoint(
    name: str, namespace: NamespaceOpt = "default", wait: WaitOpt = True, timeout: TimeoutOpt = 300.0
) -> None:
    """Take a checkpoint of the running job now (bumps spec.job.checkpointTriggerNonce).

    kubernetes.operator.checkpoint.type chooses FULL (default) or INCREMENTAL.
    """
    if _take(name, namespace, "checkpoint", wait, timeout) is not None:
        out.print("checkpoint completed")


def _take(name: str, namespace: str, kind: TriggerKind, wait: bool, timeout: float) -> object | None:
    from flinkops.service.snapshots import trigger, wait_taken

    where = target.current()
    asked = trigger(where, name, namespace, kind)
    out.print(f"flinkdeployment/{name} {kind} requested ({kind}TriggerNonce={asked.nonce})")
    if not wait:
        return None
    with out.status(f"waiting for the {kind}…"):
        return wait_taken(where, asked, timeout)


# ------------------------------------------------------------------------------------------------ snapshots


@app.command()
@main_guard
def snapshots(
    name: str,
    namespace: NamespaceOpt = "default",
    output: Annotated[str, typer.Option("--output", "-o", help="table (default) or json.")] = "table",
) -> None:
    """Every retained checkpoint and savepoint of a deployment, read from storage (oldest first).

    Columns: completion time (UTC), kind, trigger (MANUAL/PERIODIC/UPGRADE for savepoints), size, the job
    that wrote it, the spec generation that job ran, and the path to give `flinkops restore --to`.
    """
    from flinkops.service.snapshots import catalogue, iso_time

    found = catalogue(target.current(), name, namespace)
    rows: list[dict[str, Any]] = []
    for entry in found.entries:
        s = entry.snapshot
        rows.append(
            {
                "time": iso_time(s.time_ms),
                "timeMs": s.time_ms,
                "kind": s.kind,
                "trigger": entry.trigger,
                "sizeBytes": s.size_bytes,
                "jobId": s.job_id or (f"{s.job_id_prefix}…" if s.job_id_prefix else None),
                "generation": entry.generation,
                "path": s.path,
            }
        )
    if output == "json":
        out.print_json(json.dumps({"name": name, "snapshots": rows}))
        return
    if output != "table":
        raise InvalidInput([Problem("--output", f"unknown output format {output!r}", hint="use table or json")])
    if not rows:
        out.print(f"no completed snapshots in {found.checkpoint_dir} or {found.savepoint_dir}")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("TIME", "KIND", "TRIGGER", "SIZE", "JOB", "GEN", "PATH"):
        table.add_column(column, overflow="fold" if column == "PATH" else "ellipsis", no_wrap=column != "PATH")
    for row in rows:
        table.add_row(
            str(row["time"]),
            str(row["kind"]),
            str(row["trigger"]),
            size(int(row["sizeBytes"])),
            str(row["jobId"] or "-"),
            str(row["generation"] or "-"),
            str(row["path"]),
        )
    out.print(table)


# ------------------------------------------------------------------------------------------------ restore/rollback


@app.command()
@main_guard
def restore(
    name: str,
    to: Annotated[str, typer.Option("--to", help="A time (ISO 8601, e.g. 2026-11-21T13:05:00Z) or a snapshot path.")],
    namespace: NamespaceOpt = "default",
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 300.0,
) -> None:
    """Redeploy the job from an earlier checkpoint or savepoint (point-in-time restore).

    With a TIME, the newest snapshot completed at or before it is used (see `flinkops snapshots NAME`). The
    job's current state is dropped: this sets spec.job.initialSavepointPath and bumps
    spec.job.savepointRedeployNonce, exactly as editing the YAML would. Nothing changes if the snapshot
    cannot be found (exit 2).
    """
    from flinkops.service.snapshots import iso_time
    from flinkops.service.snapshots import restore as restore_job
    from flinkops.service.waiting import wait_stable

    where = target.current()
    restoring = restore_job(where, name, namespace, to)
    chosen = restoring.snapshot
    out.print(
        f"flinkdeployment/{name} restoring from {chosen.kind} {chosen.path} (completed {iso_time(chosen.time_ms)})"
    )
    if wait:
        what = "the restored job to become stable"
        with out.status(f"waiting for {what}…"):
            wait_stable(where, name, namespace, restoring.generation, what, timeout)
        out.print(f"flinkdeployment/{name} restored")


@app.command()
@main_guard
def rollback(
    name: str, namespace: NamespaceOpt = "default", wait: WaitOpt = False, timeout: TimeoutOpt = 300.0
) -> None:
    """Go back to the last stable spec, keeping the job's state (ROLLING_BACK, then ROLLED_BACK).

    The stored spec becomes the last stable one again. If your YAML lives in git, revert it there too, or the
    next `apply` brings the new spec back.
    """
    from flinkops.service.changes import rollback as roll_back
    from flinkops.service.waiting import wait_stable

    where = target.current()
    rolling = roll_back(where, name, namespace)
    out.print(f"flinkdeployment/{name} rolling back to the last stable spec")
    if wait:
        with out.status("waiting for the rollback…"):
            wait_stable(where, name, namespace, rolling.generation, "the rollback", timeout)
        out.print(f"flinkdeployment/{name} rolled back")


# ------------------------------------------------------------------------------------------------ plan


@app.command()
@main_guard
def plan(filename: FileOpt, usrlib: UsrlibOpt = None) -> None:
    """Show what `apply -f FILE` would do, changing nothing: the diff class and the fields behind it, the
    upgrade path, the snapshot the job would restore from, the downtime past upgrades of this deployment took,
    and lint findings. Exit 2 on invalid input, like apply."""
    from flinkops.service.inputs import read_files
    from flinkops.service.planning import plan as plan_resources

    target.local_only("plan", "compare with `kubectl diff -f FILE`; the operator records every decision as events")
    where = target.current()
    report = plan_resources(where, read_files(where, filename, usrlib=usrlib))
    for planned in report.resources:
        _print_plan(planned)
    findings = [(r.key, f) for r in report.lint for f in r.findings]
    out.print("[bold]Lint:[/bold]" + ("" if findings else " no findings"))
    for key, f in findings:
        out.print(f"  {f.severity.upper():<7} {f.rule_id} {key.kind} {key.namespace}/{key.name} {f.path}: {f.message}")


def _print_plan(planned: ResourcePlan) -> None:
    head = f"[bold]{planned.key.kind.lower()}/{planned.key.name}[/bold]"
    change = planned.change
    if planned.create:
        out.print(f"{head}: create")
    elif change is None:
        out.print(f"{head}: {planned.summary}")
    elif change.any:
        out.print(f"{head}: {change.kind}" + (f" ({', '.join(change.fields)})" if change.fields else ""))
    else:
        out.print(f"{head}: no change")
    if not planned.steps:
        out.print(f"  nothing to do now: {planned.summary}")
    else:
        if planned.waiting_for is not None:
            out.print(f"  {planned.summary}")  # where the session cluster it waits for comes from
        out.print("  steps:")
        for step, description in enumerate(planned.steps, 1):
            out.print(f"    {step}. {description}")
    for note in planned.notes:
        out.print(f"  {note.type.lower()}: {note.message}")
    if planned.downtime is not None:
        out.print(f"  expected downtime: {_downtime(planned.downtime)}")


def _downtime(downtime: Downtime) -> str:
    if not downtime.deployed:
        return "unknown (never deployed)"
    if downtime.median_s is None or downtime.last_s is None:
        return "unknown (no measured upgrade of this deployment yet)"
    count = len(downtime.measured_ms)
    return (
        f"~{downtime.median_s:.1f} s (median of {count} measured restart(s) of this deployment; "
        f"last {downtime.last_s:.1f} s)"
    )
