"""A job's snapshots: take a savepoint or checkpoint now, list what storage holds, restore from one of them.

Taking a snapshot bumps ``spec.job.savepointTriggerNonce`` / ``checkpointTriggerNonce``; restoring sets
``spec.job.initialSavepointPath`` and bumps ``savepointRedeployNonce``, exactly as editing the YAML would, so the
controller stays the only thing that acts. The catalogue is read from checkpoint/savepoint storage itself (local
paths or S3), with the trigger and the spec generation each snapshot came from where the status knows them.

Called by: the CLI (``savepoint``, ``checkpoint``, ``snapshots``, ``restore``), and Python callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from flinkops.api.flinkconf import checkpoint_dir, savepoint_dir
from flinkops.api.models import Checkpoint, FlinkDeployment, FlinkDeploymentStatus, Savepoint
from flinkops.api.snapshot_paths import same_snapshot
from flinkops.errors import FlinkopsError, InvalidInput, Problem
from flinkops.ports import ResourceKey, Snapshot, SnapshotStore
from flinkops.service.config import rendered_config, snapshot_store
from flinkops.service.resources import deployment, require_job, with_job
from flinkops.service.target import Target
from flinkops.service.waiting import wait_for_deployment, wait_stable

__all__ = [
    "Catalogue",
    "CatalogueEntry",
    "Restore",
    "Trigger",
    "TriggerKind",
    "catalogue",
    "checkpoint",
    "choose_restore_point",
    "iso_time",
    "parse_time",
    "restore",
    "savepoint",
    "trigger",
    "wait_taken",
]

TriggerKind = Literal["savepoint", "checkpoint"]


def iso_time(ms: int) -> str:
    """Epoch milliseconds as ``2026-11-21T13:05:00Z``."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------------------ take one now


@dataclass(frozen=True)
class Trigger:
    """A snapshot asked for: the nonce it was asked with, and since when (epoch seconds) failures count."""

    key: ResourceKey
    kind: TriggerKind
    nonce: int
    since: float


def trigger(target: Target, name: str, namespace: str, kind: TriggerKind) -> Trigger:
    """Ask the controller for a savepoint or checkpoint of the running job now."""
    resource = deployment(target, name, namespace)
    require_job(resource, kind)
    assert resource.spec.job is not None
    field = f"{kind}_trigger_nonce"
    nonce = (getattr(resource.spec.job, field) or 0) + 1
    since = target.clock.now() - 1
    target.store().apply(with_job(resource, **{field: nonce}))
    target.ensure_controller()
    return Trigger(ResourceKey.of(resource), kind, nonce, since)


def wait_taken(target: Target, asked: Trigger, timeout: float) -> Savepoint | Checkpoint:
    """The completed snapshot ``asked`` for (as recorded in the status); ``FlinkopsError`` when the controller
    recorded that it could not be taken."""
    name, namespace = asked.key.name, asked.key.namespace
    store = target.store()

    def taken(current: FlinkDeployment) -> Savepoint | Checkpoint | None:
        job = current.status.job_status if current.status else None
        if job is None:
            return None
        if asked.kind == "savepoint":
            last: Savepoint | Checkpoint | None = job.savepoint_info.last_savepoint if job.savepoint_info else None
        else:
            last = job.checkpoint_info.last_checkpoint if job.checkpoint_info else None
        return last if last is not None and last.trigger_nonce == asked.nonce else None

    def done(current: FlinkDeployment) -> bool:
        if taken(current) is not None:
            return True
        reason = f"{asked.kind.title()}Error"
        for event in reversed(store.events(asked.key)):
            if event.reason == reason and event.last_timestamp >= asked.since:
                raise FlinkopsError(f"the {asked.kind} was not taken: {event.message}")
        return False

    found = taken(wait_for_deployment(target, name, namespace, done, f"the {asked.kind}", timeout))
    assert found is not None
    return found


def savepoint(
    target: Target, name: str, namespace: str = "default", *, wait: bool = True, timeout: float = 300.0
) -> Savepoint | None:
    """Take a savepoint of the running job now; with ``wait`` the completed savepoint (its ``location``)."""
    taken = _take(target, name, namespace, "savepoint", wait, timeout)
    assert taken is None or isinstance(taken, Savepoint)
    return taken


