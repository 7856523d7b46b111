"""The shared plumbing of the dev servers (``flinkops.dev.process``) and of the javac builds
(``flinkops.flink.javabuild``) on real processes: ``sleep`` and Python stand-ins this test starts and signals
through their pid files, and a tiny Java source compiled by the real ``javac``. What needs no process is
tests/unit/test_dev_process.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from flinkops.dev.process import recorded_pid, signal_recorded, write_record
from flinkops.flink import javabuild
from flinkops.procs import start_ticks

pytestmark = pytest.mark.integration

# Ignores SIGTERM, so only the SIGKILL after the grace period stops it.
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
)


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def record(pid_file: Path, pid: int, ticks: int | None, **fields: int) -> None:
    assert ticks is not None
    write_record(pid_file, {"pid": pid, "start_ticks": ticks, **fields})


def test_a_recorded_pid_with_another_start_time_is_never_signalled(
    tmp_path: Path, child: subprocess.Popen[bytes]
) -> None:
    pid_file = tmp_path / "x.pid"
    ticks = start_ticks(child.pid)
    record(pid_file, child.pid, (ticks or 0) + 1)  # the pid, recycled by another process
    assert recorded_pid(pid_file) is None
    assert signal_recorded(pid_file, timeout=0.1) is None
    assert child.poll() is None, "the process that only shares the pid keeps running"


def test_the_recorded_process_stops_on_sigterm(tmp_path: Path, child: subprocess.Popen[bytes]) -> None:
    pid_file = tmp_path / "x.pid"
    record(pid_file, child.pid, start_ticks(child.pid))
    assert recorded_pid(pid_file) == child.pid
    assert signal_recorded(pid_file, timeout=10) is False
    assert child.wait(timeout=5) == -15 and recorded_pid(pid_file) is None


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        pid_file = tmp_path / "x.pid"
        record(pid_file, proc.pid, start_ticks(proc.pid))
        assert signal_recorded(pid_file, timeout=0.3) is True
        assert proc.wait(timeout=5) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


# ------------------------------------------------------------------------------------------------ javabuild


@pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK")
def test_build_jar_compiles_into_a_complete_jar_or_raises_the_given_error(tmp_path: Path) -> None:
    class BuildFailed(Exception):
        pass

    sources = tmp_path / "src"
    (sources / "demo").mkdir(parents=True)
    (sources / "demo" / "Hello.java").write_text("package demo; public class Hello {}")
    target = tmp_path / "out" / "demo.jar"
    assert javabuild.build_jar(sources, [], target, created_by="a test", error=BuildFailed) == target
    with zipfile.ZipFile(target) as jar:
        assert jar.namelist() == ["META-INF/MANIFEST.MF", "demo/Hello.class"]
        assert b"Created-By: a test" in jar.read("META-INF/MANIFEST.MF")

    (sources / "demo" / "Broken.java").write_text("package demo; class Broken { nope }")
    broken = tmp_path / "out" / "broken.jar"
    with pytest.raises(BuildFailed, match="javac failed"):
        javabuild.build_jar(sources, [], broken, created_by="a test", error=BuildFailed)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["demo.jar"], "no partial file is left"


@pytest.mark.skipif(shutil.which("java") is None, reason="needs a Java runtime")
def test_without_javac_a_java_runtimes_compiler_module_compiles_and_without_either_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class BuildFailed(Exception):
        pass

    java = shutil.which("java")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(javabuild.shutil, "which", lambda name: None)  # a machine with a JRE only
    sources = tmp_path / "src"
    (sources / "demo").mkdir(parents=True)
    (sources / "demo" / "Hello.java").write_text("package demo; public class Hello {}")
    target = tmp_path / "demo.jar"
    assert javabuild.build_jar(sources, [], target, created_by="a test", error=BuildFailed, java=java) == target
    with zipfile.ZipFile(target) as jar:
        assert "demo/Hello.class" in jar.namelist()
    with pytest.raises(BuildFailed, match=r"javac not found: install a JDK"):
        javabuild.build_jar(sources, [], tmp_path / "none.jar", created_by="a test", error=BuildFailed)
