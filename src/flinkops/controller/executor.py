"""Act and record: carry out one plan through the ports, write-ahead.

Before anything changes, the preflight checks what the plan needs from outside (jars, plugins, connectors,
buckets, the state to restore from) and fails the pass with nothing written or stopped when something is
missing. Then the plan's intent is written to status (the write-ahead log: target spec, UPGRADING, job and
trigger ids), the actions run in order, the plan's events are recorded and the final status is written
(conditional on resourceVersion; no-op writes are skipped).

Called by: the controller's loop. The only place in the controller that performs effects.

Invariant: the executor does what the plan says and decides nothing. Where a restore point can only be known
after a stop (a job restarting from its newest checkpoint), the planner stops first and chooses next pass. The
facts it adds are when a run's cluster was asked for (``deployed_at``, read from the clock as the deploy starts)
and when a cluster it deleted was gone (``released_at`` on the run that cluster ran, once the runtime's delete
returned): only the executor sees those moments, and cost reports need them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from flinkops.api.flinkconf import is_operator_key, savepoint_dir, taskmanager_count
from flinkops.api.models import FlinkDeployment, FlinkSessionJob, LifecycleState
from flinkops.controller.observer import REST_TIMEOUT, Observer
from flinkops.controller.requests import RequestBuilder, cluster_key
from flinkops.core.planner import (
    Action,
    CancelSessionJob,
    DeleteCluster,
    DeployCluster,
    DisposeSnapshots,
    Plan,
    PrepareCluster,
    RemoveResource,
    ReplaceMissingProcesses,
    ResizeSessionCluster,
    ScaleInPlace,
    Status,
    SubmitSessionJob,
    TriggerCheckpoint,
    TriggerSavepoint,
)
from flinkops.errors import (
    FlinkApiError,
    FlinkNotFound,
    PermanentError,
    UnsupportedSnapshotStorage,
)
from flinkops.ports import Clock, ClusterRuntime, FlinkApi, FlinkApiFactory, ResourceKey, ResourceStore

__all__ = ["FAILPOINT_ENV", "FAILPOINT_EXIT_CODE", "Executor", "Failpoint", "exiting_failpoint"]

log = logging.getLogger("flinkops.controller")

Resource = FlinkDeployment | FlinkSessionJob

#: Called ``before`` writing the intent of a plan holding an action, and ``after`` executing it, with that
#: action: fault injection for tests. Behaviour tests pass one that raises; the real-process tests set
#: ``FLINKOPS_FAILPOINT=<when>:<Action>`` and the controller process exits on the spot.
Failpoint = Callable[[str, Action], None]
FAILPOINT_ENV = "FLINKOPS_FAILPOINT"
FAILPOINT_EXIT_CODE = 86


def exiting_failpoint() -> Failpoint | None:
    """The failpoint ``FLINKOPS_FAILPOINT`` asks for, which ends the process; None when it is not set."""
    wanted = os.environ.get(FAILPOINT_ENV, "")
    if not wanted:
        return None

    def hit(when: str, action: Action) -> None:
        if wanted == f"{when}:{type(action).__name__}":
            log.error("failpoint %s reached: exiting", wanted)
            logging.shutdown()
            os._exit(FAILPOINT_EXIT_CODE)

    return hit


class Executor:
    def __init__(
        self,
        store: ResourceStore,
        runtime: ClusterRuntime,
        flink: FlinkApiFactory,
        requests: RequestBuilder,
        observer: Observer,
        failpoint: Failpoint | None = None,
        clock: Clock | None = None,
    ) -> None:
        """``clock``: when a deleted cluster was gone is read from it (no ``released_at`` is recorded without)."""
        self.clock = clock
        self.store = store
        self.runtime = runtime
        self.flink = flink
        self.requests = requests
        self.observer = observer
        self.failpoint = failpoint

    def execute(self, resource: Resource, plan: Plan) -> float | None:
        """Carry out ``plan`` for ``resource``; returns the plan's requeue delay, or None once the resource is
        gone. Raises the failure of an action (the loop records it and backs off)."""
        key = ResourceKey.of(resource)
        current = resource
        self._preflight(resource, plan)
        for action in plan.actions:
            self._hit("before", action)
        before = resource.status.lifecycle_state if resource.status else None
        if plan.intent is not None and plan.intent != resource.status and plan.actions:
            current = self.store.update_status(resource.model_copy(update={"status": plan.intent}))
            self._lifecycle_event(key, before, plan.intent.lifecycle_state)
            before = plan.intent.lifecycle_state
        # The plan's events go on record with its intent, before anything acts: a controller that dies while
        # acting leaves the why (Rollback, RecoverDeployment, Submit ...) next to the what.
        for note in plan.events:
            self.store.record_event(key, note.type, note.reason, note.message)
        final = plan.status
        for action in plan.actions:
            log.info("%s: %s", key, action.describe())
            if isinstance(action, RemoveResource):
                self.store.remove(key)
                return None
            asked_ms = int(self.clock.now() * 1000) if self.clock is not None else None
            gone = self._act(resource, action)
            if isinstance(action, DeleteCluster) and self.clock is not None:
                # The runtime's moment the processes were gone, else now (its delete waited for them).
                final = _released(final, plan, int((gone if gone is not None else self.clock.now()) * 1000))
            elif isinstance(action, DeployCluster) and asked_ms is not None:
                final = _deployed(final, action, asked_ms)
            self._hit("after", action)
        self._lifecycle_event(key, before, final.lifecycle_state)
        if final != current.status:
            self.store.update_status(current.model_copy(update={"status": final}))
        return plan.requeue_after

    def _hit(self, when: str, action: Action) -> None:
        if self.failpoint is not None:
            self.failpoint(when, action)

    def _lifecycle_event(self, key: ResourceKey, before: LifecycleState | None, after: LifecycleState | None) -> None:
        if after is not None and after != before:
            was = before.value if before is not None else "new"
            self.store.record_event(key, "Normal", "LifecycleChanged", f"lifecycle state {was} -> {after.value}")

    def _preflight(self, resource: Resource, plan: Plan) -> None:
        """Refuse a plan that would start from state that is not there, before anything is written or
        stopped: a wrong ``initialSavepointPath`` or restore target must not cost the running job.

        A checkpoint of the job being replaced is exempt: Flink may subsume it any moment (the planner reads
        storage again once that job has stopped)."""
        current = resource.status.job_status.job_id if resource.status else None
        if isinstance(resource, FlinkDeployment) and _stops_to_upgrade(resource, plan):
            # The new spec's secrets are resolved now: one that cannot be read must not cost the running job
            # (the deploy that follows the stop resolves them again).
            self.requests.process_environment(resource)
        for action in plan.actions:
            # What a new cluster or job needs from outside (its jar, plugins, connectors, S3 buckets) is
            # fetched and checked now, before the intent is written and before anything is stopped.
            if isinstance(action, DeployCluster) and isinstance(resource, FlinkDeployment):
                self.requests.cluster_request(resource, action)
            elif isinstance(action, PrepareCluster) and isinstance(resource, FlinkDeployment):
                self.requests.prepare_request(resource, action)
            elif isinstance(action, SubmitSessionJob) and isinstance(resource, FlinkSessionJob):
                self.requests.session_job_jar(resource, action.spec)
            restore = getattr(action, "restore_path", None)
            if not restore or (current and f"/{current}/chk-" in restore):
                continue
            try:
                present = self.requests.snapshot_store(resource).exists(restore)
            except UnsupportedSnapshotStorage:
                continue  # cannot look there from here; Flink reports a missing path when it starts
            if not present:
                raise PermanentError(
                    f"the state to restore from does not exist: {restore} (no _metadata there); nothing was "
                    "started or stopped. Fix spec.job.initialSavepointPath or pick a snapshot from "
                    "`flinkops snapshots NAME`"
                )

    # ------------------------------------------------------------------ the actions

    def _act(self, resource: Resource, action: Action) -> float | None:
        """Carry out ``action``; a delete returns when its cluster's processes were gone (if the runtime knows)."""
        ckey = cluster_key(resource)
        if isinstance(action, DeleteCluster):
            return self.runtime.delete(ckey, keep_prepared=action.keep_prepared)
        if isinstance(action, DeployCluster):
            assert isinstance(resource, FlinkDeployment)
            self.runtime.deploy(self.requests.cluster_request(resource, action))
        elif isinstance(action, PrepareCluster):
            assert isinstance(resource, FlinkDeployment)
            refused = self.runtime.prepare(self.requests.prepare_request(resource, action))
            if refused is not None:
                # The plan goes on without it (the next pass sees no prepared cluster): say why, once.
                self.store.record_event(ResourceKey.of(resource), "Warning", "PrestartSkipped", refused)
        elif isinstance(action, ReplaceMissingProcesses):
            environment = self.requests.process_environment(resource) if isinstance(resource, FlinkDeployment) else {}
            self.runtime.replace_missing_processes(ckey, environment)
        elif isinstance(action, SubmitSessionJob):
            assert isinstance(resource, FlinkSessionJob)
            self._submit_session_job(resource, action)
        elif isinstance(action, ScaleInPlace):
            assert isinstance(resource, FlinkDeployment)
            self._scale_in_place(resource, action)
        elif isinstance(action, ResizeSessionCluster):
            assert isinstance(resource, FlinkDeployment)
            environment = self.requests.process_environment(resource)
            self.runtime.scale_taskmanagers(ckey, action.taskmanagers, environment, stop=action.stop)
        elif isinstance(action, TriggerSavepoint | TriggerCheckpoint):
            self._trigger(resource, action)
        elif isinstance(action, DisposeSnapshots):
            store = self.requests.snapshot_store(resource)
            for path in action.paths:
                store.dispose(path)
        elif isinstance(action, CancelSessionJob):
            try:
                with self.flink(action.rest_url, REST_TIMEOUT) as rest:
                    rest.cancel(action.job_id)
            except FlinkNotFound:
                pass  # already gone: the goal of cancelling is met
        else:  # pragma: no cover - every action type is handled above
            raise PermanentError(f"unknown action {action!r}")
        return None

    def _trigger(self, resource: Resource, action: TriggerSavepoint | TriggerCheckpoint) -> None:
        with self.flink(action.rest_url, REST_TIMEOUT) as rest:
            if isinstance(action, TriggerCheckpoint):
                rest.trigger_checkpoint(action.job_id, action.checkpoint_type, trigger_id=action.trigger_id)
                return
            directory = savepoint_dir(self.requests.resource_config(resource))
            if action.stop:
                rest.stop_with_savepoint(
                    action.job_id, directory, format_type=action.format_type, trigger_id=action.trigger_id
                )
            else:
                rest.trigger_savepoint(
                    action.job_id, directory, format_type=action.format_type, trigger_id=action.trigger_id
                )

    def _scale_in_place(self, resource: FlinkDeployment, action: ScaleInPlace) -> None:
        needed = taskmanager_count(action.spec, self.requests.config(resource, action.spec))
        if needed > action.taskmanagers:
            # Scaling up: the slots first, so the adaptive scheduler can use them as soon as it may. Scaling
            # down keeps the now idle TaskManagers until the next deployment: stopping one that still runs
            # tasks would turn an in-place rescale into a failover.
            self.runtime.scale_taskmanagers(cluster_key(resource), needed, self.requests.process_environment(resource))
        with self.flink(action.rest_url, REST_TIMEOUT) as rest:
            bounds = rest.resource_requirements(action.job_id)
            # Vertices that ran at the job's parallelism follow the new one; vertices with a parallelism of
            # their own (a parallelism-1 source, say) keep it.
            updated = {
                vertex: (
                    (min(low, action.parallelism), action.parallelism)
                    if high == action.old_parallelism
                    else (low, high)
                )
                for vertex, (low, high) in bounds.items()
            }
            if updated != bounds:
                rest.set_resource_requirements(action.job_id, updated)

    def _submit_session_job(self, resource: FlinkSessionJob, action: SubmitSessionJob) -> None:
        spec = action.spec
        assert spec.job is not None and spec.job.jar_uri is not None
        jar = self.requests.session_job_jar(resource, spec)
        config = {k: v for k, v in spec.flink_configuration.items() if not is_operator_key(k)}
        with self.flink(action.rest_url, 60.0) as rest:
            if _job_exists(rest, action.job_id):
                return  # submitted by an interrupted earlier pass: do not run it twice
            jar_id = rest.upload_jar(jar)
            try:
                rest.run_jar(
                    jar_id,
                    entry_class=spec.job.entry_class or None,  # None: Flink reads the jar's Main-Class
                    program_args=list(spec.job.args),
                    parallelism=spec.job.parallelism or None,
                    job_id=action.job_id,
                    savepoint_path=action.restore_path,
                    allow_non_restored_state=spec.job.allow_non_restored_state,
                    flink_configuration=config or None,
                )
            finally:
                try:
                    rest.delete_jar(jar_id)
                except FlinkApiError:
                    log.warning("could not delete uploaded jar %s", jar_id)


