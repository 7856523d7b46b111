"""An in-memory Flink: clusters by REST URL, their jobs, checkpoints and savepoints, on a virtual clock.

``FakeFlink`` is a ``FlinkApiFactory`` (call it with a REST URL and a timeout to get a ``FlinkApi``) and the
place ``fakes.runtime.FakeRuntime`` starts, stops and breaks clusters. What it models, as far as the controller
can tell the difference:

* a job goes INITIALIZING → RUNNING after ``JobScript.start_delay``; from then on it reads ``RATE`` records a
  second (its ``offset``), and every ``execution.checkpointing.interval`` of its configuration it completes a
  checkpoint into fake storage (``<checkpoint dir>/<job id>/chk-<n>``), keeping the newest
  ``execution.checkpointing.num-retained`` (default 1) and deleting older ones, as Flink subsumes them;
* a job restored from a snapshot starts from the offset that snapshot captured and continues its checkpoint
  numbering; a restore path that is not in storage fails the job at start, like Flink;
* savepoint and checkpoint triggers complete after ``savepoint_duration``/``checkpoint_duration``, are looked
  up by trigger id and de-duplicated by it, live in the JobManager's memory (a dead or failed-over JobManager
  forgets them: ``FlinkNotFound``), and fail when the job's tasks are not running; stop-with-savepoint ends the
  job FINISHED once its savepoint is written;
* a cluster whose JobManager is gone answers nothing (``FlinkUnavailable``) and its jobs stand still; a lost
  TaskManager restarts the job from its newest checkpoint once enough slots are back; a failover to a standby
  JobManager keeps the job id and restores the newest checkpoint;
* session clusters accept uploaded jars and run them (``run_jar``), refusing a job id they already have;
* a cluster forgets an ended job after ``jobstore.expiration-time`` (default 1 h), as Flink's job store does;
* with ``jobmanager.scheduler: adaptive`` the resource requirements rescale a job in place.

Knobs for faults: ``script`` (by a token in the job's args or entry class: fail at start or later, crash-loop,
finish like a batch job, never checkpoint, tasks slow to deploy), ``fail_savepoints``, ``lose_next_trigger`` and
``checkpoint_stats_lag`` (Flink's REST statistics trail storage). JobManager and TaskManager deaths come through
the runtime (``FakeRuntime.kill_jobmanager``/``kill_taskmanager``).

Called by: the controller (through the factory), ``fakes.runtime`` and tests that look at what ran.

Invariant: everything here moves only with the virtual clock; storage always holds what Flink completed by
the clock's current time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Literal

from fakes.clock import ManualClock
from fakes.snapshots import FakeSnapshots
from flinkops.api.durations import parse_duration_ms
from flinkops.api.flinkconf import checkpoint_dir, first_set, savepoint_dir
from flinkops.errors import FlinkNotFound, FlinkRequestRejected, FlinkUnavailable
from flinkops.ports.flink import (
    TERMINAL_JOB_STATES,
    CheckpointCounts,
    CheckpointStats,
    CheckpointTriggerStatus,
    CheckpointType,
    ClusterConfig,
    ClusterUsage,
    CompletedCheckpoint,
    FailureCause,
    JobDetails,
    JobExceptions,
    JobResult,
    JobSummary,
    RestoredCheckpoint,
    SavepointFormat,
    SavepointStatus,
    TaskManagerSlots,
)

__all__ = ["RATE", "FakeFlink", "FakeFlinkClient", "FakeJob", "JobScript"]

#: Records a fake job reads per virtual second.
RATE = 10
_NUM_RETAINED_KEYS = ("execution.checkpointing.num-retained", "state.checkpoints.num-retained")
_RETENTION_KEYS = ("execution.checkpointing.externalized-checkpoint-retention",)
_VERTICES = ("source", "counter")
#: Something that happens to a job at a moment of virtual time.
_Event = Callable[[float], None]


@dataclass(frozen=True)
class JobScript:
    """How a fake job behaves. Times are virtual seconds."""

    #: INITIALIZING for this long, then RUNNING.
    start_delay: float = 1.0
    #: Once RUNNING, its tasks are still DEPLOYING for this long (a busy machine): no snapshot succeeds meanwhile.
    tasks_deploying: float = 0.0
    #: Fail this long after the tasks run (0: as it starts), with ``failure`` as the root cause.
    fail_after: float | None = None
    failure: str = "java.lang.IllegalStateException: deliberate failure"
    #: With ``fail_after``: restart and fail again forever (RESTARTING), never reaching FAILED.
    crash_loop: bool = False
    #: A bounded (batch) job: FINISHED after running this long, with ``result`` as its accumulators.
    finish_after: float | None = None
    result: Mapping[str, str] = field(default_factory=dict)
    #: False: the job never completes a checkpoint (periodic or triggered).
    checkpoints: bool = True


_DEFAULT_SCRIPT = JobScript()


@dataclass
class _Operation:
    """A savepoint or checkpoint trigger, as the JobManager remembers it."""

    kind: Literal["savepoint", "checkpoint"]
    job_id: str
    trigger_id: str
    due_at: float
    stop: bool = False
    directory: str | None = None
    status: Literal["IN_PROGRESS", "COMPLETED"] = "IN_PROGRESS"
    location: str | None = None
    checkpoint_id: int | None = None
    failure: str | None = None


@dataclass
class FakeJob:
    """One job execution on a fake cluster. ``offset`` is how many records it has read (its state)."""

    job_id: str
    name: str
    args: tuple[str, ...]
    entry_class: str
    cluster_id: str
    script: JobScript
    submitted_at: float
    restored_from: str | None
    restored_offset: int
    parallelism: int
    config: Mapping[str, str]
    session: bool = False
    state: str = "INITIALIZING"
    state_since: float = 0.0
    running_at: float | None = None
    ended_at: float | None = None
    failure: str | None = None
    offset: float = 0.0
    next_checkpoint_id: int = 1
    last_checkpoint_at: float | None = None
    #: (completion time, path) of every checkpoint this execution completed.
    completed: list[tuple[float, str]] = field(default_factory=list)
    requirements: dict[str, tuple[int, int]] = field(default_factory=dict)
    restarts: int = 0
    #: When its cluster's processes were stopped under it (the job is gone, in whatever state it was).
    gone_at: float | None = None
    #: Every state the job entered, with when.
    history: list[tuple[float, str]] = field(default_factory=list)
    _position: float = 0.0  # virtual time up to which the job has been advanced

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_JOB_STATES

    @property
    def alive(self) -> bool:
        """Running or trying to: not ended, and its cluster still exists."""
        return not self.terminal and self.gone_at is None

    def vertices_running(self, now: float) -> bool:
        """Every task runs: the job is RUNNING and its tasks finished deploying."""
        if self.state != "RUNNING" or self.running_at is None:
            return False
        return now >= self.running_at + self.script.tasks_deploying


@dataclass
class _Cluster:
    cluster_id: str
    url: str
    config: Mapping[str, str]
    taskmanagers: int
    up: bool = True
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    triggers: dict[tuple[str, str], _Operation] = field(default_factory=dict)
    jars: dict[str, str] = field(default_factory=dict)

    @property
    def slots(self) -> int:
        per_tm = int(self.config.get("taskmanager.numberOfTaskSlots", "1") or "1")
        return self.taskmanagers * max(per_tm, 1)

    @property
    def adaptive(self) -> bool:
        return self.config.get("jobmanager.scheduler", "").strip().lower() == "adaptive"

    @property
    def slots_per_taskmanager(self) -> int:
        return max(int(self.config.get("taskmanager.numberOfTaskSlots", "1") or "1"), 1)

    def holding(self) -> list[FakeJob]:
        """The jobs whose tasks hold slots (RUNNING), in the order they got them."""
        return sorted((j for j in self.jobs.values() if j.state == "RUNNING"), key=lambda j: j.running_at or 0.0)

    def used_by_taskmanager(self) -> list[int]:
        """Slots in use on each TaskManager (index order): jobs fill the lowest-numbered TaskManagers first."""
        per_tm, used = self.slots_per_taskmanager, [0] * self.taskmanagers
        for job in self.holding():
            need = job.parallelism
            for index in range(self.taskmanagers):
                take = min(need, per_tm - used[index])
                used[index] += take
                need -= take
                if need == 0:
                    break
        return used


def _conf(cluster: _Cluster, job: FakeJob) -> dict[str, str]:
    """The configuration a job runs with: its cluster's, with what its submission added on top."""
    return {**cluster.config, **job.config}


