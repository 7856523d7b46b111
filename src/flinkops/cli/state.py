"""CLI commands about a job's state: savepoint, checkpoint, snapshots, restore, rollback, plan.

They change a resource the way a user editing its YAML would (a nonce, ``initialSavepointPath``, the last stable
spec) so the controller stays the only thing that acts, and everything they do shows up in the resource's spec,
status and events. ``plan`` changes nothing at all.

Registered on the main ``app`` by ``flinkops.cli.main``.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from flinkops.api.flinkconf import checkpoint_dir, savepoint_dir
from flinkops.api.models import FlinkDeployment, FlinkDeploymentSpec, FlinkDeploymentStatus, LifecycleState
from flinkops.cli import target
from flinkops.cli.main import (
    FileOpt,
    NamespaceOpt,
    Resource,
    _ensure_controller,
    _home,
    _local,
    _read_files,
    _resolve,
    _store,
    app,
    checked_input,
    rendered_config,
    snapshot_store,
)
from flinkops.cli.output import main_guard, out
from flinkops.core.lint import lint as lint_resource
from flinkops.core.specs import load_spec
from flinkops.errors import FlinkopsError, InvalidInput, Problem
from flinkops.ports import ResourceKey, Snapshot, SnapshotStore
from flinkops.snapshots.local import LocalSnapshotStore, same_snapshot

__all__: list[str] = []

WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until the controller has done it.")]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds to wait before giving up.")]


def _deployment(name: str, namespace: str) -> FlinkDeployment:
    resource = _resolve(_store(), name, namespace, "FlinkDeployment")
    assert isinstance(resource, FlinkDeployment)
    return resource


def _with_job(resource: FlinkDeployment, **update: Any) -> FlinkDeployment:
    assert resource.spec.job is not None
    job = resource.spec.job.model_copy(update=update)
    return resource.model_copy(update={"spec": resource.spec.model_copy(update={"job": job})})


def _require_job(resource: FlinkDeployment, what: str) -> None:
    if resource.spec.job is None:
        raise InvalidInput([Problem("NAME", f"{resource.metadata.name} is a session cluster: it has no job to {what}")])


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


# ------------------------------------------------------------------------------------------------ savepoint


def _wait_for(name: str, namespace: str, done: Any, what: str, timeout: float) -> FlinkDeployment:
    store = _store()
    key = ResourceKey("FlinkDeployment", namespace, name)
    deadline = time.monotonic() + timeout
    with out.status(f"waiting for {what}…"):
        while True:
            current = store.get(key)
            if not isinstance(current, FlinkDeployment):
                raise FlinkopsError(f"{name} disappeared while waiting for {what}")
            verdict = done(current)
            if verdict:
                return current
            if time.monotonic() > deadline:
                raise FlinkopsError(
                    f"timed out after {timeout:.0f}s waiting for {what}; see `flinkops describe {name}`"
                )
            time.sleep(0.25)


def _failed_since(name: str, namespace: str, reason: str, since: float) -> str | None:
    events = _store().events(ResourceKey("FlinkDeployment", namespace, name))
    for event in reversed(events):
        if event.reason == reason and event.last_timestamp >= since:
            return event.message
    return None


def _take_snapshot(name: str, namespace: str, kind: str, wait: bool, timeout: float) -> Any:
    """Bump the savepoint or checkpoint nonce, then (with ``wait``) wait for the snapshot it asked for.
    Returns the completed ``Savepoint``/``Checkpoint`` record, or None without ``wait``."""
    resource = _deployment(name, namespace)
    _require_job(resource, kind)
    assert resource.spec.job is not None
    field = f"{kind}_trigger_nonce"
    nonce = (getattr(resource.spec.job, field) or 0) + 1
    started = time.time() - 1
    _store().apply(_with_job(resource, **{field: nonce}))
    _ensure_controller()
    out.print(f"flinkdeployment/{name} {kind} requested ({kind}TriggerNonce={nonce})")
    if not wait:
        return None

    def taken(current: FlinkDeployment) -> Any:
        job = current.status.job_status if current.status else None
        info = getattr(job, f"{kind}_info", None) if job else None
        last = getattr(info, f"last_{kind}", None) if info else None
        return last if last is not None and last.trigger_nonce == nonce else None

    def done(current: FlinkDeployment) -> bool:
        if taken(current) is not None:
            return True
        failure = _failed_since(name, namespace, f"{kind.title()}Error", started)
        if failure:
            raise FlinkopsError(f"the {kind} was not taken: {failure}")
        return False

    return taken(_wait_for(name, namespace, done, f"the {kind}", timeout))


@app.command()
@main_guard
def savepoint(
    name: str, namespace: NamespaceOpt = "default", wait: WaitOpt = True, timeout: TimeoutOpt = 300.0
) -> None:
    """Take a savepoint of the running job now (bumps spec.job.savepointTriggerNonce) and print its path.

    The format follows kubernetes.operator.savepoint.format.type (CANONICAL or NATIVE); the savepoint goes to
    the deployment's savepoint directory and into status.jobStatus.savepointInfo.
    """
    taken = _take_snapshot(name, namespace, "savepoint", wait, timeout)
    if taken is not None:
        out.print(f"savepoint completed: {taken.location}")


@app.command()
@main_guard
def checkpoint(
    name: str, namespace: NamespaceOpt = "default", wait: WaitOpt = True, timeout: TimeoutOpt = 300.0
) -> None:
    """Take a checkpoint of the running job now (bumps spec.job.checkpointTriggerNonce).

    kubernetes.operator.checkpoint.type chooses FULL (default) or INCREMENTAL.
    """
    if _take_snapshot(name, namespace, "checkpoint", wait, timeout) is not None:
        out.print("checkpoint completed")


# ------------------------------------------------------------------------------------------------ snapshots


def _job_generations(status: FlinkDeploymentStatus | None) -> dict[str, int]:
    if status is None:
        return {}
    return {r.job_id: r.generation for r in status.deployment_history if r.job_id}


def _trigger_of(snapshot: Snapshot, status: FlinkDeploymentStatus | None) -> str:
    if snapshot.kind == "checkpoint":
        return "checkpoint"
    info = status.job_status.savepoint_info if status else None
    for sp in info.savepoint_history if info else []:
        if same_snapshot(sp.location, snapshot.path):
            return sp.trigger_type
    return "UNKNOWN"


def list_snapshots(resource: FlinkDeployment) -> list[Snapshot]:
    config = rendered_config(resource)
    generations = _job_generations(resource.status)
    job_ids = set(generations)
    if resource.status and resource.status.job_status.job_id:
        job_ids.add(resource.status.job_status.job_id)
    return snapshot_store(resource, config).list(checkpoint_dir(config), savepoint_dir(config), sorted(job_ids))


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
    resource = _deployment(name, namespace)
    found = list_snapshots(resource)
    generations = _job_generations(resource.status)
    rows: list[dict[str, Any]] = []
    for s in found:
        generation = generations.get(s.job_id or "")
        rows.append(
            {
                "time": _iso(s.time_ms),
                "timeMs": s.time_ms,
                "kind": s.kind,
                "trigger": _trigger_of(s, resource.status),
                "sizeBytes": s.size_bytes,
                "jobId": s.job_id or (f"{s.job_id_prefix}…" if s.job_id_prefix else None),
                "generation": generation,
                "path": s.path,
            }
        )
    if output == "json":
        out.print_json(json.dumps({"name": name, "snapshots": rows}))
        return
    if output != "table":
        raise InvalidInput([Problem("--output", f"unknown output format {output!r}", hint="use table or json")])
    if not rows:
        config = rendered_config(resource)
        out.print(f"no completed snapshots in {checkpoint_dir(config)} or {savepoint_dir(config)}")
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
            _size(int(row["sizeBytes"])),
            str(row["jobId"] or "-"),
            str(row["generation"] or "-"),
            str(row["path"]),
        )
    out.print(table)


# ------------------------------------------------------------------------------------------------ restore


def parse_time(text: str) -> int:
    """An ISO 8601 time (``2026-11-21T13:05:00Z``, offsets allowed, naive means UTC) or epoch milliseconds."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(
            [Problem("--to", f"{text!r} is neither a time nor a snapshot path", hint="e.g. 2026-11-21T13:05:00Z")]
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", "file:", "s3:", "s3a:", "s3p:", "hdfs:", "gs:", "abfs:")) or "/" in text


