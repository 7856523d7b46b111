"""Observe: what the world looks like for one resource, read with what was last deployed.

The cluster from the runtime (processes or pods), the job, its checkpoints and the pending savepoint and
checkpoint triggers from Flink's REST API, and, when Flink cannot tell, the newest checkpoint or savepoint in
storage. The result is a frozen ``Observation`` for the pure planner; nothing here changes anything.

Called by: the controller's loop, once per pass (and by ``preview`` for ``flinkops plan``).

Invariant: an unreachable REST API is an observation (``rest_ready=False``), not an error; storage this target
cannot list (``UnsupportedSnapshotStorage``) means "rely on what Flink reports".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from flinkops.api.flinkconf import checkpoint_dir, savepoint_dir, taskmanager_count
from flinkops.api.models import FlinkDeployment, FlinkSessionJob, JobManagerDeploymentStatus
from flinkops.controller.autoscaling import autoscaled_spec
from flinkops.controller.requests import RequestBuilder, cluster_key
from flinkops.core.planner import Context, JobObservation, Observation, Status, TriggerObservation, headline
from flinkops.core.planner.types import TaskManagerUse
from flinkops.errors import (
    FlinkApiError,
    FlinkNotFound,
    FlinkopsError,
    FlinkUnavailable,
    UnsupportedSnapshotStorage,
)
from flinkops.ports import Clock, ClusterRuntime, FlinkApi, FlinkApiFactory
from flinkops.ports.flink import TERMINAL_JOB_STATES, CheckpointTriggerStatus, SavepointStatus

__all__ = ["REST_TIMEOUT", "Observer", "observe_job"]

log = logging.getLogger("flinkops.controller")

REST_TIMEOUT = 5.0
_NO_EXECUTION_GRAPH = frozenset({"INITIALIZING", "CREATED"})
_FAILING_OVER = frozenset({"RESTARTING", "FAILING"})
_TASKMANAGER_ID = re.compile(r"(?:.*-)?taskmanager-(\d+)")


class Observer:
    def __init__(self, runtime: ClusterRuntime, flink: FlinkApiFactory, requests: RequestBuilder, clock: Clock) -> None:
        self.runtime = runtime
        self.flink = flink
        self.requests = requests
        self.clock = clock
        self._versions: dict[str, str] = {}
        #: When every task of a job was first seen RUNNING, by job id, across passes (see ``observe_job``).
        self._tasks_running_since: dict[str, int] = {}
        #: When each TaskManager of a growing session cluster was first seen with every slot free, by
        #: (REST URL, resource id), across passes (``_taskmanager_use``).
        self._idle_since: dict[tuple[str, str], float] = {}

    # ------------------------------------------------------------------ deployments

    def deployment(self, resource: FlinkDeployment) -> Observation:
        obs = self._cluster(resource)
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
                config = self.requests.config(resource)
                directory = savepoint_dir(config)
                since = info.trigger_timestamp or 0
                try:
                    store = self.requests.snapshot_store(resource, config)
                    stored = store.latest_savepoint(directory, job_id, since) if directory else None
                except UnsupportedSnapshotStorage:
                    stored = None
                obs = replace(obs, stored_savepoint=stored)
        return obs

    def stored_checkpoint(self, resource: FlinkDeployment, job_id: str) -> str | None:
        """The newest completed checkpoint of ``job_id`` in the deployment's checkpoint storage, if readable."""
        config = self.requests.config(resource)
        directory = checkpoint_dir(config)
        try:
            store = self.requests.snapshot_store(resource, config)
            return store.latest_checkpoint(directory, job_id) if directory else None
        except UnsupportedSnapshotStorage:
            return None

    def _cluster(self, resource: FlinkDeployment) -> Observation:
        cluster = self.runtime.observe(cluster_key(resource))
        status = resource.status
        job_id = status.job_status.job_id if status else None
        if cluster is None or not cluster.jobmanager_up or cluster.rest_url is None:
            stored = self.stored_checkpoint(resource, job_id) if job_id else None
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
                prepared_generation=cluster.prepared_generation if cluster else None,
                prepared_ready=bool(cluster and cluster.prepared_ready),
                fault=cluster.fault if cluster else None,
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
            prepared_generation=cluster.prepared_generation,
            prepared_ready=cluster.prepared_ready,
            fault=cluster.fault,
        )
        try:
            with self.flink(cluster.rest_url, REST_TIMEOUT) as rest:
                version = self._flink_version(rest, cluster.rest_url)
                job = self._job(rest, job_id, usage=True) if resource.spec.job is not None and job_id else None
                savepoint, checkpoint = _triggers(rest, resource.status, job_id)
                slots: tuple[TaskManagerUse, ...] = ()
                if self.runtime.elastic_sessions and _may_release(resource, cluster.taskmanagers_expected):
                    slots = self._taskmanager_use(rest, cluster.rest_url)
        except FlinkUnavailable:
            return base
        if job is not None and job_id and job.state in _FAILING_OVER and job.error:
            job = replace(job, error=self._with_storage_cause(resource, job_id, job.error))
        return replace(
            base,
            rest_ready=True,
            job=job,
            flink_version=version,
            savepoint_trigger=savepoint,
            checkpoint_trigger=checkpoint,
            taskmanager_slots=slots,
        )

    def _taskmanager_use(self, rest: FlinkApi, url: str) -> tuple[TaskManagerUse, ...]:
        """A growing session cluster's TaskManagers as Flink reports them, each with how long it has been idle.
        Only the ones whose resource id names their process (``taskmanager-<index>``, as the local runtime
        starts them) can be told apart, so only those are reported."""
        now = self.clock.now()
        found: list[TaskManagerUse] = []
        seen: set[tuple[str, str]] = set()
        for tm in rest.taskmanagers():
            match = _TASKMANAGER_ID.fullmatch(tm.resource_id)
            if match is None:
                continue
            key = (url, tm.resource_id)
            seen.add(key)
            if tm.slots_free < tm.slots_total:
                self._idle_since.pop(key, None)
                idle = 0.0
            else:
                idle = now - self._idle_since.setdefault(key, now)
            found.append(TaskManagerUse(int(match.group(1)), tm.slots_total, tm.slots_free, idle))
        for key in [k for k in self._idle_since if k[0] == url and k not in seen]:
            del self._idle_since[key]
        return tuple(sorted(found, key=lambda t: t.index))

    def _with_storage_cause(self, resource: FlinkDeployment, job_id: str, error: str) -> str:
        """A job failing over because its checkpoints fail: Flink's exception names no cause ("Exceeded checkpoint
        tolerable failure threshold ... Failure to finalize checkpoint"; the cause is in the JobManager's log).
        The operator reads the same checkpoint storage itself, and what it cannot do there (a bucket missing,
        keys refused, an endpoint that does not answer) is told as the cause."""
        if "checkpoint" not in error.lower():
            return error
        try:
            self.stored_checkpoint(resource, job_id)
        except FlinkopsError as exc:
            return f"{error.rstrip()}\nCaused by: the checkpoint storage, as the operator reads it: {exc}"
        return error

    def _flink_version(self, rest: FlinkApi, url: str) -> str | None:
        if url not in self._versions:
            self._versions[url] = str(rest.config().flink_version or "")
        return self._versions[url] or None

    def _job(self, rest: FlinkApi, job_id: str, *, usage: bool = False) -> JobObservation | None:
        now_ms = int(self.clock.now() * 1000)
        return observe_job(rest, job_id, now_ms=now_ms, tasks_running_since=self._tasks_running_since, usage=usage)

    # ------------------------------------------------------------------ session jobs

    def session_job(
        self, resource: FlinkSessionJob, target: FlinkDeployment | FlinkSessionJob | None, ctx: Context
    ) -> tuple[Observation, Context]:
        """The session job in its session cluster, and the context told whether that cluster is ready. When the
        job is not running there (stopped, or the cluster forgot it), storage tells its newest checkpoint; when
        Flink cannot tell how a recorded savepoint trigger ended, storage tells whether it completed."""
        rest_url = None
        ctx = replace(ctx, session_exists=isinstance(target, FlinkDeployment))
        if (
            isinstance(target, FlinkDeployment)
            and target.status is not None
            and target.status.job_manager_deployment_status == JobManagerDeploymentStatus.READY
        ):
            rest_url = target.status.cluster_info.get("rest-url")
        status = resource.status
        job_id = status.job_status.job_id if status else None
        ready = replace(ctx, session_ready=rest_url is not None, session_rest_url=rest_url)
        if rest_url is None or job_id is None:
            return Observation(), ready
        try:
            with self.flink(rest_url, REST_TIMEOUT) as rest:
                job = self._job(rest, job_id)
                savepoint, checkpoint = _triggers(rest, status, job_id)
        except FlinkUnavailable:
            return Observation(), ctx  # the session's REST API is down: treat the cluster as not ready
        observed = Observation(
            rest_ready=True, rest_url=rest_url, job=job, savepoint_trigger=savepoint, checkpoint_trigger=checkpoint
        )
        stopped = job is None or job.state in TERMINAL_JOB_STATES
        info = status.job_status.savepoint_info if status else None
        unresolved = info is not None and bool(info.trigger_id)
        unresolved = unresolved and (savepoint is None or savepoint.state not in ("COMPLETED", "IN_PROGRESS"))
        if not stopped and not unresolved:
            return observed, ready
        config = self._session_job_config(resource, target)
        try:
            store = self.requests.snapshot_store(resource, config)
            if stopped and (directory := checkpoint_dir(config)):
                observed = replace(observed, latest_stored_checkpoint=store.latest_checkpoint(directory, job_id))
            if unresolved and info is not None and (directory := savepoint_dir(config)):
                since = info.trigger_timestamp or 0
                observed = replace(observed, stored_savepoint=store.latest_savepoint(directory, job_id, since))
        except UnsupportedSnapshotStorage:
            pass  # storage this target cannot read: rely on what Flink reports
        return observed, ready

    def _session_job_config(
        self, resource: FlinkSessionJob, target: FlinkDeployment | FlinkSessionJob | None
    ) -> dict[str, str]:
        """The configuration a session job runs with: its own ``flinkConfiguration`` over the session cluster's
        rendered one (where its checkpoints and savepoints go unless it names directories of its own)."""
        config = self.requests.config(target) if isinstance(target, FlinkDeployment) else {}
        config.update(resource.spec.flink_configuration)
        return config


