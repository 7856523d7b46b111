"""Session clusters that grow: TaskManagers on demand for the session jobs, released when idle.

A standalone Flink session cluster has the TaskManagers it was started with; a session job needing more slots
than are free waits and then fails (``NoResourceAvailableException``). The reference operator's native mode
has Flink's own resource manager start TaskManager pods on demand and stop idle ones. On a runtime that can
do the same (the local one: ``Context.elastic_taskmanagers``), ``plan_growth`` decides it here, with Flink's
own keys:

* the slots the session jobs need (``Context.session_slots_needed``: the parallelism of every session job on
  this cluster that should run) are compared with the slots of the TaskManagers the cluster runs; when short,
  TaskManagers are started (the next pass, or at once when the jobs arrive);
* never more slots than ``slotmanager.number-of-slots.max`` (default: the starting slots and
  ``DEFAULT_EXTRA_TASKMANAGERS`` TaskManagers more), never fewer TaskManagers than the spec asks for
  (``taskManager.replicas``, else one);
* while the cluster runs more TaskManagers than the jobs need (and than that floor), the ones Flink has
  reported with every slot free for ``resourcemanager.taskmanager-timeout`` (30 s, Flink's default) are
  stopped, whichever they are (Flink puts slots where it likes: the first TaskManager may be the idle one).
  One that runs tasks is never stopped: that would fail its jobs over.

The same release serves an application job rescaled down in place (``plan_release``): the TaskManagers its new
parallelism no longer needs are stopped once Flink reports them idle for that timeout.

Called by: ``steady`` for a ready session cluster, and for a running application job. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from flinkops.api.durations import duration_ms_or
from flinkops.api.flinkconf import TASKMANAGER_IDLE_TIMEOUT_KEY, positive_int, task_slots, taskmanager_count
from flinkops.api.models import FlinkDeploymentSpec
from flinkops.core.planner.types import Builder, Context, Observation, ResizeSessionCluster

__all__ = [
    "DEFAULT_EXTRA_TASKMANAGERS",
    "GROWTH_POLL",
    "MAX_SLOTS_KEY",
    "plan_growth",
    "plan_release",
]

#: Flink's limit on the slots its active resource manager allocates (native Kubernetes, YARN).
MAX_SLOTS_KEY = "slotmanager.number-of-slots.max"
_DEFAULT_IDLE_MS = 30_000
#: Without a slot limit, a local session cluster grows by at most this many TaskManagers.
DEFAULT_EXTRA_TASKMANAGERS = 8
#: How soon a grown (or short) session cluster is looked at again.
GROWTH_POLL = 5.0


def _idle(obs: Observation, config: Mapping[str, str]) -> tuple[list[int], float]:
    """The TaskManagers Flink has reported with every slot free for ``resourcemanager.taskmanager-timeout``, the
    highest-numbered first, and that timeout in seconds."""
    timeout = duration_ms_or(config, TASKMANAGER_IDLE_TIMEOUT_KEY, _DEFAULT_IDLE_MS) / 1000
    idle = sorted(
        (tm.index for tm in obs.taskmanager_slots if tm.free == tm.slots and tm.idle_s >= timeout), reverse=True
    )
    return idle, timeout


def plan_release(b: Builder, spec: FlinkDeploymentSpec, obs: Observation, ctx: Context) -> bool:
    """An application job rescaled down in place leaves TaskManagers it no longer needs (stopping one that still
    ran tasks would have failed the job over); on a runtime that starts and stops them (the local one), the ones
    Flink reports idle for ``resourcemanager.taskmanager-timeout`` are stopped now. True while some wait to
    idle (look again soon)."""
    job = obs.job
    if not ctx.elastic_taskmanagers or spec.job is None or job is None:
        return False
    if job.state != "RUNNING" or not job.all_tasks_running:
        return False
    wanted, current = taskmanager_count(spec, spec.flink_configuration), obs.taskmanagers_expected
    if current <= wanted or not obs.taskmanager_slots:
        return False
    idle, timeout = _idle(obs, spec.flink_configuration)
    stop = tuple(idle[: current - wanted])
    if stop:
        b.actions.append(ResizeSessionCluster(taskmanagers=current - len(stop), was=current, stop=stop))
        b.event(
            "Normal",
            "TaskManagersReleased",
            f"The job needs {wanted} TaskManager(s) after rescaling: stopping {len(stop)} idle for {timeout:.0f}s "
            f"({TASKMANAGER_IDLE_TIMEOUT_KEY})",
        )
    return True


def plan_growth(b: Builder, spec: FlinkDeploymentSpec, obs: Observation, ctx: Context) -> bool:
    """Add a ``ResizeSessionCluster`` to ``b`` when the session jobs need more TaskManagers, or idle ones may go.
    True while the cluster should be looked at again soon (``GROWTH_POLL``): short of slots, or grown."""
    if not ctx.elastic_taskmanagers:
        return False
    config = spec.flink_configuration
    per_tm = task_slots(config)
    floor = max((spec.task_manager.replicas if spec.task_manager else None) or 1, 1)
    limit = positive_int(config, MAX_SLOTS_KEY)
    ceiling = max(floor, limit // per_tm) if limit is not None else floor + DEFAULT_EXTRA_TASKMANAGERS
    current = obs.taskmanagers_expected
    needed = ctx.session_slots_needed
    wanted = max(floor, math.ceil(needed / per_tm))
    if wanted > current and current < ceiling:
        target = min(wanted, ceiling)
        b.actions.append(ResizeSessionCluster(taskmanagers=target, was=current))
        b.event(
            "Normal",
            "TaskManagersAdded",
            f"Session jobs need {needed} slots, {current * per_tm} exist: starting {target - current} TaskManager(s)",
        )
    if wanted > ceiling and obs.taskmanagers_expected >= ceiling:
        b.event(
            "Warning",
            "SlotLimit",
            f"Session jobs need {needed} slots; {MAX_SLOTS_KEY} allows {ceiling * per_tm}: a job waits for slots",
        )
    if wanted < current:
        # TaskManagers idle (every slot free, per Flink) for long enough, the highest-numbered first: whichever
        # ones Flink left idle, not merely the last started (Flink places slots where it likes).
        idle, timeout = _idle(obs, config)
        stop = tuple(idle[: current - wanted])
        target = current - len(stop)
        if stop:
            b.actions.append(ResizeSessionCluster(taskmanagers=target, was=current, stop=stop))
            b.event(
                "Normal",
                "TaskManagersReleased",
                f"Stopping {current - target} TaskManager(s) idle for {timeout:.0f}s ({TASKMANAGER_IDLE_TIMEOUT_KEY})",
            )
    return wanted != current or current > floor
