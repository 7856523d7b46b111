"""The Flink REST client against a real Flink 2.2.1 session cluster (the wheel's distribution, started raw by
``tests/support/rawflink.py``) running the Java test jobs (``tests/jobs/java``).

One cluster serves the whole module. Every wait polls with a deadline; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import pytest

from flinkops.errors import FlinkNotFound, FlinkRequestRejected
from flinkops.flink.rest import FlinkRestClient, new_trigger_id
from flinkops.ports.flink import JobDetails
from support.rawflink import RawCluster  # tests/ is on sys.path (tests/conftest.py)
from support.testjobs import (
    BOUNDED_JOB,
    COUNTING_JOB,
    FAILING_JOB,
    THROWING_MAIN,
    testjobs_jar,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("java") is None or shutil.which("javac") is None, reason="needs a JDK"),
]

T = TypeVar("T")
FLINK_VERSION = version("apache-flink")  # 2.2.1


def eventually(probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float, what: str) -> T:
    """Call ``probe`` until ``done`` accepts its result; fail with the last result after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {timeout}s; last seen: {value!r}")
        time.sleep(0.2)  # poll interval


def local_path(uri: str) -> Path:
    """``file:/x`` or ``file:///x`` (Flink writes the former) as a local path."""
    parsed = urlparse(uri)
    assert parsed.scheme == "file", uri
    return Path(parsed.path)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawCluster]:
    raw = RawCluster(tmp_path_factory.mktemp("rawflink"), slots=4)
    try:
        raw.start_session()
        raw.wait_rest_ready(timeout=120)
        yield raw
    finally:
        pids = list(raw.pids.values())
        raw.stop()
        leftovers = [pid for pid in pids if _runs_in(pid, raw.work_dir)]
        assert not leftovers, f"Flink processes still running after stop(): {leftovers}"


def _runs_in(pid: int, work_dir: Path) -> bool:
    """Whether ``pid`` is still one of this cluster's JVMs (a reused pid would not name its config dir)."""
    try:
        return str(work_dir) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


