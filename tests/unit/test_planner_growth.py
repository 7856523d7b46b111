"""core.planner.growth: how many TaskManagers a growing session cluster runs, and which idle ones go. Pure."""

from __future__ import annotations

from flinkops.api.models import FlinkDeploymentSpec, FlinkDeploymentStatus
from flinkops.core.planner.growth import plan_growth
from flinkops.core.planner.types import Builder, Context, Observation, ResizeSessionCluster, TaskManagerUse


def spec(**conf: str) -> FlinkDeploymentSpec:
    config = {"taskmanager.numberOfTaskSlots": "2", **conf}
    return FlinkDeploymentSpec.model_validate({"flinkConfiguration": config, "taskManager": {"replicas": 1}})


def decide(needed: int, running: int, tms: tuple[TaskManagerUse, ...] = (), **conf: str) -> ResizeSessionCluster | None:
    b = Builder(status=FlinkDeploymentStatus())
    ctx = Context(now_ms=0, fresh_job_id="j", elastic_taskmanagers=True, session_slots_needed=needed)
    plan_growth(b, spec(**conf), Observation(taskmanagers_expected=running, taskmanager_slots=tms), ctx)
    resizes = [a for a in b.actions if isinstance(a, ResizeSessionCluster)]
    return resizes[0] if resizes else None


def test_grows_to_the_slots_needed_within_the_limit() -> None:
    assert decide(5, 1) == ResizeSessionCluster(taskmanagers=3, was=1)
    assert decide(40, 1) == ResizeSessionCluster(taskmanagers=9, was=1)  # default: 8 TaskManagers more
    assert decide(40, 1, **{"slotmanager.number-of-slots.max": "6"}) == ResizeSessionCluster(taskmanagers=3, was=1)
    assert decide(2, 1) is None and decide(0, 1) is None


def test_only_taskmanagers_idle_for_the_timeout_are_stopped_whichever_their_number() -> None:
    busy0, idle1 = TaskManagerUse(0, 2, 1, 0.0), TaskManagerUse(1, 2, 2, 31.0)
    assert decide(1, 2, (busy0, idle1)) == ResizeSessionCluster(taskmanagers=1, was=2, stop=(1,))
    # Flink put the remaining job on the TaskManager started last: the first one goes instead.
    idle0, busy1 = TaskManagerUse(0, 2, 2, 31.0), TaskManagerUse(1, 2, 1, 0.0)
    assert decide(1, 2, (idle0, busy1)) == ResizeSessionCluster(taskmanagers=1, was=2, stop=(0,))
    assert decide(1, 2, (TaskManagerUse(0, 2, 2, 10.0), busy1)) is None, "idle for less than 30 s"
    assert decide(1, 2, (TaskManagerUse(0, 2, 2, 10.0), busy1), **{"resourcemanager.taskmanager-timeout": "5 s"})
    assert decide(3, 2, (idle0, busy1)) is None, "still needed"
