"""Flink's Kubernetes HA leader lock, and handing it on at once when the JobManager holding it is provably dead.

**How Flink (2.x) keeps the lock.** Every JobManager process of a cluster contends for one ConfigMap,
``<cluster id>-cluster-config-map``, through the Kubernetes client's leader elector (a ``ConfigMapLock``). The
lock is the annotation :data:`LEADER_ANNOTATION`, a JSON record ``holderIdentity`` (a random id per JobManager
process), ``leaseDuration``, ``acquireTime``, ``renewTime`` (UTC, microseconds) and ``leaderTransitions``. The
leader rewrites it every ``high-availability.kubernetes.leader-election.retry-period`` (renewal); a contender
reads it at the same period, stretched by a random factor of up to 2.2, and may take it when the holder is empty
or ``renewTime`` plus its own lease duration (15 s by default) has passed. Each write (the leader's renewal, a
take-over, a graceful leader's own release: holder emptied, times set to now) is conditional on the
resourceVersion it read. Once holder, a JobManager publishes where each of its components answers in the same
ConfigMap's ``data``: keys ``org.apache.flink.k8s.leader.<component>`` (``dispatcher``, ``resourcemanager``,
``restserver``, ``job-<job id>``), values ``<leader session id>,<address>`` (``pekko.tcp://flink@10.0.0.7:6123/...``,
``http://10.0.0.7:8081``), again only while it holds the lock. With flinkops' rendering (``jobmanager.rpc.address``
is the pod IP under HA) the host of those addresses is the leader pod's IP.

**Why release.** A JobManager killed without warning (SIGKILL, OOM kill, node loss, pod force-deleted) never
releases the lock: the standby waits for the whole lease (15 s) before it may lead. The operator sees the
JobManager's container end, so it can do what the dead leader would have done on a clean stop: write the record
with an empty holder. The standby takes the lock at its next try (within 2.2 x the retry period).

**When it is safe** (:func:`decide`). Only a dead process's lock is ever released:

1. the published leader addresses all name one host ``X`` (several hosts: a new leader is half-way through
   publishing; none or a name: nothing to map);
2. ``X`` is the IP of a JobManager pod of this cluster one of whose JobManager instances is known to have ended
   (:func:`ended_instances`: its main container terminated, waiting after a termination, or restarted; or the pod
   gone from the API), at time ``E``;
3. the record was last renewed before ``E`` (rounded up to the whole second, the precision Kubernetes reports):
   a holder that renewed after the instance at ``X`` ended is alive, whoever it is. The renewal time comes from
   the JobManager's clock and ``E`` from the kubelet's on the same node. A new JobManager started in the same pod
   (same IP) renews only after its JVM started and won an election, seconds after ``E``;
4. the same ended instance was not released for before (a standby that has just taken the lock may not have
   published its own address yet, so the data can still name ``X`` for a moment);
5. the write carries the resourceVersion of the ConfigMap that was read: a holder that renewed in between wins
   (409), and nothing is written.

The one case these rules cannot tell apart: a standby that took the lock *before* ``X`` ended (``X`` was cut off
from the API server for a whole lease while alive) and had not published its address yet when the operator
looked. Releasing then costs that standby one more election (Flink restarts its contention), never two leaders:
the lock still has a single holder, written under a precondition.

Called by: ``runtime.KubernetesRuntime`` (its JobManager pod watch and ``observe``).
Invariant: the only write is to the annotation :data:`LEADER_ANNOTATION` of the cluster's leader ConfigMap, with
a resourceVersion precondition, and only under the rules above.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flinkops.api.plugins import MAIN_CONTAINER
from flinkops.errors import Conflict, FlinkopsError, NotFound
from flinkops.kube.client import KubeClient, object_path

__all__ = [
    "LEADER_ANNOTATION",
    "LEADER_KEY_PREFIX",
    "EndedInstance",
    "LeaderRecord",
    "Release",
    "Releaser",
    "decide",
    "ended_instances",
    "leader_config_map_name",
    "leader_hosts",
    "parse_record",
]

log = logging.getLogger("flinkops.runtime")

LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
LEADER_KEY_PREFIX = "org.apache.flink.k8s.leader."
#: How long a JobManager pod that left the API is remembered as a dead instance (far beyond any lease).
_GONE_MEMORY = 300.0
_HOST = re.compile(r"^[a-z][a-z0-9+.-]*://(?:[^@/]*@)?(\[[0-9a-fA-F:.]+\]|[^:/\[\]]+)")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # the leader elector's own format for acquireTime/renewTime

Obj = dict[str, Any]


def leader_config_map_name(cluster_id: str) -> str:
    """The ConfigMap that holds the lock and the leader addresses of the cluster (Flink >= 1.15)."""
    return f"{cluster_id}-cluster-config-map"


@dataclass(frozen=True)
class LeaderRecord:
    holder: str
    renew_time: float  # epoch seconds
    raw: Mapping[str, Any]


def _epoch(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()
    except ValueError:
        return None


def parse_record(config_map: Obj) -> LeaderRecord | None:
    """The lock record on ``config_map``; None when there is none or it cannot be read."""
    text = ((config_map.get("metadata") or {}).get("annotations") or {}).get(LEADER_ANNOTATION)
    if not isinstance(text, str):
        return None
    try:
        raw = json.loads(text)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    renew = _epoch(raw.get("renewTime"))
    if renew is None:
        return None
    return LeaderRecord(holder=str(raw.get("holderIdentity") or ""), renew_time=renew, raw=raw)


def _host(address: str) -> str | None:
    match = _HOST.match(address.strip())
    return match.group(1).strip("[]") if match else None


def leader_hosts(config_map: Obj) -> set[str]:
    """The hosts named by the leader addresses published in ``config_map`` (``<session id>,<address>`` values)."""
    hosts: set[str] = set()
    for key, value in (config_map.get("data") or {}).items():
        if not str(key).startswith(LEADER_KEY_PREFIX) or not isinstance(value, str) or "," not in value:
            continue
        host = _host(value.split(",", 1)[1])
        hosts.add(host if host is not None else "")
    return hosts


@dataclass(frozen=True)
class EndedInstance:
    """A JobManager process that ran at ``ip`` and ended at ``ended`` (epoch seconds, Kubernetes precision)."""

    ip: str
    ended: float
    pod_uid: str


def _main_status(pod: Obj) -> Obj:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == MAIN_CONTAINER:
            found: Obj = status
            return found
    return {}


def ended_instances(pod: Obj, *, gone: bool = False) -> list[EndedInstance]:
    """The JobManager instances of ``pod`` known to have ended: the main container terminated (now, or before its
    restart or its wait to restart); for a pod gone from the API (``gone``) the instance it ran then, ended at the
    latest when the pod was deleted."""
    meta = pod.get("metadata") or {}
    ip = str((pod.get("status") or {}).get("podIP") or "")
    if not ip:
        return []
    uid = str(meta.get("uid") or "")
    main = _main_status(pod)
    state, last = main.get("state") or {}, main.get("lastState") or {}
    ends = [_epoch((s.get("terminated") or {}).get("finishedAt")) for s in (state, last)]
    found = [EndedInstance(ip, end, uid) for end in ends if end is not None]
    if gone and "running" in state:
        deleted = _epoch(meta.get("deletionTimestamp"))
        if deleted is not None:
            found.append(EndedInstance(ip, deleted, uid))
    return found


@dataclass(frozen=True)
class Release:
    """What to write: the merge patch (with the precondition) and the instance it is for."""

    body: Obj
    instance: EndedInstance
    holder: str


def _released(raw: Mapping[str, Any], now: float) -> str:
    """The record a cleanly stopping leader writes: no holder, acquire and renew time now, the rest kept."""
    stamp = datetime.fromtimestamp(now, UTC).strftime(_TIME_FORMAT)
    return json.dumps({**raw, "holderIdentity": "", "acquireTime": stamp, "renewTime": stamp}, separators=(",", ":"))


def decide(
    config_map: Obj, ended: Iterable[EndedInstance], *, done: Iterable[EndedInstance] = (), now: float
) -> tuple[Release | None, str]:
    """Whether to release the lock on ``config_map`` (rules 1-5 of the module docstring), and why (or why not).

    ``ended``: the ended JobManager instances of the cluster; ``done``: those already released for."""
    record = parse_record(config_map)
    if record is None:
        return None, "no leader record"
    if not record.holder:
        return None, "the lock has no holder"
    hosts = leader_hosts(config_map)
    if len(hosts) != 1 or "" in hosts:
        return None, f"the published leader addresses do not name one host ({sorted(hosts)})"
    (host,) = hosts
    at_host = [i for i in ended if i.ip == host]
    if not at_host:
        return None, f"no ended JobManager at {host}"
    instance = max(at_host, key=lambda i: i.ended)
    bound = math.floor(instance.ended) + 1  # Kubernetes reports whole seconds: the instance ended before this
    if record.renew_time >= bound:
        return None, f"the holder renewed after the JobManager at {host} ended: it is alive"
    if instance in set(done):
        return None, f"already released for the JobManager at {host}"
    version = (config_map.get("metadata") or {}).get("resourceVersion")
    if not version:
        return None, "the ConfigMap has no resourceVersion"
    body = {"metadata": {"resourceVersion": version, "annotations": {LEADER_ANNOTATION: _released(record.raw, now)}}}
    return Release(body=body, instance=instance, holder=record.holder), "the holder is dead"


class Releaser:
    """The runtime's memory for releases: JobManager pods gone from the API (with their IP) and the instances
    already released for; :meth:`check` reads the cluster's leader ConfigMap and writes a release when due."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._gone: dict[tuple[str, str], list[tuple[float, EndedInstance]]] = {}
        self._done: set[EndedInstance] = set()
        self.released: list[tuple[str, str, EndedInstance]] = []  # (namespace, cluster, instance): for logs/tests

    def forget_pod(self, namespace: str, cluster: str, pod: Obj) -> None:
        """Remember the instances of a JobManager pod that left the API."""
        now = time.monotonic()
        with self._lock:
            kept = [(t, i) for t, i in self._gone.get((namespace, cluster), []) if now - t < _GONE_MEMORY]
            kept += [(now, i) for i in ended_instances(pod, gone=True)]
            self._gone[(namespace, cluster)] = kept

    def forget_cluster(self, namespace: str, cluster: str) -> None:
        with self._lock:
            self._gone.pop((namespace, cluster), None)

    def ended(self, namespace: str, cluster: str, pods: Iterable[Obj]) -> list[EndedInstance]:
        now = time.monotonic()
        with self._lock:
            gone = [i for t, i in self._gone.get((namespace, cluster), []) if now - t < _GONE_MEMORY]
        return gone + [i for pod in pods for i in ended_instances(pod)]

    def check(self, namespace: str, cluster: str, pods: Iterable[Obj]) -> Release | None:
        """Release the cluster's leader lock if its holder is provably dead; the release written, or None."""
        ended = self.ended(namespace, cluster, pods)
        if not ended:
            return None
        path = object_path("v1", "configmaps", namespace, leader_config_map_name(cluster))
        with self._lock:  # one decision at a time: the pod watch and a pass may both come here
            try:
                config_map = self.client.get(path)
            except FlinkopsError as exc:
                log.warning("%s/%s: could not read the HA leader ConfigMap: %s", namespace, cluster, exc)
                return None
            if config_map is None:
                return None  # no Kubernetes HA, or no leader yet
            release, why = decide(config_map, ended, done=self._done, now=time.time())
            if release is None:
                log.debug("%s/%s: leader lock left alone: %s", namespace, cluster, why)
                return None
            try:
                self.client.patch(path, release.body)
            except (Conflict, NotFound):
                log.info("%s/%s: the leader ConfigMap changed under the release: left alone", namespace, cluster)
                return None
            except FlinkopsError as exc:
                log.warning("%s/%s: could not release the dead leader's lock: %s", namespace, cluster, exc)
                return None
            self._done.add(release.instance)
            self.released.append((namespace, cluster, release.instance))
        log.info(
            "%s/%s: released the HA leader lock of the dead JobManager at %s (holder %s); the standby leads next",
            namespace,
            cluster,
            release.instance.ip,
            release.holder,
        )
        return release
