"""The local runtime's pre-started clusters: the next generation's JVMs start next to the running cluster.

``prepare`` starts a session cluster (``StandaloneSessionClusterEntrypoint`` and the TaskManagers, no job) in
its own directory ``<cluster dir>/gen-<generation>/`` (conf/, lib/, plugins/, tmp/, log/) with its own ports,
and records it in ``<cluster dir>/prepared.json``. ``promote`` (called by ``deploy`` of that generation) submits
the application job to it through Flink REST (upload the job jar, run it with the job id, entry class, args,
parallelism, the restore path and allowNonRestoredState of the request; a job id Flink already has is not
submitted again), then makes it the deployment's cluster: ``cluster.json`` is rewritten atomically with the
prepared processes and their directory (``root``), and ``prepared.json`` goes. A controller that restarts in
between finds either record and carries on: the submission is idempotent, and a prepared record whose
directory the active record already names is a promotion that finished.

Refused (the upgrade then runs in the usual order): ZooKeeper HA (both clusters would share one HA cluster
id), PyFlink jobs (their submission through REST is not supported here), and a machine whose ``MemAvailable``
minus a margin cannot hold the new cluster's configured JobManager and TaskManager process sizes.

Called by: ``runtimes/local/runtime.py``.

Invariant: at most one prepared cluster per deployment; a prepared cluster never runs a job until it is
promoted, and nothing here touches the active cluster's processes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from flinkops.api.secrets import arg_references
from flinkops.api.validation import ha_type
from flinkops.errors import FlinkApiError, FlinkUnavailable, RuntimeFailure
from flinkops.flink.memory import parse_memory_size
from flinkops.flink.rest import FlinkRestClient
from flinkops.ports import ClusterKey, ClusterRequest
from flinkops.runtimes.local.launch import cluster_config, free_ports, link_jars, link_plugins, write_log_config
from flinkops.runtimes.local.records import ProcessRecord

if TYPE_CHECKING:
    from collections.abc import Sequence

    from flinkops.flink.distribution import FlinkDistribution


class LocalRuntime(Protocol):
    """What a ``Prestarter`` uses of the local runtime that owns it (which starts and stops every process)."""

    dist: FlinkDistribution

    def cluster_dir(self, key: ClusterKey) -> Path: ...

    def read_record(self, key: ClusterKey) -> dict[str, Any] | None: ...

    def processes(self, record: dict[str, Any]) -> list[ProcessRecord]: ...

    def alive(self, record: ProcessRecord) -> bool: ...

    def start(
        self, root: Path, request: ClusterRequest, role: str, index: int, *, rest_port: int = 0, rpc_port: int = 0
    ) -> ProcessRecord: ...

    def stop(self, procs: Sequence[ProcessRecord]) -> float: ...


__all__ = ["MEMORY_MARGIN", "PREPARED", "Prestarter", "memory_available", "memory_needed"]

log = logging.getLogger("flinkops.runtimes.local")

PREPARED = "prepared.json"
RESTORE_KEY = "execution.state-recovery.path"
#: Memory left to everything else on the machine when two clusters run at once.
MEMORY_MARGIN = 512 << 20
_DIRS = ("conf", "lib", "usrlib", "plugins", "tmp")
_DEFAULT_JM, _DEFAULT_TM = "1600m", "1728m"  # Flink's shipped process sizes, when the config names none
_SUBMIT_TIMEOUT = 120.0  # seconds: run_jar executes the job's main() in the JobManager
_READY_TIMEOUT = 1.0


def memory_needed(config: Mapping[str, str], taskmanagers: int) -> int:
    """Bytes the cluster's JVMs may use: the JobManager's and every TaskManager's configured process size."""
    jm = parse_memory_size(config.get("jobmanager.memory.process.size") or _DEFAULT_JM)
    tm = parse_memory_size(config.get("taskmanager.memory.process.size") or _DEFAULT_TM)
    return jm + taskmanagers * tm


