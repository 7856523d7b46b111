"""A synchronous client for the Flink 2.x REST API (the JobManager's ``rest.port``), built on httpx.

The value types it returns live in ``ports.flink`` (the ``FlinkApi`` port); import them from there.

Callers: the ``FlinkApi`` port implementations (the controller's observer reads job state, checkpoints and
pending savepoint triggers; its executor triggers savepoints and checkpoints, stops, cancels and submits
jobs), the CLI's diagnostic commands, and the integration tests.

Invariants:

* Every httpx exception and every HTTP error status is translated in exactly one place,
  :meth:`FlinkRestClient._request`, into the flinkops taxonomy: no answer (connection refused, timeout,
  broken connection) or a 502/503/504 gateway or leader-election answer -> :class:`FlinkUnavailable`
  (temporary); 404 -> :class:`FlinkNotFound`; any other non-2xx status -> :class:`FlinkRequestRejected`
  with Flink's own ``{"errors": [...]}`` kept verbatim; a 2xx body that is not JSON -> :class:`FlinkApiError`.
  Nothing here branches on an error message.
* Public methods return frozen dataclasses parsed defensively: a missing or mistyped key becomes ``None``
  (Flink's ``-1``/``0`` "never happened" timestamps become ``None`` too), never a ``KeyError``. The only raw
  JSON that leaves this module is :attr:`ClusterConfig.extras`.
* Trigger methods accept a caller-chosen ``trigger_id``: Flink de-duplicates triggers by id, so a controller
  that writes the id to status before triggering (the write-ahead log) can safely trigger again after a crash.
"""

from __future__ import annotations

import functools
import json
import ssl
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Literal
from urllib.parse import quote

import certifi
import httpx

from flinkops.errors import (
    FlinkApiError,
    FlinkNotFound,
    FlinkRequestRejected,
    FlinkUnavailable,
    InvalidInput,
    Problem,
)
from flinkops.ports.flink import (
    CheckpointCounts,
    CheckpointStats,
    CheckpointTriggerStatus,
    CheckpointType,
    ClusterConfig,
    ClusterOverview,
    ClusterUsage,
    CompletedCheckpoint,
    ExceptionEntry,
    FailedCheckpoint,
    FailureCause,
    JarFile,
    JobDetails,
    JobExceptions,
    JobResult,
    JobSummary,
    RestoredCheckpoint,
    SavepointFormat,
    SavepointStatus,
    TaskManagerSlots,
)

__all__ = ["FlinkRestClient", "checkpoint_stats", "new_trigger_id"]

# Gateway and leader-election answers: the REST endpoint (or the proxy in front of it) is up, but no
# leading JobManager can serve the request yet. Retrying later is the right reaction.
_UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client of this process. httpx builds a new one per client by default, loading
    the CA bundle each time (~0.1 s of CPU): a controller creates a client per cluster and pass, so that cost
    dominated its idle CPU. The trust store is the same as httpx's default (certifi's bundle)."""
    return ssl.create_default_context(cafile=certifi.where())


def new_trigger_id() -> str:
    """A fresh trigger id in Flink's format (32 hex digits), to record before triggering."""
    return uuid.uuid4().hex


# -- defensive JSON readers -------------------------------------------------------------------------------


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if isinstance(value, bool):  # bool is an int subclass; a flag is not a number
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


#: Flink's JVM metrics (ns of CPU; bytes in use) read for a cluster's usage (``FlinkRestClient.cluster_usage``)
_CPU_TIME = "Status.JVM.CPU.Time"
_MEMORY_USED = ("Status.JVM.Memory.Heap.Used", "Status.JVM.Memory.NonHeap.Used", "Status.JVM.Memory.Direct.MemoryUsed")
_MANAGED_USED = "Status.Flink.Memory.Managed.Used"


def _metric_values(answer: object, field: str) -> dict[str, float]:
    """``[{"id": name, <field>: value}, ...]`` (Flink's metric answers: ``value`` is a string for one component,
    the aggregates are numbers) to {name: value}; entries that are not numbers, or negative ones (Flink's "not
    available" is -1), are left out."""
    found: dict[str, float] = {}
    for raw in _list(answer):
        entry = _dict(raw)
        name, value = entry.get("id"), entry.get(field)
        if not isinstance(name, str) or isinstance(value, bool):
            continue
        try:
            number = float(value) if isinstance(value, (int, float, str)) else None
        except ValueError:
            number = None
        if number is not None and number >= 0 and number == number and number != float("inf"):
            found[name] = number
    return found


