"""Flink's Prometheus reporters on the local runtime: a definite port per process, and where to scrape them all.

On Kubernetes every pod has its own IP, so every process serves its reporter on the configured port (9999 in the
seeds). Here every process of every cluster shares 127.0.0.1: one fixed port would be bound by the first process
only (the reporter of every other process fails to start). So each process gets its own port,
chosen by flinkops when it starts the process and passed as the dynamic property
``-D metrics.reporter.<name>.port=<port>`` (which overrides the shared ``conf/config.yaml``):

* the configured value is a range or a list (``9250-9260``, Flink's ``PortRange``): a port of that range that is
  free and not given to another recorded process, so a firewall rule or a scrape configuration written for the
  range holds; none left is a ``RuntimeFailure`` that says to widen the range;
* one port (``9999``, as on Kubernetes) or none (Flink's default 9249): a free port the kernel picks, as for the
  REST and RPC ports.

The port is recorded with the process (``ProcessRecord.metrics_ports``), so ``flinkops describe`` lists every
endpoint and :func:`write_targets` keeps a Prometheus file-based service-discovery file,
``$FLINKOPS_HOME/prometheus/flink.json`` (``[{"targets": ["127.0.0.1:<port>"], "labels": {...}}]``, one entry per
live process with the labels ``namespace``, ``name``, ``component``, ``process`` and ``reporter``): the runtime
rewrites it (atomically: Prometheus re-reads the file when it changes) whenever a cluster record changes or a
recorded process dies. Pre-started clusters of an upgrade run no job and are listed once promoted.

Flink's Prometheus reporter (2.2.1) binds its port on every interface of the machine and has no host setting, so
the local target runs flinkops' own factory in its place (``flink/loopback.py``, chosen by ``provisioning/local.py``):
the same reporter and registry, serving on 127.0.0.1 only.

Called by: ``runtimes/local/runtime.py``; ``service.target`` (``describe``) reads :func:`endpoints`.
Invariants: a port handed out is not handed out again while its process may still be starting (a short
reservation) or while a record lists it; the discovery file lists only processes alive when it was written.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from flinkops.api.reporters import parse_ports, prometheus_reporters
from flinkops.artifacts.cache import write_atomic
from flinkops.errors import RuntimeFailure
from flinkops.ports import ClusterKey, MetricsEndpoint
from flinkops.runtimes.local.launch import free_ports
from flinkops.runtimes.local.records import ProcessRecord, process_alive

__all__ = [
    "SD_FILE",
    "PortBook",
    "endpoints",
    "sd_path",
    "targets",
    "write_targets",
]

log = logging.getLogger("flinkops.runtimes.local")

#: The service-discovery file, relative to the flinkops home.
SD_FILE = Path("prometheus") / "flink.json"
#: How long a port handed to a starting process stays reserved even before any record lists it.
_RESERVATION_SECONDS = 120.0
_RECORDS = ("cluster.json", "prepared.json")


def sd_path(home: Path) -> Path:
    return home / SD_FILE


def _records(home: Path, names: Sequence[str] = _RECORDS) -> Iterable[tuple[ClusterKey, dict[str, Any]]]:
    """Every readable cluster record under ``home`` (a record being replaced this moment is skipped)."""
    root = home / "clusters"
    if not root.is_dir():
        return
    for namespace in sorted(p for p in root.iterdir() if p.is_dir()):
        for cluster in sorted(p for p in namespace.iterdir() if p.is_dir()):
            for name in names:
                try:
                    data = json.loads((cluster / name).read_text())
                except (OSError, ValueError):
                    continue
                if isinstance(data, dict):
                    yield ClusterKey(namespace.name, cluster.name), data


def _processes(record: Mapping[str, Any]) -> list[ProcessRecord]:
    return [ProcessRecord(**p) for p in record.get("processes", []) if isinstance(p, dict)]


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            # The reporter listens on 127.0.0.1: a port taken there, or on every address, is what would clash.
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class PortBook:
    """Hands out the reporter ports of the processes one runtime starts (see the module docstring)."""

    def __init__(self, home: Path, clock: Any = time.monotonic) -> None:
        self.home = home
        self._clock = clock
        self._lock = threading.Lock()
        self._reserved: dict[int, float] = {}

    def _taken(self) -> set[int]:
        now = self._clock()
        self._reserved = {p: until for p, until in self._reserved.items() if until > now}
        taken = set(self._reserved)
        for _, record in _records(self.home):
            for proc in _processes(record):
                taken.update(proc.metrics_ports.values())
                taken.update(p for p in (proc.rest_port, proc.rpc_port) if p)
        return taken

    def allocate(self, config: Mapping[str, str], label: str) -> dict[str, int]:
        """A port for each Prometheus reporter ``config`` enables, by reporter name (empty: none is enabled).
        ``label`` names the process in a failure."""
        reporters = prometheus_reporters(config)
        if not reporters:
            return {}
        with self._lock:
            taken = self._taken()
            given: dict[str, int] = {}
            for reporter in reporters:
                key = reporter.option("port")
                value = str(config.get(key, "")).strip()
                ranges = parse_ports(value) if value else []
                if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
                    ranges = []  # one port: every local process would want it
                port = self._from_ranges(ranges, taken) if ranges else free_ports(1, avoid=taken)[0]
                if port is None:
                    raise RuntimeFailure(
                        f"{label}: no free port left in '{key}: {value}' for its Prometheus reporter (every local "
                        "process needs its own): widen the range, or give one port and let flinkops choose"
                    )
                taken.add(port)
                given[reporter.name] = port
                self._reserved[port] = self._clock() + _RESERVATION_SECONDS
            return given

    @staticmethod
    def _from_ranges(ranges: Sequence[tuple[int, int]], taken: set[int]) -> int | None:
        for low, high in ranges:
            for port in range(low, high + 1):
                if port not in taken and _free(port):
                    return port
        return None


def endpoints(home: Path, key: ClusterKey | None = None) -> list[MetricsEndpoint]:
    """The reporter endpoints the active cluster records list (of ``key``, or of every cluster), dead or alive."""
    found: list[MetricsEndpoint] = []
    for cluster, record in _records(home, ("cluster.json",)):
        if key is not None and cluster != key:
            continue
        for proc in sorted(_processes(record), key=lambda p: (p.role != "jobmanager", p.index)):
            alive = process_alive(proc)
            for reporter, port in sorted(proc.metrics_ports.items()):
                url = f"http://127.0.0.1:{port}/metrics"
                found.append(MetricsEndpoint(cluster, proc.role, proc.label, reporter, url, alive))
    return found


def targets(home: Path) -> list[dict[str, Any]]:
    """The service-discovery entries of every live process's reporter."""
    return [
        {
            "targets": [e.url.removeprefix("http://").removesuffix("/metrics")],
            "labels": {
                "namespace": e.key.namespace,
                "name": e.key.name,
                "component": e.component,
                "process": e.process,
                "reporter": e.reporter,
            },
        }
        for e in endpoints(home)
        if e.alive
    ]


_WRITE_LOCK = threading.Lock()


def write_targets(home: Path) -> Path:
    """Rewrite the service-discovery file from the records (atomically); returns its path."""
    path = sd_path(home)
    with _WRITE_LOCK:
        entries = targets(home)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(entries, indent=2) + "\n")
    return path
