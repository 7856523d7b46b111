"""The Flink API port: the Flink REST calls the controller makes, and the values they return.

``flink.rest.FlinkRestClient`` implements it over httpx; ``tests/fakes`` has an in-memory Flink for behaviour
tests. The controller asks a :data:`FlinkApiFactory` for a client per JobManager REST endpoint and uses it as a
context manager. The values are frozen dataclasses: a missing key in Flink's answer is ``None``, never an error.

Invariant: no I/O here; implementations raise ``flinkops.errors`` (``FlinkUnavailable``, ``FlinkNotFound``,
``FlinkRequestRejected``, ``FlinkApiError``), never a transport's own exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol

__all__ = [
    "TERMINAL_JOB_STATES",
    "CheckpointCounts",
    "CheckpointStats",
    "CheckpointTriggerStatus",
    "CheckpointType",
    "ClusterConfig",
    "ClusterOverview",
    "ClusterUsage",
    "CompletedCheckpoint",
    "ExceptionEntry",
    "FailedCheckpoint",
    "FailureCause",
    "FlinkApi",
    "FlinkApiFactory",
    "JarFile",
    "JobAddress",
    "JobDetails",
    "JobExceptions",
    "JobFigures",
    "JobResult",
    "JobSummary",
    "RestoredCheckpoint",
    "SavepointFormat",
    "SavepointStatus",
    "TaskManagerSlots",
    "VertexFigures",
]

SavepointFormat = Literal["CANONICAL", "NATIVE"]
CheckpointType = Literal["FULL", "INCREMENTAL", "CONFIGURED"]

#: Globally terminal job states: the job will not run again in this cluster (SUSPENDED is only locally
#: terminal and is deliberately not here).
TERMINAL_JOB_STATES = frozenset({"FINISHED", "CANCELED", "FAILED"})

_IN_PROGRESS = "IN_PROGRESS"
_COMPLETED = "COMPLETED"


@dataclass(frozen=True)
class ClusterOverview:
    """``GET /overview``: the cluster's capacity and job counts."""

    taskmanagers: int | None
    slots_total: int | None
    slots_available: int | None
    jobs_running: int | None
    jobs_finished: int | None
    jobs_cancelled: int | None
    jobs_failed: int | None
    flink_version: str | None
    flink_commit: str | None


@dataclass(frozen=True)
class TaskManagerSlots:
    """One entry of ``GET /taskmanagers``: a registered TaskManager's resource id and its slots."""

    resource_id: str
    slots_total: int
    slots_free: int


@dataclass(frozen=True)
class ClusterConfig:
    """``GET /config``: the web UI's view of the cluster; ``extras`` holds every other key as sent."""

    flink_version: str | None
    flink_revision: str | None
    features: Mapping[str, bool]
    extras: Mapping[str, Any]


@dataclass(frozen=True)
class JobSummary:
    """One entry of ``GET /jobs/overview``. Times are epoch milliseconds, durations milliseconds."""

    job_id: str
    name: str | None
    state: str | None
    start_time: int | None
    end_time: int | None
    duration: int | None
    last_modification: int | None
    #: Subtasks in total and RUNNING (the overview's ``tasks``), None when Flink did not say.
    tasks_total: int | None = None
    tasks_running: int | None = None

    @property
    def all_tasks_running(self) -> bool | None:
        """Whether every subtask runs; None when the overview has no task counts (then ask ``/jobs/:id``)."""
        if not self.tasks_total:
            return None
        return self.tasks_running == self.tasks_total


@dataclass(frozen=True)
class JobDetails:
    """``GET /jobs/:jobid``. ``timestamps`` maps a job state to when the job entered it (entered states
    only); ``vertex_state_counts`` maps an execution state to how many vertices are in it.

    A job is RUNNING as soon as it is scheduled; its tasks run only once every vertex is RUNNING, and a
    checkpoint or savepoint triggered before that fails.
    """

    job_id: str
    name: str | None
    state: str | None
    job_type: str | None
    start_time: int | None
    end_time: int | None
    duration: int | None
    vertices: int | None
    timestamps: Mapping[str, int]
    vertex_state_counts: Mapping[str, int]

    @property
    def all_vertices_running(self) -> bool:
        return self.vertices is not None and self.vertex_state_counts.get("RUNNING") == self.vertices