def _size(summary: Mapping[str, Any], key: str) -> int | None:
    """``summary.<key>.avg`` of the checkpoint statistics, bytes (Flink writes a whole number; a fraction is cut)."""
    value = _dict(summary.get(key)).get("avg")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        return None
    return int(value)


def _time(data: Mapping[str, Any], key: str) -> int | None:
    """An epoch-millisecond timestamp; Flink writes ``-1`` or ``0`` for "not yet"."""
    value = _int(data, key)
    return value if value is not None and value > 0 else None


def _bool(data: Mapping[str, Any], key: str) -> bool | None:
    value = data.get(key)
    return value if isinstance(value, bool) else None


def _failure(data: Mapping[str, Any]) -> FailureCause | None:
    # Savepoint operations spell it "failure-cause", checkpoint operations "failureCause".
    raw = data.get("failure-cause", data.get("failureCause"))
    if not isinstance(raw, dict):
        return None
    return FailureCause(class_name=_str(raw, "class"), stacktrace=_str(raw, "stack-trace"))


def _completed_checkpoint(raw: object) -> CompletedCheckpoint | None:
    if not isinstance(raw, dict):
        return None
    return CompletedCheckpoint(
        checkpoint_id=_int(raw, "id"),
        external_path=_str(raw, "external_path"),
        is_savepoint=_bool(raw, "is_savepoint"),
        checkpoint_type=_str(raw, "checkpoint_type"),
        savepoint_format=_str(raw, "savepointFormat"),
        trigger_timestamp=_time(raw, "trigger_timestamp"),
        latest_ack_timestamp=_time(raw, "latest_ack_timestamp"),
        state_size=_int(raw, "state_size"),
        checkpointed_size=_int(raw, "checkpointed_size"),
        discarded=_bool(raw, "discarded"),
    )


def _failed_checkpoint(raw: object) -> FailedCheckpoint | None:
    if not isinstance(raw, dict):
        return None
    return FailedCheckpoint(
        checkpoint_id=_int(raw, "id"),
        trigger_timestamp=_time(raw, "trigger_timestamp"),
        failure_timestamp=_time(raw, "failure_timestamp"),
        failure_message=_str(raw, "failure_message"),
    )


def _restored_checkpoint(raw: object) -> RestoredCheckpoint | None:
    if not isinstance(raw, dict):
        return None
    return RestoredCheckpoint(
        checkpoint_id=_int(raw, "id"),
        restore_timestamp=_time(raw, "restore_timestamp"),
        is_savepoint=_bool(raw, "is_savepoint"),
        external_path=_str(raw, "external_path"),
    )


def _exception_entry(raw: Mapping[str, Any]) -> ExceptionEntry:
    labels = _dict(raw.get("failureLabels"))
    return ExceptionEntry(
        exception_name=_str(raw, "exceptionName"),
        stacktrace=_str(raw, "stacktrace"),
        timestamp=_time(raw, "timestamp"),
        task_name=_str(raw, "taskName"),
        endpoint=_str(raw, "endpoint"),
        taskmanager_id=_str(raw, "taskManagerId"),
        failure_labels=MappingProxyType({str(k): str(v) for k, v in labels.items()}),
        concurrent=tuple(
            _exception_entry(item) for item in _list(raw.get("concurrentExceptions")) if isinstance(item, dict)
        ),
    )


def checkpoint_stats(data: object) -> CheckpointStats:
    """Flink's answer to ``GET /jobs/:jobid/checkpoints`` (anything else: every figure unknown)."""
    body = _dict(data)
    counts = _dict(body.get("counts"))
    latest = _dict(body.get("latest"))
    summary = _dict(body.get("summary"))
    return CheckpointStats(
        state_size_avg=_size(summary, "state_size"),
        checkpointed_size_avg=_size(summary, "checkpointed_size"),
        counts=CheckpointCounts(
            total=_int(counts, "total"),
            in_progress=_int(counts, "in_progress"),
            completed=_int(counts, "completed"),
            failed=_int(counts, "failed"),
            restored=_int(counts, "restored"),
        ),
        latest_completed=_completed_checkpoint(latest.get("completed")),
        latest_savepoint=_completed_checkpoint(latest.get("savepoint")),
        latest_failed=_failed_checkpoint(latest.get("failed")),
        latest_restored=_restored_checkpoint(latest.get("restored")),
    )