def choose_restore_point(found: list[Snapshot], to: str, store: SnapshotStore | None = None) -> Snapshot:
    """The snapshot ``--to`` names: the one at PATH, or the newest at or before TIME."""
    if _looks_like_path(to):
        match = next((s for s in found if same_snapshot(s.path, to)), None)
        if match is not None:
            return match
        snapshot = (store or LocalSnapshotStore()).inspect(to)
        if snapshot is None:
            raise InvalidInput([Problem("--to", f"{to} is not a completed checkpoint or savepoint (no _metadata)")])
        return snapshot
    moment = parse_time(to)
    before = [s for s in found if s.time_ms <= moment]
    if not before:
        oldest = f"the oldest retained snapshot is from {_iso(found[0].time_ms)}" if found else "none is retained"
        raise InvalidInput([Problem("--to", f"no snapshot at or before {_iso(moment)}: {oldest}")])
    return max(before, key=lambda s: (s.time_ms, s.kind == "savepoint"))


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
    resource = _deployment(name, namespace)
    _require_job(resource, "restore")
    assert resource.spec.job is not None
    chosen = choose_restore_point(list_snapshots(resource), to, snapshot_store(resource))
    nonce = (resource.spec.job.savepoint_redeploy_nonce or 0) + 1
    updated = _with_job(resource, initial_savepoint_path=chosen.path, savepoint_redeploy_nonce=nonce)
    _store().apply(updated)
    _ensure_controller()
    out.print(f"flinkdeployment/{name} restoring from {chosen.kind} {chosen.path} (completed {_iso(chosen.time_ms)})")
    if wait:
        generation = (updated.metadata.generation or 0) + 1
        _wait_for(name, namespace, _settled_at(generation), "the restored job to become stable", timeout)
        out.print(f"flinkdeployment/{name} restored")


