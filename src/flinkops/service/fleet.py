"""The fleet at a glance: one row per FlinkDeployment and FlinkSessionJob, the detail of one of them, and the
actions a person takes most from the fleet page (savepoint, suspend, resume, rollback) guarded against a spec
that changed after the person looked.

Rows are read from the stored objects in their CRD shape (``Target.documents``), never from pydantic models, so
that a fleet of 500 renders in milliseconds: lifecycle, job state, the age of the last checkpoint and savepoint,
the restarts (runs the controller started to recover a job that died, or to retry one that crashed), the
parallelism, the last error, the Flink UI's address. Two columns come from elsewhere and stay unknown (None) until
their source answers:

* cost so far: ``Row.cost`` is filled through the ``cost`` hook ``rows`` takes (``service.cost.price_column``);
* the live job figures (records/s, backpressure) that ``flinkops top`` shows: read from Flink's REST API
  (``service.figures``), through a ``FiguresHook`` (``ports.flink.JobFigures``; None means unknown, never zero).

``detail`` adds what the page shows for one resource: conditions, events, the runs of its job with their
downtime, its snapshots in storage, and the plan of a pending change (a spec the controller has not reconciled
yet; local target only, since the controller that previews it runs here).

``act`` carries out one action for a page: it refuses (``Conflict``, nothing written) when the resource's
generation is no longer the one the person confirmed, then calls the same service function the CLI calls.

Called by: ``flinkops.web`` (the page), the CLI (``flinkops top``), benchmarks.
Invariant: reading never writes; an action is applied only to the spec generation that was confirmed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from flinkops.errors import Conflict, FlinkopsError, InvalidInput, NotFound, Problem
from flinkops.ports import Event, ResourceKey
from flinkops.ports.flink import JobFigures
from flinkops.service.resources import KINDS, lifecycle_state
from flinkops.service.target import Target

__all__ = [
    "ACTIONS",
    "COST_UNKNOWN",
    "Action",
    "ActionResult",
    "CostHook",
    "Detail",
    "FiguresHook",
    "Row",
    "Run",
    "SnapshotRow",
    "act",
    "actions_for",
    "basis",
    "detail",
    "find",
    "restarts",
    "row_of",
    "rows",
]

Action = Literal["savepoint", "suspend", "resume", "rollback"]
ACTIONS: tuple[Action, ...] = ("savepoint", "suspend", "resume", "rollback")

#: Run reasons (``DeploymentRecord.reason``) that count as a restart: a job started again because it died
#: (``recover``: its JobManager or cluster was lost) or crashed before it ran (``retry``: the crash-loop back-off).
RESTART_REASONS = frozenset({"recover", "retry"})

COST_UNKNOWN = None


#: The cost of one resource so far, as text to show ("$1.23", "0.4 KPU-h"); None: unknown. Fed by service.cost.
CostHook = Callable[[Mapping[str, Any]], str | None]
#: The cost report of one resource (``flinkops cost NAME -o json``'s shape) from its stored object and its running
#: job's live figures (None: not known); None: unknown. Fed by service.cost.
ReportHook = Callable[[Mapping[str, Any], JobFigures | None], "dict[str, Any] | None"]
#: The live figures of one resource's running job; None: unknown. Fed by the metrics module.
FiguresHook = Callable[["Row"], JobFigures | None]


@dataclass(frozen=True)
class Row:
    """One line of the fleet overview."""

    kind: str
    namespace: str
    name: str
    generation: int | None
    observed_generation: int | None
    resource_version: str | None
    lifecycle: str
    job_state: str | None
    job_id: str | None
    #: epoch ms of the last completed checkpoint the status records (the controller's own; Flink's periodic ones
    #: come from Flink: ``flinkops.web.live``), and of the last savepoint (with its path)
    checkpoint_ms: int | None
    savepoint_ms: int | None
    savepoint_path: str | None
    restarts: int
    parallelism: int | None
    error: str | None
    #: the Flink UI (the JobManager's REST address): FlinkDeployments whose JobManager is up
    flink_ui: str | None
    #: FlinkSessionJobs: the session cluster it runs on
    session: str | None
    #: the spec runs a job (False for a session cluster)
    has_job: bool
    #: the stored spec asks for a suspended job
    suspended: bool
    cost: str | None = COST_UNKNOWN

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.kind, self.namespace, self.name)

    @property
    def pending(self) -> bool:
        """The spec has changed and the controller has not reconciled that generation yet."""
        return self.generation is not None and self.generation != self.observed_generation

    def checkpoint_age_s(self, now_ms: int) -> float | None:
        return max(0.0, (now_ms - self.checkpoint_ms) / 1000) if self.checkpoint_ms is not None else None

    def savepoint_age_s(self, now_ms: int) -> float | None:
        return max(0.0, (now_ms - self.savepoint_ms) / 1000) if self.savepoint_ms is not None else None


def _dig(document: Mapping[str, Any] | None, *path: str) -> Any:
    value: Any = document
    for part in path:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def restarts(history: Sequence[Mapping[str, Any]] | None) -> int:
    """The runs in ``status.deploymentHistory`` that restarted a job that died (``RESTART_REASONS``)."""
    return sum(1 for run in history or () if isinstance(run, Mapping) and run.get("reason") in RESTART_REASONS)


def row_of(document: Mapping[str, Any], cost: CostHook | None = None) -> Row:
    """The overview row of one stored object (CRD shape)."""
    meta = document.get("metadata") or {}
    status = document.get("status") or {}
    kind = str(document.get("kind"))
    job_status = status.get("jobStatus") or {}
    savepoint = _dig(job_status, "savepointInfo", "lastSavepoint") or {}
    job = _dig(document, "spec", "job")
    rest_url = _dig(status, "clusterInfo", "rest-url") if kind == "FlinkDeployment" else None
    jobmanager_up = status.get("jobManagerDeploymentStatus") in ("READY", "DEPLOYED_NOT_READY")
    return Row(
        kind=kind,
        namespace=str(meta.get("namespace", "default")),
        name=str(meta.get("name")),
        generation=_int(meta.get("generation")),
        observed_generation=_int(status.get("observedGeneration")),
        resource_version=str(meta["resourceVersion"]) if meta.get("resourceVersion") is not None else None,
        lifecycle=lifecycle_state(meta.get("deletionTimestamp"), status.get("lifecycleState")),
        job_state=job_status.get("state"),
        job_id=job_status.get("jobId"),
        checkpoint_ms=_int(_dig(job_status, "checkpointInfo", "lastCheckpoint", "timeStamp")),
        savepoint_ms=_int(savepoint.get("timeStamp")),
        savepoint_path=savepoint.get("location"),
        restarts=restarts(status.get("deploymentHistory")),
        parallelism=_int(_dig(job, "parallelism")),
        error=status.get("error") or None,
        flink_ui=str(rest_url) if rest_url and jobmanager_up else None,
        session=_dig(document, "spec", "deploymentName") if kind == "FlinkSessionJob" else None,
        has_job=isinstance(job, Mapping),
        suspended=isinstance(job, Mapping) and job.get("state") == "suspended",
        cost=cost(document) if cost is not None else COST_UNKNOWN,
    )


def rows(target: Target, namespace: str | None = None, *, cost: CostHook | None = None) -> list[Row]:
    """Every FlinkDeployment and FlinkSessionJob (of ``namespace``; every namespace when None), by namespace,
    name and kind."""
    found = [row_of(d, cost) for d in target.documents(None, namespace)]
    return sorted(found, key=lambda r: (r.namespace, r.name, r.kind))


def find(target: Target, name: str, namespace: str = "default", kind: str | None = None) -> Mapping[str, Any]:
    """The stored object called ``name`` (of ``kind``, else of either kind); ``NotFound``, or ``InvalidInput``
    when the name belongs to both kinds."""
    kinds = [kind] if kind else list(KINDS)
    found = [d for k in kinds if (d := target.document(ResourceKey(k, namespace, name))) is not None]
    if not found:
        raise NotFound(f"no FlinkDeployment or FlinkSessionJob named {name!r} in namespace {namespace!r}")
    if len(found) > 1:
        raise InvalidInput([Problem("NAME", f"{name!r} names both kinds", "give the kind")])
    return found[0]


# ------------------------------------------------------------------------------------------------ one resource


@dataclass(frozen=True)
class Run:
    """One start of the resource's job (``status.deploymentHistory``), newest first on the page."""

    generation: int
    reason: str
    job_id: str | None
    started_ms: int
    running_ms: int | None
    ended_ms: int | None
    end_state: str | None
    restored_from: str | None
    #: from the previous job's stop to this one running (None on a first deploy, or while it starts)
    downtime_ms: int | None


