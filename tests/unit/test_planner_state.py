"""The planner's stateful decisions: savepoint upgrades and their fallbacks, snapshot triggers, retention,
rollback, savepoint redeploy and "manual restore required". Pure: plans are computed from made-up
observations and replayed onto the status, the way the controller writes them. A restart from a job's newest
state takes two passes, stop and then start from what storage holds; ``after_stop`` plays the second."""

from __future__ import annotations

from dataclasses import replace

import pytest

from flinkops.api.models import (
    FlinkDeployment,
    FlinkDeploymentSpec,
    FlinkDeploymentStatus,
    JobSpec,
    JobState,
    LifecycleState,
    ObjectMeta,
    ReconciliationState,
    Savepoint,
    SavepointInfo,
    UpgradeMode,
)
from flinkops.core.planner import (
    Context,
    DeleteCluster,
    DeployCluster,
    DisposeSnapshots,
    JobObservation,
    Observation,
    Plan,
    ScaleInPlace,
    TriggerCheckpoint,
    TriggerObservation,
    TriggerSavepoint,
    headline,
    plan_deployment,
)
from support.stopfirst import assert_started, assert_stops

NOW = 1_000_000_000
JOB_A, JOB_B, JOB_C = "a" * 32, "b" * 32, "c" * 32
# These tests follow the upgrade order without a pre-started cluster (test_planner_prestart.py covers that one).
CONF = {"execution.checkpointing.interval": "10 s", "flinkops.upgrade.prestart": "false"}


def deployment(
    mode: UpgradeMode = UpgradeMode.SAVEPOINT, conf: dict[str, str] | None = None, **job: object
) -> FlinkDeployment:
    spec = FlinkDeploymentSpec(
        flink_configuration={**CONF, **(conf or {})},
        job=JobSpec(jar_uri="local:///job.jar", parallelism=1, upgrade_mode=mode, args=["v1"]).model_copy(update=job),
    )
    return FlinkDeployment(metadata=ObjectMeta(name="fraud", generation=1), spec=spec)


def ctx(job_id: str = JOB_A, now: int = NOW, trigger: str = "1" * 32) -> Context:
    return Context(now_ms=now, fresh_job_id=job_id, fresh_trigger_id=trigger, fresh_checkpoint_trigger_id="2" * 32)


def running(
    job_id: str, *, generation: int = 1, path: str | None = "file:/ck/x/chk-3", since: int = 0, **obs: object
) -> Observation:
    return Observation(
        cluster_exists=True,
        cluster_generation=generation,
        cluster_job_id=job_id,
        jobmanager_alive=True,
        rest_ready=True,
        rest_url="http://127.0.0.1:1",
        taskmanagers_alive=1,
        taskmanagers_expected=1,
        job=JobObservation(
            job_id=job_id,
            state="RUNNING",
            start_time=since,
            running_since=since,
            completed_checkpoints=3,
            latest_checkpoint_path=path,
        ),
        **obs,  # type: ignore[arg-type]
    )


def step(r: FlinkDeployment, plan: Plan) -> FlinkDeployment:
    return r.model_copy(update={"status": plan.status})


def edit(r: FlinkDeployment, **job: object) -> FlinkDeployment:
    assert r.spec.job is not None
    spec = r.spec.model_copy(update={"job": r.spec.job.model_copy(update=job)})
    return r.model_copy(
        update={
            "spec": spec,
            "metadata": r.metadata.model_copy(update={"generation": (r.metadata.generation or 1) + 1}),
        }
    )


def edit_conf(r: FlinkDeployment, **conf: str) -> FlinkDeployment:
    flat = {k.replace("_", "."): v for k, v in conf.items()}
    spec = r.spec.model_copy(update={"flink_configuration": {**r.spec.flink_configuration, **flat}})
    return r.model_copy(update={"spec": spec})


def stable(mode: UpgradeMode = UpgradeMode.SAVEPOINT, conf: dict[str, str] | None = None) -> FlinkDeployment:
    r = deployment(mode, conf)
    r = step(r, plan_deployment(r, Observation(), ctx()))
    r = step(r, plan_deployment(r, running(JOB_A), ctx()))
    assert r.status is not None and r.status.lifecycle_state == LifecycleState.STABLE
    return r


