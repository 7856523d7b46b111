"""``flinkops describe NAME``: shows what ``flinkops.service.description.describe`` found, kubectl style.

Registered on ``cli.app.app`` when ``cli.main`` imports this module.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flinkops.cli import target
from flinkops.cli.app import NamespaceOpt, app
from flinkops.cli.listing import timestamp
from flinkops.cli.output import main_guard, out

if TYPE_CHECKING:
    from flinkops.api.models import FlinkDeployment
    from flinkops.service.description import Description

__all__: list[str] = []


@app.command()
@main_guard
def describe(name: str, namespace: NamespaceOpt = "default") -> None:
    """Status, conditions, events and where the job's state lives."""
    from flinkops.api.models import FlinkDeployment
    from flinkops.service.description import describe as describe_resource

    found = describe_resource(target.current(), name, namespace)
    resource = found.resource
    status = resource.status
    out.print(f"[bold]Name:[/bold]        {resource.metadata.name}")
    out.print(f"[bold]Namespace:[/bold]   {resource.metadata.namespace}")
    out.print(f"[bold]Kind:[/bold]        {resource.kind}")
    out.print(
        f"[bold]Generation:[/bold]  {resource.metadata.generation} "
        f"(observed {status.observed_generation if status else '-'})"
    )
    out.print(f"[bold]Lifecycle:[/bold]   {found.lifecycle}")
    if status is not None:
        js = status.job_status
        out.print(f"[bold]Job:[/bold]         {js.state or '-'}  id={js.job_id or '-'}  name={js.job_name or '-'}")
        if isinstance(resource, FlinkDeployment) and resource.status is not None:
            out.print(f"[bold]JobManager:[/bold]  {resource.status.job_manager_deployment_status.value}")
            for k, v in sorted(resource.status.cluster_info.items()):
                out.print(f"  {k}: {v}")
        recon = status.reconciliation_status
        out.print(
            f"[bold]Reconciliation:[/bold] {recon.state.value}; "
            f"last reconciled spec is {'stable' if found.spec_stable else 'not yet stable'}"
        )
        if status.error:
            out.print("[bold red]Error:[/bold red]\n  " + status.error.replace("\n", "\n  "))
        if status.conditions:
            out.print("[bold]Conditions:[/bold]")
            for c in status.conditions:
                out.print(f"  {c.type}={c.status} reason={c.reason} since {c.last_transition_time}")
    if found.local_files:
        out.print("[bold]Local files:[/bold]")
        for line in found.local_files:
            out.print(f"  {line}")
    if isinstance(resource, FlinkDeployment):
        _state(found, resource)
        record = resource.status.autoscaler if resource.status is not None else None
        if record is not None:
            from rich.markup import escape

            out.print(f"[bold]Autoscaler:[/bold]  {record.state}: {escape(record.reason)} (flinkops autoscaler NAME)")
            if record.history:
                last = record.history[-1]
                out.print(
                    f"  last rescale {timestamp(last.at)}: {last.from_parallelism} → {last.to_parallelism} ({last.how})"
                )
    if found.cost is not None and found.cost.runs:
        from flinkops.cli.cost import cost_lines

        out.print("[bold]Cost:[/bold] (requested, and used when measured; flinkops cost NAME -o json: every figure)")
        for line in cost_lines(found.cost):
            out.print("  " + line, markup=False)
    out.print("[bold]Events:[/bold]" + ("" if found.events else " <none>"))
    for event in found.events[-20:]:
        when = datetime.fromtimestamp(event.last_timestamp, UTC).strftime("%H:%M:%S")
        count = f" (x{event.count})" if event.count > 1 else ""
        out.print(f"  {when} {event.type:<7} {event.reason:<18} {event.message}{count}")


def _state(found: Description, resource: FlinkDeployment) -> None:
    """Where the state lives; locally also the data plane, the job's own state, its runs and its logs."""
    state = found.state
    assert state is not None
    out.print("[bold]State lives in:[/bold]")
    if found.data_plane is None:  # Kubernetes: nothing is defaulted, and the pods are kubectl's business
        name, ns = resource.metadata.name, resource.metadata.namespace
        out.print(f"  checkpoints: {state.checkpoints or 'not set (needed for last-state and savepoint upgrades)'}")
        out.print(f"  savepoints:  {state.savepoints or 'not set'}")
        out.print(f"[bold]Pods:[/bold]        kubectl get pods -n {ns} -l app={name}")
        out.print(f"[bold]Logs:[/bold]        kubectl logs -n {ns} deploy/{name}")
        return
    plane = found.data_plane
    out.print(f"  checkpoints: {state.checkpoints}")
    out.print(f"  savepoints:  {state.savepoints}")
    out.print(f"  HA metadata: {state.ha_metadata or 'none (no high availability configured)'}")
    for plugin in plane.plugins:
        out.print(f"  plugin:      {plugin.name} ({plugin.reason})")
    if plane.ambiguity:
        out.print(f"  [yellow]warning:[/yellow] {plane.ambiguity}")
    for connector in plane.connectors:
        out.print(f"  connector:   {connector}")
    if plane.s3_access is not None:
        out.print(f"  S3:          {plane.s3_access}")
    _job_state(resource)
    out.print(f"[bold]Logs:[/bold]        {found.log_dir}")
    if found.metrics:
        out.print(
            "[bold]Metrics:[/bold]     Flink's Prometheus reporters (locally bound to 127.0.0.1); every process's: "
            f"{found.discovery_file}"
        )
        for endpoint in found.metrics:
            dead = "" if endpoint.alive else "  [yellow](process not running: unknown)[/yellow]"
            out.print(f"  {endpoint.process:<14} {endpoint.url}  reporter {endpoint.reporter}{dead}")


def _job_state(resource: FlinkDeployment) -> None:
    """The job's own state: what the next start restores, the savepoints taken, and each run of the job."""
    status = resource.status
    if status is None:
        return
    js = status.job_status
    if js.upgrade_savepoint_path:
        out.print(f"  last restored / next restore from: {js.upgrade_savepoint_path}")
    info = js.savepoint_info
    if info is not None and info.last_savepoint is not None:
        sp = info.last_savepoint
        when, history = timestamp(sp.time_stamp), len(info.savepoint_history)
        out.print(f"  last savepoint: {sp.location} ({sp.trigger_type}, {when} UTC); {history} in history")
    if info is not None and info.trigger_id:
        out.print(f"  savepoint in progress: {info.trigger_type} trigger {info.trigger_id}")
    if status.deployment_history:
        out.print("[bold]Runs:[/bold] (generation, job, why, restored from, downtime, how it ended)")
        for run in status.deployment_history[-5:]:
            downtime = f"{run.downtime_ms / 1000:.1f}s" if run.downtime_ms is not None else "-"
            # A session cluster's runs are starts of its JobManager: no job, no state.
            job, restored = (run.job_id, run.restored_from or "empty state") if run.job_id else ("-", "-")
            ended = f"  {run.end_state}" if run.end_state else ""
            out.print(f"  gen {run.generation}  {job}  {run.reason:<18} {restored}  {downtime}{ended}")