@dataclass(frozen=True)
class ExceptionEntry:
    """One failure in a job's exception history; ``concurrent`` are failures Flink grouped under it."""

    exception_name: str | None
    stacktrace: str | None
    timestamp: int | None
    task_name: str | None
    endpoint: str | None
    taskmanager_id: str | None
    failure_labels: Mapping[str, str]
    concurrent: tuple[ExceptionEntry, ...] = ()


@dataclass(frozen=True)
class JobExceptions:
    """``GET /jobs/:jobid/exceptions``.

    Flink 2.x only sends ``exceptionHistory`` (newest first); ``root_exception``/``timestamp`` are the newest
    entry's stack trace and time (or the pre-2.0 ``root-exception`` fields when a cluster still sends them).
    The root entry's stack trace includes the user's exception as a ``Caused by:`` section.
    """

    root_exception: str | None
    timestamp: int | None
    history: tuple[ExceptionEntry, ...]
    truncated: bool | None


@dataclass(frozen=True)
class FailureCause:
    """A serialized Java throwable from an asynchronous operation or a job result."""

    class_name: str | None
    stacktrace: str | None


@dataclass(frozen=True)
class JobResult:
    """``GET /jobs/:jobid/execution-result``: ``status`` is IN_PROGRESS until the job is globally terminal.

    ``application_status`` is Flink's ApplicationStatus (SUCCEEDED, FAILED, CANCELED, UNKNOWN), not a job
    state: a FINISHED job reports SUCCEEDED.
    """

    job_id: str
    status: str | None
    application_status: str | None
    net_runtime: int | None
    failure: FailureCause | None

    @property
    def in_progress(self) -> bool:
        return self.status == _IN_PROGRESS


@dataclass(frozen=True)
class CompletedCheckpoint:
    """A completed checkpoint or savepoint. ``external_path`` is Flink's URI (``file:/...`` or ``s3://...``)."""

    checkpoint_id: int | None
    external_path: str | None
    is_savepoint: bool | None
    checkpoint_type: str | None
    savepoint_format: str | None
    trigger_timestamp: int | None
    latest_ack_timestamp: int | None
    state_size: int | None
    checkpointed_size: int | None
    discarded: bool | None


@dataclass(frozen=True)
class CheckpointCounts:
    total: int | None
    in_progress: int | None
    completed: int | None
    failed: int | None
    restored: int | None


@dataclass(frozen=True)
class FailedCheckpoint:
    checkpoint_id: int | None
    trigger_timestamp: int | None
    failure_timestamp: int | None
    failure_message: str | None


@dataclass(frozen=True)
class RestoredCheckpoint:
    """The checkpoint or savepoint the job's current execution restored from."""

    checkpoint_id: int | None
    restore_timestamp: int | None
    is_savepoint: bool | None
    external_path: str | None


@dataclass(frozen=True)
class CheckpointStats:
    """``GET /jobs/:jobid/checkpoints``: the counts and the latest of each kind, without the per-checkpoint
    history and the summary statistics.

    Flink caches these statistics (``rest.cache.checkpoint-statistics.timeout``, default the web refresh
    interval of 3 s), so a checkpoint that just completed can take that long to appear here.
    """

    counts: CheckpointCounts
    latest_completed: CompletedCheckpoint | None
    latest_savepoint: CompletedCheckpoint | None
    latest_failed: FailedCheckpoint | None
    latest_restored: RestoredCheckpoint | None
    #: ``summary.state_size.avg``: bytes of state a completed checkpoint of this job holds, on average (Flink
    #: keeps the sum and count over every completed checkpoint of the job, not only the history it shows)
    state_size_avg: int | None = None
    #: ``summary.checkpointed_size.avg``: bytes a completed checkpoint uploaded, on average (an incremental
    #: checkpoint uploads less than the state it holds)
    checkpointed_size_avg: int | None = None