def _settled_at(generation: int) -> Any:
    def done(current: FlinkDeployment) -> bool:
        status = current.status
        if status is None or (status.observed_generation or 0) < generation:
            return False
        if status.lifecycle_state == LifecycleState.FAILED:
            raise FlinkopsError(f"{current.metadata.name} failed: {(status.error or '').splitlines()[0]}")
        if status.lifecycle_state == LifecycleState.ROLLED_BACK:
            return status.job_status.state in ("RUNNING", "FINISHED")  # rolled back and running again
        return status.lifecycle_state == LifecycleState.STABLE

    return done


# ------------------------------------------------------------------------------------------------ rollback


@app.command()
@main_guard
def rollback(
    name: str, namespace: NamespaceOpt = "default", wait: WaitOpt = False, timeout: TimeoutOpt = 300.0
) -> None:
    """Go back to the last stable spec, keeping the job's state (ROLLING_BACK, then ROLLED_BACK).

    The stored spec becomes the last stable one again. If your YAML lives in git, revert it there too, or the
    next `apply` brings the new spec back.
    """
    resource = _deployment(name, namespace)
    recon = resource.status.reconciliation_status if resource.status else None
    stable = load_spec(recon.last_stable_spec, FlinkDeploymentSpec) if recon else None
    if recon is None or stable is None:
        raise FlinkopsError(f"{name} has no stable spec to roll back to yet")
    if recon.last_stable_spec == recon.last_reconciled_spec and resource.spec == stable:
        raise FlinkopsError(f"{name} already runs its last stable spec: nothing to roll back")
    updated = resource.model_copy(update={"spec": stable})
    stored = _store().apply(updated)
    _ensure_controller()
    out.print(f"flinkdeployment/{name} rolling back to the last stable spec")
    if wait:
        _wait_for(name, namespace, _settled_at(stored.metadata.generation or 0), "the rollback", timeout)
        out.print(f"flinkdeployment/{name} rolled back")


# ------------------------------------------------------------------------------------------------ plan


@app.command()
@main_guard
def plan(filename: FileOpt) -> None:
    """Show what `apply -f FILE` would do, changing nothing: the diff class and the fields behind it, the
    upgrade path, the snapshot the job would restore from, the downtime past upgrades of this deployment took,
    and lint findings. Exit 2 on invalid input, like apply."""
    target.local_only("plan", "compare with `kubectl diff -f FILE`; the operator records every decision as events")
    resources = _read_files(filename)
    existing = checked_input(resources, _store())
    controller, _ = _local().build_controller(_home())
    for resource in resources:
        _plan_one(
            controller, resource, existing.get((resource.kind, resource.metadata.namespace, resource.metadata.name))
        )
    findings = [(r, f) for r in resources for f in lint_resource(r)]
    out.print("[bold]Lint:[/bold]" + ("" if findings else " no findings"))
    for r, f in findings:
        out.print(f"  {f.severity.upper():<7} {f.rule_id} {r.kind}/{r.metadata.name} {f.path}: {f.message}")


def _plan_one(controller: Any, resource: Resource, old: Resource | None) -> None:
    kind = resource.kind.lower()
    name = resource.metadata.name
    if old is None:
        out.print(f"[bold]{kind}/{name}[/bold]: create")
    candidate = resource.model_copy(
        update={
            "status": old.status if old is not None else None,
            "metadata": resource.metadata.model_copy(
                update={"generation": ((old.metadata.generation or 0) + 1) if old is not None else 1}
            ),
        }
    )
    preview = controller.preview(candidate)
    if old is not None:
        change = preview.change
        if change is None:
            out.print(f"[bold]{kind}/{name}[/bold]: {preview.summary}")
        else:
            fields = change.paths(at_least=change.kind) or change.paths()
            what = f"{change.kind.name}" + (f" ({', '.join(fields)})" if fields else "")
            out.print(
                f"[bold]{kind}/{name}[/bold]: {what}" if change.fields else f"[bold]{kind}/{name}[/bold]: no change"
            )
    if not preview.actions:
        out.print(f"  nothing to do now: {preview.summary}")
    else:
        out.print("  steps:")
        for step, action in enumerate(preview.actions, 1):
            out.print(f"    {step}. {action.describe()}")
    for event in preview.events:
        if event.reason not in ("SpecChanged",):
            out.print(f"  {event.type.lower()}: {event.message}")
    if isinstance(resource, FlinkDeployment) and isinstance(old, FlinkDeployment):
        out.print(f"  expected downtime: {_expected_downtime(old.status)}")


def _expected_downtime(status: FlinkDeploymentStatus | None) -> str:
    if status is None:
        return "unknown (never deployed)"
    # A first deployment has no downtime (nothing stopped before it), so only restarts are measured.
    measured = [r.downtime_ms for r in status.deployment_history if r.downtime_ms is not None]
    if not measured:
        return "unknown (no measured upgrade of this deployment yet)"
    median = statistics.median(measured) / 1000
    last = measured[-1] / 1000
    return f"~{median:.1f} s (median of {len(measured)} measured restart(s) of this deployment; last {last:.1f} s)"
