"""A ``ClusterRuntime`` whose clusters are records in memory and whose jobs run in ``fakes.flink.FakeFlink``.

``deploy`` keeps the ``ClusterRequest`` (generation, rendered configuration including
``execution.state-recovery.path``, the application job id) in ``requests``, replaces whatever cluster the
resource had, gives each JobManager its own REST URL and starts the application job in the fake Flink from the
requested restore path. Like the local runtime, a lone JobManager (no high availability) is never restarted in
place by ``replace_missing_processes``: the controller must redeploy it from a checkpoint; with HA
(``high-availability.type`` set and ``jobManager.replicas`` > 1) a dead leader hands its jobs to a live standby,
and dead standbys are restarted.

Knobs: ``kill_jobmanager`` (the leader or a standby), ``kill_taskmanager``, ``refuse_deploys`` (every deploy
fails with ``RuntimeFailure`` until ``allow_deploys``).

Called by: the controller (through the port), ``fakes.world`` and tests that look at what was deployed.

Invariant: one cluster per resource at most, and the fake Flink knows exactly the clusters recorded here.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fakes.clock import ManualClock
from fakes.flink import FakeFlink
from flinkops.api.validation import ha_type
from flinkops.errors import RuntimeFailure
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
        #: Every cluster deleted (by key), in order.
        self.deleted: list[ClusterKey] = []
        #: Which resource every fake Flink cluster ever started belonged to.
        self.owners: dict[str, ClusterKey] = {}
        self._clusters: dict[ClusterKey, FakeCluster] = {}
        self._changed: set[ClusterKey] = set()
        self._refusal: str | None = None
        self._pids = itertools.count(1000)
        self._ports = itertools.count(20000)

    # ------------------------------------------------------------------ knobs

    def refuse_deploys(self, reason: str = "could not start Flink processes (fake knob)") -> None:
        self._refusal = reason

    def allow_deploys(self) -> None:
        self._refusal = None

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

    def kill_taskmanager(self, name: str, namespace: str = "default", *, index: int = 0) -> None:
        cluster = self._require(ClusterKey(namespace, name))
        victim = next(p for p in cluster.of("taskmanager") if p.index == index and p.alive)
        victim.alive = False
        self._changed.add(cluster.key)
        self.flink.set_taskmanagers(cluster.flink_id, len(cluster.alive("taskmanager")))

    # ------------------------------------------------------------------ views

    def cluster(self, name: str, namespace: str = "default") -> FakeCluster | None:
        return self._clusters.get(ClusterKey(namespace, name))

    def _require(self, key: ClusterKey) -> FakeCluster:
        cluster = self._clusters.get(key)
        if cluster is None:
            raise RuntimeFailure(f"cluster {key} does not exist")
        return cluster

    # ------------------------------------------------------------------ ClusterRuntime

    def _jobmanager(self, index: int) -> FakeProcess:
        return FakeProcess("jobmanager", index, next(self._pids), url=f"http://127.0.0.1:{next(self._ports)}")

    def deploy(self, request: ClusterRequest) -> ClusterObservation:
        if self._refusal is not None:
            raise RuntimeFailure(f"{request.key}: {self._refusal}")
        if request.key in self._clusters:
            self.delete(request.key)  # a deploy replaces whatever ran before
        self.requests.append(request)
        ha = ha_type(request.flink_config) is not None
        jobmanagers = max(1, request.jobmanager_replicas) if ha else 1
        processes = [self._jobmanager(i) for i in range(jobmanagers)]
        processes += [FakeProcess("taskmanager", i, next(self._pids)) for i in range(request.taskmanager_replicas)]
        leader = processes[0]
        assert leader.url is not None
        flink_id = self.flink.start_cluster(leader.url, request.flink_config, request.taskmanager_replicas)
        self.owners[flink_id] = request.key
        cluster = FakeCluster(request.key, request, flink_id, self.clock.now(), ha, processes, leader)
        self._clusters[request.key] = cluster
        app = request.application
        if app is not None:
            restore = request.flink_config.get(RESTORE_KEY) or None
            self.flink.start_application(flink_id, app.job_id, app.args, app.entry_class, restore)
        observed = self.observe(request.key)
        assert observed is not None
        return observed

    def observe(self, key: ClusterKey) -> ClusterObservation | None:
        cluster = self._clusters.get(key)
        if cluster is None:
            return None
        leader = cluster.leader if cluster.leader is not None and cluster.leader.alive else None
        return ClusterObservation(
            key=key,
            generation=cluster.request.generation,
            jobmanagers_alive=len(cluster.alive("jobmanager")),
            jobmanagers_expected=len(cluster.of("jobmanager")),
            taskmanagers_alive=len(cluster.alive("taskmanager")),
            taskmanagers_expected=len(cluster.of("taskmanager")),
            rest_url=leader.url if leader is not None else None,
            job_id=cluster.request.application.job_id if cluster.request.application else None,
            started_at=cluster.started_at,
        )

    def delete(self, key: ClusterKey) -> None:
        cluster = self._clusters.pop(key, None)
        if cluster is None:
            return
        self.deleted.append(key)
        self.flink.stop_cluster(cluster.flink_id)
        self._changed.discard(key)

    def scale_taskmanagers(self, key: ClusterKey, count: int, environment: Mapping[str, str] | None = None) -> int:
        cluster = self._require(key)
        tms = sorted(cluster.of("taskmanager"), key=lambda p: p.index)
        if len(tms) < count:
            used = {p.index for p in tms}
            indexes = [i for i in range(count * 2) if i not in used][: count - len(tms)]
            cluster.processes += [FakeProcess("taskmanager", i, next(self._pids)) for i in indexes]
            change = len(indexes)
        else:
            extra = tms[count:]
            cluster.processes = [p for p in cluster.processes if p not in extra]
            change = -len(extra)
        self.flink.set_taskmanagers(cluster.flink_id, len(cluster.alive("taskmanager")))
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
