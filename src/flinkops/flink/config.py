"""Render the Flink configuration of one cluster from a FlinkDeployment spec.

The user's ``flinkConfiguration`` always wins over a default; flinkops adds only what a cluster needs to run
and to keep state safe (checkpoint/savepoint directories under the flinkops home when none is given,
externalized checkpoints retained on cancel, a JobManager that stays up after its job ends so the outcome can
be read). Operator keys (``kubernetes.operator.*``, ``flinkops.*``, ``job.autoscaler.*``) are not passed to
Flink. Runtimes add addresses and ports on top.

Called by: the controller when it builds a ``ClusterRequest``. Pure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from flinkops.api.flinkconf import checkpoint_dir, is_operator_key, savepoint_dir
from flinkops.api.models import FlinkDeploymentSpec, Resource

__all__ = [
    "RenderInputs",
    "render_flink_config",
    "taskmanager_count",
    "to_flink_memory",
]


DEFAULT_JM_MEMORY = "1024m"
DEFAULT_TM_MEMORY = "1024m"


@dataclass(frozen=True)
class RenderInputs:
    name: str
    namespace: str
    default_state_uri: str  # e.g. file:///home/u/.flinkops/state/default/fraud-scoring
    python_executable: str
    java_opts: str = ""


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


def taskmanager_count(spec: FlinkDeploymentSpec, config: Mapping[str, str]) -> int:
    """TaskManagers to run: ``taskManager.replicas`` when set, else enough slots for the job's parallelism."""
    if spec.task_manager is not None and spec.task_manager.replicas is not None:
        return max(spec.task_manager.replicas, 0)
    slots = int(config.get("taskmanager.numberOfTaskSlots", "1") or "1")
    parallelism = spec.job.parallelism if spec.job is not None and spec.job.parallelism else 1
    return max(1, math.ceil(parallelism / max(slots, 1)))


def render_flink_config(spec: FlinkDeploymentSpec, inputs: RenderInputs) -> dict[str, str]:
    user = {k: v for k, v in spec.flink_configuration.items() if not is_operator_key(k)}
    config: dict[str, str] = {
        "jobmanager.memory.process.size": DEFAULT_JM_MEMORY,
        "taskmanager.memory.process.size": DEFAULT_TM_MEMORY,
        "taskmanager.numberOfTaskSlots": "1",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.shutdown-on-application-finish": "false",
        "execution.submit-failed-job-on-application-error": "true",
        "pipeline.name": inputs.name,
        "python.client.executable": inputs.python_executable,
        "python.executable": inputs.python_executable,
    }
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
    if checkpoint_dir(user) is None:
        config["execution.checkpointing.dir"] = f"{inputs.default_state_uri}/checkpoints"
    if savepoint_dir(user) is None:
        config["execution.checkpointing.savepoint-dir"] = f"{inputs.default_state_uri}/savepoints"
    config.update(user)
    user_opts = user.get("env.java.opts.all", "")
    if inputs.java_opts:
        config["env.java.opts.all"] = f"{inputs.java_opts} {user_opts}".strip()
    return config
