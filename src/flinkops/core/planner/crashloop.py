"""Crash loops are failures, not churn: a JobManager that exits on its own before its job ever ran.

The local runtime tells such an exit as a ``StartFailed`` fault (the exit code and the root cause from the
JobManager's log); nothing restarts that process but the controller. The run is recorded as ``CRASHED``, its
cluster (the TaskManagers left behind) is stopped, and the same spec is started again after a backoff that
doubles: 10 s, 20 s, 40 s by default (``flinkops.crash-loop.backoff``, capped at
``flinkops.crash-loop.max-backoff``, 5 min, the kubelet's CrashLoopBackOff schedule), three times
(``flinkops.crash-loop.retries``; 0: never). ``status.error`` holds the cause from the first failure on and
stays through the retries; each failure is a ``StartFailed`` Warning event that says how many times the start
was tried. After the budget, or at once when the runtime says no retry can end otherwise (``retryable`` False:
Flink could not build the program from the jar), the JobManager deployment is ERROR, so the lifecycle is FAILED
until the spec changes; with rollback on (``kubernetes.operator.deployment.rollback.enabled``) and a stable
spec to go back to, the deployment rolls back instead.

A session cluster (no job) is counted the same way: its runs are starts of its JobManager (``deploy_with_intent``
records them too), "running" once its REST API answered (``restore.cluster_ready``). A JobManager that dies after
its job ran (a session cluster's: after its REST API was ready) is recovered as before (``steady``); the
Kubernetes runtime's ``CrashLoop`` (the kubelet restarts the container itself) is ``steady``'s too.

Called by: ``steady.steady``. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flinkops.api.durations import duration_ms_or
from flinkops.api.flinkconf import CRASH_BACKOFF_KEY, CRASH_MAX_BACKOFF_KEY, CRASH_RETRIES_KEY
from flinkops.api.models import (
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    JobManagerDeploymentStatus,
    ReconciliationState,
)
from flinkops.core.planner.restore import current_run, deploy_with_intent
from flinkops.core.planner.rollback import can_roll_back, roll_back
from flinkops.core.planner.types import IDLE, Builder, Context, DeleteCluster, Observation, Plan, with_error
from flinkops.errors import ErrorReason

__all__ = [
    "CRASHED",
    "CrashPolicy",
    "after_start_failure",
    "crash_policy",
    "died_before_running",
    "on_start_failure",
    "start_failed",
    "tried",
]

#: The end state of a run whose JobManager exited before its job ran.
CRASHED = "CRASHED"
#: The reason recorded on the run of a start tried again.
RETRY = "retry"
_MAX_RETRIES = 10  # the deployment history keeps 20 runs: a series of tries must fit in it


@dataclass(frozen=True)
class CrashPolicy:
    retries: int = 3
    backoff_ms: int = 10_000
    max_backoff_ms: int = 300_000

    def delay_ms(self, tried: int) -> int:
        """How long to wait after the ``tried``-th failed start before the next one."""
        return min(self.max_backoff_ms, self.backoff_ms << max(0, tried - 1))


def crash_policy(config: Mapping[str, str]) -> CrashPolicy:
    """The retry budget and backoff of a deployment; a value that does not parse counts as its default
    (``api.validation`` refuses it at apply)."""
    default = CrashPolicy()
    try:
        retries = min(_MAX_RETRIES, max(0, int(config.get(CRASH_RETRIES_KEY, str(default.retries)).strip())))
    except ValueError:
        retries = default.retries
    return CrashPolicy(
        retries=retries,
        backoff_ms=duration_ms_or(config, CRASH_BACKOFF_KEY, default.backoff_ms),
        max_backoff_ms=duration_ms_or(config, CRASH_MAX_BACKOFF_KEY, default.max_backoff_ms),
    )


def died_before_running(status: FlinkDeploymentStatus, obs: Observation, reason: ErrorReason) -> bool:
    """The current run's cluster is there but its JobManager is down, with a JobManager fault of ``reason``,
    before its job ever ran."""
    fault, run = obs.fault, current_run(status)
    return (
        obs.cluster_exists
        and not obs.jobmanager_alive
        and fault is not None
        and fault.reason == reason
        and fault.component == "jobmanager"
        and run is not None
        and run.running_at is None
        and run.end_state is None
    )


def start_failed(status: FlinkDeploymentStatus, obs: Observation) -> bool:
    """The runtime saw the current run's JobManager exit on its own before its job ever ran."""
    return died_before_running(status, obs, ErrorReason.START_FAILED)


def tried(status: FlinkDeploymentStatus) -> int:
    """How many starts in a row died before their job ran: the trailing ``CRASHED`` runs, back to the start
    that began the series (a first deploy, an upgrade, a rollback...: any run that is not a retry)."""
    count = 0
    for run in reversed(status.deployment_history):
        if run.end_state != CRASHED:
            break
        count += 1
        if run.reason != RETRY:
            break
    return count


def _times(count: int) -> str:
    return f"{count} time" + ("" if count == 1 else "s")


