"""The Flink REST client, through an httpx transport: what it sends, how it reads Flink's JSON, and how
HTTP and transport failures become flinkops errors.

The JSON bodies are what a Flink 2.2.1 session cluster (started by ``tests/support/rawflink.py``) answered,
with stack traces shortened.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flinkops.errors import (
    FlinkApiError,
    FlinkNotFound,
    FlinkRequestRejected,
    FlinkUnavailable,
    InvalidInput,
    TemporaryError,
)
from flinkops.flink.rest import FlinkRestClient, new_trigger_id
from flinkops.ports.flink import CheckpointCounts, JobSummary

BASE = "http://flink.test:8081"
JOB = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
TRIGGER = "cd32b14ba2257c770f8a6635a2e658b9"
JAR = "7071461d-afee-4d69-9381-cc13efecffd3_flinkops-testjobs-7ed48ff7d5b7.jar"

# -- recorded Flink answers -------------------------------------------------------------------------------

OVERVIEW = {
    "taskmanagers": 1,
    "slots-total": 2,
    "slots-available": 2,
    "jobs-running": 0,
    "jobs-finished": 0,
    "jobs-cancelled": 0,
    "jobs-failed": 0,
    "flink-version": "2.2.1",
    "flink-commit": "450c63e",
}

CONFIG = {
    "refresh-interval": 3000,
    "timezone-name": "Coordinated Universal Time",
    "timezone-offset": 0,
    "flink-version": "2.2.1",
    "flink-revision": "450c63e @ 2026-05-03T10:10:44+02:00",
    "features": {"web-submit": True, "web-cancel": True, "web-rescale": False, "web-history": False},
}

JOBS_OVERVIEW = {
    "jobs": [
        {
            "jid": JOB,
            "name": "flinkops-test-counting",
            "start-time": 1795264011350,
            "end-time": -1,
            "duration": 3532,
            "state": "RUNNING",
            "last-modification": 1795264012602,
            "tasks": {"running": 2, "canceling": 0, "canceled": 0, "total": 2, "created": 0, "finished": 0},
            "pending-operators": 0,
        },
        {
            "jid": "ffffffffffffffffffffffffffffffff",
            "name": "flinkops-test-failing",
            "start-time": 1795264031314,
            "end-time": 1795264032103,
            "duration": 789,
            "state": "FAILED",
            "last-modification": 1795264032103,
            "tasks": {"running": 0, "failed": 1, "total": 1},
            "pending-operators": 0,
        },
    ]
}

_VERTEX_TASKS = {"CANCELED": 0, "DEPLOYING": 0, "RUNNING": 1, "FAILED": 0, "CANCELING": 0, "FINISHED": 0}
JOB_DETAILS = {
    "jid": JOB,
    "name": "flinkops-test-counting",
    "isStoppable": False,
    "state": "RUNNING",
    "job-type": "STREAMING",
    "start-time": 1795264011350,
    "end-time": -1,
    "duration": 3594,
    "maxParallelism": -1,
    "now": 1795264014944,
    "timestamps": {
        "CANCELLING": 0,
        "RESTARTING": 0,
        "RECONCILING": 0,
        "FAILED": 0,
        "CANCELED": 0,
        "CREATED": 1795264011610,
        "FAILING": 0,
        "SUSPENDED": 0,
        "INITIALIZING": 1795264011350,
        "RUNNING": 1795264011781,
        "FINISHED": 0,
    },
    "vertices": [
        {
            "id": "ca88eee0095684d687a1b6495617f957",
            "name": "Source: numbers",
            "parallelism": 1,
            "status": "RUNNING",
            "tasks": _VERTEX_TASKS,
        },
        {
            "id": "569cdc4a96621daa7af4c159b985695c",
            "name": "running-count -> Sink: Writer",
            "parallelism": 1,
            "status": "RUNNING",
            "tasks": _VERTEX_TASKS,
        },
    ],
    "status-counts": {"CANCELED": 0, "DEPLOYING": 0, "CREATED": 0, "RUNNING": 2, "FAILED": 0, "FINISHED": 0},
    "plan": {"jid": JOB, "name": "flinkops-test-counting", "type": "STREAMING", "nodes": []},
    "pending-operators": 0,
}

DELIBERATE = "flinkops-test: deliberate failure after 20 records"
ROOT_TRACE = (
    "org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoffTimeStrategy\n"
    "\tat org.apache.flink.runtime.executiongraph.failover.ExecutionFailureHandler.handleFailure"
    "(ExecutionFailureHandler.java:213)\n"
    f"Caused by: java.lang.IllegalStateException: {DELIBERATE}\n"
    "\tat flinkops.testjobs.FailingJob$FailAfter.map(FailingJob.java:54)\n"
)
EXCEPTIONS = {
    "exceptionHistory": {
        "entries": [
            {
                "exceptionName": "org.apache.flink.runtime.JobException",
                "stacktrace": ROOT_TRACE,
                "timestamp": 1795264032103,
                "failureLabels": {},
                "concurrentExceptions": [
                    {
                        "exceptionName": "java.lang.IllegalStateException",
                        "stacktrace": f"java.lang.IllegalStateException: {DELIBERATE}\n\tat ...",
                        "timestamp": 1795264032059,
                        "failureLabels": {"type": "user"},
                        "taskName": "Source: numbers -> fail-after -> Sink: Writer (1/1) - execution #0",
                        "endpoint": "localhost:35673",
                        "taskManagerId": "127.0.0.1:36747-3a8688",
                    }
                ],
            }
        ],
        "truncated": False,
    }
}

EXECUTION_RESULT_FAILED = {
    "status": {"id": "COMPLETED"},
    "job-execution-result": {
        "id": "ffffffffffffffffffffffffffffffff",
        "application-status": "FAILED",
        "accumulator-results": {},
        "net-runtime": 789,
        "failure-cause": {
            "class": "org.apache.flink.runtime.JobException",
            "stack-trace": ROOT_TRACE,
            "serialized-throwable": "rO0ABXNyAClvcmcuYXBhY2hlLmZsaW5r",
        },
    },
}

_SUMMARY_STAT = {"min": 0, "max": 0, "avg": 0, "p50": "NaN", "p90": "NaN", "p95": "NaN", "p99": "NaN"}
CHECKPOINTS_EMPTY = {
    "counts": {"restored": 0, "total": 0, "in_progress": 0, "completed": 0, "failed": 0},
    "summary": {"checkpointed_size": _SUMMARY_STAT, "state_size": _SUMMARY_STAT},
    "latest": {"completed": None, "savepoint": None, "failed": None, "restored": None},
    "history": [],
}


def _completed(checkpoint_id: int, *, savepoint: bool, path: str) -> dict[str, Any]:
    return {
        "className": "completed",
        "id": checkpoint_id,
        "status": "COMPLETED",
        "is_savepoint": savepoint,
        "savepointFormat": "CANONICAL" if savepoint else None,
        "trigger_timestamp": 1795264016509,
        "latest_ack_timestamp": 1795264016682,
        "checkpointed_size": 1980,
        "state_size": 1980,
        "end_to_end_duration": 173,
        "alignment_buffered": 0,
        "processed_data": 0,
        "persisted_data": 0,
        "num_subtasks": 2,
        "num_acknowledged_subtasks": 2,
        "checkpoint_type": "SAVEPOINT" if savepoint else "CHECKPOINT",
        "tasks": {},
        "external_path": path,
        "discarded": False,
    }


CHK_PATH = f"file:/tmp/rawwork/checkpoints/{JOB}/chk-1"
SP_PATH = "file:/tmp/rawwork/savepoints/savepoint-aaaaaa-585e93966dd4"
CHECKPOINTS = {
    "counts": {"restored": 1, "total": 3, "in_progress": 0, "completed": 2, "failed": 1},
    "summary": {"checkpointed_size": _SUMMARY_STAT},
    "latest": {
        "completed": _completed(1, savepoint=False, path=CHK_PATH),
        "savepoint": _completed(2, savepoint=True, path=SP_PATH),
        "failed": {
            "className": "failed",
            "id": 3,
            "status": "FAILED",
            "trigger_timestamp": 1795264017000,
            "failure_timestamp": 1795264017100,
            "failure_message": "Checkpoint expired before completing.",
        },
        "restored": {
            "id": 3,
            "restore_timestamp": 1795264031223,
            "is_savepoint": True,
            "external_path": "file:/tmp/rawwork/savepoints/savepoint-aaaaaa-5f6ddb61c1af",
        },
    },
    "history": [_completed(2, savepoint=True, path=SP_PATH), _completed(1, savepoint=False, path=CHK_PATH)],
}

SAVEPOINT_FAILURE = {
    "class": "java.util.concurrent.CompletionException",
    "stack-trace": "java.util.concurrent.CompletionException: org.apache.flink.runtime.checkpoint."
    "CheckpointException: An Exception occurred while triggering the checkpoint. "
    "IO-problem detected.\n\tat ...",
}

NOT_FOUND_JOB = {
    "errors": [
        f"org.apache.flink.runtime.rest.NotFoundException: Job {JOB} not found\n"
        "\tat org.apache.flink.runtime.rest.handler.job.AbstractExecutionGraphHandler.lambda$handleRequest$1"
        "(AbstractExecutionGraphHandler.java:99)\n"
        "Caused by: org.apache.flink.runtime.messages.FlinkJobNotFoundException: "
        f"Could not find Flink job ({JOB})\n"
    ]
}

MAIN_REFUSED = "flinkops-test: main() refused to build the job"
RUN_REJECTED = {
    "errors": [
        "org.apache.flink.runtime.rest.handler.RestHandlerException: Could not execute application.\n"
        "\tat org.apache.flink.runtime.webmonitor.handlers.JarRunHandler.lambda$handleRequest$1"
        "(JarRunHandler.java:114)\n"
        "Caused by: org.apache.flink.client.program.ProgramInvocationException: The main method caused an "
        f"error: {MAIN_REFUSED}\n"
        f"Caused by: java.lang.IllegalArgumentException: {MAIN_REFUSED}\n"
        "\tat flinkops.testjobs.ThrowingMain.main(ThrowingMain.java:8)\n"
    ]
}

INTERNAL_ERROR = {
    "errors": [
        "Internal server error.",
        "<Exception on server side:\njava.util.concurrent.CompletionException: org.apache.flink.runtime.rest."
        "handler.RestHandlerException: Jar file /tmp/web/flink-web-upload/nope.jar does not exist\n"
        "\tat ...\n\nEnd of exception on server side>",
    ]
}


# -- a fake Flink endpoint --------------------------------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


class FakeFlink:
    """Routes (method, path) to canned answers and keeps every request it received."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], httpx.Response | Handler] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, status: int = 200, body: Any = None) -> None:
        self.routes[(method, path)] = httpx.Response(status, json={} if body is None else body)

    def on_call(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        route = self.routes.get((request.method, request.url.raw_path.split(b"?")[0].decode()))
        if route is None:
            return httpx.Response(404, json={"errors": [f"Unable to load requested file {request.url.path}."]})
        return route(request) if callable(route) else route

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)


