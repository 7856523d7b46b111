"""Render the Flink configuration of one cluster from a FlinkDeployment spec.

The user's ``flinkConfiguration`` always wins over a default; flinkops adds only what a cluster needs to run
and to keep state safe (checkpoint/savepoint directories under the flinkops home when none is given,
externalized checkpoints retained on cancel, a JobManager that stays up after its job ends so the outcome can
be read). Operator keys (``kubernetes.operator.*``, ``flinkops.*``, ``job.autoscaler.*``) are not passed to
Flink. Runtimes add addresses and ports on top.

With ZooKeeper high availability it also fills in where HA metadata lives (``high-availability.storageDir``
under the deployment's state directory), a cluster id that is unique per namespace and name (flinkops owns it:
validation forbids setting it) and ZooKeeper client timeouts short enough for a fast failover; see
``ZOOKEEPER_HA_DEFAULTS`` for why each value is what it is. ``zookeeper_ha`` reads those settings back for the
runtimes that must find a cluster's metadata in ZooKeeper.

Kubernetes HA (``high-availability.type: kubernetes`` or its factory class, as the reference's examples set it)
is left out for clusters on this machine, which have no Kubernetes API: the controller recovers a dead
JobManager from the newest checkpoint, which is what one JobManager replica with Kubernetes HA gives.

``render_inputs`` decides, once for every caller, what a target adds to a rendering: locally a default state
directory under the flinkops home, this machine's Python and the distribution's Flink version; on Kubernetes
none of them. Either way the JVM options Java 17 needs (``flink.jvm``) go in for the Flink version that runs,
merged with the user's ``env.java.*`` options.

Called by: the controller when it builds a ``ClusterRequest``, and the service layer where it needs to know
where a deployment's state lives (describe, snapshots, restore). Pure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flinkops.api.flinkconf import (
    DEFAULT_WEB_REFRESH,
    TASK_SLOTS_KEY,
    WEB_REFRESH_KEY,
    checkpoint_dir,
    is_operator_key,
    savepoint_dir,
)
from flinkops.api.models import FlinkDeployment, FlinkDeploymentSpec, Resource
from flinkops.api.validation import HA_KEYS, ha_type, is_kubernetes_ha
from flinkops.flink.jvm import with_module_options
from flinkops.ports.provisioning import RenderInputs
from flinkops.settings import default_state_uri

__all__ = [
    "HA_CLUSTER_ID",
    "HA_QUORUM",
    "HA_STORAGE_DIR",
    "ZOOKEEPER_HA_DEFAULTS",
    "RenderInputs",
    "ZooKeeperHA",
    "ha_cluster_id",
    "render_flink_config",
    "render_inputs",
    "to_flink_memory",
    "zookeeper_ha",
]


DEFAULT_JM_MEMORY = "1024m"
DEFAULT_TM_MEMORY = "1024m"

HA_STORAGE_DIR = "high-availability.storageDir"
HA_CLUSTER_ID = "high-availability.cluster-id"
HA_QUORUM = "high-availability.zookeeper.quorum"
HA_ZOOKEEPER_ROOT = "high-availability.zookeeper.path.root"
_DEFAULT_ZOOKEEPER_ROOT = "/flink"  # Flink's default for high-availability.zookeeper.path.root

# Failover after a leader JobManager dies is bounded by how long its ZooKeeper session outlives it: the leader
# latch is an ephemeral node, and a standby takes over only when that node goes. Flink's default session
# timeout (60 s) makes that ~45-60 s. A short session makes the standby take over within seconds even when
# nobody helps (the local runtime also deletes a dead leader's latch as soon as it sees the process gone).
# A short session must not turn a brief stall into a lost leadership, so suspended connections are tolerated:
# leadership is given up only when the session is really lost, not on the first missed ping.
ZOOKEEPER_HA_DEFAULTS: Mapping[str, str] = {
    "high-availability.zookeeper.client.session-timeout": "6 s",
    "high-availability.zookeeper.client.connection-timeout": "5 s",
    "high-availability.zookeeper.client.retry-wait": "1 s",
    "high-availability.zookeeper.client.max-retry-attempts": "5",
    "high-availability.zookeeper.client.tolerate-suspended-connections": "true",
}


def render_inputs(
    deployment: FlinkDeployment, home: Path | None, python_executable: str = "", flink_version: str | None = None
) -> RenderInputs:
    """What a target adds to the rendering of ``deployment``: with ``home`` (clusters on this machine) state
    defaults to ``<home>/state/<namespace>/<name>`` and jobs run on ``python_executable`` and the distribution of
    ``flink_version``; without (Kubernetes) only what the spec configures is used, the image decides the rest and
    the spec's ``flinkVersion`` says which Flink runs."""
    meta = deployment.metadata
    if home is None:
        return RenderInputs(name=meta.name, namespace=meta.namespace, default_state_uri=None, python_executable="")
    return RenderInputs(
        name=meta.name,
        namespace=meta.namespace,
        default_state_uri=default_state_uri(home, meta.namespace, meta.name),
        python_executable=python_executable,
        flink_version=flink_version,
        local=True,
    )


def to_flink_memory(value: str) -> str:
    """Turn a Kubernetes quantity (``2Gi``, ``1500Mi``, ``2G``) or a Flink size (``2048m``) into a Flink size."""
    text = value.strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", text)
    if not match:
        return text
    number, unit = float(match.group(1)), match.group(2)
    binary = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
    decimal = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "": 1}
    if unit in binary:
        return f"{math.ceil(number * binary[unit] / (1 << 20))}m"
    if unit in decimal:
        return f"{math.ceil(number * decimal[unit] / (1 << 20))}m"
    return text  # already Flink syntax: 2048m, 2g, 1024mb


