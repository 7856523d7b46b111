"""Assertions on the two passes of a restart from the newest state (the planner's ``stop_first``), shared by the
pure planner tests: pass A stops the job and records why on its run; pass B starts the target from storage."""

from __future__ import annotations

from flinkops.api.models import FlinkDeploymentStatus
from flinkops.core.planner import DeployCluster, Plan


def assert_stops(plan: Plan, old_job: str, reason: str, now: int) -> None:
    """Pass A: the intent keeps the old job id and records on its run why it stops; nothing starts yet."""
    assert plan.intent is not None and isinstance(plan.intent, FlinkDeploymentStatus)
    assert plan.intent.job_status.job_id == old_job
    run = plan.intent.deployment_history[-1]
    assert (run.job_id, run.stopped_for, run.stop_requested_at) == (old_job, reason, now)
    assert not any(isinstance(a, DeployCluster) for a in plan.actions)


def assert_started(plan: Plan, old_job: str, job_id: str, reason: str, restore: str | None) -> DeployCluster:
    """Pass B: the target starts from ``restore`` under a fresh job id, written ahead; the history tells the
    stopped run from the new one."""
    [deploy] = plan.actions
    assert isinstance(deploy, DeployCluster)
    assert (deploy.job_id, deploy.restore_path) == (job_id, restore)
    assert plan.intent is not None and plan.intent.job_status.job_id == job_id
    assert plan.intent.job_status.upgrade_savepoint_path == restore
    assert isinstance(plan.status, FlinkDeploymentStatus)
    stopped, run = plan.status.deployment_history[-2:]
    assert (stopped.job_id, stopped.stopped_for) == (old_job, reason)
    assert (run.job_id, run.reason, run.restored_from, run.stopped_for) == (job_id, reason, restore, None)
    assert run.stopped_at == stopped.stop_requested_at
    return deploy