@dataclass(frozen=True)
class SnapshotRow:
    time_ms: int
    kind: str
    trigger: str
    size_bytes: int
    path: str


@dataclass(frozen=True)
class Detail:
    row: Row
    document: Mapping[str, Any]
    conditions: tuple[Mapping[str, Any], ...]
    events: tuple[Event, ...]
    runs: tuple[Run, ...]
    snapshots: tuple[SnapshotRow, ...]
    #: why the snapshots could not be listed (storage unreachable, ...), or None
    snapshots_error: str | None
    #: the plan of a pending change: its summary and steps; None when nothing is pending
    plan: tuple[str, tuple[str, ...]] | None
    #: why there is no plan although a change is pending (a Kubernetes target, an error), or None
    plan_error: str | None = None
    #: the actions that apply to this resource now
    actions: tuple[Action, ...] = field(default=())


def _runs(status: Mapping[str, Any]) -> tuple[Run, ...]:
    found: list[Run] = []
    for run in status.get("deploymentHistory") or ():
        if not isinstance(run, Mapping):
            continue
        stopped, running = _int(run.get("stoppedAt")), _int(run.get("runningAt"))
        found.append(
            Run(
                generation=_int(run.get("generation")) or 0,
                reason=str(run.get("reason") or "deploy"),
                job_id=run.get("jobId"),
                started_ms=_int(run.get("startedAt")) or 0,
                running_ms=running,
                ended_ms=_int(run.get("endedAt")),
                end_state=run.get("endState"),
                restored_from=run.get("restoredFrom"),
                downtime_ms=max(0, running - stopped) if stopped is not None and running is not None else None,
            )
        )
    return tuple(reversed(found))