@dataclass(frozen=True)
class ClusterUsage:
    """What a cluster's JVMs use, from Flink's metrics (``GET /jobmanager/metrics`` and ``GET
    /taskmanagers/metrics?agg=sum``), summed over the JobManager and every registered TaskManager. ``None``: not
    reported (never a made-up 0).

    ``cpu_seconds``: ``Status.JVM.CPU.Time`` (cumulative CPU time of each JVM; a restarted process starts again at
    0). ``memory_bytes``: in use now: heap + non-heap + direct buffers (``Status.JVM.Memory.Heap.Used``,
    ``.NonHeap.Used``, ``.Direct.MemoryUsed``), plus the TaskManagers' managed memory
    (``Status.Flink.Memory.Managed.Used``) when reported."""

    cpu_seconds: float | None
    memory_bytes: int | None


class _TriggerOutcome:
    """What a savepoint or checkpoint trigger came to. Flink reports an asynchronous failure (such as "job
    not found") as a COMPLETED operation with a failure cause rather than as an HTTP error on the trigger, so
    COMPLETED alone does not mean it worked."""

    status: str | None
    failure: FailureCause | None

    @property
    def result(self) -> object:
        """What a successful trigger produced (a savepoint path, a checkpoint id); None until then."""
        raise NotImplementedError

    @property
    def in_progress(self) -> bool:
        return self.status == _IN_PROGRESS

    @property
    def succeeded(self) -> bool:
        return self.status == _COMPLETED and self.failure is None and self.result is not None

    @property
    def failed(self) -> bool:
        return self.status == _COMPLETED and not self.succeeded


@dataclass(frozen=True)
class SavepointStatus(_TriggerOutcome):
    """The state of a savepoint or stop-with-savepoint trigger; ``location`` once it succeeded."""

    trigger_id: str
    status: str | None
    location: str | None
    failure: FailureCause | None

    @property
    def result(self) -> object:
        return self.location


@dataclass(frozen=True)
class CheckpointTriggerStatus(_TriggerOutcome):
    """The state of a manually triggered checkpoint (``POST /jobs/:jobid/checkpoints``)."""

    trigger_id: str
    status: str | None
    checkpoint_id: int | None
    failure: FailureCause | None

    @property
    def result(self) -> object:
        return self.checkpoint_id


@dataclass(frozen=True)
class JarFile:
    """An uploaded jar. ``entry_classes`` come from the jar's manifest and may be empty."""

    jar_id: str
    name: str | None
    uploaded: int | None
    entry_classes: tuple[str, ...] = field(default=())


