"""Resources of a Flink cluster on Kubernetes: the spec's cpu and memory as Flink settings, and back out of the
Flink settings as container requests and limits.

``resource`` (``cpu``, ``memory`` such as ``2048m``/``2g``/``2Gi``, ``ephemeralStorage``) or ``resources``
(Kubernetes requests/limits) become Flink settings, as the reference maps them, unless the user set the Flink
key in ``flinkConfiguration``: memory → ``*.memory.process.size`` (done by ``render_flink_config``), cpu →
``kubernetes.{jobmanager,taskmanager}.cpu``, limit/request ratios → ``kubernetes.*.{cpu,memory}.limit-factor``
(:func:`resource_settings`). The container requests and limits are then computed from the Flink settings
exactly as Flink computes them for its native pods (process size in Mi, cpu, times the limit factors:
:func:`container_resources`), so the container and the JVM inside never disagree. Other resource names
(``ephemeral-storage``, GPUs) pass through to the main container (:func:`extra_resources`).

Called by: the render context (``context.py``, the Flink settings) and the pod builders (``pods.py``, the
container resources). Invariants: pure; a quantity that cannot be read raises ``ValueError``, never guesses.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from typing import Any

from flinkops.api.flinkconf import task_slots
from flinkops.api.models import FlinkDeploymentSpec
from flinkops.api.quantities import FLINK_MEMORY_UNITS
from flinkops.flink.config import DEFAULT_JM_MEMORY, DEFAULT_TM_MEMORY, to_flink_memory
from flinkops.runtimes.kubernetes.names import Component

__all__ = [
    "container_resources",
    "extra_resources",
    "flink_memory_mib",
    "resource_settings",
]

# flinkops' default process sizes, for a configuration that did not come through render_flink_config.
_DEFAULT_MEMORY: Mapping[Component, str] = {"jobmanager": DEFAULT_JM_MEMORY, "taskmanager": DEFAULT_TM_MEMORY}


def flink_memory_mib(value: str) -> int:
    """A memory size in Flink's syntax (``2048m``, ``2 g``, ``1gb``; case-insensitive, bytes without a unit) or
    a Kubernetes quantity (``2Gi``) in whole MiB, rounded down as Flink does for the container request."""
    text = to_flink_memory(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", text)
    if not match or match.group(2).lower() not in FLINK_MEMORY_UNITS:
        raise ValueError(f"not a memory size: {value!r}")
    return int(float(match.group(1)) * FLINK_MEMORY_UNITS[match.group(2).lower()]) >> 20


def _cpu_cores(value: Any) -> float:
    """A Kubernetes cpu quantity (``2``, ``1.5``, ``500m``) in cores."""
    text = str(value).strip()
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    return float(text)


def _cpu_quantity(cores: float) -> str:
    millis = max(1, round(cores * 1000))
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def _factor(limit: float, request: float) -> str | None:
    return f"{limit / request:g}" if request > 0 and limit > 0 else None


def resource_settings(spec: FlinkDeploymentSpec, component: Component) -> dict[str, str]:
    """Flink settings from ``spec.<component>.resource`` / ``.resources`` (cpu and limit factors; memory is
    rendered by ``render_flink_config``)."""
    part = spec.job_manager if component == "jobmanager" else spec.task_manager
    if part is None:
        return {}
    settings: dict[str, str] = {}
    prefix = f"kubernetes.{component}"
    if part.resources:
        requests, limits = (part.resources.get(section) for section in ("requests", "limits"))
        requests = requests if isinstance(requests, Mapping) else {}
        limits = limits if isinstance(limits, Mapping) else {}
        cpu_request, cpu_limit = requests.get("cpu"), limits.get("cpu")
        if cpu_request is not None or cpu_limit is not None:
            settings[f"{prefix}.cpu"] = str(_cpu_cores(cpu_request if cpu_request is not None else cpu_limit))
        if cpu_request is not None and cpu_limit is not None:
            factor = _factor(_cpu_cores(cpu_limit), _cpu_cores(cpu_request))
            if factor:
                settings[f"{prefix}.cpu.limit-factor"] = factor
        mem_request, mem_limit = requests.get("memory"), limits.get("memory")
        if mem_request is not None and mem_limit is not None:
            factor = _factor(flink_memory_mib(str(mem_limit)), flink_memory_mib(str(mem_request)))
            if factor:
                settings[f"{prefix}.memory.limit-factor"] = factor
    elif part.resource is not None and part.resource.cpu is not None:
        settings[f"{prefix}.cpu"] = str(float(part.resource.cpu))
    return settings


def extra_resources(spec: FlinkDeploymentSpec, component: Component) -> dict[str, dict[str, Any]]:
    """The requests and limits of ``spec.<component>`` that are not cpu or memory (``resource.ephemeralStorage``,
    GPUs and the like in ``resources``), by section; they go onto the main container as they are."""
    part = spec.job_manager if component == "jobmanager" else spec.task_manager
    extra: dict[str, dict[str, Any]] = {}
    if part is not None and part.resources:
        for section in ("requests", "limits"):
            block = part.resources.get(section)
            if isinstance(block, Mapping):
                extra[section] = {k: v for k, v in block.items() if k not in ("cpu", "memory")}
    elif part is not None and part.resource is not None and part.resource.ephemeral_storage:
        storage = part.resource.ephemeral_storage
        extra = {"requests": {"ephemeral-storage": storage}, "limits": {"ephemeral-storage": storage}}
    return extra


def container_resources(config: Mapping[str, str], component: Component, template_resources: Any) -> dict[str, Any]:
    """Requests and limits as Flink computes them for its pods from the cluster configuration ``config``:
    process size (Mi) and cpu, times the limit factors; other resource names from the template are kept."""
    memory = flink_memory_mib(config.get(f"{component}.memory.process.size", "").strip() or _DEFAULT_MEMORY[component])
    cpu_text = config.get(f"kubernetes.{component}.cpu", "").strip()
    cpu = float(cpu_text) if cpu_text else -1.0
    if cpu <= 0:
        # Flink's defaults: one core for a JobManager, one per slot for a TaskManager.
        cpu = 1.0 if component == "jobmanager" else float(task_slots(config))
    cpu_factor = float(config.get(f"kubernetes.{component}.cpu.limit-factor", "1.0") or "1.0")
    memory_factor = float(config.get(f"kubernetes.{component}.memory.limit-factor", "1.0") or "1.0")
    resources = copy.deepcopy(template_resources) if isinstance(template_resources, dict) else {}
    requests = resources.setdefault("requests", {})
    limits = resources.setdefault("limits", {})
    requests.update({"cpu": _cpu_quantity(cpu), "memory": f"{memory}Mi"})
    limits.update({"cpu": _cpu_quantity(cpu * cpu_factor), "memory": f"{math.floor(memory * memory_factor)}Mi"})
    return resources