def after_stop(r: FlinkDeployment, stop: Plan, stored: str | None, *, job_id: str = JOB_B, now: int = NOW) -> Plan:
    """Pass B of a restart from the newest state: pass A (``stop``) wrote its intent and stopped the cluster;
    this pass observes the cluster gone and the stopped job's newest checkpoint in storage, and plans again."""
    assert [type(a) for a in stop.actions] == [DeleteCluster], "pass A only stops the old cluster"
    return plan_deployment(step(r, stop), Observation(latest_stored_checkpoint=stored), ctx(job_id=job_id, now=now))


def trigger_of(plan: Plan) -> TriggerSavepoint:
    [action] = [a for a in plan.actions if isinstance(a, TriggerSavepoint)]
    return action


# ------------------------------------------------------------------ savepoint upgrades


def test_savepoint_upgrade_records_the_trigger_before_stopping_the_job() -> None:
    r = edit(stable(), args=["v2"])
    plan = plan_deployment(r, running(JOB_A), ctx(job_id=JOB_B))
    action = trigger_of(plan)
    assert (action.job_id, action.stop, action.trigger_id) == (JOB_A, True, "1" * 32)
    assert plan.intent is not None and plan.intent.job_status.savepoint_info is not None
    assert plan.intent.job_status.savepoint_info.trigger_id == "1" * 32, "the trigger id is written before the call"
    assert plan.intent.job_status.savepoint_info.trigger_type == "UPGRADE"
    assert plan.intent.lifecycle_state == LifecycleState.UPGRADING
    assert not any(isinstance(a, DeleteCluster | DeployCluster) for a in plan.actions)


def test_savepoint_upgrade_waits_then_restores_the_new_job_from_the_savepoint() -> None:
    r = edit(stable(), args=["v2"])
    r = step(r, plan_deployment(r, running(JOB_A), ctx()))
    waiting = plan_deployment(r, running(JOB_A, savepoint_trigger=TriggerObservation("IN_PROGRESS")), ctx())
    assert waiting.actions == () and waiting.status.lifecycle_state == LifecycleState.UPGRADING

    done = TriggerObservation("COMPLETED", location="file:/sp/savepoint-aaaaaa-1")
    plan = plan_deployment(r, running(JOB_A, savepoint_trigger=done), ctx(job_id=JOB_B))
    assert [type(a) for a in plan.actions] == [DeleteCluster, DeployCluster]
    deploy = plan.actions[1]
    assert isinstance(deploy, DeployCluster)
    assert (deploy.restore_path, deploy.job_id, deploy.generation) == ("file:/sp/savepoint-aaaaaa-1", JOB_B, 2)
    assert deploy.spec.job is not None and deploy.spec.job.args == ["v2"]
    assert plan.intent is not None, "the savepoint path is recorded before the old cluster is deleted"
    assert plan.intent.job_status.upgrade_savepoint_path == "file:/sp/savepoint-aaaaaa-1"
    assert plan.intent.job_status.job_id == JOB_B
    info = plan.status.job_status.savepoint_info
    assert info is not None and info.trigger_id is None
    assert info.last_savepoint is not None and info.last_savepoint.trigger_type == "UPGRADE"
    assert [s.location for s in info.savepoint_history] == ["file:/sp/savepoint-aaaaaa-1"]
    assert isinstance(plan.status, FlinkDeploymentStatus)
    assert plan.status.deployment_history[-1].reason == "upgrade"
    assert plan.status.deployment_history[-1].restored_from == "file:/sp/savepoint-aaaaaa-1"


def test_a_trigger_flink_never_saw_is_sent_again_with_the_same_id() -> None:
    """The controller died between recording the trigger and sending it (or the JobManager forgot it)."""
    r = edit(stable(), args=["v2"])
    r = step(r, plan_deployment(r, running(JOB_A), ctx()))
    plan = plan_deployment(r, running(JOB_A, savepoint_trigger=TriggerObservation("UNKNOWN")), ctx(trigger="9" * 32))
    assert trigger_of(plan).trigger_id == "1" * 32


