"""One reconcile pass: load → observe → validate → plan → act → record.

The only place where decisions become effects. ``reconcile(key)`` reads the resource, observes the world with
what was last deployed (runtime records, Flink REST), validates the new spec, asks the pure planner what to do,
writes the planner's intent to status *before* acting (write-ahead), executes the actions through the ports,
and records the final status (conditional on resourceVersion; no-op writes are skipped). Failures of an action
are recorded as ``status.error`` plus a Warning event and retried with backoff; nothing is hidden.

Called by: the daemon loop (``controller.daemon``) and tests.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from flinkops.api.flinkconf import checkpoint_dir, is_operator_key, savepoint_dir
from flinkops.api.models import (
    FlinkDeployment,
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    FlinkSessionJob,
    FlinkSessionJobSpec,
    FlinkSessionJobStatus,
    JobManagerDeploymentStatus,
    LifecycleState,
)
from flinkops.api.validation import validate_against, validate_resource
from flinkops.controller.dataplane import ClusterExtras, DataPlane
from flinkops.core.conditions import with_conditions
from flinkops.core.lifecycle import MANUAL_RESTORE
from flinkops.core.planner import (
    Action,
    CancelSessionJob,
    Context,
    DeleteCluster,
    DeployCluster,
    DisposeSnapshots,
    JobObservation,
    Observation,
    Plan,
    RemoveResource,
    ReplaceMissingProcesses,
    ScaleInPlace,
    Status,
    SubmitSessionJob,
    TriggerCheckpoint,
    TriggerObservation,
    TriggerSavepoint,
    headline,
    plan_deployment,
    plan_session_job,
)
from flinkops.errors import (
    Conflict,
    FlinkApiError,
    FlinkNotFound,
    FlinkopsError,
    FlinkUnavailable,
    PermanentError,
)
from flinkops.flink.config import RenderInputs, render_flink_config, render_inputs, taskmanager_count
from flinkops.flink.distribution import PYTHON_DRIVER, FlinkDistribution
from flinkops.flink.rest import CheckpointTriggerStatus, FlinkRestClient, SavepointStatus
from flinkops.ports import (
    ApplicationJob,
    Clock,
    ClusterKey,
    ClusterRequest,
    ClusterRuntime,
    ResourceKey,
    ResourceStore,
    SnapshotStore,
)
from flinkops.settings import SOURCE_DIR_ANNOTATION
from flinkops.snapshots.local import LocalSnapshotStore, PodLocalStorage, UnsupportedSnapshotStorage

__all__ = ["SOURCE_DIR_ANNOTATION", "Controller"]

log = logging.getLogger("flinkops.controller")

RESTORE_KEY = "execution.state-recovery.path"
_REST_TIMEOUT = 5.0
_MAX_BACKOFF = 60.0
_NO_EXECUTION_GRAPH = frozenset({"INITIALIZING", "CREATED"})

#: Test-only fault injection: ``FLINKOPS_FAILPOINT=<when>:<Action>`` makes the controller process exit on the
#: spot, ``before`` writing the intent of a plan holding that action or ``after`` executing it, so tests can
#: prove that a controller dying at any step of an upgrade is a non-event.
FAILPOINT_ENV = "FLINKOPS_FAILPOINT"
FAILPOINT_EXIT_CODE = 86


@dataclass
class _Failures:
    count: int = 0


class Controller:
    def __init__(
        self,
        store: ResourceStore,
        runtime: ClusterRuntime,
        distribution: FlinkDistribution | None,
        home: Path,
        clock: Clock,
        python_executable: str,
        snapshots: SnapshotStore | None = None,
        *,
        local: bool = True,
    ) -> None:
        """``local``: clusters run on this machine (jars, plugins and connectors are fetched here, state has a
        default directory under ``home``). With ``local=False`` (the Kubernetes operator) the image carries the
        jars and plugins, ``local://`` URIs are passed on as they are, ``file://`` state is inside the pods and
        out of reach, and a spec must name its own state directories where an upgrade mode needs them."""
        self.store = store
        self.runtime = runtime
        self.dist = distribution
        self.home = home
        self.clock = clock
        self.python = python_executable
        self.local = local
        self._failures: dict[ResourceKey, _Failures] = {}
        self._last_errors: dict[ResourceKey, str] = {}
        self._versions: dict[str, str] = {}
        self._tasks_running_since: dict[str, int] = {}
        self.snapshots: SnapshotStore = snapshots or (LocalSnapshotStore() if local else PodLocalStorage())
        self._storage_injected = snapshots is not None  # tests pass their own store; it then serves everything
        self._failpoint = os.environ.get(FAILPOINT_ENV, "")
        self.dataplane = DataPlane(home, distribution)
        self._pass_jars: dict[str, Path] = {}  # job jars fetched in this pass, by URI
        self._pass_requests: dict[int, ClusterRequest] = {}  # cluster requests the preflight built, by action

    # ------------------------------------------------------------------ the pass

    def reconcile(self, key: ResourceKey) -> float | None:
        """One pass for one resource; returns seconds until the next pass, or None when it is gone."""
        resource = self.store.get(key)
        if resource is None:
            self._failures.pop(key, None)
            return None
        self._pass_jars, self._pass_requests = {}, {}
        self._last_errors.pop(key, None)
        try:
            plan = self._plan(resource, (uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex))
            return self._execute(resource, plan)
        except Conflict:
            self._last_errors[key] = "Conflict"
            return 0.1  # someone wrote in between: re-read and decide again
        except FlinkopsError as exc:
            self._last_errors[key] = type(exc).__name__
            return self._record_failure(key, exc)

    def last_error(self, key: ResourceKey) -> str | None:
        """The error type the last pass of ``key`` ended with (``Conflict`` included), or None: for metrics."""
        return self._last_errors.get(key)

    def preview(self, resource: FlinkDeployment | FlinkSessionJob) -> Plan:
        """What a pass would do for ``resource`` (a desired spec with its recorded status), without acting or
        writing anything: ``flinkops plan``. Observing is read-only (runtime records, Flink REST, storage)."""
        return self._plan(resource, ("<new job id>", "<new trigger id>", "<new trigger id>"))

    def _plan(self, resource: FlinkDeployment | FlinkSessionJob, fresh_ids: tuple[str, str, str]) -> Plan:
        """validate → observe → plan; ``fresh_ids`` are the job id and trigger ids a plan may hand out."""
        problems = validate_resource(resource, default_state_dirs=self.local)
        target: FlinkDeployment | FlinkSessionJob | None = None
        if isinstance(resource, FlinkSessionJob):
            namespace = resource.metadata.namespace
            target = self.store.get(ResourceKey("FlinkDeployment", namespace, resource.spec.deployment_name))
            existing = {} if target is None else {(target.kind, namespace, target.metadata.name): target}
            problems += validate_against([resource], existing, default_state_dirs=self.local)
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
            return plan_deployment(resource, self._observe_deployment(resource), ctx)
        obs, ctx = self._observe_session_job(resource, target, ctx)
        return plan_session_job(resource, obs, ctx)

    # ------------------------------------------------------------------ observe

    def _observe_deployment(self, resource: FlinkDeployment) -> Observation:
        obs = self._observe_cluster(resource)
        status = resource.status
        job_id = status.job_status.job_id if status else None
        if status is None or not job_id:
            return obs
        info = status.job_status.savepoint_info
        if info is not None and info.trigger_id:
            trigger = obs.savepoint_trigger
            if trigger is None or trigger.state not in ("COMPLETED", "IN_PROGRESS"):
                # Storage is the truth when Flink cannot tell: a savepoint of this job that completed after
                # the trigger was recorded is the one the trigger produced.
                config = self._config(resource)
                directory = savepoint_dir(config)
                since = info.trigger_timestamp or 0
                try:
                    store = self._snapshot_store(resource, config)
                    stored = store.latest_savepoint(directory, job_id, since) if directory else None
                except UnsupportedSnapshotStorage:
                    stored = None  # storage this machine cannot list: rely on what Flink reports
                obs = replace(obs, stored_savepoint=stored)
        return obs

    def _snapshot_store(
        self, resource: FlinkDeployment | FlinkSessionJob, config: dict[str, str] | None = None
    ) -> SnapshotStore:
        """Storage as this resource's configuration (``config``, when already rendered) reaches it: local
        paths, or S3 with its endpoint and credentials."""
        if self._storage_injected:
            return self.snapshots
        if config is None:
            config = self._resource_config(resource)
        return self.dataplane.snapshot_store(config, self.snapshots)

    def _config(self, resource: FlinkDeployment) -> dict[str, str]:
        return render_flink_config(resource.spec, self._render_inputs(resource))

    def _resource_config(self, resource: FlinkDeployment | FlinkSessionJob) -> dict[str, str]:
        """A deployment's rendered Flink configuration, or a session job's own configuration."""
        if isinstance(resource, FlinkDeployment):
            return self._config(resource)
        return dict(resource.spec.flink_configuration)

    def _observe_cluster(self, resource: FlinkDeployment) -> Observation:
        ckey = ClusterKey(resource.metadata.namespace, resource.metadata.name)
        cluster = self.runtime.observe(ckey)
        status = resource.status
        job_id = status.job_status.job_id if status else None
        if cluster is None or not cluster.jobmanager_up or cluster.rest_url is None:
            stored = self._stored_checkpoint(resource, job_id) if job_id else None
            return Observation(
                cluster_exists=cluster is not None,
                cluster_generation=cluster.generation if cluster else None,
                cluster_job_id=cluster.job_id if cluster else None,
                jobmanager_alive=bool(cluster and cluster.jobmanager_up),
                taskmanagers_alive=cluster.taskmanagers_alive if cluster else 0,
                jobmanagers_alive=cluster.jobmanagers_alive if cluster else 0,
                jobmanagers_expected=cluster.jobmanagers_expected if cluster else 0,
                taskmanagers_expected=cluster.taskmanagers_expected if cluster else 0,
                latest_stored_checkpoint=stored,
            )
        base = Observation(
            cluster_exists=True,
            cluster_generation=cluster.generation,
            cluster_job_id=cluster.job_id,
            jobmanager_alive=True,
            rest_url=cluster.rest_url,
            taskmanagers_alive=cluster.taskmanagers_alive,
            jobmanagers_alive=cluster.jobmanagers_alive,
            jobmanagers_expected=cluster.jobmanagers_expected,
            taskmanagers_expected=cluster.taskmanagers_expected,
        )
        try:
            with FlinkRestClient(cluster.rest_url, timeout=_REST_TIMEOUT) as rest:
                version = self._flink_version(rest, cluster.rest_url)
                job = self._job(rest, job_id) if resource.spec.job is not None and job_id else None
                savepoint, checkpoint = self._triggers(rest, resource.status, job_id)
        except FlinkUnavailable:
            return base
        return replace(
            base,
            rest_ready=True,
            job=job,
            flink_version=version,
            savepoint_trigger=savepoint,
            checkpoint_trigger=checkpoint,
        )

    @staticmethod
    def _triggers(
        rest: FlinkRestClient, status: Status | None, job_id: str | None
    ) -> tuple[TriggerObservation | None, TriggerObservation | None]:
        """Where the savepoint and checkpoint triggers recorded in status stand in Flink."""
        if status is None or not job_id:
            return None, None
        info, cinfo = status.job_status.savepoint_info, status.job_status.checkpoint_info
        savepoint = checkpoint = None
        if info is not None and info.trigger_id:
            trigger_id = info.trigger_id
            savepoint = _trigger_state(lambda: rest.savepoint_status(job_id, trigger_id))
        if cinfo is not None and cinfo.trigger_id:
            trigger_id = cinfo.trigger_id
            checkpoint = _trigger_state(lambda: rest.checkpoint_status(job_id, trigger_id))
        return savepoint, checkpoint

    def _flink_version(self, rest: FlinkRestClient, url: str) -> str | None:
        if url not in self._versions:
            self._versions[url] = str(rest.config().flink_version or "")
        return self._versions[url] or None

    def _job(self, rest: FlinkRestClient, job_id: str) -> JobObservation | None:
        now_ms = int(self.clock.now() * 1000)
        return observe_job(rest, job_id, now_ms=now_ms, tasks_running_since=self._tasks_running_since)

    def _observe_session_job(
        self, resource: FlinkSessionJob, target: FlinkDeployment | FlinkSessionJob | None, ctx: Context
    ) -> tuple[Observation, Context]:
        rest_url = None
        if (
            isinstance(target, FlinkDeployment)
            and target.status is not None
            and target.status.job_manager_deployment_status == JobManagerDeploymentStatus.READY
        ):
            rest_url = target.status.cluster_info.get("rest-url")
        job_id = resource.status.job_status.job_id if resource.status else None
        ready = replace(ctx, session_ready=rest_url is not None, session_rest_url=rest_url)
        if rest_url is None or job_id is None:
            return Observation(), ready
        try:
            with FlinkRestClient(rest_url, timeout=_REST_TIMEOUT) as rest:
                job = self._job(rest, job_id)
                savepoint, checkpoint = self._triggers(rest, resource.status, job_id)
        except FlinkUnavailable:
            return Observation(), ctx  # the session's REST API is down: treat the cluster as not ready
        observed = Observation(
            rest_ready=True, rest_url=rest_url, job=job, savepoint_trigger=savepoint, checkpoint_trigger=checkpoint
        )
        return observed, ready

    def _stored_checkpoint(self, resource: FlinkDeployment, job_id: str) -> str | None:
        config = self._config(resource)
        directory = checkpoint_dir(config)
        try:
            return self._snapshot_store(resource, config).latest_checkpoint(directory, job_id) if directory else None
        except UnsupportedSnapshotStorage:
            return None  # storage this machine cannot list: rely on what Flink reports

    # ------------------------------------------------------------------ act and record

    def _execute(self, resource: FlinkDeployment | FlinkSessionJob, plan: Plan) -> float | None:
        key = ResourceKey.of(resource)
        current = resource
        self._preflight(resource, plan)
        for action in plan.actions:
            self._failpoint_hit("before", action)
        before = resource.status.lifecycle_state if resource.status else None
        if plan.intent is not None and plan.intent != resource.status and plan.actions:
            current = self.store.update_status(resource.model_copy(update={"status": plan.intent}))
            self._lifecycle_event(key, before, plan.intent.lifecycle_state)
            before = plan.intent.lifecycle_state
        actions = list(plan.actions)
        status = plan.status
        for index in range(len(actions)):
            action = actions[index]  # by index: a refreshed restore point replaces later actions
            log.info("%s: %s", key, action.describe())
            if isinstance(action, RemoveResource):
                self.store.remove(key)
                self._failures.pop(key, None)
                return None
            self._act(resource, action)
            self._failpoint_hit("after", action)
            if isinstance(action, DeleteCluster) and isinstance(resource, FlinkDeployment):
                actions, status = self._refresh_restore_point(resource, actions, status, index, action.latest_state)
        plan = replace(plan, status=status)
        for note in plan.events:
            self.store.record_event(key, note.type, note.reason, note.message)
        self._lifecycle_event(key, before, plan.status.lifecycle_state)
        if plan.status != current.status:
            self.store.update_status(current.model_copy(update={"status": plan.status}))
        self._failures.pop(key, None)
        return plan.requeue_after

    def _lifecycle_event(self, key: ResourceKey, before: LifecycleState | None, after: LifecycleState | None) -> None:
        if after is not None and after != before:
            was = before.value if before is not None else "new"
            self.store.record_event(key, "Normal", "LifecycleChanged", f"lifecycle state {was} -> {after.value}")

    def _preflight(self, resource: FlinkDeployment | FlinkSessionJob, plan: Plan) -> None:
        """Refuse a plan that would start from state that is not there, before anything is written or
        stopped: a wrong ``initialSavepointPath`` or restore target must not cost the running job.

        A checkpoint of the job being replaced is exempt: Flink may subsume it any moment, and the restore
        moves to that job's newest checkpoint once it is stopped (``_refresh_restore_point``)."""
        current = resource.status.job_status.job_id if resource.status else None
        for action in plan.actions:
            # What a new cluster or job needs from outside (its jar, plugins, connectors, S3 buckets) is
            # fetched and checked now, before the intent is written and before anything is stopped.
            if isinstance(action, DeployCluster) and isinstance(resource, FlinkDeployment):
                self._pass_requests[id(action)] = self._cluster_request(resource, action)
            elif isinstance(action, SubmitSessionJob) and isinstance(resource, FlinkSessionJob):
                self._session_job_jar(resource, action.spec)
            restore = getattr(action, "restore_path", None)
            if not restore or (current and f"/{current}/chk-" in restore):
                continue
            try:
                present = self._snapshot_store(resource).exists(restore)
            except UnsupportedSnapshotStorage:
                continue  # cannot look there from here; Flink reports a missing path when it starts
            if not present:
                raise PermanentError(
                    f"the state to restore from does not exist: {restore} (no _metadata there); nothing was "
                    "started or stopped. Fix spec.job.initialSavepointPath or pick a snapshot from "
                    "`flinkops snapshots NAME`"
                )

    def _failpoint_hit(self, when: str, action: Action) -> None:
        if self._failpoint and self._failpoint == f"{when}:{type(action).__name__}":
            log.error("failpoint %s reached: exiting", self._failpoint)
            logging.shutdown()
            os._exit(FAILPOINT_EXIT_CODE)

    def _refresh_restore_point(
        self, resource: FlinkDeployment, actions: list[Action], status: Status, done: int, latest: bool
    ) -> tuple[list[Action], Status]:
        """Once a cluster is stopped, storage is the truth: Flink may have completed (and subsumed the
        observed) checkpoints between the last observation and the stop, and its statistics may not have shown
        the first one yet. When the plan restarts the job from its latest state, move the restore point to the
        stopped job's newest completed checkpoint. An explicit savepoint is never replaced."""
        old_job = resource.status.job_status.job_id if resource.status else None
        planned = status.job_status.upgrade_savepoint_path
        if not old_job or not (latest or (planned and f"/{old_job}/chk-" in planned)):
            return actions, status  # stateless, or restoring an explicit savepoint: nothing to refresh
        newest = self._stored_checkpoint(resource, old_job)
        if newest is None and planned is None and latest and _checkpointed(resource, old_job):
            raise PermanentError(
                f"{MANUAL_RESTORE}: job {old_job} completed checkpoints, but none is left in checkpoint storage; "
                "nothing was started"
            )
        if newest is None or newest == planned:
            return actions, status
        log.info("%s: restoring from %s (newer than the observed %s)", ResourceKey.of(resource), newest, planned)
        refreshed = [
            replace(a, restore_path=newest) if i > done and isinstance(a, DeployCluster) else a
            for i, a in enumerate(actions)
        ]
        job_status = status.job_status.model_copy(update={"upgrade_savepoint_path": newest})
        return refreshed, status.model_copy(update={"job_status": job_status})

    def _act(self, resource: FlinkDeployment | FlinkSessionJob, action: Action) -> None:
        ckey = ClusterKey(resource.metadata.namespace, resource.metadata.name)
        if isinstance(action, DeleteCluster):
            self.runtime.delete(ckey)
        elif isinstance(action, DeployCluster):
            assert isinstance(resource, FlinkDeployment)
            # Built by the preflight, unless the restore point moved since (a new action then).
            request = self._pass_requests.get(id(action)) or self._cluster_request(resource, action)
            self.runtime.deploy(request)
        elif isinstance(action, ReplaceMissingProcesses):
            environment = self._process_environment(resource) if isinstance(resource, FlinkDeployment) else {}
            self.runtime.replace_missing_processes(ckey, environment)
        elif isinstance(action, SubmitSessionJob):
            assert isinstance(resource, FlinkSessionJob)
            self._submit_session_job(resource, action)
        elif isinstance(action, ScaleInPlace):
            assert isinstance(resource, FlinkDeployment)
            self._scale_in_place(resource, action)
        elif isinstance(action, TriggerSavepoint | TriggerCheckpoint):
            self._trigger(resource, action)
        elif isinstance(action, DisposeSnapshots):
            store = self._snapshot_store(resource)
            for path in action.paths:
                store.dispose(path)
        elif isinstance(action, CancelSessionJob):
            try:
                with FlinkRestClient(action.rest_url, timeout=_REST_TIMEOUT) as rest:
                    rest.cancel(action.job_id)
            except FlinkNotFound:
                pass  # already gone: the goal of cancelling is met
        else:  # pragma: no cover - every action type is handled above
            raise PermanentError(f"unknown action {action!r}")

    def _trigger(
        self, resource: FlinkDeployment | FlinkSessionJob, action: TriggerSavepoint | TriggerCheckpoint
    ) -> None:
        with FlinkRestClient(action.rest_url, timeout=_REST_TIMEOUT) as rest:
            if isinstance(action, TriggerCheckpoint):
                rest.trigger_checkpoint(action.job_id, action.checkpoint_type, trigger_id=action.trigger_id)
                return
            directory = savepoint_dir(self._resource_config(resource))
            if action.stop:
                rest.stop_with_savepoint(
                    action.job_id, directory, format_type=action.format_type, trigger_id=action.trigger_id
                )
            else:
                rest.trigger_savepoint(
                    action.job_id, directory, format_type=action.format_type, trigger_id=action.trigger_id
                )

    def _scale_in_place(self, resource: FlinkDeployment, action: ScaleInPlace) -> None:
        ckey = ClusterKey(resource.metadata.namespace, resource.metadata.name)
        needed = taskmanager_count(action.spec, render_flink_config(action.spec, self._render_inputs(resource)))
        if needed > action.taskmanagers:
            # Scaling up: the slots first, so the adaptive scheduler can use them as soon as it may. Scaling
            # down keeps the now idle TaskManagers until the next deployment: stopping one that still runs
            # tasks would turn an in-place rescale into a failover.
            self.runtime.scale_taskmanagers(ckey, needed, self._process_environment(resource))
        with FlinkRestClient(action.rest_url, timeout=_REST_TIMEOUT) as rest:
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

    def _record_failure(self, key: ResourceKey, exc: FlinkopsError) -> float:
        failures = self._failures.setdefault(key, _Failures())
        failures.count += 1
        delay = min(_MAX_BACKOFF, 2.0 ** min(failures.count, 6))
        message = f"{type(exc).__name__}: {exc}"
        log.warning("%s: %s (retry in %.0fs)", key, message, delay)
        try:
            self.store.record_event(key, "Warning", "ReconcileError", message)
            resource = self.store.get(key)
            if resource is not None:
                # A resource that failed before its first status write still gets one: the error is the
                # first thing `flinkops get` must show.
                status = resource.status or (
                    FlinkDeploymentStatus() if isinstance(resource, FlinkDeployment) else FlinkSessionJobStatus()
                )
                if status.error != message:
                    failed = with_conditions(status.model_copy(update={"error": message}), int(self.clock.now() * 1000))
                    self.store.update_status(resource.model_copy(update={"status": failed}))
        except FlinkopsError as record_exc:  # the store itself failing: log, retry later
            log.error("%s: could not record the failure: %s", key, record_exc)
        return delay

    # ------------------------------------------------------------------ building requests

    def _render_inputs(self, resource: FlinkDeployment) -> RenderInputs:
        if not self.local:
            return render_inputs(resource, None)
        java_opts = self.dist.default_java_opts if self.dist is not None else ""
        return render_inputs(resource, self.home, self.python, java_opts)

    def _source_dir(self, resource: FlinkDeployment | FlinkSessionJob) -> Path | None:
        annotations = resource.metadata.annotations or {}
        source = annotations.get(SOURCE_DIR_ANNOTATION)
        return Path(source) if source else None

    def _jar(self, uri: str, base: Path | None, config: dict[str, str]) -> Path:
        """The job jar behind ``uri``, fetched at most once per pass (preflight fetches, the action reuses)."""
        if uri not in self._pass_jars:
            self._pass_jars[uri] = self.dataplane.fetch_jar(uri, base, config)
        return self._pass_jars[uri]

    def _process_environment(self, resource: FlinkDeployment) -> dict[str, str]:
        if not self.local:
            return {}  # pods get their environment (secrets included) from the pod template
        args = resource.spec.job.args if resource.spec.job is not None else []
        return self.dataplane.process_environment(self._config(resource), args)

    def _cluster_request(self, resource: FlinkDeployment, action: DeployCluster) -> ClusterRequest:
        """Everything the runtime needs for one cluster. Locally the job jar, plugins and connectors are fetched
        here and secrets go to the processes' environment; for pods the image carries them, the jar URI is passed
        on as written, and pods read secrets from the environment their template gives. Secrets never stay in
        the configuration either way (it lands in files and ConfigMaps)."""
        spec: FlinkDeploymentSpec = action.spec
        config = render_flink_config(spec, self._render_inputs(resource))
        if action.restore_path:
            config[RESTORE_KEY] = action.restore_path
        args = spec.job.args if spec.job is not None else ()
        extras = self.dataplane.prepare_cluster(spec, config, args) if self.local else ClusterExtras()
        config = {**self.dataplane.without_secrets(config), **extras.config}
        working_dir = self._source_dir(resource) if self.local else None
        application = None
        if spec.job is not None:
            assert action.job_id is not None
            python = spec.job.entry_class == PYTHON_DRIVER
            jars: list[Path] = []
            if self.local and spec.job.jar_uri and not (python and _is_python_jar(spec.job.jar_uri)):
                jars.append(self._jar(spec.job.jar_uri, working_dir, config))
            application = ApplicationJob(
                entry_class=spec.job.entry_class or "",
                args=tuple(spec.job.args),
                job_id=action.job_id,
                jar_paths=tuple(jars),
                python=python,
                jar_uri=spec.job.jar_uri,
            )
        return ClusterRequest(
            key=ClusterKey(resource.metadata.namespace, resource.metadata.name),
            generation=action.generation,
            flink_config=config,
            jobmanager_replicas=spec.job_manager.replicas if spec.job_manager else 1,
            taskmanager_replicas=taskmanager_count(spec, config),
            application=application,
            log_config=dict(spec.log_configuration or {}),
            working_dir=working_dir,
            environment=extras.environment,
            plugins=extras.plugins,
            lib_jars=extras.lib_jars,
            resource=resource.model_copy(update={"spec": spec}),
        )

    def _session_job_jar(self, resource: FlinkSessionJob, spec: FlinkSessionJobSpec) -> Path:
        """The session job's jar; an ``s3://`` URI is read with the session cluster's S3 settings."""
        assert spec.job is not None and spec.job.jar_uri is not None
        namespace = resource.metadata.namespace
        target = self.store.get(ResourceKey("FlinkDeployment", namespace, spec.deployment_name))
        config = self._config(target) if isinstance(target, FlinkDeployment) else {}
        config.update(spec.flink_configuration)
        return self._jar(spec.job.jar_uri, self._source_dir(resource), config)

    def _submit_session_job(self, resource: FlinkSessionJob, action: SubmitSessionJob) -> None:
        spec: FlinkSessionJobSpec = action.spec
        assert spec.job is not None and spec.job.jar_uri is not None
        jar = self._session_job_jar(resource, spec)
        config = {k: v for k, v in spec.flink_configuration.items() if not is_operator_key(k)}
        with FlinkRestClient(action.rest_url, timeout=60.0) as rest:
            if _job_exists(rest, action.job_id):
                return  # submitted by an interrupted earlier pass: do not run it twice
            jar_id = rest.upload_jar(jar)
            try:
                rest.run_jar(
                    jar_id,
                    entry_class=spec.job.entry_class,
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


def _trigger_state(read: Callable[[], SavepointStatus | CheckpointTriggerStatus]) -> TriggerObservation:
    """Flink's answer about one trigger id, as the planner reads it (UNKNOWN: Flink has no such trigger)."""
    try:
        result = read()
    except FlinkNotFound:
        return TriggerObservation("UNKNOWN")
    if result.in_progress:
        return TriggerObservation("IN_PROGRESS")
    if result.succeeded:
        return TriggerObservation("COMPLETED", location=str(result.result))
    if result.failed:
        cause = result.failure.stacktrace if result.failure is not None else None
        return TriggerObservation("FAILED", failure=headline(cause or "") or None)
    return TriggerObservation("UNKNOWN")


def _job_exists(rest: FlinkRestClient, job_id: str) -> bool:
    return any(j.job_id == job_id for j in rest.list_jobs())


def _is_python_jar(uri: str) -> bool:
    return Path(urllib.parse.urlparse(uri).path).name.startswith("flink-python")


def observe_job(
    rest: FlinkRestClient, job_id: str, *, now_ms: int, tasks_running_since: dict[str, int]
) -> JobObservation | None:
    """The job's state, timing, failure cause and checkpoint progress; None when the cluster lacks it.

    ``tasks_running_since`` remembers, across passes, when every task of a job was first seen RUNNING: Flink's
    job-level RUNNING timestamp is set at scheduling, seconds before the tasks run on a busy machine, so the
    stability window is timed from this observation instead.
    """
    # Look the job up in the overview, not with /jobs/:id: a job whose main() failed is listed there but
    # answers HTTP 500 on /jobs/:id. The per-job details are fetched only for a RUNNING job.
    job = next((j for j in rest.list_jobs() if j.job_id == job_id), None)
    if job is None:
        return None
    running_since, all_running = None, True
    if job.state == "RUNNING":
        details = rest.job(job_id)
        all_running = details.all_vertices_running
    if job.state == "RUNNING" and all_running:
        running_since = tasks_running_since.setdefault(job_id, now_ms)
    else:
        tasks_running_since.pop(job_id, None)
    error = None
    if job.state == "FAILED":
        # The exception history can trail the FAILED state by a moment; the execution result carries the
        # final failure cause as soon as the job is terminal.
        try:
            error = rest.job_exceptions(job_id).root_exception
            if not error:
                failure = rest.job_result(job_id).failure
                error = failure.stacktrace if failure else None
        except FlinkNotFound:
            error = None
    observed = JobObservation(
        job_id=job_id,
        state=job.state or "RECONCILING",
        name=job.name,
        start_time=job.start_time,
        end_time=job.end_time,
        error=error,
        running_since=running_since,
        all_tasks_running=all_running,
        duration_ms=job.duration,
    )
    if job.state in ("FINISHED", "FAILED"):
        try:
            observed = replace(observed, accumulators=rest.accumulators(job_id))
        except FlinkApiError as exc:
            log.debug("no accumulators for job %s: %s", job_id, exc)
    if job.state in _NO_EXECUTION_GRAPH:
        # Flink answers 500 on /checkpoints until the job has an execution graph; there is nothing to
        # report yet, and asking would turn a normal start into a reconcile failure with backoff.
        return observed
    try:
        stats = rest.checkpoints(job_id)
    except FlinkNotFound:
        return observed  # the job vanished between the two calls; the next pass sees it gone
    latest = stats.latest_completed
    return replace(
        observed,
        completed_checkpoints=stats.counts.completed or 0,
        latest_checkpoint_path=latest.external_path if latest else None,
        latest_checkpoint_time=latest.latest_ack_timestamp if latest else None,
    )
