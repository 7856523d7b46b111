"""ClusterRuntime over local processes: each FlinkDeployment is its own Flink cluster of real JVMs.

Layout under ``<home>/clusters/<namespace>/<name>/``: ``conf/`` (config.yaml rendered for this cluster),
``lib/`` (links to the distribution's jars), ``usrlib/`` (links to the job's jars), ``log/<process>/`` and
``cluster.json``, the record of what runs: generation, ports and, per process, its pid and the kernel's start
time for that pid. The record is written atomically *after* the processes start and is the only thing
``observe`` trusts, so a controller that restarts adopts live processes instead of starting new ones, and a
recycled pid is never mistaken for ours (the start time would differ).

Processes run in their own session (``start_new_session``) so they outlive the controller; ``delete`` stops
exactly the recorded pids. Servers bind to 127.0.0.1 only.

Called by: the controller (through the ``ClusterRuntime`` port) and tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from flinkops.errors import RuntimeFailure
from flinkops.flink.distribution import FlinkDistribution
from flinkops.ports import ClusterKey, ClusterObservation, ClusterRequest

__all__ = ["LocalRuntime", "ProcessRecord", "process_alive", "start_ticks"]

RECORD = "cluster.json"
_STOP_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class ProcessRecord:
    role: str  # "jobmanager" | "taskmanager"
    index: int
    pid: int
    start_ticks: int
    log_dir: str

    @property
    def label(self) -> str:
        return f"{self.role}-{self.index}"


def start_ticks(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; everything after the last ')' is fixed-format.
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def process_alive(record: ProcessRecord) -> bool:
    return start_ticks(record.pid) == record.start_ticks


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalRuntime:
    def __init__(self, home: Path, distribution: FlinkDistribution) -> None:
        self.home = home
        self.dist = distribution
        # Children started by this process; polled so that dead ones are reaped instead of lingering as
        # zombies while the controller lives. Adopted processes (started by an earlier controller) are
        # reaped by init.
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # ------------------------------------------------------------------ paths and records

    def cluster_dir(self, key: ClusterKey) -> Path:
        return self.home / "clusters" / key.namespace / key.name

    def _read_record(self, key: ClusterKey) -> dict[str, Any] | None:
        try:
            data = json.loads((self.cluster_dir(key) / RECORD).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise RuntimeFailure(f"cluster record of {key} is unreadable: {exc}") from exc
        return data if isinstance(data, dict) else None

    def _write_record(self, key: ClusterKey, record: dict[str, Any]) -> None:
        path = self.cluster_dir(key) / RECORD
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
        os.replace(tmp, path)

    @staticmethod
    def _processes(record: dict[str, Any]) -> list[ProcessRecord]:
        return [ProcessRecord(**p) for p in record.get("processes", [])]

    # ------------------------------------------------------------------ port implementation

    def observe(self, key: ClusterKey) -> ClusterObservation | None:
        self._reap()
        record = self._read_record(key)
        if record is None:
            return None
        procs = self._processes(record)
        jms = [p for p in procs if p.role == "jobmanager"]
        tms = [p for p in procs if p.role == "taskmanager"]
        jm_alive = sum(process_alive(p) for p in jms)
        return ClusterObservation(
            key=key,
            generation=int(record["generation"]),
            jobmanagers_alive=jm_alive,
            jobmanagers_expected=len(jms),
            taskmanagers_alive=sum(process_alive(p) for p in tms),
            taskmanagers_expected=len(tms),
            rest_url=record["rest_url"] if jm_alive else None,
            job_id=record.get("job_id"),
            started_at=float(record.get("started_at", 0.0)),
            log_dir=self.cluster_dir(key) / "log",
        )

    def deploy(self, request: ClusterRequest) -> ClusterObservation:
        key = request.key
        if self._read_record(key) is not None:
            # A deploy replaces whatever ran before; stopping first keeps "one cluster per resource".
            self.delete(key)
        root = self.cluster_dir(key)
        for sub in ("conf", "lib", "usrlib", "tmp"):
            shutil.rmtree(root / sub, ignore_errors=True)
            (root / sub).mkdir(parents=True, exist_ok=True)
        self._link_jars(root, request)
        rest_port, rpc_port = _free_port(), _free_port()
        config = self._cluster_config(request, rest_port, rpc_port, root)
        (root / "conf" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=True))
        self._write_log_config(root, request)

        started: list[ProcessRecord] = []
        try:
            started.append(self._start(root, request, "jobmanager", 0))
            for index in range(request.taskmanager_replicas):
                started.append(self._start(root, request, "taskmanager", index))
        except OSError as exc:
            for proc in started:
                self._stop_pids([proc])
            raise RuntimeFailure(f"could not start Flink processes for {key}: {exc}") from exc
        record = {
            "generation": request.generation,
            "rest_url": f"http://127.0.0.1:{rest_port}",
            "rpc_port": rpc_port,
            "job_id": request.application.job_id if request.application else None,
            "started_at": time.time(),
            "taskmanager_replicas": request.taskmanager_replicas,
            "working_dir": str(request.working_dir) if request.working_dir else None,
            "application": _application_dict(request),
            "processes": [asdict(p) for p in started],
        }
        self._write_record(key, record)
        observation = self.observe(key)
        assert observation is not None
        return observation

    def delete(self, key: ClusterKey) -> None:
        record = self._read_record(key)
        if record is None:
            return
        self._stop_pids(self._processes(record))
        root = self.cluster_dir(key)
        (root / RECORD).unlink(missing_ok=True)
        for sub in ("conf", "lib", "usrlib", "tmp"):
            shutil.rmtree(root / sub, ignore_errors=True)

    def replace_missing_processes(self, key: ClusterKey) -> int:
        record = self._read_record(key)
        if record is None:
            return 0
        procs = self._processes(record)
        replaced = 0
        root = self.cluster_dir(key)
        request = _request_from_record(key, record)
        updated: list[ProcessRecord] = []
        for proc in procs:
            if proc.role == "taskmanager" and not process_alive(proc):
                updated.append(self._start(root, request, "taskmanager", proc.index))
                replaced += 1
            else:
                updated.append(proc)
        if replaced:
            record["processes"] = [asdict(p) for p in updated]
            self._write_record(key, record)
        return replaced

    def log_files(self, key: ClusterKey, component: str | None = None) -> Sequence[Path]:
        log_root = self.cluster_dir(key) / "log"
        if not log_root.is_dir():
            return []
        dirs = sorted(d for d in log_root.iterdir() if d.is_dir())
        if component:
            dirs = [d for d in dirs if d.name.startswith(component)]
        files: list[Path] = []
        for directory in dirs:
            files.extend(sorted(directory.glob("*.log")))
            files.extend(sorted(directory.glob("*.out")))
        return files

    # ------------------------------------------------------------------ helpers

    def _link_jars(self, root: Path, request: ClusterRequest) -> None:
        for jar in self.dist.lib_jars():
            (root / "lib" / jar.name).symlink_to(jar)
        app = request.application
        if app is None:
            return
        jars = list(app.jar_paths)
        if app.python:
            jars.append(self.dist.python_jar())
        for jar in jars:
            if not jar.is_file():
                raise RuntimeFailure(f"job jar {jar} does not exist")
            target = root / "usrlib" / jar.name
            if not target.exists():
                target.symlink_to(jar.resolve())

    def _cluster_config(self, request: ClusterRequest, rest_port: int, rpc_port: int, root: Path) -> dict[str, str]:
        config = dict(request.flink_config)
        config.update(
            {
                "jobmanager.rpc.address": "127.0.0.1",
                "jobmanager.rpc.port": str(rpc_port),
                "jobmanager.bind-host": "127.0.0.1",
                "taskmanager.bind-host": "127.0.0.1",
                "taskmanager.host": "127.0.0.1",
                "rest.address": "127.0.0.1",
                "rest.bind-address": "127.0.0.1",
                "rest.port": str(rest_port),
                "blob.server.port": "0",
                "taskmanager.rpc.port": "0",
                "taskmanager.data.port": "0",
                "metrics.internal.query-service.port": "0",
                "io.tmp.dirs": str(root / "tmp"),
                "web.tmpdir": str(root / "tmp"),
            }
        )
        return config

    def _write_log_config(self, root: Path, request: ClusterRequest) -> None:
        source = self.dist.home / "conf" / "log4j-console.properties"
        custom = request.log_config.get("log4j-console.properties")
        target = root / "conf" / "log4j-console.properties"
        if custom is not None:
            target.write_text(custom)
        else:
            shutil.copyfile(source, target)

    def _start(self, root: Path, request: ClusterRequest, role: str, index: int) -> ProcessRecord:
        log_dir = root / "log" / f"{role}-{index}"
        log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            {
                "FLINK_CONF_DIR": str(root / "conf"),
                "FLINK_LIB_DIR": str(root / "lib"),
                "FLINK_LOG_DIR": str(log_dir),
                "FLINK_PID_DIR": str(root / "tmp"),
                "FLINK_IDENT_STRING": f"{request.key.name}",
            }
        )
        env.pop("FLINK_HOME", None)
        app = request.application
        if role == "taskmanager":
            argv = [str(self.dist.bin / "taskmanager.sh"), "start-foreground"]
        elif app is None:
            argv = [str(self.dist.bin / "jobmanager.sh"), "start-foreground"]
        else:
            argv = [
                str(self.dist.bin / "standalone-job.sh"),
                "start-foreground",
                "--job-classname",
                app.entry_class,
                "--job-id",
                app.job_id,
                *app.args,
            ]
        cwd = request.working_dir if request.working_dir and request.working_dir.is_dir() else root
        with (log_dir / f"{role}.out").open("ab") as out:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children[proc.pid] = proc
        ticks = start_ticks(proc.pid)
        if ticks is None:
            raise RuntimeFailure(f"{role} process of {request.key} exited at once; see {log_dir / (role + '.out')}")
        return ProcessRecord(role=role, index=index, pid=proc.pid, start_ticks=ticks, log_dir=str(log_dir))

    def _stop_pids(self, procs: Sequence[ProcessRecord]) -> None:
        alive = [p for p in procs if process_alive(p)]
        for proc in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_SECONDS
        while alive and time.monotonic() < deadline:
            self._reap()
            alive = [p for p in alive if process_alive(p)]
            if alive:
                time.sleep(0.05)
        for proc in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        while alive:
            self._reap()
            alive = [p for p in alive if process_alive(p)]
            if alive:
                time.sleep(0.02)
        # A child that just exited is a zombie until waited for; collect it now rather than on the next pass.
        for proc in procs:
            child = self._children.pop(proc.pid, None)
            if child is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=5)

    def _reap(self) -> None:
        for pid, proc in list(self._children.items()):
            if proc.poll() is not None:
                del self._children[pid]


def _application_dict(request: ClusterRequest) -> dict[str, Any] | None:
    app = request.application
    if app is None:
        return None
    return {
        "entry_class": app.entry_class,
        "args": list(app.args),
        "job_id": app.job_id,
        "jar_paths": [str(p) for p in app.jar_paths],
        "python": app.python,
    }


def _request_from_record(key: ClusterKey, record: dict[str, Any]) -> ClusterRequest:
    """Enough of the original request to start another TaskManager (which reads conf/ from disk)."""
    working_dir = record.get("working_dir")
    return ClusterRequest(
        key=key,
        generation=int(record["generation"]),
        flink_config={},
        taskmanager_replicas=int(record.get("taskmanager_replicas", 1)),
        working_dir=Path(working_dir) if working_dir else None,
    )