def test_a_savepoint_that_completed_while_nobody_watched_is_found_in_storage() -> None:
    r = edit(stable(), args=["v2"])
    r = step(r, plan_deployment(r, running(JOB_A), ctx()))
    gone = Observation(cluster_exists=True, cluster_generation=1, stored_savepoint="file:/sp/savepoint-aaaaaa-2")
    plan = plan_deployment(r, gone, ctx(job_id=JOB_B))
    deploy = next(a for a in plan.actions if isinstance(a, DeployCluster))
    assert deploy.restore_path == "file:/sp/savepoint-aaaaaa-2"


def test_a_failed_upgrade_savepoint_is_retried_with_a_new_trigger() -> None:
    r = edit(stable(), args=["v2"])
    r = step(r, plan_deployment(r, running(JOB_A), ctx()))
    failed = TriggerObservation("FAILED", failure="Checkpoint expired")
    plan = plan_deployment(r, running(JOB_A, savepoint_trigger=failed), ctx(trigger="7" * 32))
    assert trigger_of(plan).trigger_id == "7" * 32
    assert any(e.reason == "SavepointError" and "Checkpoint expired" in e.message for e in plan.events)
    assert not any(isinstance(a, DeleteCluster) for a in plan.actions), "the running job is never dropped"


def test_savepoint_mode_falls_back_to_last_state_when_the_job_is_not_running() -> None:
    r = edit(stable(), args=["v2"])
    failing = running(JOB_A)
    assert failing.job is not None
    failing = replace(failing, job=replace(failing.job, state="FAILED"))
    stop = plan_deployment(r, failing, ctx(job_id=JOB_B))
    assert not any(isinstance(a, TriggerSavepoint) for a in stop.actions)
    assert any(e.reason == "SavepointFallback" for e in stop.events)
    assert_stops(stop, JOB_A, "upgrade", now=NOW)
    # The last state is what storage holds once the job is stopped (chk-4; the statistics showed chk-3) ...
    plan = after_stop(r, stop, "file:/ck/x/chk-4")
    assert_started(plan, JOB_A, JOB_B, "upgrade", "file:/ck/x/chk-4")
    # ... and never empty: a job that checkpointed, with nothing left in storage, is not started at all.
    lost = after_stop(r, stop, None)
    assert lost.actions == ()
    assert lost.status.error is not None and lost.status.error.startswith("Manual restore required")


def test_suspend_with_savepoint_then_resume_from_it() -> None:
    r = edit(stable(), state=JobState.SUSPENDED)
    r = step(r, plan_deployment(r, running(JOB_A), ctx()))
    assert r.status is not None and r.status.lifecycle_state == LifecycleState.UPGRADING
    done = TriggerObservation("COMPLETED", location="file:/sp/savepoint-aaaaaa-3")
    plan = plan_deployment(r, running(JOB_A, savepoint_trigger=done), ctx(job_id=JOB_B))
    assert [type(a) for a in plan.actions] == [DeleteCluster]
    r = step(r, plan)
    assert r.status is not None and r.status.lifecycle_state == LifecycleState.SUSPENDED
    assert r.status.job_status.upgrade_savepoint_path == "file:/sp/savepoint-aaaaaa-3"
    recon = r.status.reconciliation_status
    assert recon.last_stable_spec == recon.last_reconciled_spec, "a suspended spec is stable"
    r = edit(r, state=JobState.RUNNING)
    plan = plan_deployment(r, Observation(), ctx(job_id=JOB_C))
    deploy = next(a for a in plan.actions if isinstance(a, DeployCluster))
    assert deploy.restore_path == "file:/sp/savepoint-aaaaaa-3"
    assert plan.intent is not None and plan.intent.lifecycle_state == LifecycleState.UPGRADING, "resume, not rollback"
    assert plan.status.lifecycle_state == LifecycleState.DEPLOYED


# ------------------------------------------------------------------ manual and periodic snapshots


