"""A ``ClusterRuntime`` whose clusters are records in memory and whose jobs run in ``fakes.flink.FakeFlink``.

``deploy`` keeps the ``ClusterRequest`` (generation, rendered configuration including
``execution.state-recovery.path``, the application job id) in ``requests``, replaces whatever cluster the
resource had, gives each JobManager its own REST URL and starts the application job in the fake Flink from the
requested restore path. Like the local runtime, a lone JobManager (no high availability) is never restarted in
place by ``replace_missing_processes``: the controller must redeploy it from a checkpoint; with HA
(``high-availability.type`` set and ``jobManager.replicas`` > 1) a dead leader hands its jobs to a live standby,
and dead standbys are restarted.

Pre-started upgrades: ``prepare`` starts a session cluster (no job) next to the active one; it is ready
``prepare_delay`` seconds later (manual clock). ``deploy`` of the same generation promotes a ready one: it
submits the application job through the fake Flink REST API (upload, run with the job id and restore path,
idempotent) and makes it the resource's cluster; otherwise it stops the prepared cluster and starts a new one.

High-availability metadata (Flink's HA ConfigMaps on Kubernetes, its znodes on ZooKeeper) is modelled the way
Flink uses it: every job an HA cluster starts is registered in ``ha_metadata`` under the cluster's key, and an HA
cluster that starts under a key whose metadata still names a job that did not end recovers that job (same job
id, from its newest checkpoint) next to its own application job. The runtimes keep the port's promise that a
deployed or deleted cluster starts from and leaves no HA metadata, so that never happens here unless
``leave_ha_metadata()`` makes ``deploy`` and ``delete`` leave it behind (what the Kubernetes runtime once did).

Knobs: ``kill_jobmanager`` (the leader or a standby), ``kill_taskmanager``, ``fault_pods`` (what a Kubernetes
runtime reads from the pods: an image missing, a pod no node takes, a crashing JobManager), ``crash_at_start``
(the JobManager of every cluster deployed from then on exits before its job runs, as a local JobManager whose
entry class is missing does), ``refuse_deploys`` (every deploy fails with ``RuntimeFailure`` until
``allow_deploys``), ``refuse_prepare`` (``prepare`` answers with a reason), ``prepare_delay``,
``leave_ha_metadata``.

Called by: the controller (through the port), ``fakes.world`` and tests that look at what was deployed.

Invariant: one active and one prepared cluster per resource at most, and the fake Flink knows exactly the
clusters recorded here.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from fakes.clock import ManualClock
from fakes.flink import FakeFlink, FakeJob
from flinkops.api.validation import ha_type
from flinkops.errors import ClusterFault, RuntimeFailure
from flinkops.ports import ClusterKey, ClusterObservation, ClusterRequest

__all__ = ["RESTORE_KEY", "FakeCluster", "FakeProcess", "FakeRuntime"]

#: Where a cluster request names the state its job starts from (as ``controller.requests`` renders it).
RESTORE_KEY = "execution.state-recovery.path"


@dataclass
class FakeProcess:
    role: Literal["jobmanager", "taskmanager"]
    index: int
    pid: int
    url: str | None = None
    alive: bool = True


@dataclass
class FakeCluster:
    """One deployed cluster: the request it was deployed for and its processes."""

    key: ClusterKey
    request: ClusterRequest
    flink_id: str
    started_at: float
    ha: bool
    processes: list[FakeProcess] = field(default_factory=list)
    leader: FakeProcess | None = None
    fault: ClusterFault | None = None  # what its pods show (``fault_pods``)
    lost: bool = False

    def alive(self, role: str) -> list[FakeProcess]:
        return [p for p in self.processes if p.role == role and p.alive]

    def of(self, role: str) -> list[FakeProcess]:
        return [p for p in self.processes if p.role == role]


class FakeRuntime:
    """``ClusterRuntime`` in memory, backed by a ``FakeFlink``."""

    def __init__(self, flink: FakeFlink, clock: ManualClock) -> None:
        self.flink = flink
        self.clock = clock
        #: Every deploy request, in order.
        self.requests: list[ClusterRequest] = []
        #: When (virtual seconds) each of ``requests`` was deployed.
        self.deployed_at: list[float] = []
        #: Every cluster deleted (by key), in order, and when (virtual seconds) each delete returned.
        self.deleted: list[ClusterKey] = []
        self.released_at: list[float] = []
        #: Virtual seconds a delete takes (processes stopping gracefully) before it returns.
        self.stop_seconds = 0.0
        #: Which resource every fake Flink cluster ever started belonged to.
        self.owners: dict[str, ClusterKey] = {}
        self._clusters: dict[ClusterKey, FakeCluster] = {}
        self._prepared: dict[ClusterKey, FakeCluster] = {}
        #: Every prepare request, and every promotion (by key), in order.
        self.prepare_requests: list[ClusterRequest] = []
        self.promoted: list[ClusterKey] = []
        self.prepare_delay = 2.0
        self._prepare_refusal: str | None = None
        self._changed: set[ClusterKey] = set()
        self._refusal: str | None = None
        self._crash: dict[ClusterKey, tuple[ClusterFault, tuple[str, ...] | None, int | None]] = {}
        #: The jobs each HA cluster key's metadata names (see the module docstring).
        self.ha_metadata: dict[ClusterKey, list[FakeJob]] = {}
        self._keep_ha_metadata = False
        self._pids = itertools.count(1000)
        self._ports = itertools.count(20000)
        #: Whether session clusters grow and shrink with their jobs' needs (the local runtime's do).
        self.elastic_sessions = False

    # ------------------------------------------------------------------ knobs

    def refuse_deploys(self, reason: str = "could not start Flink processes (fake knob)") -> None:
        self._refusal = reason

    def allow_deploys(self) -> None:
        self._refusal = None

    def refuse_prepare(self, reason: str | None = "not enough free memory for a second cluster (fake knob)") -> None:
        self._prepare_refusal = reason

    def leave_ha_metadata(self) -> None:
        """From now on ``deploy`` and ``delete`` leave a cluster's HA metadata behind, as Flink leaves it when
        nobody removes it: the next HA cluster under the same key recovers the jobs it names."""
        self._keep_ha_metadata = True

    def kill_jobmanager(self, name: str, namespace: str = "default", *, which: str = "leader") -> None:
        """SIGKILL the leading JobManager (``which="leader"``) or a standby (``"standby"``)."""
        cluster = self._require(ClusterKey(namespace, name))
        if which == "leader":
            victim = cluster.leader
        else:
            victim = next((p for p in cluster.alive("jobmanager") if p is not cluster.leader), None)
        assert victim is not None and victim.alive, f"no live {which} JobManager in {cluster.key}"
        victim.alive = False
        self._changed.add(cluster.key)
        if victim is not cluster.leader:
            return
        standby = next(iter(cluster.alive("jobmanager")), None) if cluster.ha else None
        if standby is not None:
            assert standby.url is not None
            cluster.leader = standby
            self.flink.failover(cluster.flink_id, standby.url)
        else:
            cluster.leader = None
            self.flink.jobmanager_lost(cluster.flink_id)

    def fault_pods(
        self, name: str, fault: ClusterFault | None, namespace: str = "default", *, lost: bool = False
    ) -> None:
        """The current cluster's pods show ``fault`` (None: they are fine again) until it is replaced; a
        deploy starts clean. A JobManager's fault keeps its REST API from answering (the pod runs no Flink);
        ``lost``: the JobManager counts as dead, as a start-once JobManager (no HA) that crashed does."""
        cluster = self._require(ClusterKey(namespace, name))
        cluster.fault, cluster.lost = fault, lost and fault is not None

    def crash_at_start(
        self,
        name: str,
        fault: ClusterFault | None,
        namespace: str = "default",
        *,
        args: Sequence[str] | None = None,
        times: int | None = None,
    ) -> None:
        """From now on the JobManager of each cluster deployed for ``name`` (only those whose job has ``args``,
        when given; the next ``times`` of them, when given) exits at once with ``fault`` before its job runs:
        nothing answers and nobody restarts it. None: JobManagers start normally again."""
        key = ClusterKey(namespace, name)
        if fault is None:
            self._crash.pop(key, None)
        else:
            self._crash[key] = (fault, tuple(args) if args is not None else None, times)

    def _crashes(self, request: ClusterRequest) -> ClusterFault | None:
        armed = self._crash.get(request.key)
        if armed is None:
            return None
        fault, args, times = armed
        if args is not None and (request.application is None or tuple(request.application.args) != args):
            return None
        if times is not None:
            if times <= 0:
                return None
            self._crash[request.key] = (fault, args, times - 1)
        return fault

    def kill_taskmanager(self, name: str, namespace: str = "default", *, index: int = 0) -> None:
        cluster = self._require(ClusterKey(namespace, name))
        victim = next(p for p in cluster.of("taskmanager") if p.index == index and p.alive)
        victim.alive = False
        self._changed.add(cluster.key)
        self.flink.set_taskmanagers(cluster.flink_id, len(cluster.alive("taskmanager")))

    # ------------------------------------------------------------------ views

    def cluster(self, name: str, namespace: str = "default") -> FakeCluster | None:
        return self._clusters.get(ClusterKey(namespace, name))

    def prepared(self, name: str, namespace: str = "default") -> FakeCluster | None:
        return self._prepared.get(ClusterKey(namespace, name))

    def _require(self, key: ClusterKey) -> FakeCluster:
        cluster = self._clusters.get(key)
        if cluster is None:
            raise RuntimeFailure(f"cluster {key} does not exist")
        return cluster

    # ------------------------------------------------------------------ ClusterRuntime

    def _jobmanager(self, index: int) -> FakeProcess:
        return FakeProcess("jobmanager", index, next(self._pids), url=f"http://127.0.0.1:{next(self._ports)}")

    def _start_cluster(self, request: ClusterRequest, config: Mapping[str, str]) -> FakeCluster:
        ha = ha_type(request.flink_config) is not None
        jobmanagers = max(1, request.jobmanager_replicas) if ha else 1
        processes = [self._jobmanager(i) for i in range(jobmanagers)]
        processes += [FakeProcess("taskmanager", i, next(self._pids)) for i in range(request.taskmanager_replicas)]
        leader = processes[0]
        assert leader.url is not None
        flink_id = self.flink.start_cluster(leader.url, config, request.taskmanager_replicas)
        self.owners[flink_id] = request.key
        return FakeCluster(request.key, request, flink_id, self.clock.now(), ha, processes, leader)

    def _ready(self, cluster: FakeCluster) -> bool:
        up = all(p.alive for p in cluster.processes) and cluster.leader is not None
        return up and self.clock.now() - cluster.started_at >= self.prepare_delay

    def prepare(self, request: ClusterRequest) -> str | None:
        if self._prepare_refusal is not None:
            return f"{request.key}: {self._prepare_refusal}"
        existing = self._prepared.get(request.key)
        if existing is not None and existing.request.generation == request.generation:
            return None  # asked again after an interruption: it runs already
        self._drop_prepared(request.key)
        self.prepare_requests.append(request)
        config = {k: v for k, v in request.flink_config.items() if k != RESTORE_KEY}
        self._prepared[request.key] = self._start_cluster(request, config)
        return None

    def _drop_prepared(self, key: ClusterKey) -> None:
        cluster = self._prepared.pop(key, None)
        if cluster is not None:
            self.flink.stop_cluster(cluster.flink_id)

    def _promote(self, request: ClusterRequest) -> ClusterObservation | None:
        """Submit the application job to a ready prepared cluster of the request's generation and make it the
        resource's cluster; None when there is no such cluster (any other prepared one is stopped)."""
        cluster = self._prepared.get(request.key)
        app = request.application
        if cluster is None or app is None or cluster.request.generation != request.generation:
            self._drop_prepared(request.key)
            return None
        if not self._ready(cluster):
            self._drop_prepared(request.key)
            return None
        if request.key in self._clusters:
            self.delete(request.key, keep_prepared=True)
        assert cluster.leader is not None and cluster.leader.url is not None
        with self.flink(cluster.leader.url, 5.0) as rest:
            if not any(j.job_id == app.job_id for j in rest.list_jobs()):
                jar_id = rest.upload_jar(app.jar_paths[0] if app.jar_paths else f"{app.entry_class}.jar")
                rest.run_jar(
                    jar_id,
                    entry_class=app.entry_class,
                    program_args=list(app.args),
                    parallelism=int(request.flink_config.get("parallelism.default", "1") or "1"),
                    job_id=app.job_id,
                    savepoint_path=request.flink_config.get(RESTORE_KEY) or None,
                )
        self.flink.job(app.job_id).session = False  # the deployment's own job from here on
        if cluster.ha:
            self.ha_metadata.setdefault(request.key, []).append(self.flink.job(app.job_id))
        self.requests.append(request)
        self.deployed_at.append(self.clock.now())
        self.promoted.append(request.key)
        self._clusters[request.key] = replace(cluster, request=request)
        del self._prepared[request.key]
        return self.observe(request.key)

    def deploy(self, request: ClusterRequest) -> ClusterObservation:
        if self._refusal is not None:
            raise RuntimeFailure(f"{request.key}: {self._refusal}")
        promoted = self._promote(request)
        if promoted is not None:
            return promoted
        if request.key in self._clusters:
            self.delete(request.key)  # a deploy replaces whatever ran before
        elif not self._keep_ha_metadata:
            self.ha_metadata.pop(request.key, None)  # a new cluster starts from no HA metadata
        self.requests.append(request)
        self.deployed_at.append(self.clock.now())
        cluster = self._start_cluster(request, request.flink_config)
        self._clusters[request.key] = cluster
        app = request.application
        crash = self._crashes(request)
        if crash is not None:  # the JobManager exits before it runs the application: no job, nothing answers
            cluster.fault, cluster.lost = crash, True
            for process in cluster.of("jobmanager"):
                process.alive = False
            cluster.leader = None
            self._changed.add(request.key)
            observed = self.observe(request.key)
            assert observed is not None
            return observed
        if cluster.ha:
            self._recover_from_ha_metadata(cluster, app.job_id if app is not None else None)
        if app is not None:
            restore = request.flink_config.get(RESTORE_KEY) or None
            job = self.flink.start_application(cluster.flink_id, app.job_id, app.args, app.entry_class, restore)
            if cluster.ha:
                self.ha_metadata.setdefault(request.key, []).append(job)
        observed = self.observe(request.key)
        assert observed is not None
        return observed

    def _recover_from_ha_metadata(self, cluster: FakeCluster, own_job: str | None) -> None:
        """What Flink's HA services do when a JobManager starts: every job the metadata names that did not end
        is recovered with its job id, from its newest checkpoint still in storage."""
        recovered = {own_job}
        for old in list(self.ha_metadata.get(cluster.key, [])):
            if old.terminal or old.job_id in recovered:
                continue
            recovered.add(old.job_id)
            newest = next((path for _, path in reversed(old.completed) if self.flink.snapshots.stored(path)), None)
            job = self.flink.start_application(
                cluster.flink_id, old.job_id, old.args, old.entry_class, newest or old.restored_from
            )
            self.ha_metadata[cluster.key].append(job)

    def observe(self, key: ClusterKey) -> ClusterObservation | None:
        cluster = self._clusters.get(key)
        if cluster is None:
            return None
        leader = cluster.leader if cluster.leader is not None and cluster.leader.alive else None
        fault = cluster.fault
        if fault is not None and fault.component == "jobmanager":
            leader = None  # the JobManager pod runs no Flink: nothing answers
        prepared = self._prepared.get(key)
        return ClusterObservation(
            key=key,
            generation=cluster.request.generation,
            jobmanagers_alive=0 if cluster.lost else len(cluster.alive("jobmanager")),
            jobmanagers_expected=len(cluster.of("jobmanager")),
            taskmanagers_alive=len(cluster.alive("taskmanager")),
            taskmanagers_expected=len(cluster.of("taskmanager")),
            rest_url=leader.url if leader is not None else None,
            job_id=cluster.request.application.job_id if cluster.request.application else None,
            started_at=cluster.started_at,
            prepared_generation=prepared.request.generation if prepared is not None else None,
            prepared_ready=prepared is not None and self._ready(prepared),
            fault=fault,
        )

    def delete(self, key: ClusterKey, *, keep_prepared: bool = False) -> None:
        if not keep_prepared:
            self._drop_prepared(key)
        cluster = self._clusters.pop(key, None)
        if cluster is None:
            return
        self.deleted.append(key)
        self.flink.stop_cluster(cluster.flink_id)
        if self.stop_seconds:
            self.clock.advance(self.stop_seconds)
        self.released_at.append(self.clock.now())
        self._changed.discard(key)
        if not self._keep_ha_metadata:
            self.ha_metadata.pop(key, None)  # a deleted cluster leaves no HA metadata

    def scale_taskmanagers(
        self, key: ClusterKey, count: int, environment: Mapping[str, str] | None = None, *, stop: Sequence[int] = ()
    ) -> int:
        cluster = self._require(key)
        tms = sorted(cluster.of("taskmanager"), key=lambda p: p.index)
        if len(tms) < count:
            used = {p.index for p in tms}
            indexes = [i for i in range(count * 2) if i not in used][: count - len(tms)]
            cluster.processes += [FakeProcess("taskmanager", i, next(self._pids)) for i in indexes]
            change = len(indexes)
        else:
            # The fake Flink fills the lowest-numbered TaskManagers first, so the ones to ``stop`` (idle) are the
            # highest-numbered as well.
            extra = sorted(tms, key=lambda p: (p.index not in stop, -p.index))[: len(tms) - count]
            cluster.processes = [p for p in cluster.processes if p not in extra]
            change = -len(extra)
        self.flink.set_taskmanagers(cluster.flink_id, len(cluster.alive("taskmanager")), released=True)
        return change

    def changed_clusters(self) -> Sequence[ClusterKey]:
        changed = sorted(self._changed, key=str)
        self._changed.clear()
        return changed

    def replace_missing_processes(self, key: ClusterKey, environment: Mapping[str, str] | None = None) -> int:
        cluster = self._clusters.get(key)
        if cluster is None:
            return 0
        started = 0
        for index, process in enumerate(list(cluster.processes)):
            if process.alive or (process.role == "jobmanager" and not cluster.ha):
                continue  # a lone JobManager would start its job from nothing: the controller redeploys instead
            if process.role == "jobmanager":
                replacement = self._jobmanager(process.index)
            else:
                replacement = FakeProcess("taskmanager", process.index, next(self._pids))
            cluster.processes[index] = replacement
            started += 1
        if started:
            self.flink.set_taskmanagers(cluster.flink_id, len(cluster.alive("taskmanager")))
        return started

    def log_files(self, key: ClusterKey, component: str | None = None) -> Sequence[Path]:
        cluster = self._clusters.get(key)
        if cluster is None:
            return []
        roles = [component] if component else ["jobmanager", "taskmanager"]
        root = Path("/fake/logs") / key.namespace / key.name
        return [root / f"{p.role}-{p.index}.log" for p in cluster.processes if p.role in roles]
