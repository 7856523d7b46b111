"""The local runtime's records: what ``cluster.json`` (and ``prepared.json``) hold about a cluster and its processes.

A ``ProcessRecord`` names one JVM by pid *and* the kernel's start time for that pid, so a recycled pid is never
mistaken for ours (``process_alive``). The helpers turn a request into the record's plain data and back: the
application a JobManager runs, the ZooKeeper HA settings, and enough of the original request to start a
replacement process after a controller restart.

Called by: ``runtimes/local/runtime.py`` and ``prestart.py``. Pure data; reads ``/proc`` only in ``process_alive``
and lists the home's cluster directories in ``RecordFiles``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flinkops.flink.config import ZooKeeperHA
from flinkops.ports import ApplicationJob, ClusterKey, ClusterRequest
from flinkops.procs import same_process

__all__ = [
    "ProcessRecord",
    "RecordFiles",
    "application_dict",
    "ha_dict",
    "ha_from_record",
    "process_alive",
    "request_from_record",
]


@dataclass(frozen=True)
class ProcessRecord:
    role: str  # "jobmanager" | "taskmanager"
    index: int
    pid: int
    start_ticks: int
    log_dir: str
    rest_port: int = 0  # JobManagers only (0: not recorded, e.g. a record written before ports were per process)
    rpc_port: int = 0
    #: The port of each Prometheus reporter of the process, by reporter name (``reporters.py``).
    metrics_ports: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.role}-{self.index}"

    @property
    def rest_url(self) -> str | None:
        return f"http://127.0.0.1:{self.rest_port}" if self.rest_port else None

    @property
    def ident(self) -> tuple[int, int]:
        """The process as ``procs.ProcessWatch`` names it: (pid, kernel start time)."""
        return (self.pid, self.start_ticks or 0)


def process_alive(record: ProcessRecord) -> bool:
    return same_process(record.pid, record.start_ticks)


class RecordFiles:
    """Where the record ``name`` of every cluster under ``home`` would be (``clusters/<namespace>/<cluster>/``;
    whoever opens one skips it when it is missing). The controller asks twice a second: the directories are
    listed again only when one of them changed (its mtime), and a listing taken within a moment of a change
    is not trusted (a coarse clock can give two changes the same mtime). Paths are strings: the caller stats
    each of them every time."""

    _SETTLE_NS = 2_000_000_000

    def __init__(self, home: Path, name: str) -> None:
        self.root = os.path.join(home, "clusters")
        self.name = name
        self._stamps: tuple[int, ...] = ()  # mtimes of the root and of each namespace directory when listed
        self._trusted = False
        self._namespaces: list[str] = []
        self._found: list[tuple[ClusterKey, str]] = []

    def __call__(self) -> list[tuple[ClusterKey, str]] | None:
        """The records, or None when the listing failed half-way (a directory removed while it was read)."""
        if self._trusted:
            try:
                stamps = tuple(os.stat(d).st_mtime_ns for d in (self.root, *self._namespaces))
            except OSError:
                stamps = ()
            if stamps == self._stamps:
                return self._found
        return self._list()

    def _list(self) -> list[tuple[ClusterKey, str]] | None:
        self._trusted = False
        try:
            root_mtime = os.stat(self.root).st_mtime_ns
            namespaces = os.scandir(self.root)
        except FileNotFoundError:
            return []  # no cluster yet
        except OSError:
            return None
        found: list[tuple[ClusterKey, str]] = []
        listed: list[tuple[str, int]] = []
        try:
            with namespaces:
                for namespace in namespaces:
                    if namespace.is_dir():
                        listed.append((namespace.path, namespace.stat().st_mtime_ns))
                        with os.scandir(namespace.path) as clusters:
                            found.extend(
                                (ClusterKey(namespace.name, c.name), os.path.join(c.path, self.name))
                                for c in clusters
                                if c.is_dir()
                            )
        except OSError:
            return None
        self._stamps = (root_mtime, *(mtime for _, mtime in listed))
        self._namespaces = [path for path, _ in listed]
        self._found = found
        self._trusted = time.time_ns() - max(self._stamps) > self._SETTLE_NS
        return found


def application_dict(request: ClusterRequest) -> dict[str, Any] | None:
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


def ha_dict(ha: ZooKeeperHA | None) -> dict[str, Any] | None:
    if ha is None:
        return None
    return {"quorum": ha.quorum, "cluster_id": ha.cluster_id, "path": ha.path, "storage_dir": ha.storage_dir}


def ha_from_record(record: dict[str, Any]) -> ZooKeeperHA | None:
    data = record.get("ha")
    if not isinstance(data, dict):
        return None
    return ZooKeeperHA(
        quorum=str(data["quorum"]),
        cluster_id=str(data["cluster_id"]),
        path=str(data["path"]),
        storage_dir=data.get("storage_dir"),
    )


def request_from_record(key: ClusterKey, record: dict[str, Any]) -> ClusterRequest:
    """Enough of the original request to start another TaskManager or standby JobManager (both read conf/
    from disk; a JobManager of an application cluster also needs the application it runs)."""
    working_dir = record.get("working_dir")
    app = record.get("application")
    application = None
    if isinstance(app, dict):
        application = ApplicationJob(
            entry_class=str(app["entry_class"]),
            args=tuple(app.get("args", ())),
            job_id=str(app["job_id"]),
            jar_paths=tuple(Path(p) for p in app.get("jar_paths", ())),
            python=bool(app.get("python", False)),
        )
    return ClusterRequest(
        key=key,
        generation=int(record["generation"]),
        flink_config={},
        jobmanager_replicas=int(record.get("jobmanager_replicas", 1)),
        taskmanager_replicas=int(record.get("taskmanager_replicas", 1)),
        application=application,
        working_dir=Path(working_dir) if working_dir else None,
    )
