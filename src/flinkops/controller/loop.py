"""The control loop: one pass per resource (load → validate → observe → plan → act → record), with backoff.

``Controller.reconcile(key)`` reads the resource, validates the new spec, observes the world with what was last
deployed (``observer``), asks the pure planner what to do, and has the ``executor`` carry the plan out. It
returns a frozen ``ReconcileResult``: when to look again (never sooner than ``min_requeue``, the operator's floor,
unless a snapshot trigger is in flight), and the error type the pass ended with. A failed pass
is recorded as ``status.error`` plus a Warning event and retried with exponential backoff; a conflicting status
write (someone wrote in between) makes the next pass re-read and decide again at once.

``run_loop`` drives passes for a local daemon: every resource is due when any spec changes, a cluster whose
process died is due at once (with the session jobs that run on it: ``on_cluster``), and otherwise each comes up
when its last pass asked (a STABLE one with nothing pending after the reconcile interval, a minute by default).

Called by: the local daemon and the operator (built by ``flinkops.wiring``), and the behaviour tests on fakes.

Invariant: this package talks to the world through ``flinkops.ports`` only (import-linter checks it); which
adapters stand behind them is decided in ``flinkops.wiring``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from flinkops.api.durations import duration_ms_or
from flinkops.api.flinkconf import PROGRESS_CHECK_KEY, positive_int
from flinkops.api.models import (
    FlinkDeployment,
    FlinkDeploymentStatus,
    FlinkSessionJob,
    FlinkSessionJobStatus,
    JobState,
)
from flinkops.api.validation import validate_against, validate_resource
from flinkops.controller.autoscaling import Autoscaling, FiguresSource
from flinkops.controller.canary import CanaryMonitor
from flinkops.controller.executor import Executor, Failpoint
from flinkops.controller.observer import Observer
from flinkops.controller.requests import RequestBuilder
from flinkops.core.planner import Context, Plan, plan_deployment, plan_session_job, trigger_pending, with_lifecycle
from flinkops.core.planner.prestart import waiting_for_prepared
from flinkops.errors import Conflict, FlinkopsError
from flinkops.ports import (
    Clock,
    ClusterKey,
    ClusterRuntime,
    FlinkApiFactory,
    Provisioner,
    ResourceKey,
    ResourceStore,
)

__all__ = ["Controller", "ReconcileResult", "on_cluster", "run_loop"]

log = logging.getLogger("flinkops.controller")

_MAX_BACKOFF = 60.0
CANARY_SUMMARY = "canary: reconciled as a health probe of the control loop; nothing is deployed"
_CONFLICT_REQUEUE = 0.1

Resource = FlinkDeployment | FlinkSessionJob


@dataclass(frozen=True)
class ReconcileResult:
    """How one pass ended. ``requeue_after``: seconds until the next pass, None when the resource is gone.
    ``error``: the type of the error the pass ended with (``Conflict`` included), None on success."""

    requeue_after: float | None
    error: str | None = None


class Controller:
    def __init__(
        self,
        store: ResourceStore,
        runtime: ClusterRuntime,
        flink: FlinkApiFactory,
        provisioner: Provisioner,
        clock: Clock,
        *,
        failpoint: Failpoint | None = None,
        ids: Callable[[], str] | None = None,
        min_requeue: float = 0.0,
        canaries: CanaryMonitor | None = None,
        figures: FiguresSource | None = None,
    ) -> None:
        """``ids`` hands out fresh job and trigger ids (random by default; deterministic in tests).
        ``min_requeue``: the shortest wait before a resource's next pass (see :meth:`_requeue`).
        ``canaries``: where canary passes are recorded (shared by the operator's shards; one of its own if
        none is given). ``figures``: reads a job's live figures for the autoscaler (None: it holds, saying so)."""
        self.store = store
        self.runtime = runtime
        self.provisioner = provisioner
        self.clock = clock
        self.requests = RequestBuilder(store, provisioner)
        self.observer = Observer(runtime, flink, self.requests, clock)
        self.executor = Executor(store, runtime, flink, self.requests, self.observer, failpoint, clock)
        self._ids = ids or (lambda: uuid.uuid4().hex)
        self.min_requeue = min_requeue
        self._failures: dict[ResourceKey, int] = {}
        self.canaries = canaries or CanaryMonitor()
        self.autoscaling = Autoscaling(figures, clock)

    # ------------------------------------------------------------------ the pass

    def reconcile(self, key: ResourceKey) -> ReconcileResult:
        """One pass for one resource."""
        resource = self.store.get(key)
        if resource is None:
            self._failures.pop(key, None)
            self.canaries.forget(key)
            self.autoscaling.forget(key)
            return ReconcileResult(None)
        if resource.is_canary:
            return self._canary(key, resource)
        self.requests.begin_pass()
        try:
            plan = self._plan(resource, (self._ids(), self._ids(), self._ids()))
            requeue = self._requeue(plan, self.executor.execute(resource, plan), self._floor(resource))
        except Conflict:
            return ReconcileResult(_CONFLICT_REQUEUE, "Conflict")  # someone wrote in between: decide again
        except FlinkopsError as exc:
            return ReconcileResult(max(self._record_failure(key, exc), self.min_requeue), type(exc).__name__)
        self._failures.pop(key, None)
        return ReconcileResult(requeue)

    def _canary(self, key: ResourceKey, resource: Resource) -> ReconcileResult:
        """A canary's pass: nothing is deployed, the reconciled generation is recorded (in status too, once per
        generation, so a user sees the loop took it) and the pass comes back well within the canary timeout."""
        if resource.metadata.deletion_timestamp:
            self.store.remove(key)
            self.canaries.forget(key)
            return ReconcileResult(None)
        generation = resource.metadata.generation or 1
        try:
            status = _status_of(resource)
            if status.observed_generation != generation:
                updated = status.model_copy(update={"observed_generation": generation})
                self.store.update_status(resource.model_copy(update={"status": updated}))
        except Conflict:
            return ReconcileResult(_CONFLICT_REQUEUE, "Conflict")
        except FlinkopsError as exc:
            log.warning("%s: canary status not written: %s", key, exc)
            return ReconcileResult(max(self.min_requeue, 1.0), type(exc).__name__)
        self.canaries.reconciled(key, generation, self.clock.now())
        return ReconcileResult(self.canaries.interval)

    def _floor(self, resource: Resource) -> float:
        """The shortest wait before ``resource``'s next pass: the resource's own
        ``kubernetes.operator.observer.progress-check.interval`` where a floor applies (``min_requeue`` > 0, the
        operator), else ``min_requeue``. A value that does not parse counts as unset (validation refuses it)."""
        if self.min_requeue <= 0:
            return self.min_requeue
        config = getattr(resource.spec, "flink_configuration", None) or {}
        return duration_ms_or(config, PROGRESS_CHECK_KEY, round(self.min_requeue * 1000)) / 1000

    def _requeue(self, plan: Plan, requeue: float | None, floor: float) -> float | None:
        """The plan's requeue, no shorter than ``min_requeue`` unless a savepoint or checkpoint trigger is in
        flight or an upgrade waits for its pre-started cluster. A runtime whose watches wake a resource on every
        change they can see (the operator: Deployments and specs) sets a floor, so that polling covers only what
        happens inside Flink; a snapshot in flight is such a thing, and an upgrade's stop-with-savepoint keeps
        the job down until it is seen to complete, so it is followed at the planner's own cadence
        (``SAVEPOINT_POLL``). A pre-started cluster the runtime refused to start (Kubernetes cannot yet) changes
        nothing a watch sees: the pass that goes on without it comes at the planner's cadence too
        (``PRESTART_POLL``), not a floor later."""
        if requeue is None or trigger_pending(plan.status) or _awaits_prepared(plan.status):
            return requeue
        return max(requeue, floor)

    def preview(self, resource: Resource) -> Plan:
        """What a pass would do for ``resource`` (a desired spec with its recorded status), without acting or
        writing anything: ``flinkops plan``. Observing is read-only (runtime records, Flink REST, storage)."""
        if resource.is_canary:
            status = _status_of(resource)
            return Plan(status=status, summary=CANARY_SUMMARY, requeue_after=self.canaries.interval)
        self.requests.begin_pass()
        return self._plan(resource, ("<new job id>", "<new trigger id>", "<new trigger id>"), collect=False)

    def _plan(self, resource: Resource, fresh_ids: tuple[str, str, str], *, collect: bool = True) -> Plan:
        """validate → observe → (autoscale) → plan; ``fresh_ids`` are the job id and trigger ids a plan may hand
        out; ``collect``: the autoscaler reads a new sample of the job's metrics (not in a preview)."""
        defaults = self.provisioner.default_state_dirs
        problems = validate_resource(
            resource, default_state_dirs=defaults, secret_schemes=self.provisioner.secret_schemes
        )
        target: Resource | None = None
        if isinstance(resource, FlinkSessionJob):
            namespace = resource.metadata.namespace
            target = self.store.get(ResourceKey("FlinkDeployment", namespace, resource.spec.deployment_name))
            existing = {} if target is None else {(target.kind, namespace, target.metadata.name): target}
            problems += validate_against([resource], existing, default_state_dirs=defaults)
        job_id, trigger_id, checkpoint_trigger_id = fresh_ids
        ctx = Context(
            now_ms=int(self.clock.now() * 1000),
            fresh_job_id=job_id,
            fresh_trigger_id=trigger_id,
            fresh_checkpoint_trigger_id=checkpoint_trigger_id,
            valid=not problems,
            validation_error="; ".join(p.render() for p in problems) or None,
        )
        if isinstance(resource, FlinkDeployment):
            if resource.is_session_cluster and self.runtime.elastic_sessions:
                ctx = replace(ctx, elastic_taskmanagers=True, session_slots_needed=self._slots_needed(resource))
            elif self.runtime.elastic_sessions:  # an application rescaled down in place releases idle TaskManagers
                ctx = replace(ctx, elastic_taskmanagers=True)
            obs = self.observer.deployment(resource)
            if not ctx.valid:  # an invalid spec: the planner keeps the last valid one; no autoscaling on it
                return plan_deployment(resource, obs, ctx)
            scaled, note, interval = self.autoscaling.prepare(resource, obs, collect=collect)
            plan = plan_deployment(scaled, obs, ctx)
            if note is not None:
                plan = replace(plan, events=(*plan.events, note))
            if interval is not None and plan.requeue_after is not None:
                plan = replace(plan, requeue_after=min(plan.requeue_after, interval))
            return plan
        obs, ctx = self.observer.session_job(resource, target, ctx)
        return plan_session_job(resource, obs, ctx)

    def _slots_needed(self, cluster: FlinkDeployment) -> int:
        """The slots the session jobs on ``cluster`` need: each one that should run (not suspended, not ended,
        not being deleted) needs its parallelism (with the default slot sharing, a job needs as many slots as
        its highest parallelism)."""
        default = positive_int(cluster.spec.flink_configuration, "parallelism.default") or 1
        needed = 0
        for r in self.store.list_resources():
            if not isinstance(r, FlinkSessionJob) or r.is_canary or r.metadata.deletion_timestamp:
                continue
            if r.metadata.namespace != cluster.metadata.namespace or r.spec.deployment_name != cluster.metadata.name:
                continue
            job = r.spec.job
            if job is None or job.state != JobState.RUNNING:
                continue
            if r.status is not None and r.status.job_status.state in ("FINISHED", "FAILED"):
                continue
            own = positive_int(r.spec.flink_configuration, "parallelism.default")
            needed += job.parallelism or own or default
        return needed

    def _record_failure(self, key: ResourceKey, exc: FlinkopsError) -> float:
        count = self._failures[key] = self._failures.get(key, 0) + 1
        delay = min(_MAX_BACKOFF, 2.0 ** min(count, 6))
        message = f"{type(exc).__name__}: {exc}"
        log.warning("%s: %s (retry in %.0fs)", key, message, delay)
        try:
            self.store.record_event(key, "Warning", "ReconcileError", message)
            resource = self.store.get(key)
            if resource is not None:
                # A resource that failed before its first status write still gets one: the error is the
                # first thing `flinkops get` must show.
                status = _status_of(resource)
                if (status.error, status.error_reason) != (message, exc.reason):
                    failed = status.model_copy(update={"error": message, "error_reason": exc.reason})
                    # The lifecycle follows the recorded facts, the error included (a failed first deploy is FAILED).
                    deleting = bool(resource.metadata.deletion_timestamp)
                    failed = with_lifecycle(failed, deleting, int(self.clock.now() * 1000))
                    self.store.update_status(resource.model_copy(update={"status": failed}))
        except FlinkopsError as record_exc:  # the store itself failing: log, retry later
            log.error("%s: could not record the failure: %s", key, record_exc)
        return delay