@pytest.fixture(scope="module")
def rest(cluster: RawCluster) -> Iterator[FlinkRestClient]:
    with FlinkRestClient(cluster.rest_url, timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def jar_id(rest: FlinkRestClient) -> Iterator[str]:
    uploaded = rest.upload_jar(testjobs_jar())
    yield uploaded
    rest.delete_jar(uploaded)


def wait_state(rest: FlinkRestClient, job_id: str, state: str, timeout: float = 60.0) -> JobDetails:
    return eventually(lambda: rest.job(job_id), lambda job: job.state == state, timeout=timeout, what=state)


def wait_tasks_running(rest: FlinkRestClient, job_id: str) -> JobDetails:
    # A job is RUNNING before its tasks are; checkpoints need the tasks.
    return eventually(
        lambda: rest.job(job_id),
        lambda job: job.all_vertices_running,
        timeout=60,
        what="all vertices RUNNING",
    )


def start_counting_job(rest: FlinkRestClient, jar_id: str, savepoint_path: str | None = None) -> str:
    job_id = new_trigger_id()  # any 32 hex digits make a Flink job id
    started = rest.run_jar(
        jar_id,
        entry_class=COUNTING_JOB,
        program_args=["--rate", "50"],
        job_id=job_id,
        savepoint_path=savepoint_path,
        claim_mode="NO_CLAIM" if savepoint_path else None,
    )
    assert started == job_id
    return job_id


# -- tests ------------------------------------------------------------------------------------------------


def test_overview_and_config_report_the_wheel_version(rest: FlinkRestClient) -> None:
    # A TaskManager is listed as soon as it registers, and its slots once it has reported them.
    overview = eventually(rest.overview, lambda o: o.slots_total == 4, timeout=60, what="4 slots reported")
    config = rest.config()

    assert overview.flink_version == FLINK_VERSION == "2.2.1"
    assert overview.taskmanagers == 1
    assert overview.slots_total == 4
    assert overview.flink_commit
    assert config.flink_version == "2.2.1"
    assert config.flink_revision and config.flink_revision.startswith(overview.flink_commit or "?")
    assert config.features["web-submit"] is True


def test_uploaded_jar_is_listed_and_deleted(rest: FlinkRestClient) -> None:
    uploaded = rest.upload_jar(testjobs_jar())
    assert uploaded.endswith(testjobs_jar().name)
    assert uploaded in {jar.jar_id for jar in rest.list_jars()}

    rest.delete_jar(uploaded)

    assert uploaded not in {jar.jar_id for jar in rest.list_jars()}
    with pytest.raises(FlinkRequestRejected) as raised:  # Flink answers 400, not 404, for unknown jars
        rest.delete_jar(uploaded)
    assert raised.value.status == 400


def test_checkpoint_savepoint_and_stop_with_savepoint(rest: FlinkRestClient, jar_id: str, tmp_path: Path) -> None:
    job_id = start_counting_job(rest, jar_id)
    running = wait_state(rest, job_id, "RUNNING")
    assert running.name == "flinkops-test-counting"
    assert running.vertices == 2
    assert job_id in {job.job_id for job in rest.list_jobs()}
    with pytest.raises(FlinkNotFound):
        rest.savepoint_status(job_id, new_trigger_id())
    wait_tasks_running(rest, job_id)

    # A manual checkpoint (checkpointing is not even enabled periodically).
    trigger = rest.trigger_checkpoint(job_id)
    checkpoint = eventually(
        lambda: rest.checkpoint_status(job_id, trigger),
        lambda s: not s.in_progress,
        timeout=60,
        what="checkpoint",
    )
    assert checkpoint.succeeded, checkpoint.failure
    stats = eventually(  # the statistics are cached for up to the web refresh interval (3 s)
        lambda: rest.checkpoints(job_id),
        lambda s: s.latest_completed is not None and s.latest_completed.checkpoint_id == checkpoint.checkpoint_id,
        timeout=30,
        what="checkpoint in statistics",
    )
    completed = stats.latest_completed
    assert completed is not None and completed.external_path is not None
    assert (local_path(completed.external_path) / "_metadata").is_file()
    assert completed.is_savepoint is False
    assert completed.trigger_timestamp and completed.latest_ack_timestamp
    assert completed.latest_ack_timestamp >= completed.trigger_timestamp
    assert completed.state_size and completed.state_size > 0

    # A savepoint into a directory of our choosing, triggered twice with one trigger id: one savepoint.
    target = tmp_path / "savepoints"
    mine = new_trigger_id()
    assert rest.trigger_savepoint(job_id, target.as_uri(), trigger_id=mine) == mine
    assert rest.trigger_savepoint(job_id, target.as_uri(), trigger_id=mine) == mine
    savepoint = eventually(
        lambda: rest.savepoint_status(job_id, mine), lambda s: not s.in_progress, timeout=60, what="savepoint"
    )
    assert savepoint.succeeded, savepoint.failure
    assert savepoint.location is not None
    assert (local_path(savepoint.location) / "_metadata").is_file()
    assert local_path(savepoint.location).parent == target
    assert len(list(target.iterdir())) == 1
    latest = eventually(
        lambda: rest.checkpoints(job_id).latest_savepoint,
        lambda s: s is not None and s.external_path == savepoint.location,
        timeout=30,
        what="savepoint in statistics",
    )
    assert latest is not None and latest.savepoint_format == "CANONICAL"

    # Stop with a savepoint: the job ends FINISHED and the savepoint is on disk.
    stop = rest.stop_with_savepoint(job_id, target.as_uri())
    stopped = eventually(
        lambda: rest.savepoint_status(job_id, stop), lambda s: not s.in_progress, timeout=60, what="stop"
    )
    assert stopped.succeeded, stopped.failure
    assert stopped.location is not None and stopped.location != savepoint.location
    assert (local_path(stopped.location) / "_metadata").is_file()
    finished = wait_state(rest, job_id, "FINISHED")
    assert finished.end_time is not None
    result = rest.job_result(job_id)
    assert (result.in_progress, result.application_status, result.failure) == (
        False,
        "SUCCEEDED",
        None,
    )  # ApplicationStatus, not JobStatus

    # Restore a new job from that savepoint, then cancel it.
    restored_id = start_counting_job(rest, jar_id, savepoint_path=stopped.location)
    wait_state(rest, restored_id, "RUNNING")
    restored = eventually(
        lambda: rest.checkpoints(restored_id).latest_restored,
        lambda r: r is not None,
        timeout=30,
        what="restore in statistics",
    )
    assert restored is not None
    assert restored.is_savepoint is True
    assert restored.external_path == stopped.location

    rest.cancel(restored_id)
    wait_state(rest, restored_id, "CANCELED")
    rest.cancel(restored_id)  # cancelling a cancelled job is accepted


def test_failing_job_fails_with_the_deliberate_message(rest: FlinkRestClient, jar_id: str) -> None:
    job_id = new_trigger_id()
    rest.run_jar(jar_id, entry_class=FAILING_JOB, program_args=["--after", "20", "--rate", "100"], job_id=job_id)

    failed = wait_state(rest, job_id, "FAILED")

    assert failed.name == "flinkops-test-failing"
    exceptions = rest.job_exceptions(job_id)
    message = "flinkops-test: deliberate failure after 20 records"
    assert message in (exceptions.root_exception or "")
    assert exceptions.timestamp is not None
    assert exceptions.history
    causes = [c.stacktrace or "" for entry in exceptions.history for c in entry.concurrent]
    assert any(c.startswith(f"java.lang.IllegalStateException: {message}") for c in causes)
    result = rest.job_result(job_id)
    assert result.application_status == "FAILED"
    assert result.failure is not None and message in (result.failure.stacktrace or "")


def test_main_that_throws_is_rejected_with_its_message(rest: FlinkRestClient, jar_id: str) -> None:
    with pytest.raises(FlinkRequestRejected) as raised:
        rest.run_jar(jar_id, entry_class=THROWING_MAIN)

    assert raised.value.status == 400
    assert any("flinkops-test: main() refused to build the job" in error for error in raised.value.errors)


def test_bounded_job_finishes(rest: FlinkRestClient, jar_id: str) -> None:
    job_id = rest.run_jar(jar_id, entry_class=BOUNDED_JOB, program_args=["--records", "500"])

    finished = wait_state(rest, job_id, "FINISHED")

    assert finished.name == "flinkops-test-bounded"


def test_unknown_job_is_not_found(rest: FlinkRestClient) -> None:
    unknown = new_trigger_id()
    with pytest.raises(FlinkNotFound):
        rest.job(unknown)
    with pytest.raises(FlinkNotFound):
        rest.checkpoints(unknown)
    with pytest.raises(FlinkNotFound):
        rest.cancel(unknown)
