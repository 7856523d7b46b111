"""What a local JobManager that exited died of, read from its logs the way Flink writes them, and its log kept."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flinkops.errors import ErrorReason
from flinkops.runtimes.local.crashes import KEEP_NEWEST, exit_fault, keep_log, read_crash
from flinkops.runtimes.local.runtime import ProcessRecord, start_ticks
from support.ha import KEY, jobmanager, runtime, write_record

ENTRY_CLASS_MISSING = """\
2026-12-04 14:00:01,100 INFO  org.apache.flink.runtime.entrypoint.ClusterEntrypoint          [] - Starting
2026-12-04 14:00:02,200 ERROR org.apache.flink.container.entrypoint.StandaloneApplicationClusterEntryPoint [] - \
Could not create application program.
org.apache.flink.util.FlinkException: Could not load the provided entrypoint class.
\tat org.apache.flink.client.program.DefaultPackagedProgramRetriever.getPackagedProgram(Default.java:215)
\tat org.apache.flink.container.entrypoint.StandaloneApplicationClusterEntryPoint.main(Standalone.java:85)
Caused by: org.apache.flink.client.program.ProgramInvocationException: The program's entry point class \
'com.example.Nope' was not found in the jar file.
\tat org.apache.flink.client.program.PackagedProgram.loadMainClass(PackagedProgram.java:481)
\t... 3 more
Caused by: java.lang.ClassNotFoundException: com.example.Nope
\tat java.base/java.net.URLClassLoader.findClass(URLClassLoader.java:445)
\t... 5 more
"""

BIND_FAILED = """\
2026-12-04 14:00:01,100 INFO  org.apache.flink.runtime.entrypoint.ClusterEntrypoint          [] - Starting
2026-12-04 14:00:03,000 ERROR org.apache.flink.runtime.entrypoint.ClusterEntrypoint          [] - Could not start \
cluster entrypoint StandaloneApplicationClusterEntryPoint.
org.apache.flink.runtime.entrypoint.ClusterEntrypointException: Failed to initialize the cluster entrypoint.
\tat org.apache.flink.runtime.entrypoint.ClusterEntrypoint.startCluster(ClusterEntrypoint.java:262)
Caused by: java.net.BindException: Could not start rest endpoint on any port in port range 8081
\tat org.apache.flink.runtime.rest.RestServerEndpoint.start(RestServerEndpoint.java:286)
2026-12-04 14:00:03,100 INFO  org.apache.flink.runtime.entrypoint.ClusterEntrypoint          [] - Terminating \
cluster entrypoint process StandaloneApplicationClusterEntryPoint with exit code 1.
"""


def logs(tmp_path: Path, log: str = "", out: str = "") -> Path:
    directory = tmp_path / "log" / "jobmanager-0"
    directory.mkdir(parents=True)
    (directory / "flink-jm-standalonejob-0-host.log").write_text(log)
    (directory / "jobmanager.out").write_text(out)
    return directory


def test_a_program_flink_cannot_build_is_told_with_its_deepest_cause_and_is_not_retryable(tmp_path: Path) -> None:
    crash = read_crash(logs(tmp_path, ENTRY_CLASS_MISSING))
    assert crash is not None
    assert crash.exception == "FlinkException: Could not load the provided entrypoint class."
    assert crash.root_cause == "ClassNotFoundException: com.example.Nope"
    assert crash.program_failed
    fault = exit_fault(1, 4.2, crash, tmp_path / "kept")
    assert fault.reason == ErrorReason.START_FAILED and fault.component == "jobmanager" and not fault.retryable
    assert fault.message == (
        "JobManager process exited with code 1 after 4 s: FlinkException: Could not load the provided "
        f"entrypoint class. (root cause: ClassNotFoundException: com.example.Nope); its log is kept in {tmp_path}/kept"
    )


def test_a_start_that_failed_for_the_machine_is_retryable(tmp_path: Path) -> None:
    crash = read_crash(logs(tmp_path, BIND_FAILED))
    assert crash is not None and not crash.program_failed
    assert crash.root_cause == "BindException: Could not start rest endpoint on any port in port range 8081"
    assert exit_fault(1, 3.0, crash, None).retryable


def test_a_jvm_that_refuses_its_options_is_read_from_the_console_output(tmp_path: Path) -> None:
    out = "Unrecognized VM option 'NoSuchOption'\nError: Could not create the Java Virtual Machine.\n"
    crash = read_crash(logs(tmp_path, "", out))
    assert crash is not None and "NoSuchOption" in exit_fault(1, 0.0, crash, None).message


@pytest.mark.parametrize(
    ("out", "reason"),
    [
        (
            "The Java thread stack size specified is too small. Specify at least 136k\n"
            "Error: Could not create the Java Virtual Machine.\nError: A fatal exception has occurred.\n",
            "The Java thread stack size specified is too small. Specify at least 136k",
        ),
        ("Error occurred during initialization of VM\nToo small maximum heap\n", "Too small maximum heap"),
    ],
    ids=["not-created", "init-failed"],
)
def test_a_jvm_that_cannot_start_is_told_with_its_reason(tmp_path: Path, out: str, reason: str) -> None:
    crash = read_crash(logs(tmp_path, "", out))
    assert crash is not None and crash.root_cause == reason
    assert f"(root cause: {reason})" in exit_fault(1, 0.0, crash, None).message


def test_a_long_exception_is_kept_short(tmp_path: Path) -> None:
    log = ENTRY_CLASS_MISSING.replace("com.example.Nope", "com.example." + "X" * 1000)
    crash = read_crash(logs(tmp_path, log))
    assert crash is not None and crash.root_cause is not None and len(crash.root_cause) <= 240


def test_no_exception_in_the_logs_is_no_crash_to_tell(tmp_path: Path) -> None:
    assert read_crash(logs(tmp_path, "2026-12-04 14:00:01,100 INFO  x [] - Starting\n")) is None


def test_failed_attempts_keep_the_first_log_and_the_newest(tmp_path: Path) -> None:
    directory = logs(tmp_path, ENTRY_CLASS_MISSING, "console")
    crashed = tmp_path / "log" / "crashed"
    kept = [keep_log(directory, crashed, f"jobmanager-0-{n}") for n in range(6)]
    assert (kept[0] / "flink-jm-standalonejob-0-host.log").read_text() == ENTRY_CLASS_MISSING
    assert (kept[0] / "jobmanager.out").read_text() == "console"
    names = {d.name for d in crashed.iterdir()}
    assert names == {"jobmanager-0-0", *(f"jobmanager-0-{n}" for n in range(6 - KEEP_NEWEST, 6))}
    assert keep_log(directory, crashed, "jobmanager-0-5") == kept[5], "kept once"


def test_the_local_runtime_reports_a_dead_jobmanager_with_an_exception_in_its_log_as_a_start_failure(
    tmp_path: Path,
) -> None:
    """A JobManager an earlier controller started (its exit code is unknown) that logged why it died."""
    jm_log = tmp_path / "jm0"
    write_record(tmp_path, None, [jobmanager(0, 1111, False, jm_log)])
    (jm_log / "flink-jm-standalonejob-0-host.log").write_text(ENTRY_CLASS_MISSING)
    local = runtime(tmp_path)
    observed = local.observe(KEY)
    assert observed is not None and observed.jobmanagers_alive == 0 and observed.fault is not None
    fault = observed.fault
    assert fault.reason == ErrorReason.START_FAILED and not fault.retryable
    assert "exited on its own" in fault.message and "ClassNotFoundException: com.example.Nope" in fault.message
    [kept] = (tmp_path / "clusters" / KEY.namespace / KEY.name / "log" / "crashed").iterdir()
    assert str(kept) in fault.message
    assert (kept / "flink-jm-standalonejob-0-host.log").read_text() == ENTRY_CLASS_MISSING
    assert local.observe(KEY) == observed, "read once"


def test_a_dead_jobmanager_that_told_nothing_is_no_start_failure(tmp_path: Path) -> None:
    write_record(tmp_path, None, [jobmanager(0, 1111, False, tmp_path / "jm0")])
    observed = runtime(tmp_path).observe(KEY)
    assert observed is not None and observed.jobmanagers_alive == 0 and observed.fault is None


def test_a_live_jobmanager_is_no_start_failure(tmp_path: Path) -> None:
    jm_log = tmp_path / "jm0"
    write_record(tmp_path, None, [jobmanager(0, 1111, True, jm_log)])
    (jm_log / "flink-jm-standalonejob-0-host.log").write_text(ENTRY_CLASS_MISSING)
    observed = runtime(tmp_path).observe(KEY)
    assert observed is not None and observed.fault is None


@pytest.mark.parametrize(("script", "told"), [("exit 3", True), ("exit 143", False), ("kill -9 $$", False)])
def test_the_exit_code_of_a_jobmanager_the_runtime_started_decides_whether_it_failed_on_its_own(
    tmp_path: Path, script: str, told: bool
) -> None:
    """Exited with an error of its own: a start failure, even with nothing in its log. Ended by a signal (SIGKILL,
    or 128 + the signal from a JVM that got SIGTERM): someone stopped it, no start failure."""
    child = subprocess.Popen(["sh", "-c", f"sleep 0.3; {script}"])
    ticks = start_ticks(child.pid)
    assert ticks is not None
    record = ProcessRecord("jobmanager", 0, child.pid, ticks, str(tmp_path / "jm0"), 1111, 1112)
    (tmp_path / "jm0").mkdir()
    write_record(tmp_path, None, [record])
    local = runtime(tmp_path)
    local._children[child.pid] = child  # as if this runtime had started it
    child.wait()
    observed = local.observe(KEY)
    assert observed is not None and observed.jobmanagers_alive == 0
    if told:
        assert observed.fault is not None and "exited with code 3" in observed.fault.message
        assert observed.fault.retryable, "nothing says the program itself is broken"
    else:
        assert observed.fault is None