def _status_of(resource: Resource) -> FlinkDeploymentStatus | FlinkSessionJobStatus:
    """The resource's recorded status, or an empty one of its kind when none was written yet."""
    return resource.status or (
        FlinkDeploymentStatus() if isinstance(resource, FlinkDeployment) else FlinkSessionJobStatus()
    )


def _awaits_prepared(status: FlinkDeploymentStatus | FlinkSessionJobStatus) -> bool:
    """An upgrade asked for a pre-started cluster and waits to learn whether it runs and is ready."""
    if not isinstance(status, FlinkDeploymentStatus):
        return False
    return waiting_for_prepared(status, status.observed_generation or 1) is not None


def on_cluster(resources: Iterable[Resource]) -> dict[ClusterKey, list[ResourceKey]]:
    """The resources to look at when a process of a cluster dies: its FlinkDeployment and the session jobs that
    run on it."""
    found: dict[ClusterKey, list[ResourceKey]] = {}
    for resource in resources:
        name = resource.spec.deployment_name if isinstance(resource, FlinkSessionJob) else resource.metadata.name
        found.setdefault(ClusterKey(resource.metadata.namespace, name), []).append(ResourceKey.of(resource))
    return found


def run_loop(
    controller: Controller,
    store: ResourceStore,
    clock: Clock,
    should_stop: Callable[[], bool],
    poll: float = 0.5,
    on_pass: Callable[[ResourceKey, ReconcileResult, float], None] | None = None,
    on_queue: Callable[[int], None] | None = None,
) -> None:
    """Drive passes until ``should_stop()``: the local daemon's loop (the operator has its own, fed by
    watches and sharded over workers). ``on_pass(key, result, seconds)`` hears of each pass and
    ``on_queue(n)`` of the resources due for a pass at each turn of the loop (the metrics)."""
    due: dict[ResourceKey, float] = {}
    seen_changes = -1
    watching: dict[ClusterKey, list[ResourceKey]] = {}
    while not should_stop():
        changes = store.change_counter()
        if changes != seen_changes:
            seen_changes = changes
            resources = store.list_resources()
            present = {ResourceKey.of(r) for r in resources}
            watching = on_cluster(resources)
            for key in present:
                due[key] = 0.0
            for key in set(due) - present:
                del due[key]
        for cluster in controller.runtime.changed_clusters():
            for key in watching.get(cluster, ()):
                if key in due:
                    due[key] = 0.0  # a process died: look now, not at the next scheduled pass
        if on_queue is not None:
            now = clock.now()
            on_queue(sum(1 for when in due.values() if when <= now))
        for key in sorted(due, key=lambda k: due[k]):
            if should_stop():
                return
            if due[key] > clock.now():
                continue
            started = clock.now()
            try:
                result = controller.reconcile(key)
            except FlinkopsError as exc:  # reconcile records its own failures; this is the last resort
                log.exception("%s: reconcile failed: %s", key, exc)
                result = ReconcileResult(10.0, type(exc).__name__)
            if on_pass is not None:
                on_pass(key, result, clock.now() - started)
            requeue = result.requeue_after
            if requeue is None:
                due.pop(key, None)
            else:
                due[key] = clock.now() + requeue
        next_due = min(due.values(), default=clock.now() + poll)
        clock.sleep(max(0.05, min(poll, next_due - clock.now())))