def test_savepoint_nonce_triggers_a_manual_savepoint_without_restarting() -> None:
    r = edit(stable(), savepoint_trigger_nonce=7)
    plan = plan_deployment(r, running(JOB_A), ctx())
    action = trigger_of(plan)
    assert action.stop is False
    assert plan.intent is not None and plan.intent.job_status.savepoint_info is not None
    assert plan.intent.job_status.savepoint_info.trigger_type == "MANUAL"
    assert not any(isinstance(a, DeleteCluster | DeployCluster) for a in plan.actions)
    r = step(r, plan)
    done = TriggerObservation("COMPLETED", location="file:/sp/savepoint-aaaaaa-4")
    r = step(r, plan_deployment(r, running(JOB_A, savepoint_trigger=done), ctx()))
    assert r.status is not None and r.status.job_status.savepoint_info is not None
    last = r.status.job_status.savepoint_info.last_savepoint
    assert last is not None and (last.trigger_nonce, last.trigger_type) == (7, "MANUAL")
    again = plan_deployment(r, running(JOB_A), ctx())
    assert not any(isinstance(a, TriggerSavepoint) for a in again.actions), "a nonce is served once"


def test_savepoint_nonce_while_the_job_does_not_run_is_reported() -> None:
    r = edit(stable(), savepoint_trigger_nonce=8)
    failed = running(JOB_A)
    assert failed.job is not None
    plan = plan_deployment(r, replace(failed, job=replace(failed.job, state="FAILED")), ctx())
    assert not any(isinstance(a, TriggerSavepoint) for a in plan.actions)
    assert any(e.reason == "SavepointError" for e in plan.events)


def test_checkpoint_nonce_triggers_a_checkpoint() -> None:
    r = edit(stable(), checkpoint_trigger_nonce=3)
    plan = plan_deployment(r, running(JOB_A), ctx())
    [action] = [a for a in plan.actions if isinstance(a, TriggerCheckpoint)]
    assert action.job_id == JOB_A
    r = step(r, plan)
    r = step(r, plan_deployment(r, running(JOB_A, checkpoint_trigger=TriggerObservation("COMPLETED", "12")), ctx()))
    assert r.status is not None and r.status.job_status.checkpoint_info is not None
    last = r.status.job_status.checkpoint_info.last_checkpoint
    assert last is not None and last.trigger_nonce == 3


def periodic(interval: str) -> FlinkDeployment:
    r = stable()
    spec = r.spec.model_copy(
        update={
            "flink_configuration": {
                **r.spec.flink_configuration,
                "kubernetes.operator.periodic.savepoint.interval": interval,
            }
        }
    )
    return r.model_copy(update={"spec": spec})


def test_periodic_savepoints_follow_the_interval() -> None:
    r = periodic("60 s")
    obs = running(JOB_A, since=NOW)
    assert not any(isinstance(a, TriggerSavepoint) for a in plan_deployment(r, obs, ctx(now=NOW + 30_000)).actions)
    plan = plan_deployment(r, obs, ctx(now=NOW + 61_000))
    assert trigger_of(plan).stop is False
    r = step(r, plan)
    done = TriggerObservation("COMPLETED", location="file:/sp/savepoint-aaaaaa-5")
    r = step(r, plan_deployment(r, running(JOB_A, since=NOW, savepoint_trigger=done), ctx(now=NOW + 62_000)))
    assert r.status is not None and r.status.job_status.savepoint_info is not None
    last = r.status.job_status.savepoint_info.last_savepoint
    assert last is not None and last.trigger_type == "PERIODIC"
    assert not any(isinstance(a, TriggerSavepoint) for a in plan_deployment(r, obs, ctx(now=NOW + 100_000)).actions)
    assert any(isinstance(a, TriggerSavepoint) for a in plan_deployment(r, obs, ctx(now=NOW + 122_000)).actions)


def test_periodic_savepoints_on_a_cron_schedule() -> None:
    r = periodic("0 0 * * * ?")  # on the hour; NOW is 13:46:40 UTC
    obs = running(JOB_A, since=NOW)
    assert not any(isinstance(a, TriggerSavepoint) for a in plan_deployment(r, obs, ctx(now=NOW + 700_000)).actions)
    assert any(isinstance(a, TriggerSavepoint) for a in plan_deployment(r, obs, ctx(now=NOW + 801_000)).actions)


