"""ClusterRuntime over local processes: each FlinkDeployment is its own Flink cluster of real JVMs.

Layout under ``<home>/clusters/<namespace>/<name>/``: ``conf/`` (config.yaml rendered for this cluster),
``lib/`` (links to the distribution's jars), ``usrlib/`` (links to the job's jars), ``log/<process>/`` and
``cluster.json``, the record of what runs: generation, ports and, per process, its pid and the kernel's start
time for that pid. The record is written atomically *after* the processes start and is the only thing
``observe`` trusts, so a controller that restarts adopts live processes instead of starting new ones, and a
recycled pid is never mistaken for ours (the start time would differ).

Processes run in their own session (``start_new_session``) so they outlive the controller; ``delete`` stops
exactly the recorded pids. Servers bind to 127.0.0.1 only. How a process starts (the ``java`` command line built
in Python, or Flink's scripts with ``FLINKOPS_JVM_LAUNCH=scripts``; class-data sharing) is ``launch.py``'s.

Each JobManager has its own REST and RPC ports (recorded per process, passed as ``-D`` dynamic properties on
top of the shared ``conf/``). Without high availability a cluster has one JobManager, and when it dies the
controller redeploys from the latest checkpoint. With ZooKeeper HA (``high-availability.type: zookeeper``) it
has ``jobmanager_replicas`` of them, all running the same application with the same job id: one leads, the
others wait on the leader latch. Then ``observe`` reports the REST URL of the leader (read from ZooKeeper, see
``ha.py``), and ``replace_missing_processes`` first releases what a dead JobManager still holds in ZooKeeper
(so a standby takes over at once instead of after the session timeout) and then starts a new standby in its
place. A deployed or deleted HA cluster starts from, and leaves, no HA metadata: the controller, not Flink's
HA recovery, decides what a new deployment restores.

Pre-started upgrades (``prepare``; ``prestart.py``): the next generation's cluster runs in ``gen-<N>/`` next to
the active one until ``deploy`` of that generation promotes it; ``cluster.json`` then names that directory
(``root``), which replacements, scaling, logs and ``delete`` use from then on.

A JobManager that exits on its own (a non-zero exit code) is reported in ``observe`` as a ``StartFailed`` fault
with the cause read from its log, and that log is kept under ``log/crashed/`` (``crashes.py``): the controller
decides whether to start it again.

Called by: the controller (through the ``ClusterRuntime`` port) and tests.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import yaml

from flinkops.api.validation import ha_type
from flinkops.errors import ClusterFault, RuntimeFailure
from flinkops.flink.config import HA_QUORUM, ZooKeeperHA, zookeeper_ha
from flinkops.flink.distribution import FlinkDistribution
from flinkops.ports import ClusterKey, ClusterObservation, ClusterRequest
from flinkops.procs import ProcessWatch, start_ticks
from flinkops.runtimes.local.crashes import exit_fault, keep_log, read_crash
from flinkops.runtimes.local.ha import (
    leader_rest_url,
    release_dead_sessions,
    remove_cluster_metadata,
    rest_port,
    zookeeper_sessions_in_logs,
)
from flinkops.runtimes.local.launch import (
    Launcher,
    ProcessSpec,
    cluster_config,
    free_ports,
    jobmanager_args,
    link_jars,
    link_plugins,
    read_config,
    write_log_config,
)
from flinkops.runtimes.local.prestart import Prestarter
from flinkops.runtimes.local.records import (
    ProcessRecord,
    RecordFiles,
    application_dict,
    ha_dict,
    ha_from_record,
    process_alive,
    request_from_record,
)
from flinkops.runtimes.local.reporters import PortBook, write_targets
from flinkops.runtimes.local.zookeeper import ZooKeeperError

__all__ = ["LocalRuntime", "ProcessRecord", "process_alive", "start_ticks"]

log = logging.getLogger("flinkops.runtimes.local")

RECORD = "cluster.json"
# Rebuilt on every deploy and removed on delete (log/ is kept for post-mortems).
_GENERATED_DIRS = ("conf", "lib", "usrlib", "plugins", "tmp")
_STOP_GRACE_SECONDS = 10.0
# A JVM that records a class-data sharing archive writes it as it exits (launch.py, cds.py): seconds more.
_RECORDING_GRACE_SECONDS = 20.0
_WATCH_INTERVAL_SECONDS = 0.2
_RELEASE_RETRY_SECONDS = 2.0
# After a JobManager died, the survivors need the CPU to recover the job (two cores are common here): a new
# standby JVM starts this long after the release at the earliest.
_STANDBY_DELAY_SECONDS = 5.0
#: Exit codes of a JVM ended by a signal (128 + its number).
_SIGNALLED = range(129, 160)


class LocalRuntime:
    #: Session clusters grow and shrink with their jobs (``core.planner.growth``): each session TaskManager
    #: registers as ``taskmanager-<index>``, so the controller can tell which ones are idle.
    elastic_sessions = True

    def __init__(
        self,
        home: Path,
        distribution: FlinkDistribution,
        *,
        watch_jobmanagers: bool = False,
        launcher: Launcher | None = None,
    ) -> None:
        self.home = home
        self.dist = distribution
        # How processes start: the java command line built in Python (default), or Flink's scripts.
        self.launcher = launcher if launcher is not None else Launcher(distribution)
        # Children started by this process; polled so that dead ones are reaped instead of lingering as
        # zombies while the controller lives. Adopted processes (started by an earlier controller) are
        # reaped by init.
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        #: Exit codes of children that exited on their own, by pid (read by ``_start_failure``).
        self._exit_codes: dict[int, int] = {}
        #: What each dead JobManager (pid, start time) was found to have died of (None: killed, or nothing told).
        self._exits: dict[tuple[int, int], ClusterFault | None] = {}
        # The JobManager watch of HA clusters (see _watch_loop); started by the first HA deploy or observe.
        # Off by default: effects belong to the controller's executor, which hears of a dead process within
        # half a second (changed_clusters) and releases its ZooKeeper session through
        # replace_missing_processes. The watch does the same a few hundred milliseconds sooner, for embedders
        # that run a runtime without the controller loop.
        self._watch_enabled = watch_jobmanagers
        self._watch_lock = threading.Lock()
        self._watched: set[ClusterKey] = set()
        self._watcher: threading.Thread | None = None
        self._watch_stop = threading.Event()
        # JobManagers (pid, start ticks) whose ZooKeeper nodes were released, or when to try again; and per
        # cluster when the last release happened.
        self._released: dict[tuple[int, int], float] = {}
        self._released_at: dict[ClusterKey, float] = {}
        # Every recorded process, watched through a pidfd: one poll(2) tells changed_clusters() which died (no
        # read of /proc per process and turn); and the processes it watches, by (pid, start time).
        self._liveness = ProcessWatch()
        self._watched_procs: set[tuple[int, int]] = set()
        self._record_files = RecordFiles(home, RECORD)
        self._records_seen: dict[str, tuple[tuple[int, int, int], list[ProcessRecord]]] = {}
        self._prestart = Prestarter(self)
        # Prometheus reporter ports per process, and whether the service-discovery file reflects the records.
        self._reporter_ports = PortBook(home)
        self._targets_current = False

    def close(self) -> None:
        """Stop the JobManager watch and close the process watch (Flink processes are not touched)."""
        self._watch_stop.set()
        watcher = self._watcher
        if watcher is not None:
            watcher.join(timeout=5)
        self._liveness.close()

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
        self._write_targets()

    def _write_targets(self) -> None:
        """Bring the Prometheus service-discovery file in line with the records (``reporters.py``)."""
        try:
            write_targets(self.home)
            self._targets_current = True
        except OSError as exc:
            self._targets_current = False
            log.warning("could not write the Prometheus service-discovery file under %s: %s", self.home, exc)

    @staticmethod
    def _processes(record: dict[str, Any]) -> list[ProcessRecord]:
        return [ProcessRecord(**p) for p in record.get("processes", [])]

    def _root(self, key: ClusterKey, record: dict[str, Any]) -> Path:
        """Where the cluster's conf/, lib/ and log/ are: its own directory, or a promoted ``gen-<N>/``."""
        return Path(record["root"]) if record.get("root") else self.cluster_dir(key)

    # For prestart.py, which starts and stops the processes of prepared clusters through this runtime.
    read_record = _read_record
    processes = _processes
    alive = staticmethod(process_alive)

    # ------------------------------------------------------------------ port implementation

    def observe(self, key: ClusterKey) -> ClusterObservation | None:
        self._reap()
        record = self._read_record(key)
        if record is None:
            return None
        procs = self._processes(record)
        jms = [p for p in procs if p.role == "jobmanager"]
        tms = [p for p in procs if p.role == "taskmanager"]
        live = self._liveness.alive(p.ident for p in procs)
        live_jms = [p for p in jms if p.ident in live]
        ha = ha_from_record(record)
        if ha is not None:
            self._watch(key)
        rest_url: str | None = None
        if live_jms and ha is not None:
            leader = self._leader(key, ha, live_jms)
            rest_url = leader.rest_url if leader is not None else None
        elif live_jms:
            rest_url = live_jms[0].rest_url or record["rest_url"]
        prepared = self._prestart.read(key)
        fault = self._start_failure(key, record, jms) if jms and not live_jms else None
        return ClusterObservation(
            key=key,
            generation=int(record["generation"]),
            jobmanagers_alive=len(live_jms),
            jobmanagers_expected=len(jms),
            taskmanagers_alive=sum(p.ident in live for p in tms),
            taskmanagers_expected=len(tms),
            rest_url=rest_url,
            job_id=record.get("job_id"),
            started_at=float(record.get("started_at", 0.0)),
            log_dir=self._root(key, record) / "log",
            prepared_generation=int(prepared["generation"]) if prepared is not None else None,
            prepared_ready=prepared is not None and self._prestart.ready(prepared),
            fault=fault,
        )

    def _start_failure(
        self, key: ClusterKey, record: dict[str, Any], jms: Sequence[ProcessRecord]
    ) -> ClusterFault | None:
        """Why the cluster's (first) JobManager exited, when it exited on its own: a non-zero exit code, or an
        unknown one (a process an earlier controller started) with an exception in its log. Its log is kept under
        ``log/crashed/`` the first time it is seen dead. A JobManager killed by a signal (SIGKILL in a failover,
        ``delete``) is no start failure: None."""
        dead = min(jms, key=lambda p: p.index)
        if dead.ident in self._exits:
            return self._exits[dead.ident]
        code = self._exit_codes.pop(dead.pid, None)
        fault = None
        # 128 + n: the JVM ended on signal n (SIGTERM from someone, a kill): not a failure of its own.
        if code is None or (code > 0 and code not in _SIGNALLED):
            log_dir = Path(dead.log_dir)
            crash = read_crash(log_dir)
            if code is not None or crash is not None:
                name = f"{dead.role}-{dead.index}-{dead.pid}-{dead.start_ticks}"
                try:
                    kept: Path | None = keep_log(log_dir, self.cluster_dir(key) / "log" / "crashed", name)
                except OSError as exc:
                    log.warning("%s: could not keep the log of its dead JobManager: %s", key, exc)
                    kept = None
                ran = max(0.0, time.time() - float(record.get("started_at", 0.0) or time.time()))
                fault = exit_fault(code, ran, crash, kept)
        self._exits[dead.ident] = fault
        return fault

    def changed_clusters(self) -> list[ClusterKey]:
        """Clusters in which a recorded process died since the last call: cheap (a stat per record, which is
        parsed again only when it changed, and one poll(2) over the pidfds of every recorded process), so the
        controller calls it every loop turn and reconciles those clusters at once instead of at their next
        scheduled pass. Every second a JobManager goes unnoticed is replayed input."""
        files = self._record_files()
        if files is None:
            return []  # the listing failed half-way: the next turn lists again
        owners: dict[tuple[int, int], ClusterKey] = {}
        for key, record_file in files:
            for proc in self._recorded_processes(record_file) or ():
                owners[proc.ident] = key
        if owners.keys() != self._watched_procs:  # a record changed: watch its new processes, forget the old
            self._liveness.watch(owners)
            self._watched_procs = set(owners)
        if len(self._records_seen) > len(files):  # forget the parsed records of deleted clusters
            listed = {path for _, path in files}
            self._records_seen = {path: seen for path, seen in self._records_seen.items() if path in listed}
        changed = sorted({owners[proc] for proc in self._liveness.exited() if proc in owners}, key=str)
        if changed or not self._targets_current:  # a dead process serves no metrics: off the scrape list
            self._write_targets()
        return changed

    def _recorded_processes(self, record_file: str) -> list[ProcessRecord] | None:
        """The processes a cluster record lists (None: no record), parsed again only when the file changed (the
        controller asks twice a second for every cluster: plain ``os`` calls on a string path, pathlib costs
        more than the stat). A record that cannot be read this moment counts as what it said before."""
        cached = self._records_seen.get(record_file)
        try:
            info = os.stat(record_file)
            stamp = (info.st_ino, info.st_mtime_ns, info.st_size)  # records are replaced whole (a new inode)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            with open(record_file, encoding="utf-8") as text:
                processes = self._processes(json.load(text))
        except FileNotFoundError:
            self._records_seen.pop(record_file, None)
            return None
        except (OSError, ValueError):
            return cached[1] if cached is not None else None
        self._records_seen[record_file] = (stamp, processes)
        return processes

    def prepare(self, request: ClusterRequest) -> str | None:
        return self._prestart.prepare(request)

    def deploy(self, request: ClusterRequest) -> ClusterObservation:
        key = request.key
        promoted = self._prestart.promote(request)  # a ready prepared cluster takes the job; else it is stopped
        if promoted is not None:
            if self._read_record(key) is not None:
                self.delete(key, keep_prepared=True)
            self._write_record(key, {**promoted, "application": application_dict(request)})
            self._prestart.promoted(key)
            observed = self.observe(key)
            assert observed is not None
            return observed
        if self._read_record(key) is not None:
            # A deploy replaces whatever ran before; stopping first keeps "one cluster per resource".
            self.delete(key)
        root = self.cluster_dir(key)
        for sub in _GENERATED_DIRS:
            shutil.rmtree(root / sub, ignore_errors=True)
            (root / sub).mkdir(parents=True, exist_ok=True)
        link_jars(self.dist, root, request)
        link_plugins(self.dist, root, request)
        ha = zookeeper_ha(request.flink_config)
        if ha is None and ha_type(request.flink_config) == "zookeeper":
            raise RuntimeFailure(f"{key}: ZooKeeper high availability needs '{HA_QUORUM}', which is not set")
        jobmanagers = max(1, request.jobmanager_replicas) if ha is not None else 1
        ports = free_ports(2 * jobmanagers)
        jm_ports = [(ports[2 * i], ports[2 * i + 1]) for i in range(jobmanagers)]
        config = cluster_config(request, jm_ports[0][0], jm_ports[0][1], root)
        (root / "conf" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=True))
        write_log_config(self.dist, root, request)
        if ha is not None:
            self._clear_ha_metadata(key, ha, strict=True)

        started: list[ProcessRecord] = []
        try:
            for index, (rest, rpc) in enumerate(jm_ports):
                started.append(self.start(root, request, "jobmanager", index, rest_port=rest, rpc_port=rpc))
            for index in range(request.taskmanager_replicas):
                started.append(self.start(root, request, "taskmanager", index))
        except (OSError, RuntimeFailure) as exc:
            self.stop(started)
            if isinstance(exc, RuntimeFailure):
                raise
            raise RuntimeFailure(f"could not start Flink processes for {key}: {exc}") from exc
        record = {
            "generation": request.generation,
            "rest_url": f"http://127.0.0.1:{jm_ports[0][0]}",
            "rpc_port": jm_ports[0][1],
            "job_id": request.application.job_id if request.application else None,
            "started_at": time.time(),
            "jobmanager_replicas": jobmanagers,
            "ha": ha_dict(ha),
            "taskmanager_replicas": request.taskmanager_replicas,
            "working_dir": str(request.working_dir) if request.working_dir else None,
            "application": application_dict(request),
            "processes": [asdict(p) for p in started],
        }
        self._write_record(key, record)
        observation = self.observe(key)  # also starts watching the JobManagers of an HA cluster
        assert observation is not None
        return observation

    def delete(self, key: ClusterKey, *, keep_prepared: bool = False) -> float | None:
        with self._watch_lock:
            self._watched.discard(key)  # JobManagers stopped on purpose are not failovers
        if not keep_prepared:
            self._prestart.drop(key)
        record = self._read_record(key)
        if record is None:
            return None
        gone = self.stop(self._processes(record))
        ha = ha_from_record(record)
        if ha is not None:
            self._clear_ha_metadata(key, ha, strict=False)
        root = self._root(key, record)
        (self.cluster_dir(key) / RECORD).unlink(missing_ok=True)
        self._write_targets()
        for sub in _GENERATED_DIRS:
            # A batch job's spill files in tmp/ can take a while to remove: the cluster was released before.
            shutil.rmtree(root / sub, ignore_errors=True)
        return gone

    def replace_missing_processes(self, key: ClusterKey, environment: Mapping[str, str] | None = None) -> int:
        record = self._read_record(key)
        if record is None:
            return 0
        procs = self._processes(record)
        ha = ha_from_record(record)
        dead = [p for p in procs if not process_alive(p)]
        # A lone JobManager without HA is not restarted here: it would start its job from nothing. The
        # controller redeploys such a cluster from the latest checkpoint instead.
        restart = [p for p in dead if p.role == "taskmanager" or (p.role == "jobmanager" and ha is not None)]
        if not restart:
            return 0
        dead_jms = [p for p in restart if p.role == "jobmanager"]
        if ha is not None and dead_jms:
            self._release_once(key, ha, dead_jms)
            live_jms = [p for p in procs if p.role == "jobmanager" and process_alive(p)]
            settling = time.monotonic() - self._released_at.get(key, float("-inf")) < _STANDBY_DELAY_SECONDS
            if live_jms and (settling or self._election_under_way(ha, live_jms)):
                # A standby is taking over this very moment: a new JVM starting now would compete with its
                # recovery for CPU. The controller asks again on its next pass; start the standby then.
                log.info("%s: JobManager failover under way; new standbys start once it settled", key)
                restart = [p for p in restart if p.role != "jobmanager"]
                if not restart:
                    return 0
        root = self._root(key, record)
        request = replace(request_from_record(key, record), environment=dict(environment or {}))
        in_use = {port for p in procs if process_alive(p) for port in (p.rest_port, p.rpc_port) if port}
        replacements: dict[int, ProcessRecord] = {}
        try:
            for proc in restart:
                if proc.role == "jobmanager":
                    rest, rpc = free_ports(2, avoid=in_use)
                    in_use.update((rest, rpc))
                    new = self.start(root, request, "jobmanager", proc.index, rest_port=rest, rpc_port=rpc)
                else:
                    new = self.start(root, request, "taskmanager", proc.index)
                replacements[id(proc)] = new
        finally:
            if replacements:
                record["processes"] = [asdict(replacements.get(id(p), p)) for p in procs]
                self._write_record(key, record)
        return len(replacements)

    def scale_taskmanagers(
        self, key: ClusterKey, count: int, environment: Mapping[str, str] | None = None, *, stop: Sequence[int] = ()
    ) -> int:
        """Run ``count`` TaskManagers: start new ones or stop extras, those of ``stop`` first, then the
        highest-numbered. Returns the change."""
        record = self._read_record(key)
        if record is None:
            raise RuntimeFailure(f"cluster {key} does not exist: nothing to scale")
        procs = self._processes(record)
        tms = sorted((p for p in procs if p.role == "taskmanager"), key=lambda p: p.index)
        others = [p for p in procs if p.role != "taskmanager"]
        root = self._root(key, record)
        request = replace(request_from_record(key, record), environment=dict(environment or {}))
        if len(tms) < count:
            used = {p.index for p in tms}
            indexes = [i for i in range(count * 2) if i not in used][: count - len(tms)]
            try:
                for index in indexes:
                    tms.append(self.start(root, request, "taskmanager", index))
            finally:
                record["processes"] = [asdict(p) for p in [*others, *tms]]
                record["taskmanager_replicas"] = len(tms)
                self._write_record(key, record)
            return len(indexes)
        chosen = sorted(tms, key=lambda p: (p.index not in stop, -p.index))[: len(tms) - count]
        extra = [p for p in tms if p in chosen]
        if extra:
            record["processes"] = [asdict(p) for p in [*others, *(p for p in tms if p not in chosen)]]
            record["taskmanager_replicas"] = count
            self._write_record(key, record)  # recorded first: a stopped extra is never "replaced"
            self.stop(extra)
        return -len(extra)

    def log_files(self, key: ClusterKey, component: str | None = None) -> Sequence[Path]:
        record = self._read_record(key)
        log_root = (self._root(key, record) if record is not None else self.cluster_dir(key)) / "log"
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

    # ------------------------------------------------------------------ high availability

    def _leader(self, key: ClusterKey, ha: ZooKeeperHA, live_jms: Sequence[ProcessRecord]) -> ProcessRecord | None:
        """The leading JobManager when it is one of ``live_jms``; None while there is none (a leader that just
        died, an election under way) or when ZooKeeper cannot be read."""
        try:
            published = leader_rest_url(ha)
        except ZooKeeperError as exc:
            log.warning("%s: cannot read the leader from ZooKeeper: %s", key, exc)
            return None
        port = rest_port(published) if published else None
        return next((p for p in live_jms if port is not None and p.rest_port == port), None)

    def _election_under_way(self, ha: ZooKeeperHA, live_jms: Sequence[ProcessRecord]) -> bool:
        """True when no live JobManager has published itself as the leader (yet)."""
        try:
            published = leader_rest_url(ha)
        except ZooKeeperError:
            return False  # cannot tell: do not hold replacements back
        port = rest_port(published) if published else None
        return not any(port is not None and p.rest_port == port for p in live_jms)

    def _release_once(self, key: ClusterKey, ha: ZooKeeperHA, dead: Sequence[ProcessRecord]) -> None:
        """Release what each of the ``dead`` JobManagers holds in ZooKeeper, once per process (retried a
        little later when ZooKeeper did not answer)."""
        now = time.monotonic()
        with self._watch_lock:
            todo = [p for p in dead if self._released.get((p.pid, p.start_ticks), 0.0) <= now]
            for proc in todo:  # claimed: the watch thread and the controller never release the same one twice
                self._released[(proc.pid, proc.start_ticks)] = float("inf")
        if not todo:
            return
        log.info("%s: JobManager %s died; releasing its ZooKeeper nodes", key, ", ".join(p.label for p in todo))
        sessions = [s for proc in todo for s in zookeeper_sessions_in_logs(Path(proc.log_dir))]
        try:
            released = release_dead_sessions(ha, sessions) if sessions else []
        except ZooKeeperError as exc:
            # Not fatal: ZooKeeper expires the sessions by itself, a standby then takes over a little later.
            log.warning("%s: could not release the ZooKeeper nodes of dead JobManagers: %s", key, exc)
            with self._watch_lock:
                for proc in todo:
                    self._released[(proc.pid, proc.start_ticks)] = now + _RELEASE_RETRY_SECONDS
            return
        with self._watch_lock:
            self._released_at[key] = time.monotonic()
        if released:
            log.info("%s: released %d ZooKeeper node(s) of dead JobManager(s): %s", key, len(released), released)

    def _watch(self, key: ClusterKey) -> None:
        if not self._watch_enabled:
            return
        with self._watch_lock:
            self._watched.add(key)
            if self._watcher is None or not self._watcher.is_alive():
                self._watch_stop.clear()
                self._watcher = threading.Thread(target=self._watch_loop, name="jobmanager-watch", daemon=True)
                self._watcher.start()

    def _watch_loop(self) -> None:
        """Release a JobManager's ZooKeeper nodes the moment its process is seen dead.

        The one effect this runtime takes on its own, outside the controller's passes: it changes nothing that
        the controller decides about (no process starts or stops, no record changes); it only does at once
        what ZooKeeper would do by itself once the dead process's session times out, so that the standby
        takes over in a second instead of after the next controller pass or the session timeout. Standbys
        are still replaced by the controller through ``replace_missing_processes``.
        """
        while not self._watch_stop.wait(_WATCH_INTERVAL_SECONDS):
            with self._watch_lock:
                keys = list(self._watched)
            for key in keys:
                try:
                    record = self._read_record(key)
                    ha = ha_from_record(record) if record is not None else None
                    if record is None or ha is None:
                        with self._watch_lock:
                            self._watched.discard(key)
                        continue
                    jms = [p for p in self._processes(record) if p.role == "jobmanager"]
                    dead = [p for p in jms if not process_alive(p)]
                    with self._watch_lock:
                        deleting = key not in self._watched
                    if dead and len(dead) < len(jms) and not deleting:  # none alive: the controller redeploys
                        self._release_once(key, ha, dead)
                except Exception:  # the watch must outlive any one bad record or ZooKeeper hiccup
                    log.exception("%s: JobManager watch failed", key)

    def _clear_ha_metadata(self, key: ClusterKey, ha: ZooKeeperHA, *, strict: bool) -> None:
        try:
            remove_cluster_metadata(ha)
        except ZooKeeperError as exc:
            if strict:
                raise ZooKeeperError(
                    f"cannot clear the HA metadata of {key} in ZooKeeper at {ha.quorum} before starting it: {exc}"
                ) from exc
            log.warning("%s: could not remove its HA metadata from ZooKeeper at %s: %s", key, ha.quorum, exc)

    # ------------------------------------------------------------------ helpers

    def start(
        self, root: Path, request: ClusterRequest, role: str, index: int, *, rest_port: int = 0, rpc_port: int = 0
    ) -> ProcessRecord:
        log_dir = root / "log" / f"{role}-{index}"
        log_dir.mkdir(parents=True, exist_ok=True)
        app = request.application
        if role == "jobmanager":
            args = jobmanager_args(rest_port, rpc_port, app)
        else:
            # A session cluster's TaskManager is named after its process, so an idle one can be stopped by name.
            args = ("-D", f"taskmanager.resource-id=taskmanager-{index}") if app is None else ()
        # Every process on this machine serves its Prometheus reporters on ports of its own (reporters.py); first,
        # since an application entry point reads no option after the job's class and arguments.
        metrics_ports = self._reporter_ports.allocate(read_config(root / "conf"), f"{request.key} {role}-{index}")
        args = (*(w for n, p in sorted(metrics_ports.items()) for w in ("-D", f"metrics.reporter.{n}.port={p}")), *args)
        spec = ProcessSpec(role, app is not None, request.key.name, root, log_dir, args, request.environment)
        launch = self.launcher.command(spec)
        cwd = request.working_dir if request.working_dir and request.working_dir.is_dir() else root
        with contextlib.ExitStack() as files:
            out = files.enter_context(launch.stdout.open("ab"))
            err = files.enter_context(launch.stderr.open("ab")) if launch.stderr else subprocess.STDOUT
            proc = subprocess.Popen(
                launch.argv,
                cwd=cwd,
                env=launch.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self._children[proc.pid] = proc
        ticks = start_ticks(proc.pid)
        if ticks is None:
            raise RuntimeFailure(f"{role} process of {request.key} exited at once; see {launch.stdout}")
        self.launcher.started(launch, proc.pid, ticks)
        return ProcessRecord(
            role=role,
            index=index,
            pid=proc.pid,
            start_ticks=ticks,
            log_dir=str(log_dir),
            rest_port=rest_port,
            rpc_port=rpc_port,
            metrics_ports=metrics_ports,
        )

    def stop(self, procs: Sequence[ProcessRecord]) -> float:
        """Stop ``procs`` (SIGTERM, then SIGKILL after the grace); returns when (epoch seconds) the last one was
        seen gone. Looked at every 10 ms: what a cost report counts as the cluster's release."""
        alive = [p for p in procs if process_alive(p)]
        for proc in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        recording = any(self.launcher.records_classes(p.pid, p.start_ticks) for p in alive)
        deadline = time.monotonic() + _STOP_GRACE_SECONDS + (_RECORDING_GRACE_SECONDS if recording else 0.0)
        while alive and time.monotonic() < deadline:
            self._reap()
            alive = [p for p in alive if process_alive(p)]
            if alive:
                time.sleep(0.01)
        for proc in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        while alive:
            self._reap()
            alive = [p for p in alive if process_alive(p)]
            if alive:
                time.sleep(0.02)
        gone = time.time()
        # A child that just exited is a zombie until waited for; collect it now rather than on the next pass.
        for proc in procs:
            child = self._children.pop(proc.pid, None)
            if child is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=5)
        return gone

    def _reap(self) -> None:
        for pid, proc in list(self._children.items()):
            if proc.poll() is not None:
                self._exit_codes[pid] = proc.returncode
                del self._children[pid]