def memory_available(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """``MemAvailable`` in bytes, or None where the kernel does not say."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class Prestarter:
    """Prepared clusters of one ``LocalRuntime`` (it owns the process starts and stops)."""

    def __init__(self, runtime: LocalRuntime, available: Callable[[], int | None] = memory_available) -> None:
        self.runtime = runtime
        self.available = available

    # ------------------------------------------------------------------ records

    def _path(self, key: ClusterKey) -> Path:
        return self.runtime.cluster_dir(key) / PREPARED

    def read(self, key: ClusterKey) -> dict[str, Any] | None:
        """The prepared cluster's record; a leftover of a promotion that finished is removed."""
        try:
            record = json.loads(self._path(key).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise RuntimeFailure(f"prepared cluster record of {key} is unreadable: {exc}") from exc
        active = self.runtime.read_record(key)
        if active is not None and active.get("root") == record.get("root"):
            self._path(key).unlink(missing_ok=True)  # promoted: cluster.json names these processes now
            return None
        return record if isinstance(record, dict) else None

    def _write(self, key: ClusterKey, record: dict[str, Any]) -> None:
        path = self._path(key)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
        os.replace(tmp, path)

    def ready(self, record: dict[str, Any]) -> bool:
        """Every process alive, the JobManager's REST API up and every TaskManager registered."""
        procs = self.runtime.processes(record)
        if not procs or not all(self.runtime.alive(p) for p in procs):
            return False
        try:
            with FlinkRestClient(str(record["rest_url"]), timeout=_READY_TIMEOUT) as rest:
                registered = rest.overview().taskmanagers or 0
        except FlinkApiError:
            return False
        return registered >= int(record.get("taskmanager_replicas", 1))

    # ------------------------------------------------------------------ prepare, drop, promote

    def refusal(self, request: ClusterRequest) -> str | None:
        if ha_type(request.flink_config) is not None:
            return "high availability is configured: a second cluster would share its HA cluster id"
        app = request.application
        if app is not None and app.python:
            return "PyFlink jobs are not submitted to a pre-started cluster (only application mode runs them)"
        if app is not None and not app.jar_paths:
            return "the job has no jar to submit to a pre-started cluster"
        if app is not None and arg_references(app.args):
            # Submitted through Flink REST, the arguments would not be masked as the entry point's are.
            return "the job's arguments reference secrets: they are passed to an application cluster only"
        needed = memory_needed(request.flink_config, request.taskmanager_replicas)
        available = self.available()
        if available is not None and available - MEMORY_MARGIN < needed:
            return (
                f"not enough free memory for a second cluster: {needed >> 20} MiB configured (JobManager and "
                f"{request.taskmanager_replicas} TaskManager(s)), {available >> 20} MiB available less a "
                f"{MEMORY_MARGIN >> 20} MiB margin"
            )
        return None

    def prepare(self, request: ClusterRequest) -> str | None:
        key = request.key
        existing = self.read(key)
        if existing is not None:
            procs = self.runtime.processes(existing)
            if int(existing["generation"]) == request.generation and all(self.runtime.alive(p) for p in procs):
                return None  # asked again after an interruption: it runs already
            self.drop(key)
        refused = self.refusal(request)
        if refused is not None:
            return refused
        root = self.runtime.cluster_dir(key) / f"gen-{request.generation}"
        for sub in _DIRS:
            shutil.rmtree(root / sub, ignore_errors=True)
            (root / sub).mkdir(parents=True, exist_ok=True)
        session = replace(
            request,
            application=None,
            flink_config={k: v for k, v in request.flink_config.items() if k != RESTORE_KEY},
        )
        link_jars(self.runtime.dist, root, session)
        link_plugins(self.runtime.dist, root, session)
        rest, rpc = free_ports(2)
        config = cluster_config(session, rest, rpc, root)
        (root / "conf" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=True))
        write_log_config(self.runtime.dist, root, session)
        started: list[ProcessRecord] = []
        try:
            started.append(self.runtime.start(root, session, "jobmanager", 0, rest_port=rest, rpc_port=rpc))
            for index in range(request.taskmanager_replicas):
                started.append(self.runtime.start(root, session, "taskmanager", index))
        except (OSError, RuntimeFailure) as exc:
            self.runtime.stop(started)
            return f"could not start the new cluster's processes: {exc}"
        self._write(
            key,
            {
                "generation": request.generation,
                "root": str(root),
                "rest_url": f"http://127.0.0.1:{rest}",
                "rpc_port": rpc,
                "started_at": time.time(),
                "jobmanager_replicas": 1,
                "taskmanager_replicas": request.taskmanager_replicas,
                "working_dir": str(request.working_dir) if request.working_dir else None,
                "processes": [asdict(p) for p in started],
            },
        )
        log.info("%s: pre-started the cluster of generation %d at %s", key, request.generation, root)
        return None

    def drop(self, key: ClusterKey) -> None:
        """Stop the prepared cluster (if any) and remove its generated directories (its logs stay)."""
        record = self.read(key)
        if record is None:
            return
        self.runtime.stop(self.runtime.processes(record))
        root = Path(str(record["root"]))
        for sub in _DIRS:
            shutil.rmtree(root / sub, ignore_errors=True)
        self._path(key).unlink(missing_ok=True)

    def promote(self, request: ClusterRequest) -> dict[str, Any] | None:
        """Submit ``request``'s job to a ready prepared cluster of its generation and return the record that
        makes it the deployment's cluster (the caller writes it); None, with any prepared cluster stopped,
        when there is none to promote."""
        key = request.key
        record = self.read(key)
        app = request.application
        if record is None:
            return None
        if app is None or int(record["generation"]) != request.generation or not self.ready(record):
            log.info("%s: the pre-started cluster cannot take this deploy: starting a new one", key)
            self.drop(key)
            return None
        self._submit(str(record["rest_url"]), request)
        return {**record, "job_id": app.job_id, "started_at": time.time()}

    def promoted(self, key: ClusterKey) -> None:
        self._path(key).unlink(missing_ok=True)

    def _submit(self, rest_url: str, request: ClusterRequest) -> None:
        app = request.application
        assert app is not None
        config = request.flink_config
        restore = config.get(RESTORE_KEY) or None
        allow = (config.get("execution.savepoint.ignore-unclaimed-state") or "false").strip().lower() == "true"
        parallelism = int(config["parallelism.default"]) if config.get("parallelism.default") else None
        try:
            with FlinkRestClient(rest_url, timeout=_SUBMIT_TIMEOUT) as rest:
                if any(j.job_id == app.job_id for j in rest.list_jobs()):
                    return  # submitted by an interrupted earlier deploy: never run it twice
                jar_id = rest.upload_jar(app.jar_paths[0])
                try:
                    rest.run_jar(
                        jar_id,
                        entry_class=app.entry_class or None,
                        program_args=list(app.args),
                        parallelism=parallelism,
                        job_id=app.job_id,
                        savepoint_path=restore,
                        allow_non_restored_state=allow if restore else None,
                    )
                finally:
                    try:
                        rest.delete_jar(jar_id)
                    except FlinkApiError:
                        log.warning("%s: could not delete uploaded jar %s", request.key, jar_id)
        except FlinkUnavailable as exc:
            raise RuntimeFailure(f"{request.key}: the pre-started cluster did not answer: {exc}") from exc
        except FlinkApiError as exc:
            raise RuntimeFailure(
                f"{request.key}: submitting job {app.job_id} to the pre-started cluster: {exc}"
            ) from exc