def with_history(r: FlinkDeployment, n: int, **extra: object) -> FlinkDeployment:
    assert r.status is not None
    history = [Savepoint(time_stamp=NOW - (n - i) * 1000, location=f"file:/sp/savepoint-aaaaaa-{i}") for i in range(n)]
    info = SavepointInfo(last_savepoint=history[-1], savepoint_history=history)
    job = r.status.job_status.model_copy(update={"savepoint_info": info, **extra})
    return r.model_copy(update={"status": r.status.model_copy(update={"job_status": job})})


def test_retention_disposes_beyond_max_count_and_keeps_what_a_restore_needs() -> None:
    conf = {
        "kubernetes.operator.savepoint.history.max.count": "2",
        "kubernetes.operator.savepoint.dispose-on-delete": "true",
    }
    r = with_history(stable(conf=conf), 5, upgrade_savepoint_path="file:/sp/savepoint-aaaaaa-0")
    plan = plan_deployment(r, running(JOB_A), ctx())
    [dispose] = [a for a in plan.actions if isinstance(a, DisposeSnapshots)]
    assert set(dispose.paths) == {"file:/sp/savepoint-aaaaaa-1", "file:/sp/savepoint-aaaaaa-2"}
    assert plan.intent is not None, "the trimmed history is recorded before data is deleted"
    info = plan.intent.job_status.savepoint_info
    assert info is not None
    kept = {s.location for s in info.savepoint_history}
    assert "file:/sp/savepoint-aaaaaa-0" in kept, "the savepoint a pending restore depends on stays"
    assert "file:/sp/savepoint-aaaaaa-4" in kept, "the newest stays"


def test_retention_runs_while_the_job_is_suspended() -> None:
    conf = {
        "kubernetes.operator.savepoint.history.max.count": "1",
        "kubernetes.operator.savepoint.dispose-on-delete": "true",
    }
    r = edit(stable(UpgradeMode.LAST_STATE, conf=conf), state=JobState.SUSPENDED)
    stop = plan_deployment(r, running(JOB_A), ctx())
    r = step(r, after_stop(r, stop, "file:/ck/x/chk-4"))
    assert r.status is not None and r.status.lifecycle_state == LifecycleState.SUSPENDED
    r = with_history(r, 3)
    plan = plan_deployment(r, Observation(), ctx())
    assert any(isinstance(a, DisposeSnapshots) for a in plan.actions)


# ------------------------------------------------------------------ rollback


ROLLBACK = {
    "kubernetes.operator.deployment.rollback.enabled": "true",
    "kubernetes.operator.deployment.readiness.timeout": "60 s",
}


def broken_upgrade() -> FlinkDeployment:
    r = edit(stable(UpgradeMode.LAST_STATE, conf=ROLLBACK), args=["v3"])
    stop = plan_deployment(r, running(JOB_A), ctx(job_id=JOB_B))
    assert_stops(stop, JOB_A, "upgrade", now=NOW)
    r = step(r, after_stop(r, stop, "file:/ck/x/chk-4"))
    assert r.status is not None and r.status.job_status.job_id == JOB_B
    return r


def test_a_failed_new_spec_rolls_back_at_once_with_its_last_state() -> None:
    r = broken_upgrade()
    failed = running(JOB_B, generation=2, path="file:/ck/x/chk-9")
    assert failed.job is not None
    failed = replace(failed, job=replace(failed.job, state="FAILED", error="boom"))
    stop = plan_deployment(r, failed, ctx(job_id=JOB_C, now=NOW + 5_000))
    assert stop.intent is not None and stop.intent.lifecycle_state == LifecycleState.ROLLING_BACK
    assert any(e.reason == "Rollback" for e in stop.events)
    assert_stops(stop, JOB_B, "rollback", now=NOW + 5_000)
    assert stop.status.lifecycle_state == LifecycleState.ROLLING_BACK
    # The failed job's state is read from storage once it is stopped (chk-10; its statistics showed chk-9).
    plan = after_stop(r, stop, "file:/ck/x/chk-10", job_id=JOB_C, now=NOW + 6_000)
    assert plan.intent is not None and plan.intent.lifecycle_state == LifecycleState.ROLLING_BACK
    deploy = assert_started(plan, JOB_B, JOB_C, "rollback", "file:/ck/x/chk-10")
    assert deploy.spec.job is not None and deploy.spec.job.args == ["v1"]
    assert plan.status.lifecycle_state == LifecycleState.ROLLED_BACK
    r = step(step(r, stop), plan)
    later = plan_deployment(r, running(JOB_C, generation=2), ctx(now=NOW + 10_000))
    assert not any(isinstance(a, DeployCluster) for a in later.actions), "no upgrade back to the broken spec"
    assert later.status.lifecycle_state == LifecycleState.ROLLED_BACK