def checkpoint(
    target: Target, name: str, namespace: str = "default", *, wait: bool = True, timeout: float = 300.0
) -> Checkpoint | None:
    """Take a checkpoint of the running job now; with ``wait`` the completed checkpoint's record."""
    taken = _take(target, name, namespace, "checkpoint", wait, timeout)
    assert taken is None or isinstance(taken, Checkpoint)
    return taken


def _take(
    target: Target, name: str, namespace: str, kind: TriggerKind, wait: bool, timeout: float
) -> Savepoint | Checkpoint | None:
    asked = trigger(target, name, namespace, kind)
    return wait_taken(target, asked, timeout) if wait else None


# ------------------------------------------------------------------------------------------------ catalogue


@dataclass(frozen=True)
class CatalogueEntry:
    snapshot: Snapshot
    #: checkpoint, or the savepoint's trigger type (MANUAL, PERIODIC, UPGRADE; UNKNOWN when the status forgot it)
    trigger: str
    #: the spec generation the job that wrote it ran, when the status knows that job
    generation: int | None


@dataclass(frozen=True)
class Catalogue:
    key: ResourceKey
    checkpoint_dir: str | None
    savepoint_dir: str | None
    entries: tuple[CatalogueEntry, ...]  # oldest first


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


def _list(target: Target, resource: FlinkDeployment) -> tuple[dict[str, str], list[Snapshot]]:
    config = rendered_config(target, resource)
    job_ids = set(_job_generations(resource.status))
    if resource.status and resource.status.job_status.job_id:
        job_ids.add(resource.status.job_status.job_id)
    found = snapshot_store(target, resource, config).list(
        checkpoint_dir(config), savepoint_dir(config), sorted(job_ids)
    )
    return config, found


def catalogue(target: Target, name: str, namespace: str = "default") -> Catalogue:
    """Every retained checkpoint and savepoint of the deployment ``name``, read from storage."""
    resource = deployment(target, name, namespace)
    config, found = _list(target, resource)
    generations = _job_generations(resource.status)
    entries = tuple(CatalogueEntry(s, _trigger_of(s, resource.status), generations.get(s.job_id or "")) for s in found)
    return Catalogue(ResourceKey.of(resource), checkpoint_dir(config), savepoint_dir(config), entries)


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


def choose_restore_point(found: list[Snapshot], to: str, store: SnapshotStore) -> Snapshot:
    """The snapshot ``to`` names: the one at a PATH, or the newest completed at or before a TIME (a savepoint
    over a checkpoint of the same moment)."""
    if _looks_like_path(to):
        match = next((s for s in found if same_snapshot(s.path, to)), None)
        if match is not None:
            return match
        snapshot = store.inspect(to)
        if snapshot is None:
            raise InvalidInput([Problem("--to", f"{to} is not a completed checkpoint or savepoint (no _metadata)")])
        return snapshot
    moment = parse_time(to)
    before = [s for s in found if s.time_ms <= moment]
    if not before:
        oldest = f"the oldest retained snapshot is from {iso_time(found[0].time_ms)}" if found else "none is retained"
        raise InvalidInput([Problem("--to", f"no snapshot at or before {iso_time(moment)}: {oldest}")])
    return max(before, key=lambda s: (s.time_ms, s.kind == "savepoint"))


@dataclass(frozen=True)
class Restore:
    key: ResourceKey
    snapshot: Snapshot
    generation: int  # the generation that restores it


def restore(
    target: Target, name: str, namespace: str, to: str, *, wait: bool = False, timeout: float = 300.0
) -> Restore:
    """Redeploy the job from the snapshot ``to`` names (a time or a path); the job's current state is dropped.
    Nothing changes when no such snapshot exists (``InvalidInput``). With ``wait``, until the job runs again."""
    resource = deployment(target, name, namespace)
    require_job(resource, "restore")
    assert resource.spec.job is not None
    _, found = _list(target, resource)
    chosen = choose_restore_point(found, to, snapshot_store(target, resource))
    nonce = (resource.spec.job.savepoint_redeploy_nonce or 0) + 1
    stored = target.store().apply(
        with_job(resource, initial_savepoint_path=chosen.path, savepoint_redeploy_nonce=nonce)
    )
    target.ensure_controller()
    result = Restore(ResourceKey.of(stored), chosen, stored.metadata.generation or 0)
    if wait:
        wait_stable(target, name, namespace, result.generation, "the restored job to become stable", timeout)
    return result