def _memory(resource: Resource | None, resources: Mapping[str, object] | None) -> str | None:
    if resources:
        for section in ("requests", "limits"):
            block = resources.get(section)
            if isinstance(block, Mapping) and block.get("memory"):
                return to_flink_memory(str(block["memory"]))
    if resource is not None and resource.memory:
        return to_flink_memory(resource.memory)
    return None


def render_flink_config(spec: FlinkDeploymentSpec, inputs: RenderInputs) -> dict[str, str]:
    user = {k: v for k, v in spec.flink_configuration.items() if not is_operator_key(k)}
    config: dict[str, str] = {
        "jobmanager.memory.process.size": DEFAULT_JM_MEMORY,
        "taskmanager.memory.process.size": DEFAULT_TM_MEMORY,
        TASK_SLOTS_KEY: "1",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.shutdown-on-application-finish": "false",
        # A TaskManager that asks before the JobManager's resource manager is up retries after this delay;
        # Flink's 10 s default often costs a whole deploy, recovery or upgrade ten seconds.
        "cluster.registration.error-delay": "1 s",
        WEB_REFRESH_KEY: DEFAULT_WEB_REFRESH,
        "execution.submit-failed-job-on-application-error": "true",
        "pipeline.name": inputs.name,
    }
    if inputs.python_executable:  # empty on Kubernetes: the image's own Python, if it has one, is Flink's default
        config["python.client.executable"] = inputs.python_executable
        config["python.executable"] = inputs.python_executable
    jm = spec.job_manager
    tm = spec.task_manager
    jm_memory = _memory(jm.resource if jm else None, jm.resources if jm else None)
    tm_memory = _memory(tm.resource if tm else None, tm.resources if tm else None)
    if jm_memory:
        config["jobmanager.memory.process.size"] = jm_memory
    if tm_memory:
        config["taskmanager.memory.process.size"] = tm_memory
    if spec.job is not None and spec.job.parallelism:
        config["parallelism.default"] = str(spec.job.parallelism)
    if spec.job is not None and spec.job.allow_non_restored_state is not None:
        config["execution.savepoint.ignore-unclaimed-state"] = str(spec.job.allow_non_restored_state).lower()
    default = inputs.default_state_uri
    if checkpoint_dir(user) is None and default:
        config["execution.checkpointing.dir"] = f"{default}/checkpoints"
    if savepoint_dir(user) is None and default:
        config["execution.checkpointing.savepoint-dir"] = f"{default}/savepoints"
    if ha_type(user) == "zookeeper":
        config.update(ZOOKEEPER_HA_DEFAULTS)
        config[HA_CLUSTER_ID] = ha_cluster_id(inputs.namespace, inputs.name)
        if not user.get(HA_STORAGE_DIR, "").strip() and default:
            config[HA_STORAGE_DIR] = f"{default}/ha"
    if inputs.local and is_kubernetes_ha(user):
        # Flink's Kubernetes HA needs the API server; here the controller restores from the newest checkpoint.
        user = {k: v for k, v in user.items() if k not in HA_KEYS}
        config["high-availability.type"] = "NONE"
    config.update(user)
    # The JVM flags Java 17 needs, where the Flink that runs reads them, before the user's own.
    return with_module_options(config, inputs.flink_version or spec.flink_version)


def ha_cluster_id(namespace: str, name: str) -> str:
    """The HA cluster id of one deployment: a ZooKeeper path below the root, unique per namespace and name.

    Namespaces and deployment names never contain '/', so no two deployments share one; the ``flinkops``
    level keeps them apart from clusters that other tools run on the same quorum (Flink's default is
    ``/default``).
    """
    return f"/flinkops/{namespace}/{name}"


@dataclass(frozen=True)
class ZooKeeperHA:
    """Where a cluster with ZooKeeper HA keeps its metadata: ``quorum`` and the cluster's znode ``path``."""

    quorum: str
    cluster_id: str
    path: str  # the high-availability.zookeeper.path.root and cluster-id joined, e.g. /flink/flinkops/ns/name
    storage_dir: str | None

    @property
    def latch_path(self) -> str:
        """The leader latch every JobManager of the cluster joins (Flink >= 1.15: one per process)."""
        return f"{self.path}/leader/latch"

    def connection_info_path(self, component: str) -> str:
        """Where the leader of ``component`` (rest_server, dispatcher, resource_manager) publishes itself."""
        return f"{self.path}/leader/{component}/connection_info"


def _znode_path(*parts: str) -> str:
    """Join ZooKeeper path parts the way Flink does: trimmed of slashes, empty parts dropped."""
    return "/" + "/".join(p.strip("/") for p in parts if p.strip("/"))


def zookeeper_ha(config: Mapping[str, str]) -> ZooKeeperHA | None:
    """The ZooKeeper HA settings of a rendered config, or None when the cluster does not use ZooKeeper HA."""
    if ha_type(config) != "zookeeper":
        return None
    quorum = config.get(HA_QUORUM, "").strip()
    if not quorum:
        return None
    root = config.get(HA_ZOOKEEPER_ROOT, "").strip() or _DEFAULT_ZOOKEEPER_ROOT
    cluster_id = config.get(HA_CLUSTER_ID, "").strip() or "/default"
    storage = config.get(HA_STORAGE_DIR, "").strip() or None
    return ZooKeeperHA(quorum=quorum, cluster_id=cluster_id, path=_znode_path(root, cluster_id), storage_dir=storage)