def _checkpointed(resource: FlinkDeployment, job_id: str) -> bool:
    status = resource.status
    return status is not None and any(r.job_id == job_id and r.checkpointed for r in status.deployment_history)


def _released(status: Status, plan: Plan, now_ms: int) -> Status:
    """``status`` with ``released_at`` on the run whose cluster a delete just stopped: the newest run not yet
    released, other than the one this plan deploys (an upgrade records its new run before it stops the old
    cluster). A resource has one cluster at a time, so that run is the one that cluster ran."""
    history = list(status.deployment_history)
    deploying = next((a for a in plan.actions if isinstance(a, DeployCluster)), None)
    index = len(history) - 1
    if deploying is not None and history and history[-1].job_id == deploying.job_id:
        index -= 1
    if index < 0 or history[index].released_at is not None:
        return status  # the newest run was released already: older ones are not this cluster's
    history[index] = history[index].model_copy(update={"released_at": now_ms})
    return status.model_copy(update={"deployment_history": history})


def _deployed(status: Status, action: DeployCluster, asked_ms: int) -> Status:
    """``status`` with ``deployed_at`` on the run ``action`` started (the newest one, which the plan recorded)."""
    history = list(status.deployment_history)
    if not history or history[-1].job_id != action.job_id or history[-1].deployed_at is not None:
        return status
    history[-1] = history[-1].model_copy(update={"deployed_at": asked_ms})
    return status.model_copy(update={"deployment_history": history})


def _job_exists(rest: FlinkApi, job_id: str) -> bool:
    return any(j.job_id == job_id for j in rest.list_jobs())


def _stops_to_upgrade(resource: FlinkDeployment, plan: Plan) -> bool:
    """Whether ``plan`` stops the running job to start ``resource``'s own spec on a later pass."""
    upgrading = plan.intent is not None and plan.intent.lifecycle_state is LifecycleState.UPGRADING
    stops = any(isinstance(a, DeleteCluster) or (isinstance(a, TriggerSavepoint) and a.stop) for a in plan.actions)
    deploys = any(isinstance(a, DeployCluster) for a in plan.actions)  # checked with its cluster request
    return upgrading and stops and not deploys and resource.metadata.deletion_timestamp is None
