"""Savepoints and checkpoints of a running job: manual (nonce) and periodic triggers, following a trigger to its
end, and the retention of the savepoint history.

Savepoints and checkpoints are asked for, triggered, followed and recorded the same way, so one mechanism
serves both; a ``SnapshotKind`` (``SAVEPOINT``, ``CHECKPOINT``) says which status fields, spec nonce,
configuration keys, fresh trigger id and action each kind uses. A trigger id is written to status before the
action that sends it (the write-ahead log), so a resend after a crash carries the same id and Flink deduplicates
it. Upgrade savepoints (stop with a savepoint) use the same status helpers but are followed by ``deployment``,
since the upgrade waits for them.

Called by: ``steady`` (every pass over a running job), ``deployment`` (nonce requests and upgrade savepoints),
``rollback`` and ``session``. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flinkops.api.models import (
    Checkpoint,
    CheckpointInfo,
    FlinkDeploymentSpec,
    ReconciliationState,
    Savepoint,
    SavepointInfo,
)
from flinkops.api.retention_settings import retention_limits
from flinkops.api.schedule import parse_schedule
from flinkops.core.planner.types import (
    FAST,
    S_,
    TERMINAL_JOB_STATES,
    Action,
    Builder,
    CheckpointKind,
    Context,
    DisposeSnapshots,
    Observation,
    Plan,
    SavepointFormatType,
    Status,
    TriggerCheckpoint,
    TriggerObservation,
    TriggerSavepoint,
    job_running,
    rest,
    set_job,
)
from flinkops.core.retention import plan_retention
from flinkops.core.specs import load_spec

__all__ = [
    "CHECKPOINT",
    "SAVEPOINT",
    "SAVEPOINT_POLL",
    "SAVEPOINT_RETRY",
    "Requests",
    "SnapshotKind",
    "clear_trigger",
    "completed",
    "follow_and_trigger",
    "follow_upgrade_savepoint",
    "retention",
    "savepoint_format",
    "snapshot_info",
    "snapshot_requests",
    "trigger_pending",
    "with_trigger",
]

_SAVEPOINT_FORMAT = "kubernetes.operator.savepoint.format.type"
_CHECKPOINT_TYPE = "kubernetes.operator.checkpoint.type"
_NO_TRIGGER: dict[str, object] = {"trigger_id": None, "trigger_timestamp": None, "trigger_type": None}

SnapshotInfo = SavepointInfo | CheckpointInfo


def savepoint_format(config: Mapping[str, str]) -> SavepointFormatType:
    return "NATIVE" if config.get(_SAVEPOINT_FORMAT, "").strip().upper() == "NATIVE" else "CANONICAL"


def _checkpoint_type(config: Mapping[str, str]) -> CheckpointKind:
    return "INCREMENTAL" if config.get(_CHECKPOINT_TYPE, "").strip().upper() == "INCREMENTAL" else "FULL"


@dataclass(frozen=True)
class SnapshotKind:
    """Which fields, keys and action one kind of snapshot uses. The format strings take ``{job}``, ``{where}``
    (the snapshot's location, or '') and ``{nonce}``."""

    label: str  # "Savepoint" | "Checkpoint": event reasons ({label}Triggered/Completed/Error) and messages
    info_field: str  # the JobStatus field holding its info
    info_type: type[SavepointInfo] | type[CheckpointInfo]
    record_type: type[Savepoint] | type[Checkpoint]
    last_field: str  # the info field holding the last completed one
    history_field: str | None  # savepoints: known by their location and kept in a history (None: neither)
    periodic_field: str  # the info field holding when the last periodic trigger was sent
    nonce_field: str  # the JobSpec field whose change asks for one now
    periodic_key: str  # the configuration key of the periodic schedule
    default_format: str  # recorded when the trigger did not record one
    format_of: Callable[[Mapping[str, str]], str]
    trigger: Callable[[str, str, str, Mapping[str, str]], Action]  # (job id, REST url, trigger id, config)
    fresh_id: Callable[[Context], str]
    observed: Callable[[Observation], TriggerObservation | None]  # the pending trigger as Flink reports it
    stored: Callable[[Observation], str | None]  # a completed one found in storage although its result was lost
    completed_text: str
    refused_text: str


def _trigger_savepoint(job_id: str, rest_url: str, trigger_id: str, config: Mapping[str, str]) -> Action:
    return TriggerSavepoint(
        job_id=job_id, rest_url=rest_url, trigger_id=trigger_id, stop=False, format_type=savepoint_format(config)
    )


def _trigger_checkpoint(job_id: str, rest_url: str, trigger_id: str, config: Mapping[str, str]) -> Action:
    return TriggerCheckpoint(
        job_id=job_id, rest_url=rest_url, trigger_id=trigger_id, checkpoint_type=_checkpoint_type(config)
    )


SAVEPOINT = SnapshotKind(
    label="Savepoint",
    info_field="savepoint_info",
    info_type=SavepointInfo,
    record_type=Savepoint,
    last_field="last_savepoint",
    history_field="savepoint_history",
    periodic_field="last_periodic_savepoint_timestamp",
    nonce_field="savepoint_trigger_nonce",
    periodic_key="kubernetes.operator.periodic.savepoint.interval",
    default_format="CANONICAL",
    format_of=savepoint_format,
    trigger=_trigger_savepoint,
    fresh_id=lambda ctx: ctx.fresh_trigger_id,
    observed=lambda obs: obs.savepoint_trigger,
    stored=lambda obs: obs.stored_savepoint,
    completed_text="Savepoint of job {job}: {where}",
    refused_text="Savepoint nonce {nonce}: the job is not running, no savepoint taken",
)

CHECKPOINT = SnapshotKind(
    label="Checkpoint",
    info_field="checkpoint_info",
    info_type=CheckpointInfo,
    record_type=Checkpoint,
    last_field="last_checkpoint",
    history_field=None,
    periodic_field="last_periodic_checkpoint_timestamp",
    nonce_field="checkpoint_trigger_nonce",
    periodic_key="kubernetes.operator.periodic.checkpoint.interval",
    default_format="FULL",
    format_of=_checkpoint_type,
    trigger=_trigger_checkpoint,
    fresh_id=lambda ctx: ctx.fresh_checkpoint_trigger_id,
    observed=lambda obs: obs.checkpoint_trigger,
    stored=lambda obs: None,
    completed_text="Checkpoint {where} of job {job} completed",
    refused_text="Checkpoint nonce {nonce}: the job is not running, none taken",
)

_KINDS = (SAVEPOINT, CHECKPOINT)  # savepoints first: the order of events and actions in a plan


# ----------------------------------------------------------------------------------------- recorded state


def snapshot_info(status: Status, kind: SnapshotKind) -> SnapshotInfo:
    info: SnapshotInfo | None = getattr(status.job_status, kind.info_field)
    return info if info is not None else kind.info_type()


def trigger_pending(status: Status) -> bool:
    return any(snapshot_info(status, kind).trigger_id for kind in _KINDS)


def with_trigger(status: S_, kind: SnapshotKind, trigger_id: str, now_ms: int, trigger_type: str, fmt: str) -> S_:
    """Record a trigger about to be sent (a periodic one also restarts its schedule)."""
    update: dict[str, object] = {
        "trigger_id": trigger_id,
        "trigger_timestamp": now_ms,
        "trigger_type": trigger_type,
        "format_type": fmt,
    }
    if trigger_type == "PERIODIC":
        update[kind.periodic_field] = now_ms
    return set_job(status, **{kind.info_field: snapshot_info(status, kind).model_copy(update=update)})


def clear_trigger(status: S_, kind: SnapshotKind) -> S_:
    info: SnapshotInfo | None = getattr(status.job_status, kind.info_field)
    if info is None or not info.trigger_id:
        return status
    return set_job(status, **{kind.info_field: info.model_copy(update=_NO_TRIGGER)})


def completed(status: S_, kind: SnapshotKind, location: str | None, now_ms: int) -> S_:
    """Record a finished snapshot as the last one (a savepoint also in the history) and clear its trigger."""
    info = snapshot_info(status, kind)
    nonce = _recorded_nonce(status, kind.nonce_field) if info.trigger_type == "MANUAL" else None
    fields: dict[str, object] = {
        "time_stamp": now_ms,
        "trigger_type": info.trigger_type or "UNKNOWN",
        "format_type": info.format_type or kind.default_format,
        "trigger_nonce": nonce,
    }
    update: dict[str, object] = dict(_NO_TRIGGER)
    if kind.history_field is None:
        update[kind.last_field] = kind.record_type.model_validate(fields)
    else:
        record = kind.record_type.model_validate({**fields, "location": location})
        history = [s for s in getattr(info, kind.history_field) if s.location != location]
        update.update({kind.last_field: record, kind.history_field: [*history, record]})
    return set_job(status, **{kind.info_field: info.model_copy(update=update)})


def _recorded_nonce(status: Status, field: str) -> int | None:
    """The snapshot nonce of the recorded spec: the manual request a completed trigger answered."""
    recorded = load_spec(status.reconciliation_status.last_reconciled_spec, FlinkDeploymentSpec)
    nonce = getattr(recorded.job, field) if recorded is not None and recorded.job is not None else None
    return nonce if isinstance(nonce, int) else None


# ----------------------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Requests:
    """The snapshot kinds whose nonce changed in this generation: served now, or deferred to a later pass."""

    served: frozenset[SnapshotKind] = frozenset()
    deferred: frozenset[SnapshotKind] = frozenset()

    def recorded(self, spec: FlinkDeploymentSpec, last: FlinkDeploymentSpec) -> FlinkDeploymentSpec:
        """The spec to record: a request that must wait keeps the old nonce, so the next pass sees it again."""
        if spec.job is None or last.job is None or not self.deferred:
            return spec
        update = {kind.nonce_field: getattr(last.job, kind.nonce_field) for kind in _KINDS if kind in self.deferred}
        return spec.model_copy(update={"job": spec.job.model_copy(update=update)})


def snapshot_requests(b: Builder, last: FlinkDeploymentSpec, spec: FlinkDeploymentSpec, obs: Observation) -> Requests:
    assert spec.job is not None
    alive = obs.rest_ready and obs.job is not None and obs.job.state not in TERMINAL_JOB_STATES
    served: set[SnapshotKind] = set()
    deferred: set[SnapshotKind] = set()
    for kind in _KINDS:
        nonce = getattr(spec.job, kind.nonce_field)
        if nonce is None or nonce == (getattr(last.job, kind.nonce_field) if last.job else None):
            continue
        if job_running(obs) and not snapshot_info(b.status, kind).trigger_id:
            served.add(kind)
        elif alive:
            deferred.add(kind)  # a snapshot is in flight or tasks are starting: next pass
        else:
            b.event("Warning", f"{kind.label}Error", kind.refused_text.format(nonce=nonce))
    return Requests(served=frozenset(served), deferred=frozenset(deferred))


# ----------------------------------------------------------------------------------------- triggers


def follow_and_trigger(
    b: Builder, config: Mapping[str, str], obs: Observation, ctx: Context, requests: Requests
) -> None:
    """Follow pending savepoint/checkpoint triggers and start the requested and periodic ones."""
    for kind in _KINDS:
        _follow(b, kind, obs, ctx)
    if not job_running(obs) or obs.job is None:
        return
    recon_state = b.status.reconciliation_status.state
    if recon_state not in (ReconciliationState.DEPLOYED, ReconciliationState.ROLLED_BACK):
        return
    for kind in _KINDS:
        _start(b, kind, config, obs, ctx, requested=kind in requests.served)


def _start(
    b: Builder, kind: SnapshotKind, config: Mapping[str, str], obs: Observation, ctx: Context, *, requested: bool
) -> None:
    info = snapshot_info(b.status, kind)
    if info.trigger_id or obs.job is None:
        return
    trigger_type: str | None = None
    if requested:
        trigger_type = "MANUAL"
    else:
        due_at = _due_at(config.get(kind.periodic_key), getattr(info, kind.periodic_field), obs, ctx)
        if due_at is not None and due_at <= ctx.now_ms:
            trigger_type = "PERIODIC"
        elif due_at is not None:
            b.wake_at(due_at)
    if trigger_type is None:
        return
    job_id = obs.job.job_id
    trigger_id = kind.fresh_id(ctx)
    b.status = with_trigger(b.status, kind, trigger_id, ctx.now_ms, trigger_type, kind.format_of(config))
    b.actions.append(kind.trigger(job_id, rest(obs), trigger_id, config))
    b.intent = b.status
    b.event(
        "Normal", f"{kind.label}Triggered", f"{trigger_type.title()} {kind.label.lower()} of job {job_id} triggered"
    )


def _due_at(value: str | None, last_ms: int | None, obs: Observation, ctx: Context) -> int | None:
    """When the periodic snapshot configured by ``value`` is (or was) due, or None when none is."""
    if not value or not value.strip() or obs.job is None:
        return None
    try:
        schedule = parse_schedule(value)
    except ValueError:
        return None  # validation reports the bad value on the resource
    since = obs.job.running_since if obs.job.running_since is not None else ctx.now_ms
    return schedule.due_at(last_ms=last_ms, since_ms=since)


def _follow(b: Builder, kind: SnapshotKind, obs: Observation, ctx: Context) -> None:
    info = snapshot_info(b.status, kind)
    if not info.trigger_id or info.trigger_type == "UPGRADE":
        return  # nothing pending, or an upgrade savepoint, which the upgrade waiting for it follows
    trigger = kind.observed(obs)
    job_id = b.status.job_status.job_id
    located = kind.history_field is None or (trigger is not None and trigger.location)
    if trigger is not None and trigger.state == "COMPLETED" and located:
        b.status = completed(b.status, kind, trigger.location, ctx.now_ms)
        where = trigger.location or ""
        b.event("Normal", f"{kind.label}Completed", kind.completed_text.format(job=job_id, where=where))
    elif trigger is not None and trigger.state == "IN_PROGRESS":
        b.requeue_after = FAST
    elif stored := kind.stored(obs):
        b.status = completed(b.status, kind, stored, ctx.now_ms)
        b.event("Normal", f"{kind.label}Completed", kind.completed_text.format(job=job_id, where=stored))
    elif trigger is not None and trigger.state == "FAILED":
        failure = trigger.failure or "no reason"
        b.event("Warning", f"{kind.label}Error", f"{kind.label} of job {job_id} failed: {failure}")
        b.status = clear_trigger(b.status, kind)
    elif not job_running(obs):
        b.event(
            "Warning", f"{kind.label}Error", f"{kind.label} of job {job_id} abandoned: the job is no longer running"
        )
        b.status = clear_trigger(b.status, kind)
    else:
        b.requeue_after = FAST  # not yet visible to Flink; the trigger id makes a resend safe


# ----------------------------------------------------------------------------------------- retention


def retention(b: Builder, config: Mapping[str, str], ctx: Context) -> None:
    """Trim the savepoint history by count and age (also while the job is stopped); dispose of the data of
    trimmed savepoints when configured. The newest savepoint, the last one and the one a restore depends on
    are never touched. The trimmed history is written before any data is deleted."""
    info = b.status.job_status.savepoint_info
    if info is None or len(info.savepoint_history) < 2:
        return
    try:
        limits = retention_limits(config)
    except ValueError:
        return  # validation reports the bad value on the resource
    if not limits.cleanup_enabled:
        return
    protected = {p for p in (b.status.job_status.upgrade_savepoint_path,) if p}
    if info.last_savepoint is not None:
        protected.add(info.last_savepoint.location)
    keep, dispose = plan_retention(
        info.savepoint_history,
        now_ms=ctx.now_ms,
        max_count=limits.max_count,
        max_age_ms=limits.max_age_ms,
        protected=protected,
    )
    if not dispose:
        return
    b.status = set_job(b.status, savepoint_info=info.model_copy(update={"savepoint_history": list(keep)}))
    paths = tuple(s.location for s in dispose)
    if limits.dispose_on_delete:
        b.intent = b.status
        b.actions.append(DisposeSnapshots(paths=paths))
    verb = "disposed" if limits.dispose_on_delete else "dropped from the history (data kept)"
    b.event("Normal", "SavepointRetention", f"{len(paths)} savepoint(s) {verb}: " + ", ".join(paths))


#: Seconds between looks at an upgrade's stop-with-savepoint in flight (the job is down for every one of them),
#: and before a failed one is triggered again.
SAVEPOINT_POLL = 0.2
SAVEPOINT_RETRY = 10.0


def follow_upgrade_savepoint(
    b: Builder, config: Mapping[str, str], obs: Observation, ctx: Context, rest_url: str | None
) -> Plan | None:
    """An upgrade's stop-with-savepoint that has not completed: wait while Flink takes it, send the recorded
    trigger again when Flink does not know it (Flink deduplicates by id), or trigger a new one after a failure.
    None when the job can no longer take one: the caller falls back to the job's last state."""
    status = b.status
    info = snapshot_info(status, SAVEPOINT)
    old_job = status.job_status.job_id
    trigger = obs.savepoint_trigger
    if trigger is not None and trigger.state == "IN_PROGRESS":
        b.summary = "waiting for the upgrade savepoint"
        b.requeue_after = SAVEPOINT_POLL  # the job stops with the savepoint: every moment here is downtime
        return b.finish(now_ms=ctx.now_ms)
    if not (job_running(obs) and old_job and rest_url):
        return None
    fmt = savepoint_format(config)
    if trigger is None or trigger.state == "UNKNOWN":
        # The trigger may never have reached Flink (the controller stopped between recording and sending it).
        assert info.trigger_id is not None
        b.actions.append(
            TriggerSavepoint(job_id=old_job, rest_url=rest_url, trigger_id=info.trigger_id, stop=True, format_type=fmt)
        )
        b.intent = status
        b.summary = "re-sending the upgrade savepoint trigger"
        b.requeue_after = FAST
        return b.finish(now_ms=ctx.now_ms)
    b.event("Warning", "SavepointError", f"Upgrade savepoint failed: {trigger.failure or 'no reason given'}")
    b.status = with_trigger(status, SAVEPOINT, ctx.fresh_trigger_id, ctx.now_ms, "UPGRADE", fmt)
    b.intent = b.status
    b.actions.append(
        TriggerSavepoint(job_id=old_job, rest_url=rest_url, trigger_id=ctx.fresh_trigger_id, stop=True, format_type=fmt)
    )
    b.summary = "upgrade savepoint failed: trying again"
    b.requeue_after = SAVEPOINT_RETRY
    return b.finish(now_ms=ctx.now_ms)