@pytest.fixture
def flink() -> FakeFlink:
    return FakeFlink()


@pytest.fixture
def client(flink: FakeFlink) -> Iterator[FlinkRestClient]:
    with FlinkRestClient(BASE, transport=httpx.MockTransport(flink)) as rest:
        yield rest


# -- cluster ----------------------------------------------------------------------------------------------


def test_overview_reads_capacity_and_version(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("GET", "/overview", body=OVERVIEW)

    overview = client.overview()

    assert overview.taskmanagers == 1
    assert (overview.slots_total, overview.slots_available) == (2, 2)
    assert overview.jobs_running == 0
    assert (overview.flink_version, overview.flink_commit) == ("2.2.1", "450c63e")
    assert str(flink.last.url) == f"{BASE}/overview"
    assert flink.last.headers["accept"] == "application/json"


def test_taskmanagers_read_each_resource_id_and_its_free_slots(flink: FakeFlink, client: FlinkRestClient) -> None:
    # Shape of Flink 2.x GET /taskmanagers (trimmed).
    body = {
        "taskmanagers": [
            {"id": "taskmanager-0", "path": "pekko.tcp://flink@127.0.0.1:40001/user/rpc/taskmanager_0",
             "dataPort": 40002, "slotsNumber": 2, "freeSlots": 0, "totalResource": {}, "freeResource": {}},
            {"id": "taskmanager-1", "slotsNumber": 2, "freeSlots": 2},
            {"slotsNumber": 1, "freeSlots": 1},
        ]
    }  # fmt: skip
    flink.on("GET", "/taskmanagers", body=body)

    found = client.taskmanagers()

    assert [(t.resource_id, t.slots_total, t.slots_free) for t in found] == [
        ("taskmanager-0", 2, 0),
        ("taskmanager-1", 2, 2),
    ]


def test_config_keeps_unknown_keys_as_extras(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("GET", "/config", body=CONFIG)

    config = client.config()

    assert config.flink_version == "2.2.1"
    assert config.flink_revision == "450c63e @ 2026-05-03T10:10:44+02:00"
    assert config.features == {
        "web-submit": True,
        "web-cancel": True,
        "web-rescale": False,
        "web-history": False,
    }
    assert config.extras == {
        "refresh-interval": 3000,
        "timezone-name": "Coordinated Universal Time",
        "timezone-offset": 0,
    }


# -- jobs -------------------------------------------------------------------------------------------------


def test_list_jobs_reads_the_jobs_overview(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("GET", "/jobs/overview", body=JOBS_OVERVIEW)

    jobs = client.list_jobs()

    assert jobs == (
        JobSummary(
            job_id=JOB,
            name="flinkops-test-counting",
            state="RUNNING",
            start_time=1795264011350,
            end_time=None,  # Flink's -1: still running
            duration=3532,
            last_modification=1795264012602,
            tasks_total=2,
            tasks_running=2,
        ),
        JobSummary(
            job_id="ffffffffffffffffffffffffffffffff",
            name="flinkops-test-failing",
            state="FAILED",
            start_time=1795264031314,
            end_time=1795264032103,
            duration=789,
            last_modification=1795264032103,
            tasks_total=1,
            tasks_running=0,
        ),
    )


def test_job_counts_vertices_and_keeps_only_entered_states(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("GET", f"/jobs/{JOB}", body=JOB_DETAILS)

    job = client.job(JOB)

    assert (job.job_id, job.name, job.state, job.job_type) == (
        JOB,
        "flinkops-test-counting",
        "RUNNING",
        "STREAMING",
    )
    assert job.vertices == 2
    assert job.timestamps == {
        "INITIALIZING": 1795264011350,
        "CREATED": 1795264011610,
        "RUNNING": 1795264011781,
    }
    assert job.start_time == 1795264011350
    assert job.end_time is None
    assert job.vertex_state_counts == {"RUNNING": 2}
    assert job.all_vertices_running


def test_job_is_not_fully_running_while_vertices_deploy(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("GET", f"/jobs/{JOB}", body={**JOB_DETAILS, "status-counts": {"RUNNING": 1, "DEPLOYING": 1}})

    assert not client.job(JOB).all_vertices_running


def test_job_exceptions_take_the_root_from_the_newest_history_entry(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("GET", f"/jobs/{JOB}/exceptions", body=EXCEPTIONS)

    exceptions = client.job_exceptions(JOB)

    assert exceptions.root_exception == ROOT_TRACE
    assert DELIBERATE in (exceptions.root_exception or "")
    assert exceptions.timestamp == 1795264032103
    assert exceptions.truncated is False
    [entry] = exceptions.history
    assert entry.exception_name == "org.apache.flink.runtime.JobException"
    [task_failure] = entry.concurrent
    assert task_failure.exception_name == "java.lang.IllegalStateException"
    assert task_failure.task_name == "Source: numbers -> fail-after -> Sink: Writer (1/1) - execution #0"
    assert task_failure.taskmanager_id == "127.0.0.1:36747-3a8688"
    assert task_failure.endpoint == "localhost:35673"
    assert task_failure.failure_labels == {"type": "user"}
    assert flink.last.url.params.get("maxExceptions") is None


def test_job_exceptions_pass_max_exceptions(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("GET", f"/jobs/{JOB}/exceptions", body=EXCEPTIONS)

    client.job_exceptions(JOB, max_exceptions=5)

    assert flink.last.url.params["maxExceptions"] == "5"


def test_job_exceptions_of_a_healthy_job_are_empty(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("GET", f"/jobs/{JOB}/exceptions", body={"exceptionHistory": {"entries": [], "truncated": False}})

    exceptions = client.job_exceptions(JOB)

    assert (exceptions.root_exception, exceptions.timestamp, exceptions.history) == (None, None, ())


def test_job_exceptions_read_the_pre_2_0_root_fields(flink: FakeFlink, client: FlinkRestClient) -> None:
    legacy = {
        "root-exception": "java.lang.RuntimeException: old",
        "timestamp": 1700000000000,
        "truncated": False,
    }
    flink.on("GET", f"/jobs/{JOB}/exceptions", body=legacy)

    exceptions = client.job_exceptions(JOB)

    assert exceptions.root_exception == "java.lang.RuntimeException: old"
    assert exceptions.timestamp == 1700000000000


def test_job_result_of_a_failed_job(flink: FakeFlink, client: FlinkRestClient) -> None:
    failed = "ffffffffffffffffffffffffffffffff"
    flink.on("GET", f"/jobs/{failed}/execution-result", body=EXECUTION_RESULT_FAILED)

    result = client.job_result(failed)

    assert not result.in_progress
    assert (result.job_id, result.application_status, result.net_runtime) == (failed, "FAILED", 789)
    assert result.failure is not None
    assert result.failure.class_name == "org.apache.flink.runtime.JobException"
    assert DELIBERATE in (result.failure.stacktrace or "")


def test_job_result_while_the_job_runs(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("GET", f"/jobs/{JOB}/execution-result", body={"status": {"id": "IN_PROGRESS"}})

    result = client.job_result(JOB)

    assert result.in_progress
    assert (result.job_id, result.application_status, result.failure) == (JOB, None, None)


def test_cancel_patches_the_job_with_mode_cancel(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("PATCH", f"/jobs/{JOB}", status=202, body={})

    client.cancel(JOB)

    assert flink.last.method == "PATCH"
    assert flink.last.url.path == f"/jobs/{JOB}"
    assert dict(flink.last.url.params) == {"mode": "cancel"}


# -- checkpoints and savepoints ---------------------------------------------------------------------------


def test_checkpoints_read_counts_and_latest_of_each_kind(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("GET", f"/jobs/{JOB}/checkpoints", body=CHECKPOINTS)

    stats = client.checkpoints(JOB)

    assert stats.counts == CheckpointCounts(total=3, in_progress=0, completed=2, failed=1, restored=1)
    completed = stats.latest_completed
    assert completed is not None
    assert (completed.checkpoint_id, completed.external_path, completed.is_savepoint) == (1, CHK_PATH, False)
    assert (completed.trigger_timestamp, completed.latest_ack_timestamp) == (1795264016509, 1795264016682)
    assert (completed.state_size, completed.checkpointed_size) == (1980, 1980)
    assert completed.checkpoint_type == "CHECKPOINT"
    assert completed.savepoint_format is None
    assert completed.discarded is False
    savepoint = stats.latest_savepoint
    assert savepoint is not None
    assert (savepoint.checkpoint_id, savepoint.external_path, savepoint.is_savepoint) == (2, SP_PATH, True)
    assert savepoint.savepoint_format == "CANONICAL"
    failed = stats.latest_failed
    assert failed is not None
    assert (failed.checkpoint_id, failed.failure_message) == (3, "Checkpoint expired before completing.")
    restored = stats.latest_restored
    assert restored is not None
    assert restored.checkpoint_id == 3
    assert restored.is_savepoint is True
    assert restored.restore_timestamp == 1795264031223
    assert restored.external_path == "file:/tmp/rawwork/savepoints/savepoint-aaaaaa-5f6ddb61c1af"


def test_checkpoints_of_a_job_without_any(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("GET", f"/jobs/{JOB}/checkpoints", body=CHECKPOINTS_EMPTY)

    stats = client.checkpoints(JOB)

    assert stats.counts.completed == 0
    assert (stats.latest_completed, stats.latest_savepoint, stats.latest_failed, stats.latest_restored) == (
        None,
        None,
        None,
        None,
    )


def test_trigger_savepoint_sends_flinks_kebab_case_body(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("POST", f"/jobs/{JOB}/savepoints", status=202, body={"request-id": TRIGGER})

    trigger_id = client.trigger_savepoint(JOB)

    assert trigger_id == TRIGGER
    assert flink.last_json() == {"cancel-job": False, "formatType": "CANONICAL"}
    assert flink.last.headers["content-type"] == "application/json"


def test_trigger_savepoint_with_directory_format_and_own_trigger_id(flink: FakeFlink, client: FlinkRestClient) -> None:
    mine = new_trigger_id()
    flink.on("POST", f"/jobs/{JOB}/savepoints", status=202, body={"request-id": mine})

    trigger_id = client.trigger_savepoint(JOB, "file:///sp", "NATIVE", trigger_id=mine)

    assert trigger_id == mine
    assert flink.last_json() == {
        "cancel-job": False,
        "formatType": "NATIVE",
        "target-directory": "file:///sp",
        "triggerId": mine,
    }


def test_new_trigger_ids_have_flinks_format() -> None:
    first, second = new_trigger_id(), new_trigger_id()

    assert first != second
    assert len(first) == 32
    int(first, 16)


def test_savepoint_status_in_progress(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("GET", f"/jobs/{JOB}/savepoints/{TRIGGER}", body={"status": {"id": "IN_PROGRESS"}})

    status = client.savepoint_status(JOB, TRIGGER)

    assert status.in_progress
    assert not status.succeeded
    assert not status.failed
    assert (status.trigger_id, status.location, status.failure) == (TRIGGER, None, None)


def test_savepoint_status_completed_with_location(flink: FakeFlink, client: FlinkRestClient) -> None:
    body = {"status": {"id": "COMPLETED"}, "operation": {"location": SP_PATH}}
    flink.on("GET", f"/jobs/{JOB}/savepoints/{TRIGGER}", body=body)

    status = client.savepoint_status(JOB, TRIGGER)

    assert status.succeeded
    assert not status.failed
    assert status.location == SP_PATH


def test_savepoint_status_completed_with_failure_cause(flink: FakeFlink, client: FlinkRestClient) -> None:
    body = {"status": {"id": "COMPLETED"}, "operation": {"failure-cause": SAVEPOINT_FAILURE}}
    flink.on("GET", f"/jobs/{JOB}/savepoints/{TRIGGER}", body=body)

    status = client.savepoint_status(JOB, TRIGGER)

    assert status.failed
    assert not status.succeeded
    assert status.location is None
    assert status.failure is not None
    assert status.failure.class_name == "java.util.concurrent.CompletionException"
    assert "IO-problem detected" in (status.failure.stacktrace or "")


def test_stop_with_savepoint_posts_to_stop_with_camel_case_body(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("POST", f"/jobs/{JOB}/stop", status=202, body={"request-id": TRIGGER})

    assert client.stop_with_savepoint(JOB) == TRIGGER
    assert flink.last_json() == {"drain": False, "formatType": "CANONICAL"}

    client.stop_with_savepoint(JOB, "s3://bucket/sp", drain=True, format_type="NATIVE", trigger_id=TRIGGER)
    assert flink.last_json() == {
        "drain": True,
        "formatType": "NATIVE",
        "targetDirectory": "s3://bucket/sp",
        "triggerId": TRIGGER,
    }


def test_trigger_checkpoint_and_read_its_status(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("POST", f"/jobs/{JOB}/checkpoints", status=202, body={"request-id": TRIGGER})
    completed = {"status": {"id": "COMPLETED"}, "operation": {"checkpointId": 1}}
    flink.on("GET", f"/jobs/{JOB}/checkpoints/{TRIGGER}", body=completed)

    trigger_id = client.trigger_checkpoint(JOB)
    sent = flink.last_json()
    status = client.checkpoint_status(JOB, trigger_id)

    assert trigger_id == TRIGGER
    assert sent == {"checkpointType": "FULL"}
    assert status.succeeded
    assert status.checkpoint_id == 1


def test_trigger_checkpoint_with_type_and_trigger_id(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("POST", f"/jobs/{JOB}/checkpoints", status=202, body={"request-id": TRIGGER})

    client.trigger_checkpoint(JOB, "INCREMENTAL", trigger_id=TRIGGER)

    assert flink.last_json() == {"checkpointType": "INCREMENTAL", "triggerId": TRIGGER}


def test_checkpoint_status_reads_the_camel_case_failure(flink: FakeFlink, client: FlinkRestClient) -> None:
    failure = {
        "class": "java.util.concurrent.CompletionException",
        "stack-trace": "java.util.concurrent.CompletionException: org.apache.flink.runtime.messages."
        f"FlinkJobNotFoundException: Could not find Flink job ({JOB})",
    }
    body = {"status": {"id": "COMPLETED"}, "operation": {"failureCause": failure}}
    flink.on("GET", f"/jobs/{JOB}/checkpoints/{TRIGGER}", body=body)

    status = client.checkpoint_status(JOB, TRIGGER)

    assert status.failed
    assert status.checkpoint_id is None
    assert status.failure is not None
    assert "FlinkJobNotFoundException" in (status.failure.stacktrace or "")


def test_trigger_without_request_id_is_an_api_error(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("POST", f"/jobs/{JOB}/savepoints", status=202, body={})

    with pytest.raises(FlinkApiError, match="request-id"):
        client.trigger_savepoint(JOB)


# -- jars -------------------------------------------------------------------------------------------------


def test_upload_jar_sends_multipart_jarfile_and_returns_the_stored_name(
    flink: FakeFlink, client: FlinkRestClient, tmp_path: Path
) -> None:
    jar = tmp_path / "flinkops-testjobs-7ed48ff7d5b7.jar"
    jar.write_bytes(b"PK\x03\x04 not really a jar")
    stored = f"/tmp/rawwork/web/flink-web-d9146f8e/flink-web-upload/{JAR}"
    flink.on("POST", "/jars/upload", body={"filename": stored, "status": "success"})

    jar_id = client.upload_jar(jar)

    assert jar_id == JAR
    request = flink.last
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert b'name="jarfile"; filename="flinkops-testjobs-7ed48ff7d5b7.jar"' in request.content
    assert b"Content-Type: application/x-java-archive" in request.content
    assert b"PK\x03\x04 not really a jar" in request.content


def test_upload_jar_of_a_missing_file_is_invalid_input(client: FlinkRestClient, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as raised:
        client.upload_jar(tmp_path / "missing.jar")

    assert isinstance(raised.value.__cause__, FileNotFoundError)
    assert raised.value.problems[0].path == str(tmp_path / "missing.jar")


def test_list_jars(flink: FakeFlink, client: FlinkRestClient) -> None:
    body = {
        "address": "http://127.0.0.1:58085",
        "files": [
            {"id": JAR, "name": "flinkops-testjobs-7ed48ff7d5b7.jar", "uploaded": 1795264009124, "entry": []},
            {
                "id": "x_app.jar",
                "name": "app.jar",
                "uploaded": 1795264009999,
                "entry": [{"name": "com.example.App", "description": None}],
            },
        ],
    }
    flink.on("GET", "/jars", body=body)

    jars = client.list_jars()

    assert [(j.jar_id, j.name, j.uploaded, j.entry_classes) for j in jars] == [
        (JAR, "flinkops-testjobs-7ed48ff7d5b7.jar", 1795264009124, ()),
        ("x_app.jar", "app.jar", 1795264009999, ("com.example.App",)),
    ]


def test_run_jar_sends_only_the_given_options(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("POST", f"/jars/{JAR}/run", body={"jobid": JOB})

    job_id = client.run_jar(JAR, entry_class="flinkops.testjobs.CountingJob")

    assert job_id == JOB
    assert flink.last_json() == {"entryClass": "flinkops.testjobs.CountingJob", "programArgsList": []}


def test_run_jar_sends_every_option(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("POST", f"/jars/{JAR}/run", body={"jobid": JOB})

    client.run_jar(
        JAR,
        entry_class="flinkops.testjobs.CountingJob",
        program_args=["--rate", "50", "--records", "1000"],
        parallelism=2,
        job_id=JOB,
        savepoint_path=SP_PATH,
        allow_non_restored_state=False,
        claim_mode="NO_CLAIM",
        flink_configuration={"execution.checkpointing.interval": "1 s"},
    )

    assert flink.last_json() == {
        "entryClass": "flinkops.testjobs.CountingJob",
        "programArgsList": ["--rate", "50", "--records", "1000"],
        "parallelism": 2,
        "jobId": JOB,
        "savepointPath": SP_PATH,
        "allowNonRestoredState": False,
        "claimMode": "NO_CLAIM",
        "flinkConfiguration": {"execution.checkpointing.interval": "1 s"},
    }


def test_run_jar_whose_main_throws_is_rejected_with_flinks_cause_chain(
    flink: FakeFlink, client: FlinkRestClient
) -> None:
    flink.on("POST", f"/jars/{JAR}/run", status=400, body=RUN_REJECTED)

    with pytest.raises(FlinkRequestRejected) as raised:
        client.run_jar(JAR, entry_class="flinkops.testjobs.ThrowingMain")

    error = raised.value
    assert error.status == 400
    assert error.errors == RUN_REJECTED["errors"]
    assert MAIN_REFUSED in error.errors[0]
    assert (error.method, error.path) == ("POST", f"/jars/{JAR}/run")
    assert "Could not execute application." in str(error)


def test_delete_jar(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("DELETE", f"/jars/{JAR}", body={})

    client.delete_jar(JAR)

    assert (flink.last.method, flink.last.url.path) == ("DELETE", f"/jars/{JAR}")


# -- errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.job(JOB),
        lambda c: c.job_exceptions(JOB),
        lambda c: c.checkpoints(JOB),
        lambda c: c.savepoint_status(JOB, TRIGGER),
        lambda c: c.checkpoint_status(JOB, TRIGGER),
        lambda c: c.cancel(JOB),
        lambda c: c.job_result(JOB),
    ],
    ids=["job", "exceptions", "checkpoints", "savepoint_status", "checkpoint_status", "cancel", "result"],
)
def test_404_is_flink_not_found(
    flink: FakeFlink, client: FlinkRestClient, call: Callable[[FlinkRestClient], object]
) -> None:
    for method in ("GET", "PATCH"):
        for path in (
            f"/jobs/{JOB}",
            f"/jobs/{JOB}/exceptions",
            f"/jobs/{JOB}/checkpoints",
            f"/jobs/{JOB}/savepoints/{TRIGGER}",
            f"/jobs/{JOB}/checkpoints/{TRIGGER}",
            f"/jobs/{JOB}/execution-result",
        ):
            flink.on(method, path, status=404, body=NOT_FOUND_JOB)

    with pytest.raises(FlinkNotFound) as raised:
        call(client)

    assert f"NotFoundException: Job {JOB} not found" in str(raised.value)
    assert "HTTP 404" in str(raised.value)


def test_an_unknown_route_is_flink_not_found(client: FlinkRestClient) -> None:
    with pytest.raises(FlinkNotFound, match="Unable to load requested file"):
        client.overview()


def test_500_keeps_every_flink_error(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("POST", "/jars/nope.jar/run", status=500, body=INTERNAL_ERROR)

    with pytest.raises(FlinkRequestRejected) as raised:
        client.run_jar("nope.jar")

    error = raised.value
    assert error.status == 500
    assert error.errors == INTERNAL_ERROR["errors"]
    assert "nope.jar does not exist" in error.errors[1]
    assert str(error) == "POST /jars/nope.jar/run -> HTTP 500: Internal server error."
    assert not isinstance(error, TemporaryError)


def test_error_without_json_body_keeps_the_text(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on_call("GET", "/overview", lambda request: httpx.Response(400, text="bad things"))

    with pytest.raises(FlinkRequestRejected) as raised:
        client.overview()

    assert raised.value.errors == ["bad things"]


def test_unknown_jar_on_delete_is_rejected_not_missing(flink: FakeFlink, client: FlinkRestClient) -> None:
    body = {"errors": ["org.apache.flink.runtime.rest.handler.RestHandlerException: File nope.jar does not exist"]}
    flink.on("DELETE", "/jars/nope.jar", status=400, body=body)

    with pytest.raises(FlinkRequestRejected) as raised:
        client.delete_jar("nope.jar")

    assert raised.value.status == 400


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_and_leader_election_answers_are_unavailable(
    flink: FakeFlink, client: FlinkRestClient, status: int
) -> None:
    body = {"errors": ["Service temporarily unavailable due to an ongoing leader election. Please refresh."]}
    flink.on("GET", "/overview", status=status, body=body)

    with pytest.raises(FlinkUnavailable, match="leader election") as raised:
        client.overview()

    assert isinstance(raised.value, TemporaryError)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ConnectTimeout("timed out"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_transport_failures_are_unavailable(failure: httpx.HTTPError) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise failure

    with (
        FlinkRestClient(BASE, transport=httpx.MockTransport(broken)) as client,
        pytest.raises(FlinkUnavailable) as raised,
    ):
        client.list_jobs()

    assert raised.value.__cause__ is failure
    assert isinstance(raised.value, TemporaryError)
    assert BASE in str(raised.value)


def test_connection_refused_by_a_real_socket_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    with (
        FlinkRestClient(f"http://127.0.0.1:{closed_port}", timeout=2.0) as client,
        pytest.raises(FlinkUnavailable),
    ):
        client.overview()


def test_a_non_json_answer_is_an_api_error(flink: FakeFlink, client: FlinkRestClient) -> None:
    html = "<html><body>Sign in with your identity provider</body></html>"
    flink.on_call("GET", "/overview", lambda request: httpx.Response(200, text=html))

    with pytest.raises(FlinkApiError, match="not JSON") as raised:
        client.overview()

    assert type(raised.value) is FlinkApiError
    assert isinstance(raised.value.__cause__, ValueError)


def test_a_redirect_is_not_followed(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on_call("GET", "/overview", lambda request: httpx.Response(302, headers={"location": "https://sso/"}))

    with pytest.raises(FlinkRequestRejected) as raised:
        client.overview()

    assert raised.value.status == 302
    assert len(flink.requests) == 1


# -- defensive parsing ------------------------------------------------------------------------------------


def test_missing_and_mistyped_keys_become_none(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("GET", "/overview", body={"taskmanagers": "one", "slots-total": True, "flink-version": 2})
    flink.on("GET", f"/jobs/{JOB}", body={"state": "RUNNING", "vertices": "many", "timestamps": [1, 2]})
    flink.on("GET", f"/jobs/{JOB}/checkpoints", body={"counts": None, "latest": {"completed": "yes"}})
    flink.on("GET", "/jobs/overview", body={"jobs": [{"name": "no id"}, "junk", {"jid": JOB}]})

    overview = client.overview()
    job = client.job(JOB)
    stats = client.checkpoints(JOB)
    jobs = client.list_jobs()

    assert (overview.taskmanagers, overview.slots_total, overview.flink_version, overview.jobs_failed) == (
        None,
        None,
        None,
        None,
    )
    assert (job.job_id, job.state, job.vertices, job.timestamps, job.name) == (JOB, "RUNNING", None, {}, None)
    assert not job.all_vertices_running
    assert stats.counts == CheckpointCounts(total=None, in_progress=None, completed=None, failed=None, restored=None)
    assert stats.latest_completed is None
    assert [j.job_id for j in jobs] == [JOB]
    assert jobs[0].state is None


def test_an_empty_2xx_body_is_accepted(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on_call("PATCH", f"/jobs/{JOB}", lambda request: httpx.Response(202, content=b""))

    client.cancel(JOB)


def test_results_are_immutable(flink: FakeFlink, client: FlinkRestClient) -> None:
    flink.on("GET", f"/jobs/{JOB}", body=JOB_DETAILS)
    job = client.job(JOB)

    with pytest.raises(AttributeError):
        job.state = "FAILED"  # type: ignore[misc]
    with pytest.raises(TypeError):
        job.timestamps["FAILED"] = 1  # type: ignore[index]


# -- the client itself ------------------------------------------------------------------------------------


def test_ids_are_quoted_so_they_cannot_change_the_route(flink: FakeFlink, client: FlinkRestClient) -> None:
    client_side = "../jars?x=1"
    with pytest.raises(FlinkNotFound):
        client.job(client_side)

    assert flink.last.url.raw_path == b"/jobs/..%2Fjars%3Fx%3D1"


def test_base_url_trailing_slash_and_context_manager(flink: FakeFlink) -> None:
    flink.on("GET", "/overview", body=OVERVIEW)

    with FlinkRestClient(BASE + "/", transport=httpx.MockTransport(flink)) as client:
        client.overview()
        assert repr(client) == f"FlinkRestClient('{BASE}')"

    assert str(flink.last.url) == f"{BASE}/overview"
    with pytest.raises(RuntimeError):
        client.overview()  # closed: httpx refuses, this is a programming error, not a Flink failure