def actions_for(row: Row) -> tuple[Action, ...]:
    """What the page offers for ``row``: jobs of FlinkDeployments only (the CLI's commands take FlinkDeployments;
    session jobs are changed through their YAML), nothing while deleting."""
    if row.kind != "FlinkDeployment" or not row.has_job or row.lifecycle in ("DELETING", "DELETED"):
        return ()
    offered: list[Action] = []
    if not row.suspended:
        offered += ["savepoint", "suspend"]
    else:
        offered.append("resume")
    offered.append("rollback")
    return tuple(offered)


def _snapshots(target: Target, row: Row) -> tuple[tuple[SnapshotRow, ...], str | None]:
    if row.kind != "FlinkDeployment" or not row.has_job:
        return (), None
    from flinkops.service.snapshots import catalogue

    try:
        found = catalogue(target, row.name, row.namespace)
    except (FlinkopsError, OSError) as exc:
        return (), str(exc) or type(exc).__name__
    entries = tuple(
        SnapshotRow(e.snapshot.time_ms, e.snapshot.kind, e.trigger, e.snapshot.size_bytes, e.snapshot.path)
        for e in reversed(found.entries)
    )
    return entries, None


def _plan(target: Target, row: Row) -> tuple[tuple[str, tuple[str, ...]] | None, str | None]:
    if not row.pending or row.lifecycle in ("DELETING", "DELETED"):
        return None, None
    if not target.local:
        return None, "the operator in the cluster plans on Kubernetes: see its events"
    from flinkops.service.planning import plan
    from flinkops.service.resources import resolve

    try:
        report = plan(target, [resolve(target, row.name, row.namespace, row.kind)])
    except InvalidInput as exc:
        return None, "; ".join(p.render() for p in exc.problems)
    except FlinkopsError as exc:
        return None, str(exc)
    (planned,) = report.resources
    return (planned.summary, planned.steps), None


