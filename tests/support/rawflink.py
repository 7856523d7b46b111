"""Start a raw Flink cluster with the distribution's own scripts, for tests and benchmarks.

"Raw" means no flinkops code is involved: this module writes a ``config.yaml``, prepares a private lib
directory of symlinks into the ``apache-flink`` wheel, and runs ``bin/jobmanager.sh start-foreground``
(session mode) or ``bin/standalone-job.sh start-foreground`` (application mode) plus
``bin/taskmanager.sh start-foreground`` as child processes. Integration tests of the REST client use it as
the real thing to talk to; benchmarks use it as the baseline that flinkops is compared against.

Invariants: every server binds to 127.0.0.1; every file the cluster writes (config, logs, pid files, web
uploads, checkpoints, savepoints, temp files) lives under the given work directory and nothing inside
site-packages is edited; :meth:`RawCluster.stop` signals only the processes this object started, by pid
(``start-foreground`` execs ``java``, so the child's pid is the JVM's).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import yaml

__all__ = ["RawCluster", "RawClusterError", "flink_home", "free_port"]

LOOPBACK = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


class RawClusterError(RuntimeError):
    """The raw cluster could not start, died, or did not become ready in time."""


def flink_home() -> Path:
    """The Flink distribution inside the installed ``apache-flink`` wheel (``bin/``, ``lib/``, ``opt/``)."""
    import pyflink

    return Path(os.path.dirname(os.path.abspath(pyflink.__file__)))


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (bind to port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _java_opts_all(home: Path) -> str:
    shipped = yaml.safe_load((home / "conf" / "config.yaml").read_text()) or {}
    value: Any = shipped
    for key in ("env", "java", "opts", "all"):
        value = value.get(key) if isinstance(value, dict) else None
    if value is None:
        value = shipped.get("env.java.opts.all", "")
    return str(value)


class _Process:
    """One started Flink process: its role, the Popen handle and where its console output goes."""

    def __init__(self, role: str, popen: subprocess.Popen[bytes], output: IO[bytes]) -> None:
        self.role = role
        self.popen = popen
        self.output = output


class RawCluster:
    """A JobManager plus TaskManagers started from the wheel's Flink scripts, all under ``work_dir``.

    Usage::

        with RawCluster(tmp_path, slots=2) as cluster:
            cluster.start_session()
            cluster.wait_rest_ready(timeout=60)
            ... talk to cluster.rest_url ...

    ``die_with_parent`` (Linux) makes the kernel SIGKILL the JVMs when the thread that started them exits, so
    keep it on unless the cluster must outlive its starter (e.g. adoption tests), and start clusters from a
    long-lived thread.
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        slots: int = 2,
        taskmanagers: int = 1,
        python: bool = False,
        extra_config: Mapping[str, Any] | None = None,
        die_with_parent: bool = True,
    ) -> None:
        self.die_with_parent = die_with_parent
        self.work_dir = Path(work_dir).resolve()
        self.slots = slots
        self.taskmanagers = taskmanagers
        self.python = python
        self.extra_config = dict(extra_config or {})
        self.home = flink_home()
        self.conf_dir = self.work_dir / "conf"
        self.log_dir = self.work_dir / "log"
        self.lib_dir = self.work_dir / "dist" / "lib"
        # Flink looks for user jars in <parent of FLINK_LIB_DIR>/usrlib (application mode).
        self.usrlib_dir = self.work_dir / "dist" / "usrlib"
        self.checkpoint_dir = self.work_dir / "checkpoints"
        self.savepoint_dir = self.work_dir / "savepoints"
        self.rest_port = free_port()
        self.rpc_port = free_port()
        self._processes: list[_Process] = []

    # -- layout ---------------------------------------------------------------------------------------------

    @property
    def rest_url(self) -> str:
        return f"http://{LOOPBACK}:{self.rest_port}"

    @property
    def pids(self) -> dict[str, int]:
        """Role (``jobmanager``, ``taskmanager-0``, ...) to pid of every process started and not reaped."""
        return {p.role: p.popen.pid for p in self._processes}

    def config(self) -> dict[str, Any]:
        """The flat Flink configuration this cluster runs with."""
        config: dict[str, Any] = {
            "env.java.opts.all": _java_opts_all(self.home),
            "env.pid.dir": str(self.work_dir / "pids"),
            "jobmanager.bind-host": LOOPBACK,
            "jobmanager.rpc.address": LOOPBACK,
            "jobmanager.rpc.port": self.rpc_port,
            "jobmanager.memory.process.size": "1024m",
            "taskmanager.bind-host": LOOPBACK,
            "taskmanager.host": LOOPBACK,
            "taskmanager.rpc.port": "0",
            "taskmanager.data.port": 0,
            "taskmanager.numberOfTaskSlots": self.slots,
            "taskmanager.memory.process.size": "1024m",
            "blob.server.port": "0",
            "rest.address": LOOPBACK,
            "rest.bind-address": LOOPBACK,
            "rest.port": self.rest_port,
            "metrics.internal.query-service.port": "0",
            "parallelism.default": 1,
            "io.tmp.dirs": str(self.work_dir / "tmp"),
            "web.tmpdir": str(self.work_dir / "web"),
            "execution.checkpointing.storage": "filesystem",
            "execution.checkpointing.dir": self.checkpoint_dir.as_uri(),
            "execution.checkpointing.savepoint-dir": self.savepoint_dir.as_uri(),
        }
        config.update(self.extra_config)
        return config

    def _prepare(self, usrlib_jars: Iterable[Path] = ()) -> None:
        for directory in (
            self.conf_dir,
            self.log_dir,
            self.lib_dir,
            self.usrlib_dir,
            self.work_dir / "pids",
            self.work_dir / "tmp",
            self.work_dir / "web",
            self.checkpoint_dir,
            self.savepoint_dir,
        ):
            directory.mkdir(parents=True, exist_ok=True)
        for shipped in (self.home / "conf").iterdir():
            if shipped.suffix in (".properties", ".xml"):
                shutil.copyfile(shipped, self.conf_dir / shipped.name)
        (self.conf_dir / "config.yaml").write_text(yaml.safe_dump(self.config(), sort_keys=True, width=1 << 20))
        for stale in [*self.lib_dir.iterdir(), *self.usrlib_dir.iterdir()]:
            if stale.is_symlink():
                stale.unlink()
        jars = sorted((self.home / "lib").glob("*.jar"))
        if self.python:
            jars += sorted((self.home / "opt").glob("flink-python*.jar"))
        for jar in jars:
            _symlink(jar, self.lib_dir / jar.name)
        for jar in usrlib_jars:
            _symlink(Path(jar).resolve(), self.usrlib_dir / Path(jar).name)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        for inherited in ("FLINK_HOME", "FLINK_OPT_DIR", "FLINK_PLUGINS_DIR", "FLINK_ENV_JAVA_OPTS"):
            env.pop(inherited, None)
        env.update(
            {
                "FLINK_CONF_DIR": str(self.conf_dir),
                "FLINK_LOG_DIR": str(self.log_dir),
                "FLINK_LIB_DIR": str(self.lib_dir),
                "FLINK_PID_DIR": str(self.work_dir / "pids"),
                "FLINK_PLUGINS_DIR": str(self.work_dir / "dist" / "plugins"),
            }
        )
        return env

    # -- processes ------------------------------------------------------------------------------------------

    def _spawn(self, role: str, script: str, args: Sequence[str]) -> int:
        output = (self.log_dir / f"{role}.console").open("ab")
        try:
            popen = subprocess.Popen(
                [str(self.home / "bin" / script), "start-foreground", *args],
                cwd=self.work_dir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=_kill_when_parent_dies if self.die_with_parent else None,
            )
        except BaseException:
            output.close()
            raise
        self._processes.append(_Process(role, popen, output))
        return popen.pid

    def start_session(self) -> None:
        """Start a session JobManager and ``taskmanagers`` TaskManagers."""
        self._prepare()
        self._spawn("jobmanager", "jobmanager.sh", [])
        for _ in range(self.taskmanagers):
            self.start_taskmanager()

    def start_application(
        self,
        entry_class: str,
        args: Sequence[str] = (),
        usrlib_jars: Iterable[Path] = (),
        *,
        job_id: str | None = None,
        savepoint_path: str | None = None,
        allow_non_restored_state: bool = False,
    ) -> None:
        """Start an application-mode JobManager running ``entry_class`` from the jars put in ``usrlib``."""
        self._prepare(usrlib_jars)
        options = ["--job-classname", entry_class]
        if job_id is not None:
            options += ["--job-id", job_id]
        if savepoint_path is not None:
            options += ["--fromSavepoint", savepoint_path]
        if allow_non_restored_state:
            options.append("--allowNonRestoredState")
        self._spawn("jobmanager", "standalone-job.sh", [*options, *args])
        for _ in range(self.taskmanagers):
            self.start_taskmanager()

    def start_taskmanager(self) -> int:
        """Start one more TaskManager; returns its pid."""
        index = sum(1 for p in self._processes if p.role.startswith("taskmanager"))
        return self._spawn(f"taskmanager-{index}", "taskmanager.sh", [])

    def _check_alive(self) -> None:
        for process in self._processes:
            code = process.popen.poll()
            if code is not None:
                raise RawClusterError(
                    f"{process.role} (pid {process.popen.pid}) exited with {code}; "
                    f"see {self.log_dir}:\n{self.log_tail(process.role)}"
                )

    def log_tail(self, role: str, lines: int = 40) -> str:
        """The last lines of a process's console output, for failure messages."""
        path = self.log_dir / f"{role}.console"
        if not path.is_file():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def overview(self) -> dict[str, Any] | None:
        """``GET /overview`` as a dict, or None while the REST endpoint does not answer."""
        try:
            with urllib.request.urlopen(f"{self.rest_url}/overview", timeout=2) as response:
                body: dict[str, Any] = json.loads(response.read())
                return body
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def wait_rest_ready(self, timeout: float = 90.0, *, taskmanagers: int | None = None) -> dict[str, Any]:
        """Poll ``/overview`` until the REST endpoint answers and the TaskManagers have registered.

        Returns the last overview. Raises :class:`RawClusterError` when a process dies or the deadline
        passes.
        """
        expected = self.taskmanagers if taskmanagers is None else taskmanagers
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while True:
            self._check_alive()
            last = self.overview()
            if last is not None and int(last.get("taskmanagers", 0)) >= expected:
                return last
            if time.monotonic() >= deadline:
                raise RawClusterError(
                    f"Flink REST at {self.rest_url} not ready after {timeout}s (last overview: {last})"
                )
            time.sleep(0.2)  # poll interval, not a synchronisation point

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every process started here, then SIGKILL what is still alive after ``timeout``."""
        processes, self._processes = self._processes, []
        for process in reversed(processes):
            if process.popen.poll() is None:
                _signal(process.popen, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal(process.popen, signal.SIGKILL)
                process.popen.wait(timeout=10)
            finally:
                process.output.close()

    def kill(self, role: str) -> None:
        """SIGKILL one process started here (chaos tests) and reap it."""
        for process in list(self._processes):
            if process.role == role:
                _signal(process.popen, signal.SIGKILL)
                process.popen.wait(timeout=10)
                process.output.close()
                self._processes.remove(process)
                return
        raise KeyError(role)

    def __enter__(self) -> RawCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _kill_when_parent_dies() -> None:
    """In the child before exec: ask Linux to SIGKILL it when the thread that started it dies, so a crashed
    or interrupted test run cannot leak JVMs. The setting survives the exec into ``java``."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _signal(popen: subprocess.Popen[bytes], signum: int) -> None:
    # Popen.send_signal targets exactly popen.pid and is a no-op once the child has been reaped.
    with contextlib.suppress(ProcessLookupError):
        popen.send_signal(signum)


def _symlink(target: Path, link: Path) -> None:
    link.unlink(missing_ok=True)
    link.symlink_to(target)