def on_start_failure(b: Builder, spec: FlinkDeploymentSpec, obs: Observation, ctx: Context) -> Plan:
    """Record the failed start (``start_failed`` holds): the run CRASHED, the cause as the error, a Warning event
    with the count; then stop what is left of its cluster and wait for the retry, or give up (FAILED), or roll
    back when that is on and possible."""
    status: FlinkDeploymentStatus = b.status  # type: ignore[assignment]
    fault, run = obs.fault, current_run(status)
    assert fault is not None and run is not None
    policy = crash_policy(spec.flink_configuration)
    history = [*status.deployment_history[:-1], run.model_copy(update={"ended_at": ctx.now_ms, "end_state": CRASHED})]
    status = status.model_copy(update={"deployment_history": history})
    count = tried(status)
    final = not fault.retryable or count > policy.retries
    if final and can_roll_back(status, spec):
        b.status = status
        why = f"the new spec's JobManager died before its job ran, {_times(count)}: {fault.message}"
        return roll_back(b, obs, ctx, generation=status.observed_generation or 1, why=why)
    if final:
        why = (
            "not retried: the same program cannot start otherwise"
            if not fault.retryable
            else f"giving up ({CRASH_RETRIES_KEY}: {policy.retries})"
        )
        error = f"{fault.message}. Tried {_times(count)}; {why}. Fix the spec or what it names, and apply it again"
        b.event("Warning", ErrorReason.START_FAILED.value, f"JobManager died at start, tried {_times(count)}; {why}")
        jobmanager = JobManagerDeploymentStatus.ERROR
        b.summary = "the JobManager died at start: FAILED until the spec changes"
        b.requeue_after = 0.0
    else:
        delay = policy.delay_ms(count) / 1000
        error = f"{fault.message}. Tried {_times(count)} of {policy.retries + 1}; retrying in {delay:g} s"
        b.event(
            "Warning",
            ErrorReason.START_FAILED.value,
            f"JobManager died at start, tried {_times(count)}; retrying in {delay:g} s: {fault.message}",
        )
        jobmanager = JobManagerDeploymentStatus.MISSING
        b.summary = f"the JobManager died at start: retrying in {delay:g} s"
        b.requeue_after = delay
    b.status = with_error(status, ErrorReason.START_FAILED, error, job_manager_deployment_status=jobmanager)
    b.intent = b.status  # the CRASHED run is on record before its cluster goes
    b.actions.append(DeleteCluster(reason="its JobManager died before its job ran: stopping what is left"))
    return b.finish(now_ms=ctx.now_ms)


def after_start_failure(b: Builder, spec: FlinkDeploymentSpec, obs: Observation, ctx: Context) -> Plan | None:
    """The current run CRASHED and its cluster is gone: wait out the backoff and start the same spec again, or,
    when the deployment gave up (its JobManager deployment is ERROR), wait for a changed spec. None when the
    current run did not crash."""
    status: FlinkDeploymentStatus = b.status  # type: ignore[assignment]
    run = current_run(status)
    if run is None or run.end_state != CRASHED or obs.jobmanager_alive:
        return None
    if obs.cluster_exists:  # a controller that stopped between the record and the stop: stop it now
        b.intent = status
        b.actions.append(DeleteCluster(reason="its JobManager died before its job ran: stopping what is left"))
        b.summary = "stopping what is left of a cluster whose JobManager died at start"
        b.requeue_after = 0.0
        return b.finish(now_ms=ctx.now_ms)
    if status.job_manager_deployment_status == JobManagerDeploymentStatus.ERROR:
        b.summary = "the JobManager died at start: FAILED until the spec changes"
        b.requeue_after = IDLE
        return b.finish(now_ms=ctx.now_ms)
    policy = crash_policy(spec.flink_configuration)
    count = tried(status)
    due = (run.ended_at or ctx.now_ms) + policy.delay_ms(count)
    if ctx.now_ms < due:
        b.summary = f"the JobManager died at start: retrying in {(due - ctx.now_ms) / 1000:.1f} s"
        b.requeue_after = (due - ctx.now_ms) / 1000
        return b.finish(now_ms=ctx.now_ms)
    error = status.error or ""
    phase = status.reconciliation_status.state
    rolled_back = phase == ReconciliationState.ROLLED_BACK
    deploy_with_intent(
        b, spec, status.observed_generation or 1, ctx, restore=run.restored_from, recorded=None, reason=RETRY,
        intent_state=ReconciliationState.ROLLING_BACK if rolled_back else ReconciliationState.UPGRADING,
        final={"state": phase},
    )  # fmt: skip
    # The cause stays on record through the retries, until the deployment is stable or its spec changes.
    assert b.intent is not None
    b.intent = with_error(b.intent, ErrorReason.START_FAILED, error)
    b.status = with_error(b.status, ErrorReason.START_FAILED, error)
    b.event("Normal", "Submit", f"Starting again after the JobManager died at start (try {count + 1})")
    b.summary = f"retrying the start (try {count + 1} of {policy.retries + 1})"
    return b.finish(now_ms=ctx.now_ms)