def detail(
    target: Target,
    name: str,
    namespace: str = "default",
    kind: str | None = None,
    *,
    cost: CostHook | None = None,
    with_plan: bool = True,
) -> Detail:
    """Everything the page shows about one resource (``NotFound`` when there is none)."""
    document = find(target, name, namespace, kind)
    row = row_of(document, cost)
    status = document.get("status") or {}
    snapshots, snapshots_error = _snapshots(target, row)
    planned, plan_error = _plan(target, row) if with_plan else (None, None)
    return Detail(
        row=row,
        document=document,
        conditions=tuple(c for c in status.get("conditions") or () if isinstance(c, Mapping)),
        events=tuple(reversed(target.store().events(row.key))),
        runs=_runs(status),
        snapshots=snapshots,
        snapshots_error=snapshots_error,
        plan=planned,
        plan_error=plan_error,
        actions=actions_for(row),
    )


# ------------------------------------------------------------------------------------------------ actions


@dataclass(frozen=True)
class ActionResult:
    key: ResourceKey
    action: Action
    #: what happened, for people ("savepoint requested (savepointTriggerNonce=3)")
    message: str


def basis(document: Mapping[str, Any], action: Action) -> str:
    """What a confirmation of ``action`` on ``document`` was given for: the spec generation, and for a rollback
    also the last stable spec it would put back (a digest). The resourceVersion is not part of it: it moves with
    every status write (each completed checkpoint), which would refuse nearly every confirmation of a busy job
    while the spec the person confirmed is unchanged."""
    text = f"g{_int(_dig(document, 'metadata', 'generation'))}"
    if action == "rollback":
        stable = _dig(document, "status", "reconciliationStatus", "lastStableSpec") or ""
        text += "-s" + hashlib.sha256(str(stable).encode()).hexdigest()[:16]
    return text


def act(target: Target, key: ResourceKey, action: Action, confirmed: str) -> ActionResult:
    """Take ``action`` on the FlinkDeployment ``key`` if it is still what the person confirmed (``confirmed``: the
    ``basis`` the confirmation showed); ``Conflict`` when it changed or is being deleted (nothing is written),
    ``NotFound`` when it is gone, ``InvalidInput`` for an action that does not apply. The change itself is the
    CLI's (``service.snapshots.trigger``, ``service.changes``), so the controller stays the only thing that acts."""
    if action not in ACTIONS:
        raise InvalidInput([Problem("action", f"unknown action {action!r}", f"one of {', '.join(ACTIONS)}")])
    document = target.document(key)
    if document is None:
        raise NotFound(f"{key} does not exist any more")
    row = row_of(document)
    if row.lifecycle == "DELETING":
        raise Conflict(f"{key} is being deleted: nothing was done")
    now = basis(document, action)
    if not hmac.compare_digest(now, confirmed):
        raise Conflict(
            f"{key} changed since you confirmed (generation {row.generation} now): nothing was done; "
            "look at it again and confirm anew"
        )
    if action not in actions_for(row):
        raise InvalidInput([Problem("action", f"{action} does not apply to {key} now ({row.lifecycle})")])
    if action == "savepoint":
        from flinkops.service.snapshots import trigger

        asked = trigger(target, key.name, key.namespace, "savepoint")
        return ActionResult(key, action, f"savepoint requested (savepointTriggerNonce={asked.nonce})")
    if action == "rollback":
        from flinkops.service.changes import rollback

        rolling = rollback(target, key.name, key.namespace)
        return ActionResult(key, action, f"rolling back to the last stable spec (generation {rolling.generation})")
    from flinkops.service.changes import resume, suspend

    change = (suspend if action == "suspend" else resume)(target, key.name, key.namespace)
    what = "suspended" if action == "suspend" else "resumed"
    return ActionResult(key, action, f"job {what}" if change.changed else f"the job was {what} already")