def _triggers(
    rest: FlinkApi, status: Status | None, job_id: str | None
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


def observe_job(
    rest: FlinkApi, job_id: str, *, now_ms: int, tasks_running_since: dict[str, int], usage: bool = False
) -> JobObservation | None:
    """The job's state, timing, failure cause and checkpoint progress; None when the cluster lacks it. With
    ``usage`` (the cluster is the job's own: an application deployment's), what the cluster's JVMs use, for the
    cost report; a session job shares its cluster, so its observation carries none (no double count).

    ``tasks_running_since`` remembers, across passes, when every task of a job was first seen RUNNING: Flink's
    job-level RUNNING timestamp is set at scheduling, seconds before the tasks run on a busy machine, so the
    stability window is timed from this observation instead.
    """
    # Look the job up in the overview, not with /jobs/:id: a job whose main() failed is listed there but
    # answers HTTP 500 on /jobs/:id. Its subtask counts say whether every task runs (a steady pass makes two
    # REST calls: the overview and the checkpoints).
    job = next((j for j in rest.list_jobs() if j.job_id == job_id), None)
    if job is None:
        return None
    running_since, all_running = None, True
    if job.state == "RUNNING":
        # The overview counts the job's subtasks by state; only an answer without them costs a second call.
        overview = job.all_tasks_running
        all_running = overview if overview is not None else rest.job(job_id).all_vertices_running
    if job.state == "RUNNING" and all_running:
        running_since = tasks_running_since.setdefault(job_id, now_ms)
    else:
        tasks_running_since.pop(job_id, None)
    error = None
    if job.state in _FAILING_OVER:
        # Failing over: the latest root exception says why (S3 the pods cannot reach, a checkpoint that failed).
        try:
            error = rest.job_exceptions(job_id).root_exception
        except FlinkNotFound:
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
        observed_at=now_ms,
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
    # Every pass, though the run records them at most every ten minutes and at its end: Flink's REST API answers
    # metric requests from a cache it refreshes only when asked (and after the answer), so a cluster asked once in
    # a while answers with the figures of its previous request, and a run's end would be recorded with the CPU time
    # of its start. An ended job's cluster still answers until it is released: its last figures count.
    if usage:
        observed = replace(observed, **_usage(rest))
    try:
        stats = rest.checkpoints(job_id)
    except FlinkNotFound:
        # the job vanished between the two calls (the next pass sees it gone), or it has no checkpoints to tell
        # of: a batch job's statistics are a 404 in Flink 2
        return observed
    latest = stats.latest_completed
    observed = replace(
        observed,
        completed_checkpoints=stats.counts.completed or 0,
        latest_checkpoint_path=latest.external_path if latest else None,
        latest_checkpoint_time=latest.latest_ack_timestamp if latest else None,
        checkpoint_state_bytes=latest.state_size if latest and latest.state_size is not None else stats.state_size_avg,
        checkpoint_uploaded_bytes=stats.checkpointed_size_avg,
    )
    return observed


def _usage(rest: FlinkApi) -> dict[str, Any]:
    """The cluster's JVM usage for ``JobObservation`` (cost figures: a missing answer is unknown, never a pass
    that fails)."""
    try:
        used = rest.cluster_usage()
    except (FlinkApiError, FlinkUnavailable) as exc:
        log.debug("no cluster usage: %s", exc)
        return {}
    return {"cluster_cpu_seconds": used.cpu_seconds, "cluster_memory_bytes": used.memory_bytes}


def _may_release(resource: FlinkDeployment, running: int) -> bool:
    """Whether the cluster's TaskManager use is worth reading: a session cluster grows and shrinks; an application
    cluster runs more TaskManagers than its job needs after an in-place rescale down (to a lower
    ``job.parallelism``, or to the autoscaler's)."""
    if resource.spec.job is None:
        return True
    spec = autoscaled_spec(resource)
    return running > taskmanager_count(spec, spec.flink_configuration)