def _duration_s(value: str | None) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        ms = parse_duration_ms(value)
    except ValueError:
        return None
    return ms / 1000 if ms > 0 else None


class FakeFlink:
    """Every fake Flink cluster of a test, reachable by REST URL. Calling it is the ``FlinkApiFactory``."""

    def __init__(self, clock: ManualClock, snapshots: FakeSnapshots) -> None:
        self.clock = clock
        self.snapshots = snapshots
        self.savepoint_duration = 0.5
        self.checkpoint_duration = 0.2
        self.restart_delay = 1.0
        #: How far Flink's REST checkpoint statistics trail what is in storage (``rest.cache...``), seconds.
        self.checkpoint_stats_lag = 0.0
        #: How long a cancelled job stays CANCELLING before it is CANCELED (its tasks stopping), seconds.
        self.cancel_duration = 0.0
        self.flink_version = "2.2.1"
        #: What ``cluster_usage`` reports at a time on the virtual clock (seconds): None reports no JVM metrics, as
        #: a cluster whose metrics are not there yet; a test sets it to measure the recorded usage.
        self.usage: Callable[[float], ClusterUsage] | None = None
        #: (state size, checkpointed size) the checkpoint statistics' summary reports on average, bytes; None
        #: reports no summary.
        self.checkpoint_sizes: tuple[int, int] | None = None
        #: Every job ever started, in order (a job id appearing twice would be a job run twice).
        self.started: list[FakeJob] = []
        self._clusters: dict[str, _Cluster] = {}
        self._by_url: dict[str, str] = {}
        self._scripts: list[tuple[str, JobScript]] = []
        self._savepoint_failures: list[str] = []
        self._lost_triggers = 0
        self._ids = itertools.count(1)
        clock.on_advance(self._advance)

    def __call__(self, rest_url: str, timeout: float) -> FakeFlinkClient:
        return FakeFlinkClient(self, rest_url)

    # ------------------------------------------------------------------ knobs

    def script(self, token: str, script: JobScript) -> None:
        """Jobs whose args (or entry class) contain ``token`` behave as ``script`` says."""
        self._scripts.append((token, script))

    def fail_savepoints(self, count: int = 1, cause: str = "java.io.IOException: savepoint storage refused") -> None:
        """The next ``count`` savepoints (plain or stop-with) fail with ``cause``; the job keeps running."""
        self._savepoint_failures.extend([cause] * count)

    def lose_next_trigger(self) -> None:
        """The next savepoint/checkpoint trigger request never reaches Flink (the caller sees it unreachable)."""
        self._lost_triggers += 1

    # ------------------------------------------------------------------ the runtime's side

    def start_cluster(self, url: str, config: Mapping[str, str], taskmanagers: int) -> str:
        cluster_id = f"cluster-{next(self._ids)}"
        self._clusters[cluster_id] = _Cluster(cluster_id, url, dict(config), taskmanagers)
        self._by_url[url] = cluster_id
        return cluster_id

    def start_application(
        self,
        cluster_id: str,
        job_id: str,
        args: Sequence[str],
        entry_class: str,
        restore_path: str | None,
    ) -> FakeJob:
        """The application job a new cluster runs at start (application mode)."""
        cluster = self._clusters[cluster_id]
        parallelism = int(cluster.config.get("parallelism.default", "1") or "1")
        name = cluster.config.get("pipeline.name", entry_class)
        return self._submit(cluster, job_id, name, tuple(args), entry_class, restore_path, parallelism, session=False)

    def stop_cluster(self, cluster_id: str) -> None:
        """Every process of the cluster is gone: its jobs vanish; what they wrote to storage stays."""
        self._advance(self.clock.now())
        cluster = self._clusters.pop(cluster_id, None)
        if cluster is None:
            return
        if self._by_url.get(cluster.url) == cluster_id:
            del self._by_url[cluster.url]
        for job in cluster.jobs.values():
            job.gone_at = self.clock.now()

    def jobmanager_lost(self, cluster_id: str) -> None:
        """The (only) JobManager died: nothing answers, jobs stand still, pending triggers are forgotten."""
        cluster = self._clusters.get(cluster_id)
        if cluster is not None:
            self._advance(self.clock.now())
            cluster.up = False
            cluster.triggers.clear()

    def failover(self, cluster_id: str, new_url: str) -> None:
        """A standby JobManager took over: same jobs and job ids, restored from their newest checkpoints."""
        cluster = self._clusters[cluster_id]
        self._advance(self.clock.now())
        self._by_url.pop(cluster.url, None)
        cluster.url = new_url
        cluster.up = True
        self._by_url[new_url] = cluster_id
        cluster.triggers.clear()
        for job in cluster.jobs.values():
            if not job.terminal:
                self._restart(job, self.clock.now())

    def set_taskmanagers(self, cluster_id: str, count: int, *, released: bool = False) -> None:
        """How many TaskManagers run; fewer slots than a running job needs restart it from its last checkpoint.
        ``released``: the highest-numbered TaskManagers were stopped on purpose; jobs restart only when one of
        those held their tasks (a TaskManager that died restarts every running job, as its slots are lost)."""
        cluster = self._clusters.get(cluster_id)
        if cluster is None:
            return
        now = self.clock.now()
        self._advance(now)
        lost = count < cluster.taskmanagers
        if lost and released:
            lost = any(cluster.used_by_taskmanager()[count:])
        cluster.taskmanagers = count
        for job in cluster.jobs.values():
            if lost and job.state == "RUNNING":
                self._restart(job, now)
            elif not lost and job.state == "RESTARTING":
                job.state_since = max(job.state_since, now)  # the restart starts once the slots are back

    # ------------------------------------------------------------------ views for tests

    def jobs(self) -> list[FakeJob]:
        """Every job on a live cluster, in start order."""
        return [j for j in self.started if j.cluster_id in self._clusters]

    def running(self) -> list[FakeJob]:
        """Jobs that are not finished on clusters that exist: what is running (or trying to) right now."""
        return [j for j in self.started if j.alive]

    def job(self, job_id: str) -> FakeJob:
        """The latest execution with ``job_id``."""
        return next(j for j in reversed(self.started) if j.job_id == job_id)

    def cluster_url(self, cluster_id: str) -> str | None:
        cluster = self._clusters.get(cluster_id)
        return cluster.url if cluster is not None else None

    def jars(self, url: str) -> dict[str, str]:
        """The jars uploaded to the session cluster at ``url``: jar id → file."""
        return dict(self._cluster(url).jars)

    # ------------------------------------------------------------------ time

    def _advance(self, now: float) -> None:
        for cluster in list(self._clusters.values()):
            for job in list(cluster.jobs.values()):
                self._advance_job(cluster, job, now)
            # Flink forgets ended jobs after ``jobstore.expiration-time`` (1 h by default).
            keep = _duration_s(cluster.config.get("jobstore.expiration-time")) or 3600.0
            for job_id, job in list(cluster.jobs.items()):
                if job.ended_at is not None and now - job.ended_at > keep:
                    del cluster.jobs[job_id]

    def _advance_job(self, cluster: _Cluster, job: FakeJob, now: float) -> None:
        while True:
            upcoming = self._next_event(cluster, job)
            if upcoming is None or upcoming[0] > now:
                break
            moment, event = upcoming
            self._progress(job, moment)
            event(moment)
        self._progress(job, now)

    def _progress(self, job: FakeJob, moment: float) -> None:
        if moment <= job._position:
            return
        if job.state == "RUNNING" and self._clusters[job.cluster_id].up:
            job.offset += RATE * (moment - job._position)
        job._position = moment

    def _next_event(self, cluster: _Cluster, job: FakeJob) -> tuple[float, _Event] | None:
        """The job's next thing to happen, and what it does; None while nothing will."""
        if not cluster.up:
            return None  # no JobManager: nothing moves
        candidates: list[tuple[float, _Event]] = []
        script = job.script
        for op in cluster.triggers.values():
            if op.job_id == job.job_id and op.status == "IN_PROGRESS":
                candidates.append((op.due_at, partial(self._complete, cluster, job, op)))
        if job.state in ("INITIALIZING", "RESTARTING"):
            delay = script.start_delay if job.state == "INITIALIZING" else self.restart_delay
            if self._slots_for(cluster, job) > 0:
                candidates.append((job.state_since + delay, partial(self._run, cluster, job)))
        elif job.state == "CANCELLING":
            candidates.append((job.state_since + self.cancel_duration, partial(self._cancelled, cluster, job)))
        elif job.state == "RUNNING":
            assert job.running_at is not None
            if script.fail_after is not None:
                candidates.append((job.running_at + script.fail_after, partial(self._fail, job)))
            if script.finish_after is not None:
                candidates.append((job.running_at + script.finish_after, partial(self._finish, job)))
            interval = _duration_s(_conf(cluster, job).get("execution.checkpointing.interval"))
            if interval is not None and script.checkpoints:
                started = job.running_at + script.tasks_deploying  # checkpoints begin once every task runs
                since = job.last_checkpoint_at if job.last_checkpoint_at is not None else started
                candidates.append((since + interval, partial(self._periodic_checkpoint, cluster, job)))
        return min(candidates, key=lambda c: c[0]) if candidates else None

    # ------------------------------------------------------------------ job transitions

    def _cancelled(self, cluster: _Cluster, job: FakeJob, moment: float | None = None) -> None:
        self._set_state(job, "CANCELED", self.clock.now() if moment is None else moment)
        retention = first_set(cluster.config, _RETENTION_KEYS) or "NO_EXTERNALIZED_CHECKPOINTS"
        if retention.upper() != "RETAIN_ON_CANCELLATION":
            for _, path in job.completed:
                self.snapshots.remove(path)

    def _set_state(self, job: FakeJob, state: str, moment: float) -> None:
        job.state = state
        job.state_since = moment
        job.history.append((moment, state))
        if state in TERMINAL_JOB_STATES:
            job.ended_at = moment

    def _slots_for(self, cluster: _Cluster, job: FakeJob) -> int:
        wanted = max((hi for _, hi in job.requirements.values()), default=job.parallelism)
        # A session cluster's jobs share its slots: what other running session jobs hold is not free. (An
        # application cluster's stray second job, from HA metadata left behind, is not modelled that strictly.)
        taken = sum(j.parallelism for j in cluster.holding() if j is not job and j.session) if job.session else 0
        free = cluster.slots - taken
        if cluster.adaptive:
            return min(wanted, free)
        return wanted if free >= wanted else 0

    def _run(self, cluster: _Cluster, job: FakeJob, moment: float) -> None:
        if job.failure is not None and job.state == "INITIALIZING":
            self._set_state(job, "FAILED", moment)  # the restore failed before anything ran
            return
        job.parallelism = self._slots_for(cluster, job)
        job.running_at = moment
        job.last_checkpoint_at = None
        self._set_state(job, "RUNNING", moment)

    def _fail(self, job: FakeJob, moment: float) -> None:
        job.failure = job.script.failure
        if job.script.crash_loop:
            self._restart(job, moment)
        else:
            self._set_state(job, "FAILED", moment)

    def _finish(self, job: FakeJob, moment: float) -> None:
        self._set_state(job, "FINISHED", moment)

    def _restart(self, job: FakeJob, moment: float) -> None:
        """Flink's failover: the job restarts from its newest checkpoint (or the state it started from)."""
        job.restarts += 1
        newest = job.completed[-1][1] if job.completed else None
        stored = self.snapshots.entry(newest) if newest else None
        job.offset = float(stored.offset) if stored is not None else float(job.restored_offset)
        self._set_state(job, "RESTARTING", moment)

    def _periodic_checkpoint(self, cluster: _Cluster, job: FakeJob, moment: float) -> None:
        job.last_checkpoint_at = moment
        self._checkpoint(cluster, job, moment)

    def _checkpoint(self, cluster: _Cluster, job: FakeJob, moment: float) -> tuple[int, str] | None:
        config = _conf(cluster, job)
        directory = checkpoint_dir(config)
        if directory is None:
            return None
        number = job.next_checkpoint_id
        job.next_checkpoint_id += 1
        path = self.snapshots.write_checkpoint(
            directory, job.job_id, number, int(moment * 1000), offset=int(job.offset)
        )
        job.completed.append((moment, path))
        retained = int(first_set(config, _NUM_RETAINED_KEYS) or "1")
        for _, old in job.completed[: -max(retained, 1)]:
            self.snapshots.remove(old)  # subsumed
        return number, path

    def _complete(self, cluster: _Cluster, job: FakeJob, op: _Operation, moment: float) -> None:
        op.status = "COMPLETED"
        if not job.vertices_running(moment):
            op.failure = f"org.apache.flink.runtime.checkpoint.CheckpointException: job {job.job_id} is {job.state}"
            return
        if not job.script.checkpoints:
            op.failure = "org.apache.flink.runtime.checkpoint.CheckpointException: Checkpoint expired before completing"
            return
        if op.kind == "checkpoint":
            made = self._checkpoint(cluster, job, moment)
            if made is None:
                op.failure = "java.lang.IllegalStateException: no checkpoint storage configured"
                return
            op.checkpoint_id = made[0]
            return
        if self._savepoint_failures:
            op.failure = self._savepoint_failures.pop(0)
            return
        directory = op.directory or savepoint_dir(_conf(cluster, job))
        if directory is None:
            op.failure = "java.lang.IllegalStateException: no savepoint directory configured"
            return
        job.next_checkpoint_id += 1
        op.location = self.snapshots.write_savepoint(directory, job.job_id, int(moment * 1000), offset=int(job.offset))
        if op.stop:
            self._set_state(job, "FINISHED", moment)

    # ------------------------------------------------------------------ submission

    def _script_for(self, args: Sequence[str], entry_class: str) -> JobScript:
        for token, script in reversed(self._scripts):
            if token == entry_class or any(token in arg for arg in args):
                return script
        return _DEFAULT_SCRIPT

    def _submit(
        self,
        cluster: _Cluster,
        job_id: str,
        name: str,
        args: tuple[str, ...],
        entry_class: str,
        restore_path: str | None,
        parallelism: int,
        *,
        session: bool,
        config: Mapping[str, str] | None = None,
    ) -> FakeJob:
        now = self.clock.now()
        job = FakeJob(
            job_id=job_id,
            name=name,
            args=args,
            entry_class=entry_class,
            cluster_id=cluster.cluster_id,
            script=self._script_for(args, entry_class),
            submitted_at=now,
            restored_from=restore_path,
            restored_offset=0,
            parallelism=max(parallelism, 1),
            config=dict(config or {}),
            session=session,
            state_since=now,
            _position=now,
        )
        job.history.append((now, "INITIALIZING"))
        job.requirements = {f"{v}-{job_id[:6]}": (1, job.parallelism) for v in _VERTICES}
        if restore_path:
            stored = self.snapshots.stored(restore_path)
            if stored is None:
                job.failure = (
                    "org.apache.flink.runtime.client.JobInitializationException: Could not start the JobMaster.\n"
                    f"Caused by: java.io.FileNotFoundException: Cannot find checkpoint or savepoint file/directory "
                    f"'{restore_path}' on file system 'file'."
                )
            else:
                job.restored_offset = stored.offset
                job.offset = float(stored.offset)
                job.next_checkpoint_id = (stored.snapshot.checkpoint_id or 0) + 1
        cluster.jobs[job_id] = job
        self.started.append(job)
        return job

    # ------------------------------------------------------------------ the REST API (through FakeFlinkClient)

    def _cluster(self, url: str) -> _Cluster:
        cluster_id = self._by_url.get(url)
        cluster = self._clusters.get(cluster_id) if cluster_id is not None else None
        if cluster is None or not cluster.up:
            raise FlinkUnavailable(f"GET {url}: Flink REST at {url} is unreachable (fake: no JobManager there)")
        return cluster

    def _job(self, url: str, job_id: str) -> tuple[_Cluster, FakeJob]:
        cluster = self._cluster(url)
        job = cluster.jobs.get(job_id)
        if job is None:
            raise FlinkNotFound(f"GET /jobs/{job_id} -> HTTP 404: Job {job_id} not found")
        return cluster, job

    def _trigger(
        self,
        url: str,
        kind: Literal["savepoint", "checkpoint"],
        job_id: str,
        trigger_id: str | None,
        *,
        stop: bool = False,
        directory: str | None = None,
    ) -> str:
        if self._lost_triggers:
            self._lost_triggers -= 1
            raise FlinkUnavailable(f"POST {url}/jobs/{job_id}/{kind}s: the request was lost (fake knob)")
        cluster, job = self._job(url, job_id)
        trigger_id = trigger_id or f"trigger-{next(self._ids)}"
        if (job_id, trigger_id) in cluster.triggers:
            return trigger_id  # Flink de-duplicates a trigger id it already has
        now = self.clock.now()
        duration = self.savepoint_duration if kind == "savepoint" else self.checkpoint_duration
        op = _Operation(kind, job_id, trigger_id, now + duration, stop=stop, directory=directory)
        cluster.triggers[(job_id, trigger_id)] = op
        if not job.vertices_running(now):
            op.due_at = now
            self._complete(cluster, job, op, now)
        return trigger_id

    def _operation(self, url: str, job_id: str, trigger_id: str) -> _Operation:
        cluster, _ = self._job(url, job_id)
        op = cluster.triggers.get((job_id, trigger_id))
        if op is None:
            raise FlinkNotFound(f"GET /jobs/{job_id}/…/{trigger_id} -> HTTP 404: unknown trigger id")
        return op