def test_a_spec_that_stays_unstable_rolls_back_after_the_readiness_timeout() -> None:
    r = broken_upgrade()
    restarting = running(JOB_B, generation=2)
    assert restarting.job is not None
    restarting = replace(restarting, job=replace(restarting.job, state="RESTARTING"))
    assert not any(isinstance(a, DeployCluster) for a in plan_deployment(r, restarting, ctx(now=NOW + 30_000)).actions)
    plan = plan_deployment(r, restarting, ctx(job_id=JOB_C, now=NOW + 61_000))
    assert any(e.reason == "Rollback" for e in plan.events)
    assert_stops(plan, JOB_B, "rollback", now=NOW + 61_000)


def test_no_rollback_unless_enabled() -> None:
    r = edit(stable(UpgradeMode.LAST_STATE), args=["v3"])
    r = step(r, after_stop(r, plan_deployment(r, running(JOB_A), ctx(job_id=JOB_B)), "file:/ck/x/chk-4"))
    failed = running(JOB_B, generation=2)
    assert failed.job is not None
    plan = plan_deployment(r, replace(failed, job=replace(failed.job, state="FAILED")), ctx(now=NOW + 600_000))
    assert not any(isinstance(a, DeployCluster) for a in plan.actions)
    assert plan.status.lifecycle_state == LifecycleState.FAILED


def test_applying_the_last_stable_spec_again_is_a_rollback() -> None:
    r = broken_upgrade()
    back = edit(r, args=["v1"])
    stop = plan_deployment(back, running(JOB_B, generation=2), ctx(job_id=JOB_C))
    assert stop.intent is not None and stop.intent.lifecycle_state == LifecycleState.ROLLING_BACK
    assert_stops(stop, JOB_B, "rollback", now=NOW)
    plan = after_stop(back, stop, "file:/ck/x/chk-5", job_id=JOB_C)
    deploy = assert_started(plan, JOB_B, JOB_C, "rollback", "file:/ck/x/chk-5")
    assert deploy.spec.job is not None and deploy.spec.job.args == ["v1"]
    assert plan.status.lifecycle_state == LifecycleState.ROLLED_BACK


def test_a_controller_crash_during_rollback_adopts_the_rolled_back_cluster() -> None:
    r = broken_upgrade()
    failed = running(JOB_B, generation=2)
    assert failed.job is not None
    failed = replace(failed, job=replace(failed.job, state="FAILED"))
    stop = plan_deployment(r, failed, ctx(job_id=JOB_C))
    assert stop.intent is not None
    # Died after writing the stop intent, before the old cluster was gone: the next pass stops it again.
    crashed = r.model_copy(update={"status": stop.intent})
    again = plan_deployment(crashed, failed, ctx(job_id="d" * 32))
    assert [type(a) for a in again.actions] == [DeleteCluster]
    assert again.status.lifecycle_state == LifecycleState.ROLLING_BACK
    # Died after writing pass B's intent (the new job id and restore point).
    start = after_stop(r, stop, "file:/ck/x/chk-5", job_id=JOB_C)
    assert start.intent is not None
    crashed = r.model_copy(update={"status": start.intent})
    adopted = plan_deployment(crashed, running(JOB_C, generation=2), ctx(job_id="d" * 32))
    assert adopted.actions == ()
    assert adopted.status.lifecycle_state == LifecycleState.ROLLED_BACK
    redo = plan_deployment(crashed, Observation(), ctx(job_id="d" * 32))
    deploy = next(a for a in redo.actions if isinstance(a, DeployCluster))
    assert deploy.job_id == JOB_C and deploy.spec.job is not None and deploy.spec.job.args == ["v1"]
    assert deploy.restore_path == "file:/ck/x/chk-5", "the restore point chosen after the stop is kept"