class FlinkApi(Protocol):
    """One JobManager's REST API, as far as the controller uses it. Trigger calls take a caller-chosen
    ``trigger_id`` (Flink de-duplicates by it), so a trigger recorded in status before the call is safe to repeat."""

    def __enter__(self) -> FlinkApi: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def config(self) -> ClusterConfig: ...

    def taskmanagers(self) -> tuple[TaskManagerSlots, ...]: ...

    def cluster_usage(self) -> ClusterUsage: ...

    def list_jobs(self) -> tuple[JobSummary, ...]: ...

    def job(self, job_id: str) -> JobDetails: ...

    def job_exceptions(self, job_id: str, *, max_exceptions: int | None = None) -> JobExceptions: ...

    def job_result(self, job_id: str) -> JobResult: ...

    def accumulators(self, job_id: str) -> dict[str, str]: ...

    def checkpoints(self, job_id: str) -> CheckpointStats: ...

    def cancel(self, job_id: str) -> None: ...

    def resource_requirements(self, job_id: str) -> dict[str, tuple[int, int]]: ...

    def set_resource_requirements(self, job_id: str, bounds: Mapping[str, tuple[int, int]]) -> None: ...

    def trigger_savepoint(
        self,
        job_id: str,
        target_directory: str | None = None,
        format_type: SavepointFormat = "CANONICAL",
        *,
        trigger_id: str | None = None,
    ) -> str: ...

    def savepoint_status(self, job_id: str, trigger_id: str) -> SavepointStatus: ...

    def stop_with_savepoint(
        self,
        job_id: str,
        target_directory: str | None = None,
        drain: bool = False,
        format_type: SavepointFormat = "CANONICAL",
        *,
        trigger_id: str | None = None,
    ) -> str: ...

    def trigger_checkpoint(
        self, job_id: str, checkpoint_type: CheckpointType = "FULL", *, trigger_id: str | None = None
    ) -> str: ...

    def checkpoint_status(self, job_id: str, trigger_id: str) -> CheckpointTriggerStatus: ...

    def upload_jar(self, path: str | Path) -> str: ...

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
    ) -> str: ...

    def delete_jar(self, jar_id: str) -> None: ...


# -- live figures (``flink.figures``) ----------------------------------------------------------------------


@dataclass(frozen=True)
class JobAddress:
    """Where a job is: its JobManager's REST URL and its job id (``flink.figures`` reads its live figures)."""

    rest_url: str
    job_id: str


@dataclass(frozen=True)
class VertexFigures:
    """One vertex (a chain of operators) of a job; every figure ``None`` while Flink has not measured it."""

    vertex_id: str
    name: str
    parallelism: int | None
    is_source: bool
    is_sink: bool
    records_in_per_second: float | None
    records_out_per_second: float | None
    #: the busiest subtask's busy time, a share of one second (0..1)
    busy_ratio: float | None
    #: the most back-pressured subtask's share of one second (0..1)
    backpressure_ratio: float | None
    #: records its Kafka source subtasks have not read yet; None when it reads no Kafka (or Flink did not say)
    kafka_lag: float | None
    #: records/s its source operators emit (their own ``numRecordsOutPerSecond``); None without source operators
    sources_out_per_second: float | None = None
    #: records/s its sink writers take in (their own ``numRecordsInPerSecond``); None without sink writers
    writers_in_per_second: float | None = None
    #: the vertex's maximum parallelism (its key groups); None when Flink did not say
    max_parallelism: int | None = None
    #: Kafka partitions its Kafka source readers were assigned (all subtasks together); None without them
    kafka_partitions: int | None = None
    #: counters since the vertex's tasks started: records in (all subtasks), records its source operators
    #: emitted, and the busiest / most back-pressured subtask's milliseconds busy / back-pressured
    records_in_total: float | None = None
    sources_out_total: float | None = None
    busy_ms_total: float | None = None
    backpressured_ms_total: float | None = None


@dataclass(frozen=True)
class JobFigures:
    """A job's live figures as Flink reported them at ``read_at`` (epoch seconds)."""

    job_id: str
    state: str | None
    read_at: float
    vertices: tuple[VertexFigures, ...]
    records_in_per_second: float | None
    records_out_per_second: float | None
    busy_ratio: float | None
    backpressure_ratio: float | None
    kafka_lag: float | None
    #: Flink's ``numRestarts`` of the job (restarts within this run of the job)
    restarts: int | None
    #: the highest vertex parallelism
    parallelism: int | None
    checkpoints_completed: int | None
    checkpoints_failed: int | None
    #: epoch seconds the newest completed checkpoint was acknowledged
    last_checkpoint_time: float | None

    @property
    def reads_kafka(self) -> bool:
        return any(v.kafka_lag is not None for v in self.vertices)


#: Builds a client for the REST endpoint ``rest_url`` with a per-request ``timeout`` in seconds.
FlinkApiFactory = Callable[[str, float], FlinkApi]