def _ms(moment: float | None) -> int | None:
    return int(moment * 1000) if moment is not None else None


class FakeFlinkClient:
    """``FlinkApi`` for one REST URL of a ``FakeFlink``."""

    def __init__(self, flink: FakeFlink, url: str) -> None:
        self.flink = flink
        self.url = url

    def __enter__(self) -> FakeFlinkClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def taskmanagers(self) -> tuple[TaskManagerSlots, ...]:
        cluster = self.flink._cluster(self.url)
        self.flink._advance(self.flink.clock.now())
        per_tm = cluster.slots_per_taskmanager
        return tuple(
            TaskManagerSlots(f"taskmanager-{index}", per_tm, per_tm - used)
            for index, used in enumerate(cluster.used_by_taskmanager())
        )

    def cluster_usage(self) -> ClusterUsage:
        self.flink._cluster(self.url)
        usage = self.flink.usage
        return usage(self.flink.clock.now()) if usage is not None else ClusterUsage(None, None)

    def config(self) -> ClusterConfig:
        self.flink._cluster(self.url)
        return ClusterConfig(self.flink.flink_version, "fake", MappingProxyType({}), MappingProxyType({}))

    def list_jobs(self) -> tuple[JobSummary, ...]:
        cluster = self.flink._cluster(self.url)
        now = self.flink.clock.now()
        return tuple(
            JobSummary(
                job_id=job.job_id,
                name=job.name,
                state=job.state,
                start_time=_ms(job.submitted_at),
                end_time=_ms(job.ended_at),
                duration=int(((job.ended_at or now) - job.submitted_at) * 1000),
                last_modification=_ms(job.state_since),
            )
            for job in cluster.jobs.values()
        )

    def job(self, job_id: str) -> JobDetails:
        _, job = self.flink._job(self.url, job_id)
        now = self.flink.clock.now()
        running = job.vertices_running(now)
        counts = {"RUNNING": len(_VERTICES)} if running else {"DEPLOYING": len(_VERTICES)}
        return JobDetails(
            job_id=job.job_id,
            name=job.name,
            state=job.state,
            job_type="STREAMING",
            start_time=_ms(job.submitted_at),
            end_time=_ms(job.ended_at),
            duration=int(((job.ended_at or now) - job.submitted_at) * 1000),
            vertices=len(_VERTICES),
            timestamps=MappingProxyType({state: int(t * 1000) for t, state in job.history}),
            vertex_state_counts=MappingProxyType(counts),
        )

    def job_exceptions(self, job_id: str, *, max_exceptions: int | None = None) -> JobExceptions:
        _, job = self.flink._job(self.url, job_id)
        return JobExceptions(
            root_exception=job.failure,
            timestamp=_ms(job.ended_at) if job.failure else None,
            history=(),
            truncated=False,
        )

    def job_result(self, job_id: str) -> JobResult:
        _, job = self.flink._job(self.url, job_id)
        if not job.terminal:
            return JobResult(job_id, "IN_PROGRESS", None, None, None)
        outcome = {"FINISHED": "SUCCEEDED", "FAILED": "FAILED", "CANCELED": "CANCELED"}[job.state]
        failure = FailureCause("java.lang.Exception", job.failure) if job.state == "FAILED" else None
        assert job.ended_at is not None
        return JobResult(job_id, "COMPLETED", outcome, int((job.ended_at - job.submitted_at) * 1000), failure)

    def accumulators(self, job_id: str) -> dict[str, str]:
        _, job = self.flink._job(self.url, job_id)
        return dict(job.script.result) if job.state == "FINISHED" else {}

    def checkpoints(self, job_id: str) -> CheckpointStats:
        _, job = self.flink._job(self.url, job_id)
        visible_until = self.flink.clock.now() - self.flink.checkpoint_stats_lag
        visible = [(t, p) for t, p in job.completed if t <= visible_until]
        latest = None
        if visible:
            moment, path = visible[-1]
            entry = self.flink.snapshots.entry(path)
            latest = CompletedCheckpoint(
                checkpoint_id=entry.snapshot.checkpoint_id if entry else None,
                external_path=path,
                is_savepoint=False,
                checkpoint_type="CHECKPOINT",
                savepoint_format=None,
                trigger_timestamp=_ms(moment),
                latest_ack_timestamp=_ms(moment),
                state_size=self.flink.checkpoint_sizes[0] if self.flink.checkpoint_sizes else None,
                checkpointed_size=self.flink.checkpoint_sizes[1] if self.flink.checkpoint_sizes else None,
                discarded=self.flink.snapshots.stored(path) is None,
            )
        restored = None
        if job.restored_from:
            from_savepoint = "savepoint-" in job.restored_from
            restored = RestoredCheckpoint(None, _ms(job.submitted_at), from_savepoint, job.restored_from)
        return CheckpointStats(
            counts=CheckpointCounts(len(visible), 0, len(visible), 0, 1 if job.restored_from else 0),
            latest_completed=latest,
            latest_savepoint=None,
            latest_failed=None,
            latest_restored=restored,
            state_size_avg=self.flink.checkpoint_sizes[0] if self.flink.checkpoint_sizes and visible else None,
            checkpointed_size_avg=self.flink.checkpoint_sizes[1] if self.flink.checkpoint_sizes and visible else None,
        )

    def cancel(self, job_id: str) -> None:
        cluster, job = self.flink._job(self.url, job_id)
        if job.terminal or job.state == "CANCELLING":
            return
        if self.flink.cancel_duration > 0:
            self.flink._set_state(job, "CANCELLING", self.flink.clock.now())
        else:
            self.flink._cancelled(cluster, job)

    def resource_requirements(self, job_id: str) -> dict[str, tuple[int, int]]:
        _, job = self.flink._job(self.url, job_id)
        return dict(job.requirements)

    def set_resource_requirements(self, job_id: str, bounds: Mapping[str, tuple[int, int]]) -> None:
        cluster, job = self.flink._job(self.url, job_id)
        if not cluster.adaptive:
            raise FlinkRequestRejected(
                400, ["Only the adaptive scheduler supports resource requirements"], method="PUT", path="/jobs"
            )
        job.requirements = dict(bounds)
        if job.state == "RUNNING" and self.flink._slots_for(cluster, job) != job.parallelism:
            self.flink._restart(job, self.flink.clock.now())  # the adaptive scheduler rescales from a checkpoint

    def trigger_savepoint(
        self,
        job_id: str,
        target_directory: str | None = None,
        format_type: SavepointFormat = "CANONICAL",
        *,
        trigger_id: str | None = None,
    ) -> str:
        return self.flink._trigger(self.url, "savepoint", job_id, trigger_id, directory=target_directory)

    def savepoint_status(self, job_id: str, trigger_id: str) -> SavepointStatus:
        op = self.flink._operation(self.url, job_id, trigger_id)
        failure = FailureCause("java.lang.Exception", op.failure) if op.failure else None
        return SavepointStatus(trigger_id, op.status, op.location, failure)

    def stop_with_savepoint(
        self,
        job_id: str,
        target_directory: str | None = None,
        drain: bool = False,
        format_type: SavepointFormat = "CANONICAL",
        *,
        trigger_id: str | None = None,
    ) -> str:
        return self.flink._trigger(self.url, "savepoint", job_id, trigger_id, stop=True, directory=target_directory)

    def trigger_checkpoint(
        self, job_id: str, checkpoint_type: CheckpointType = "FULL", *, trigger_id: str | None = None
    ) -> str:
        return self.flink._trigger(self.url, "checkpoint", job_id, trigger_id)

    def checkpoint_status(self, job_id: str, trigger_id: str) -> CheckpointTriggerStatus:
        op = self.flink._operation(self.url, job_id, trigger_id)
        failure = FailureCause("java.lang.Exception", op.failure) if op.failure else None
        return CheckpointTriggerStatus(trigger_id, op.status, op.checkpoint_id, failure)

    def upload_jar(self, path: str | Path) -> str:
        cluster = self.flink._cluster(self.url)
        jar_id = f"{next(self.flink._ids):08x}_{Path(path).name}"
        cluster.jars[jar_id] = str(path)
        return jar_id

    def run_jar(
        self,
        jar_id: str,
        *,
        entry_class: str | None = None,
        program_args: Sequence[str] = (),
        parallelism: int | None = None,
        job_id: str | None = None,
        savepoint_path: str | None = None,
        allow_non_restored_state: bool | None = None,
        claim_mode: Literal["CLAIM", "NO_CLAIM"] | None = None,
        flink_configuration: Mapping[str, str] | None = None,
    ) -> str:
        cluster = self.flink._cluster(self.url)
        path = f"/jars/{jar_id}/run"
        if jar_id not in cluster.jars:
            raise FlinkRequestRejected(400, [f"Jar file {jar_id} does not exist"], method="POST", path=path)
        job_id = job_id or f"{next(self.flink._ids):032x}"
        if job_id in cluster.jobs:
            raise FlinkRequestRejected(
                400,
                [f"org.apache.flink.runtime.client.DuplicateJobSubmissionException: Job {job_id} already exists"],
                method="POST",
                path=path,
            )
        config = dict(flink_configuration or {})
        self.flink._submit(
            cluster,
            job_id,
            entry_class or Path(cluster.jars[jar_id]).stem,
            tuple(program_args),
            entry_class or "",
            savepoint_path,
            parallelism or int(cluster.config.get("parallelism.default", "1") or "1"),
            session=True,
            config=config,
        )
        return job_id

    def delete_jar(self, jar_id: str) -> None:
        cluster = self.flink._cluster(self.url)
        if cluster.jars.pop(jar_id, None) is None:
            raise FlinkRequestRejected(400, [f"Jar file {jar_id} does not exist"], method="DELETE", path="/jars")