# ------------------------------------------------------------------ redeploy and manual restore


def test_savepoint_redeploy_starts_from_the_given_savepoint_and_is_stable_at_once() -> None:
    r = edit(stable(UpgradeMode.LAST_STATE), initial_savepoint_path="file:/sp/old", savepoint_redeploy_nonce=1)
    plan = plan_deployment(r, running(JOB_A), ctx(job_id=JOB_B))
    deploy = next(a for a in plan.actions if isinstance(a, DeployCluster))
    assert deploy.restore_path == "file:/sp/old"
    recon = plan.status.reconciliation_status
    assert recon.last_stable_spec == recon.last_reconciled_spec, "no rollback past a savepoint redeploy"


def test_state_known_but_missing_means_manual_restore_required() -> None:
    r = stable(UpgradeMode.LAST_STATE)
    assert r.status is not None and r.status.deployment_history[-1].checkpointed
    plan = plan_deployment(r, Observation(cluster_exists=True, cluster_generation=1), ctx(job_id=JOB_B))
    assert plan.actions == (), "nothing is started from empty state, nothing is deleted"
    assert plan.status.error is not None and plan.status.error.startswith("Manual restore required")
    assert plan.status.lifecycle_state == LifecycleState.FAILED


def test_jobmanager_loss_restores_the_newest_stored_checkpoint() -> None:
    r = stable(UpgradeMode.LAST_STATE)
    gone = Observation(cluster_exists=True, cluster_generation=1, latest_stored_checkpoint="file:/ck/x/chk-12")
    stop = plan_deployment(r, gone, ctx(job_id=JOB_B))
    assert_stops(stop, JOB_A, "recover", now=NOW)
    assert any(e.reason == "RecoverDeployment" for e in stop.events)
    assert stop.intent is not None and stop.intent.reconciliation_status.state == ReconciliationState.UPGRADING
    plan = after_stop(r, stop, "file:/ck/x/chk-12")
    assert_started(plan, JOB_A, JOB_B, "recover", "file:/ck/x/chk-12")
    assert plan.intent is not None and plan.intent.reconciliation_status.state == ReconciliationState.UPGRADING


def test_failure_events_name_the_root_cause() -> None:
    trace = (
        "org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoffTimeStrategy\n"
        "\tat org.apache.flink.runtime.Foo.bar(Foo.java:1)\n"
        "Caused by: java.lang.RuntimeException: wrapped\n"
        "Caused by: java.lang.IllegalStateException: deliberate failure after 20 records\n"
        "\t... 3 more\n"
    )
    assert headline(trace) == "java.lang.IllegalStateException: deliberate failure after 20 records"
    assert headline("just one line") == "just one line"


# ------------------------------------------------------------------ scaling


def test_parallelism_change_with_the_adaptive_scheduler_rescales_in_place() -> None:
    r = stable(UpgradeMode.LAST_STATE, conf={"jobmanager.scheduler": "adaptive"})
    plan = plan_deployment(edit(r, parallelism=3), running(JOB_A), ctx(job_id=JOB_B))
    [scale] = [a for a in plan.actions if isinstance(a, ScaleInPlace)]
    assert (scale.job_id, scale.old_parallelism, scale.parallelism) == (JOB_A, 1, 3)
    assert not any(isinstance(a, DeleteCluster | DeployCluster) for a in plan.actions), "no restart"
    assert plan.status.observed_generation == 2 and plan.status.job_status.job_id == JOB_A


def test_parallelism_change_without_the_adaptive_scheduler_is_a_stateful_upgrade() -> None:
    r = edit(stable(UpgradeMode.LAST_STATE), parallelism=3)
    stop = plan_deployment(r, running(JOB_A), ctx(job_id=JOB_B))
    assert not any(isinstance(a, ScaleInPlace) for a in stop.actions)
    assert_stops(stop, JOB_A, "upgrade", now=NOW)
    deploy = assert_started(after_stop(r, stop, "file:/ck/x/chk-4"), JOB_A, JOB_B, "upgrade", "file:/ck/x/chk-4")
    assert deploy.spec.job is not None and deploy.spec.job.parallelism == 3