def _path_segment(value: str) -> str:
    """Quote an id for use as one URL path segment, so that it cannot change the route."""
    return quote(value, safe="")


def _error_lines(response: httpx.Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return [text[:2000]] if text else []
    errors = _list(_dict(body).get("errors"))
    return [item if isinstance(item, str) else json.dumps(item) for item in errors]


# -- the client -------------------------------------------------------------------------------------------


class FlinkRestClient:
    """A blocking Flink REST client. One instance per cluster endpoint; close it (or use ``with``)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        keepalive: float = 5.0,
    ) -> None:
        """``keepalive``: seconds an idle connection is kept for the next request (httpx's default: 5 s)."""
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(keepalive_expiry=keepalive),
            headers={"Accept": "application/json"},
            follow_redirects=False,
            verify=_tls_context(),
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> FlinkRestClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FlinkRestClient({self.base_url!r})"

    # The one boundary where httpx and HTTP statuses become flinkops errors.
    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
    ) -> dict[str, Any]:
        body = self._request_json(method, path, params=params, json_body=json_body, files=files)
        if not isinstance(body, dict):
            raise FlinkApiError(f"{method} {path}: expected a JSON object")
        return body

    def _request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
    ) -> Any:
        """The answer's JSON as sent (an object, or a list for the metric endpoints); ``{}`` for an empty one."""
        try:
            response = self._client.request(method, path, params=params, json=json_body, files=files)
        except httpx.TimeoutException as exc:
            raise FlinkUnavailable(f"{method} {path}: Flink REST at {self.base_url} timed out") from exc
        except httpx.TransportError as exc:
            raise FlinkUnavailable(
                f"{method} {path}: Flink REST at {self.base_url} is unreachable ({type(exc).__name__})"
            ) from exc

        status = response.status_code
        if status == 404:
            errors = _error_lines(response)
            detail = errors[0].strip().splitlines()[0] if errors and errors[0].strip() else "not found"
            raise FlinkNotFound(f"{method} {path} -> HTTP 404: {detail}")
        if status in _UNAVAILABLE_STATUSES:
            errors = _error_lines(response)
            detail = errors[0].strip().splitlines()[0] if errors and errors[0].strip() else "no detail"
            raise FlinkUnavailable(f"{method} {path} -> HTTP {status}: {detail}")
        if not 200 <= status < 300:
            raise FlinkRequestRejected(status, _error_lines(response), method=method, path=path)

        if not response.content.strip():
            return {}
        try:
            body = response.json()
        except ValueError as exc:
            raise FlinkApiError(
                f"{method} {path} -> HTTP {status}: the answer is not JSON; is {self.base_url} a Flink REST endpoint?"
            ) from exc
        return body

    # -- cluster ------------------------------------------------------------------------------------------

    def overview(self) -> ClusterOverview:
        data = self._request("GET", "/overview")
        return ClusterOverview(
            taskmanagers=_int(data, "taskmanagers"),
            slots_total=_int(data, "slots-total"),
            slots_available=_int(data, "slots-available"),
            jobs_running=_int(data, "jobs-running"),
            jobs_finished=_int(data, "jobs-finished"),
            jobs_cancelled=_int(data, "jobs-cancelled"),
            jobs_failed=_int(data, "jobs-failed"),
            flink_version=_str(data, "flink-version"),
            flink_commit=_str(data, "flink-commit"),
        )

    def taskmanagers(self) -> tuple[TaskManagerSlots, ...]:
        data = self._request("GET", "/taskmanagers")
        found: list[TaskManagerSlots] = []
        for raw in _list(data.get("taskmanagers")):
            entry = _dict(raw)
            resource_id = _str(entry, "id")
            if resource_id is None:
                continue
            total = _int(entry, "slotsNumber") or 0
            free = _int(entry, "freeSlots")
            found.append(TaskManagerSlots(resource_id, total, total if free is None else free))
        return tuple(found)

    def cluster_usage(self) -> ClusterUsage:
        """The JobManager's and the TaskManagers' (summed by Flink: ``agg=sum``) CPU time and memory in use. A
        metric neither reports is None; a TaskManager list Flink cannot give (none registered yet) leaves the
        JobManager's figures alone, which then stand for the cluster."""
        names = ",".join((_CPU_TIME, *_MEMORY_USED))
        jm = _metric_values(self._request_json("GET", "/jobmanager/metrics", params={"get": names}), "value")
        try:
            tm = _metric_values(
                self._request_json(
                    "GET", "/taskmanagers/metrics", params={"get": ",".join((names, _MANAGED_USED)), "agg": "sum"}
                ),
                "sum",
            )
        except FlinkNotFound:
            tm = {}
        cpu = [v for v in (jm.get(_CPU_TIME), tm.get(_CPU_TIME)) if v is not None]
        memory = [v for name in (*_MEMORY_USED, _MANAGED_USED) for v in (jm.get(name), tm.get(name)) if v is not None]
        return ClusterUsage(
            cpu_seconds=sum(cpu) / 1e9 if cpu else None,
            memory_bytes=int(sum(memory)) if memory else None,
        )

    def config(self) -> ClusterConfig:
        data = self._request("GET", "/config")
        features = _dict(data.get("features"))
        known = {"flink-version", "flink-revision", "features"}
        return ClusterConfig(
            flink_version=_str(data, "flink-version"),
            flink_revision=_str(data, "flink-revision"),
            features=MappingProxyType({str(k): v for k, v in features.items() if isinstance(v, bool)}),
            extras=MappingProxyType({k: v for k, v in data.items() if k not in known}),
        )

    # -- jobs ---------------------------------------------------------------------------------------------

    def list_jobs(self) -> tuple[JobSummary, ...]:
        data = self._request("GET", "/jobs/overview")
        jobs: list[JobSummary] = []
        for raw in _list(data.get("jobs")):
            if not isinstance(raw, dict):
                continue
            job_id = _str(raw, "jid")
            if job_id is None:
                continue
            jobs.append(
                JobSummary(
                    job_id=job_id,
                    name=_str(raw, "name"),
                    state=_str(raw, "state"),
                    start_time=_time(raw, "start-time"),
                    end_time=_time(raw, "end-time"),
                    duration=_int(raw, "duration"),
                    last_modification=_time(raw, "last-modification"),
                    tasks_total=_int(_dict(raw.get("tasks")), "total"),
                    tasks_running=_int(_dict(raw.get("tasks")), "running"),
                )
            )
        return tuple(jobs)

    def job(self, job_id: str) -> JobDetails:
        data = self._request("GET", f"/jobs/{_path_segment(job_id)}")
        vertices = data.get("vertices")
        timestamps = _dict(data.get("timestamps"))
        vertex_states = _dict(data.get("status-counts"))
        return JobDetails(
            job_id=_str(data, "jid") or job_id,
            name=_str(data, "name"),
            state=_str(data, "state"),
            job_type=_str(data, "job-type"),
            start_time=_time(data, "start-time"),
            end_time=_time(data, "end-time"),
            duration=_int(data, "duration"),
            vertices=len(vertices) if isinstance(vertices, list) else None,
            timestamps=MappingProxyType(
                {state: when for state in timestamps if (when := _time(timestamps, state)) is not None}
            ),
            vertex_state_counts=MappingProxyType(
                {state: n for state in vertex_states if (n := _int(vertex_states, state))}
            ),
        )

    def resource_requirements(self, job_id: str) -> dict[str, tuple[int, int]]:
        """``GET /jobs/:jobid/resource-requirements`` (adaptive scheduler): vertex id -> (lower, upper)
        parallelism bounds."""
        data = self._request("GET", f"/jobs/{_path_segment(job_id)}/resource-requirements")
        bounds: dict[str, tuple[int, int]] = {}
        for vertex, raw in data.items():
            parallelism = _dict(_dict(raw).get("parallelism"))
            lower, upper = _int(parallelism, "lowerBound"), _int(parallelism, "upperBound")
            if lower is not None and upper is not None:
                bounds[str(vertex)] = (lower, upper)
        return bounds

    def set_resource_requirements(self, job_id: str, bounds: Mapping[str, tuple[int, int]]) -> None:
        """``PUT /jobs/:jobid/resource-requirements``: rescale a running job in place (adaptive scheduler)."""
        body = {v: {"parallelism": {"lowerBound": lo, "upperBound": hi}} for v, (lo, hi) in bounds.items()}
        self._request("PUT", f"/jobs/{_path_segment(job_id)}/resource-requirements", json_body=body)

    def job_exceptions(self, job_id: str, *, max_exceptions: int | None = None) -> JobExceptions:
        params = {"maxExceptions": str(max_exceptions)} if max_exceptions is not None else None
        data = self._request("GET", f"/jobs/{_path_segment(job_id)}/exceptions", params=params)
        history_raw = _dict(data.get("exceptionHistory"))
        history = tuple(_exception_entry(item) for item in _list(history_raw.get("entries")) if isinstance(item, dict))
        root = _str(data, "root-exception")
        timestamp = _time(data, "timestamp")
        if root is None and history:
            root, timestamp = history[0].stacktrace, history[0].timestamp
        return JobExceptions(
            root_exception=root,
            timestamp=timestamp,
            history=history,
            truncated=_bool(history_raw, "truncated"),
        )

    def job_result(self, job_id: str) -> JobResult:
        data = self._request("GET", f"/jobs/{_path_segment(job_id)}/execution-result")
        result = _dict(data.get("job-execution-result"))
        return JobResult(
            job_id=_str(result, "id") or job_id,
            status=_str(_dict(data.get("status")), "id"),
            application_status=_str(result, "application-status"),
            net_runtime=_int(result, "net-runtime"),
            failure=_failure(result),
        )

    def accumulators(self, job_id: str) -> dict[str, str]:
        """The job's user accumulators (``name → value`` as Flink renders them), summed over its tasks."""
        data = self._request("GET", f"/jobs/{_path_segment(job_id)}/accumulators")
        found: dict[str, str] = {}
        for raw in data.get("user-task-accumulators") or []:
            entry = _dict(raw)
            name = _str(entry, "name")
            if name:
                found[name] = str(entry.get("value", ""))
        return found

    def cancel(self, job_id: str) -> None:
        """Ask Flink to cancel the job; returns at once (Flink answers 202 and also for terminal jobs)."""
        self._request("PATCH", f"/jobs/{_path_segment(job_id)}", params={"mode": "cancel"})

    # -- checkpoints and savepoints -----------------------------------------------------------------------

    def checkpoints(self, job_id: str) -> CheckpointStats:
        return checkpoint_stats(self._request("GET", f"/jobs/{_path_segment(job_id)}/checkpoints"))

    def _trigger(self, path: str, body: Mapping[str, Any]) -> str:
        data = self._request("POST", path, json_body=body)
        trigger_id = _str(data, "request-id")
        if trigger_id is None:
            raise FlinkApiError(f"POST {path}: Flink accepted the trigger but sent no request-id")
        return trigger_id

    def trigger_savepoint(
        self,
        job_id: str,
        target_directory: str | None = None,
        format_type: SavepointFormat = "CANONICAL",
        *,
        trigger_id: str | None = None,
    ) -> str:
        """Trigger a savepoint and return its trigger id (``trigger_id`` when given, for idempotency)."""
        body: dict[str, Any] = {"cancel-job": False, "formatType": format_type}
        if target_directory is not None:
            body["target-directory"] = target_directory
        if trigger_id is not None:
            body["triggerId"] = trigger_id
        return self._trigger(f"/jobs/{_path_segment(job_id)}/savepoints", body)

    def savepoint_status(self, job_id: str, trigger_id: str) -> SavepointStatus:
        """Status of a savepoint or stop-with-savepoint trigger."""
        data = self._request("GET", f"/jobs/{_path_segment(job_id)}/savepoints/{_path_segment(trigger_id)}")
        operation = _dict(data.get("operation"))
        return SavepointStatus(
            trigger_id=trigger_id,
            status=_str(_dict(data.get("status")), "id"),
            location=_str(operation, "location"),
            failure=_failure(operation),
        )

    def stop_with_savepoint(
        self,
        job_id: str,
        target_directory: str | None = None,
        drain: bool = False,
        format_type: SavepointFormat = "CANONICAL",
        *,
        trigger_id: str | None = None,
    ) -> str:
        """Stop the job with a final savepoint; poll :meth:`savepoint_status` with the returned id."""
        body: dict[str, Any] = {"drain": drain, "formatType": format_type}
        if target_directory is not None:
            body["targetDirectory"] = target_directory
        if trigger_id is not None:
            body["triggerId"] = trigger_id
        return self._trigger(f"/jobs/{_path_segment(job_id)}/stop", body)

    def trigger_checkpoint(
        self,
        job_id: str,
        checkpoint_type: CheckpointType = "FULL",
        *,
        trigger_id: str | None = None,
    ) -> str:
        """Trigger a checkpoint (Flink >= 1.17); works even when periodic checkpointing is off."""
        body: dict[str, Any] = {"checkpointType": checkpoint_type}
        if trigger_id is not None:
            body["triggerId"] = trigger_id
        return self._trigger(f"/jobs/{_path_segment(job_id)}/checkpoints", body)

    def checkpoint_status(self, job_id: str, trigger_id: str) -> CheckpointTriggerStatus:
        data = self._request("GET", f"/jobs/{_path_segment(job_id)}/checkpoints/{_path_segment(trigger_id)}")
        operation = _dict(data.get("operation"))
        return CheckpointTriggerStatus(
            trigger_id=trigger_id,
            status=_str(_dict(data.get("status")), "id"),
            checkpoint_id=_int(operation, "checkpointId"),
            failure=_failure(operation),
        )

    # -- jars ---------------------------------------------------------------------------------------------

    def upload_jar(self, path: str | Path) -> str:
        """Upload a jar and return its id on the cluster (the stored file's name)."""
        jar = Path(path)
        try:
            content = jar.read_bytes()
        except OSError as exc:
            raise InvalidInput([Problem(path=str(jar), message=f"cannot read the jar: {exc.strerror or exc}")]) from exc
        data = self._request(
            "POST", "/jars/upload", files={"jarfile": (jar.name, content, "application/x-java-archive")}
        )
        stored = _str(data, "filename")
        if not stored:
            raise FlinkApiError("POST /jars/upload: Flink accepted the jar but sent no filename")
        # Flink answers with the server-side path of the stored file; its last segment is the jar id.
        return stored.replace("\\", "/").rsplit("/", 1)[-1]

    def list_jars(self) -> tuple[JarFile, ...]:
        data = self._request("GET", "/jars")
        jars: list[JarFile] = []
        for raw in _list(data.get("files")):
            if not isinstance(raw, dict):
                continue
            jar_id = _str(raw, "id")
            if jar_id is None:
                continue
            entries = [_str(item, "name") for item in _list(raw.get("entry")) if isinstance(item, dict)]
            jars.append(
                JarFile(
                    jar_id=jar_id,
                    name=_str(raw, "name"),
                    uploaded=_time(raw, "uploaded"),
                    entry_classes=tuple(entry for entry in entries if entry is not None),
                )
            )
        return tuple(jars)

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
        """Run an uploaded jar's ``main()`` on the cluster and return the job id.

        A ``main()`` that throws, a duplicate ``job_id`` or a missing entry class surface as
        :class:`FlinkRequestRejected` (HTTP 400) with the Java cause chain in ``errors``.
        """
        body: dict[str, Any] = {"programArgsList": list(program_args)}
        optional: dict[str, Any] = {
            "entryClass": entry_class,
            "parallelism": parallelism,
            "jobId": job_id,
            "savepointPath": savepoint_path,
            "allowNonRestoredState": allow_non_restored_state,
            "claimMode": claim_mode,
            "flinkConfiguration": dict(flink_configuration) if flink_configuration is not None else None,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        path = f"/jars/{_path_segment(jar_id)}/run"
        data = self._request("POST", path, json_body=body)
        started = _str(data, "jobid")
        if started is None:
            raise FlinkApiError(f"POST {path}: Flink ran the jar but sent no jobid")
        return started

    def delete_jar(self, jar_id: str) -> None:
        """Delete an uploaded jar. Flink answers 400, not 404, for a jar id it does not know."""
        self._request("DELETE", f"/jars/{_path_segment(jar_id)}")