def test_a_scale_change_mixed_with_other_changes_is_an_upgrade() -> None:
    r = edit(stable(UpgradeMode.LAST_STATE, conf={"jobmanager.scheduler": "adaptive"}), parallelism=3, args=["v2"])
    stop = plan_deployment(r, running(JOB_A), ctx(job_id=JOB_B))
    assert not any(isinstance(a, ScaleInPlace) for a in stop.actions)
    assert_stops(stop, JOB_A, "upgrade", now=NOW)
    assert_started(after_stop(r, stop, "file:/ck/x/chk-4"), JOB_A, JOB_B, "upgrade", "file:/ck/x/chk-4")


def test_a_stateful_restart_asks_for_the_newest_stored_state_once_the_old_job_stopped() -> None:
    """Flink's checkpoint statistics can lag (here they show no checkpoint path yet): the planner stops the job
    first, and decides the restore point the next pass, from the newest checkpoint storage holds then."""
    r = edit(stable(UpgradeMode.LAST_STATE), args=["v2"])
    stop = plan_deployment(r, running(JOB_A, path=None), ctx(job_id=JOB_B))
    assert [type(a) for a in stop.actions] == [DeleteCluster]
    assert_stops(stop, JOB_A, "upgrade", now=NOW)
    assert stop.intent is not None and stop.intent.job_status.upgrade_savepoint_path is None, "not decided yet"
    assert stop.intent.reconciliation_status.state == ReconciliationState.UPGRADING
    assert stop.requeue_after == 0.0, "the job is down: the next pass comes at once"
    assert any(e.reason == "Stopping" for e in stop.events)
    assert not any(e.reason == "Submit" for e in stop.events)

    # The old cluster is still there (the stop did not complete): stop it again, start nothing.
    again = plan_deployment(step(r, stop), running(JOB_A, path=None), ctx(job_id=JOB_B))
    assert [type(a) for a in again.actions] == [DeleteCluster]

    plan = after_stop(r, stop, "file:/ck/x/chk-5")
    deploy = assert_started(plan, JOB_A, JOB_B, "upgrade", "file:/ck/x/chk-5")
    assert deploy.spec.job is not None and deploy.spec.job.args == ["v2"]
    assert any(e.reason == "Submit" and "file:/ck/x/chk-5" in e.message for e in plan.events)
    assert plan.status.lifecycle_state == LifecycleState.DEPLOYED

    stateless = edit(stable(UpgradeMode.STATELESS), args=["v2"])
    plan = plan_deployment(stateless, running(JOB_A), ctx(job_id=JOB_B))
    assert [type(a) for a in plan.actions] == [DeleteCluster, DeployCluster], "stateless starts empty at once"
    assert isinstance(plan.actions[1], DeployCluster) and plan.actions[1].restore_path is None
    assert isinstance(plan.status, FlinkDeploymentStatus) and plan.status.deployment_history[-2].stopped_for is None


def test_a_run_that_checkpointed_never_restarts_from_its_older_start_state() -> None:
    """Storage shows nothing of a job that completed checkpoints: restarting from where it started (its
    ``upgradeSavepointPath``) would silently drop its progress, so a manual restore is required instead."""
    from flinkops.api.models import DeploymentRecord, FlinkDeploymentStatus, JobStatus
    from flinkops.core.planner.restore import restore_point
    from flinkops.errors import ManualRestoreRequired

    job = "c" * 32
    spec = FlinkDeployment.model_validate(
        {
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkDeployment",
            "metadata": {"name": "app"},
            "spec": {"job": {"jarURI": "local:///job.jar", "upgradeMode": "last-state"}},
        }
    ).spec
    started = FlinkDeploymentStatus(
        job_status=JobStatus(job_id=job, upgrade_savepoint_path="file:/sp/init"),
        deployment_history=[DeploymentRecord(generation=1, job_id=job, restored_from="file:/sp/init")],
    )
    assert restore_point(spec, started, Observation()) == ("file:/sp/init", "the state the job was last started from")
    progressed = started.model_copy(
        update={"deployment_history": [started.deployment_history[0].model_copy(update={"checkpointed": True})]}
    )
    with pytest.raises(ManualRestoreRequired):
        restore_point(spec, progressed, Observation())
