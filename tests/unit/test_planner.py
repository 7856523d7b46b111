"""The planner's decisions: first deploy, write-ahead intent, crash recovery, suspend/resume, failures.

A restart from a job's newest state takes two passes, stop and then start from what storage holds;
``after_stop`` plays the second."""

from __future__ import annotations

from dataclasses import replace

from flinkops.api.models import (
    FlinkDeployment,
    FlinkDeploymentSpec,
    FlinkSessionJob,
    FlinkSessionJobSpec,
    JobSpec,
    JobState,
    LifecycleState,
    ObjectMeta,
    ReconciliationState,
    UpgradeMode,
)
from flinkops.core.planner import (
    CancelSessionJob,
    Context,
    DeleteCluster,
    DeployCluster,
    JobObservation,
    Observation,
    Plan,
    RemoveResource,
    ReplaceMissingProcesses,
    SubmitSessionJob,
    plan_deployment,
    plan_session_job,
)
from flinkops.errors import ErrorReason
from support.stopfirst import assert_started, assert_stops

CHECKPOINTED = {"execution.checkpointing.interval": "10 s"}


def deployment(generation: int = 1, **job: object) -> FlinkDeployment:
    spec = FlinkDeploymentSpec(
        flink_configuration=CHECKPOINTED,
        job=JobSpec(jar_uri="local:///job.jar", parallelism=1, upgrade_mode=UpgradeMode.LAST_STATE).model_copy(
            update=job
        ),
    )
    return FlinkDeployment(metadata=ObjectMeta(name="fraud", generation=generation), spec=spec)


def ctx(job_id: str = "a" * 32, **kw: object) -> Context:
    return Context(now_ms=1_000_000, fresh_job_id=job_id, **kw)  # type: ignore[arg-type]


def apply_plan(resource: FlinkDeployment, plan: Plan) -> FlinkDeployment:
    return resource.model_copy(update={"status": plan.status})


def running(job_id: str, checkpoints: int = 1, path: str | None = "file:///ck/chk-1", started: int = 0) -> Observation:
    return Observation(
        cluster_exists=True,
        cluster_generation=1,
        jobmanager_alive=True,
        rest_ready=True,
        rest_url="http://127.0.0.1:1",
        taskmanagers_alive=1,
        taskmanagers_expected=1,
        job=JobObservation(
            job_id=job_id,
            state="RUNNING",
            start_time=started,
            running_since=started,
            completed_checkpoints=checkpoints,
            latest_checkpoint_path=path,
        ),
    )


def after_stop(resource: FlinkDeployment, stop: Plan, stored: str | None, job_id: str = "a" * 32, **kw: object) -> Plan:
    """Pass B of a restart from the newest state: pass A (``stop``) wrote its intent and stopped the cluster;
    this pass observes the cluster gone and the stopped job's newest checkpoint in storage, and plans again."""
    assert [type(a) for a in stop.actions] == [DeleteCluster], "pass A only stops the old cluster"
    return plan_deployment(apply_plan(resource, stop), Observation(latest_stored_checkpoint=stored), ctx(job_id, **kw))


def deployed_and_stable() -> FlinkDeployment:
    r = deployment()
    r = apply_plan(r, plan_deployment(r, Observation(), ctx()))
    return apply_plan(r, plan_deployment(r, running("a" * 32), ctx()))


def test_first_deploy_writes_intent_before_deploying() -> None:
    plan = plan_deployment(deployment(), Observation(), ctx())
    assert [type(a) for a in plan.actions] == [DeployCluster]
    assert plan.intent is not None
    assert plan.intent.reconciliation_status.state == ReconciliationState.UPGRADING
    assert plan.intent.job_status.job_id == "a" * 32  # the job id is recorded before the job exists
    assert plan.intent.lifecycle_state == LifecycleState.UPGRADING
    assert plan.status.lifecycle_state == LifecycleState.DEPLOYED


def test_running_without_a_checkpoint_is_not_stable_yet() -> None:
    r = deployment()
    r = apply_plan(r, plan_deployment(r, Observation(), ctx()))
    plan = plan_deployment(r, running("a" * 32, checkpoints=0), ctx())
    assert plan.status.lifecycle_state == LifecycleState.DEPLOYED
    plan = plan_deployment(r, running("a" * 32, checkpoints=1), ctx())
    assert plan.status.lifecycle_state == LifecycleState.STABLE
    assert any(e.reason == "Stable" for e in plan.events)


def test_a_job_that_just_started_is_not_stable_yet() -> None:
    r = deployment()
    r = r.model_copy(update={"spec": r.spec.model_copy(update={"flink_configuration": {}})})
    r = apply_plan(r, plan_deployment(r, Observation(), ctx()))
    just_started = running("a" * 32, started=1_000_000 - 2_000)
    assert plan_deployment(r, just_started, ctx()).status.lifecycle_state == LifecycleState.DEPLOYED


def test_not_stable_until_every_task_runs() -> None:
    r = deployment()
    r = apply_plan(r, plan_deployment(r, Observation(), ctx()))
    obs = running("a" * 32)
    assert obs.job is not None
    deploying = Observation(
        **{**obs.__dict__, "job": JobObservation(**{**obs.job.__dict__, "all_tasks_running": False})}
    )
    assert plan_deployment(r, deploying, ctx()).status.lifecycle_state == LifecycleState.DEPLOYED


def test_without_checkpointing_running_for_a_while_is_enough() -> None:
    r = deployment()
    r = r.model_copy(update={"spec": r.spec.model_copy(update={"flink_configuration": {}})})
    r = apply_plan(r, plan_deployment(r, Observation(), ctx()))
    assert plan_deployment(r, running("a" * 32, checkpoints=0), ctx()).status.lifecycle_state == LifecycleState.STABLE


def test_crash_after_intent_with_cluster_already_deployed_is_adopted() -> None:
    r = deployment()
    plan = plan_deployment(r, Observation(), ctx())
    assert plan.intent is not None
    crashed = r.model_copy(update={"status": plan.intent})  # intent written, then the controller died
    again = plan_deployment(crashed, running("a" * 32), ctx(job_id="b" * 32))
    assert again.actions == ()
    assert again.status.reconciliation_status.state == ReconciliationState.DEPLOYED


def test_crash_after_intent_without_cluster_redeploys_with_the_recorded_job_id() -> None:
    r = deployment()
    plan = plan_deployment(r, Observation(), ctx())
    crashed = r.model_copy(update={"status": plan.intent})
    again = plan_deployment(crashed, Observation(), ctx(job_id="b" * 32))
    deploys = [a for a in again.actions if isinstance(a, DeployCluster)]
    assert len(deploys) == 1 and deploys[0].job_id == "a" * 32


def test_failed_job_is_reported_with_its_exception() -> None:
    r = deployment()
    r = apply_plan(r, plan_deployment(r, Observation(), ctx()))
    obs = running("a" * 32)
    failed = Observation(
        **{
            **obs.__dict__,
            "job": JobObservation(job_id="a" * 32, state="FAILED", error="java.lang.IllegalStateException: boom"),
        }
    )
    plan = plan_deployment(r, failed, ctx())
    assert plan.status.lifecycle_state == LifecycleState.FAILED
    assert plan.status.error is not None and "boom" in plan.status.error
    assert any(e.type == "Warning" and e.reason == "Error" for e in plan.events)


def test_a_finished_job_records_its_result_then_releases_its_cluster() -> None:
    r = deployment()
    r = apply_plan(r, plan_deployment(r, Observation(), ctx()))
    ended = JobObservation(
        job_id="a" * 32, state="FINISHED", end_time=990_000, duration_ms=42_000, accumulators={"records": "3000000"}
    )
    finished = Observation(**{**running("a" * 32).__dict__, "job": ended})
    # Flink's REST cache may still hold pre-final accumulators right after the end: wait that out first.
    just_ended = replace(finished, job=replace(ended, end_time=999_500))
    waiting = plan_deployment(r, just_ended, ctx())
    assert waiting.actions == () and 0 < waiting.requeue_after <= 1.25
    plan = plan_deployment(r, finished, ctx())
    assert [type(a) for a in plan.actions] == [DeleteCluster]
    # Write-ahead: the end state is in the intent, so a controller that dies after the delete does not
    # mistake the missing cluster for a crash and run the batch job again.
    assert plan.intent is not None and plan.intent.job_status.state == "FINISHED"
    run = plan.status.deployment_history[-1]
    assert (run.end_state, run.ended_at, run.job_duration_ms) == ("FINISHED", 990_000, 42_000)
    assert run.result == {"records": "3000000"}
    assert any(e.reason == "ClusterReleased" and "42.0 s" in e.message for e in plan.events)
    assert plan.status.lifecycle_state == LifecycleState.STABLE

    after = apply_plan(r, plan)
    gone = plan_deployment(after, Observation(), ctx())
    assert gone.actions == () and "cluster already gone" in gone.summary, "a finished job is not recovered"


def test_a_failed_job_releases_its_cluster_too() -> None:
    r = deployment()
    r = apply_plan(r, plan_deployment(r, Observation(), ctx()))
    failed = Observation(**{**running("a" * 32).__dict__, "job": JobObservation(job_id="a" * 32, state="FAILED")})
    plan = plan_deployment(r, failed, ctx())
    assert [type(a) for a in plan.actions] == [DeleteCluster]
    assert plan.status.deployment_history[-1].end_state == "FAILED"
    assert plan_deployment(apply_plan(r, plan), Observation(), ctx()).actions == ()


def test_suspend_records_the_latest_checkpoint_and_resume_restores_it() -> None:
    r = deployed_and_stable()
    suspended = r.model_copy(update={"spec": deployment(generation=2, state=JobState.SUSPENDED).spec})
    suspended = suspended.model_copy(update={"metadata": suspended.metadata.model_copy(update={"generation": 2})})
    # Pass A: the job is stopped first; the statistics' chk-7 is not taken as its state.
    stop = plan_deployment(suspended, running("a" * 32, path="file:///ck/chk-7"), ctx())
    assert_stops(stop, "a" * 32, "suspend", now=1_000_000)
    assert stop.status.lifecycle_state == LifecycleState.UPGRADING
    assert stop.status.job_status.upgrade_savepoint_path is None
    # Pass B: the cluster is gone; storage holds the stopped job's newest checkpoint (chk-8, newer than chk-7).
    plan = after_stop(suspended, stop, "file:///ck/chk-8")
    assert plan.actions == ()
    assert plan.status.lifecycle_state == LifecycleState.SUSPENDED
    assert plan.status.job_status.upgrade_savepoint_path == "file:///ck/chk-8"
    assert any(e.reason == "Suspended" and "file:///ck/chk-8" in e.message for e in plan.events)

    r2 = apply_plan(suspended, plan)
    resumed = r2.model_copy(
        update={"spec": deployment().spec, "metadata": r2.metadata.model_copy(update={"generation": 3})}
    )
    plan = plan_deployment(resumed, Observation(), ctx(job_id="c" * 32))
    deploy = next(a for a in plan.actions if isinstance(a, DeployCluster))
    assert deploy.restore_path == "file:///ck/chk-8"
    assert deploy.job_id == "c" * 32


def test_stateless_upgrade_never_restores() -> None:
    r = deployed_and_stable()
    new = deployment(generation=2, jar_uri="local:///v2.jar", upgrade_mode=UpgradeMode.STATELESS)
    plan = plan_deployment(
        r.model_copy(update={"spec": new.spec, "metadata": new.metadata}), running("a" * 32), ctx("d" * 32)
    )
    deploy = next(a for a in plan.actions if isinstance(a, DeployCluster))
    assert deploy.restore_path is None
    assert isinstance(plan.actions[0], DeleteCluster)


def test_dead_jobmanager_is_redeployed_from_stored_checkpoint() -> None:
    r = deployed_and_stable()
    obs = Observation(
        cluster_exists=True,
        cluster_generation=1,
        jobmanager_alive=False,
        latest_stored_checkpoint="file:///ck/chk-9",
    )
    # Pass A: what is left of the cluster is stopped first, recording why.
    stop = plan_deployment(r, obs, ctx("e" * 32))
    assert_stops(stop, "a" * 32, "recover", now=1_000_000)
    assert any(e.reason == "RecoverDeployment" for e in stop.events)
    # Pass B: the cluster is gone; the job restarts from storage's newest checkpoint under a fresh id.
    plan = after_stop(r, stop, "file:///ck/chk-9", "e" * 32)
    assert_started(plan, "a" * 32, "e" * 32, "recover", "file:///ck/chk-9")


def test_dead_taskmanager_is_replaced() -> None:
    r = deployed_and_stable()
    obs = running("a" * 32)
    obs = Observation(**{**obs.__dict__, "taskmanagers_alive": 0})
    assert any(isinstance(a, ReplaceMissingProcesses) for a in plan_deployment(r, obs, ctx()).actions)


def test_invalid_change_keeps_reconciling_the_last_valid_spec() -> None:
    r = deployed_and_stable()
    plan = plan_deployment(r, running("a" * 32), ctx(valid=False, validation_error="spec.job.parallelism: must be > 0"))
    assert plan.actions == ()
    assert plan.status.error is not None and plan.status.error.startswith("ValidationError")
    assert plan.status.lifecycle_state == LifecycleState.STABLE


def test_deletion_deletes_cluster_then_removes() -> None:
    r = deployed_and_stable()
    r = r.model_copy(update={"metadata": r.metadata.model_copy(update={"deletion_timestamp": "2026-01-01T00:00:00Z"})})
    plan = plan_deployment(r, running("a" * 32), ctx())
    assert [type(a) for a in plan.actions] == [DeleteCluster, RemoveResource]
    assert plan.status.lifecycle_state == LifecycleState.DELETING


def session_job(**job: object) -> FlinkSessionJob:
    return FlinkSessionJob(
        metadata=ObjectMeta(name="sj", generation=1),
        spec=FlinkSessionJobSpec(
            deployment_name="session", job=JobSpec(jar_uri="/j.jar", parallelism=1).model_copy(update=job)
        ),
    )


def test_session_job_waits_for_its_session_cluster() -> None:
    plan = plan_session_job(session_job(), Observation(), ctx())
    assert plan.actions == ()
    assert "waiting" in plan.summary


def test_session_job_records_job_id_before_submitting() -> None:
    plan = plan_session_job(session_job(), Observation(), ctx(session_ready=True, session_rest_url="http://x"))
    submit = next(a for a in plan.actions if isinstance(a, SubmitSessionJob))
    assert plan.intent is not None and plan.intent.job_status.job_id == submit.job_id


def test_session_job_suspend_cancels() -> None:
    r = session_job()
    r = r.model_copy(
        update={
            "status": plan_session_job(r, Observation(), ctx(session_ready=True, session_rest_url="http://x")).status
        }
    )
    r = r.model_copy(update={"spec": session_job(state=JobState.SUSPENDED).spec})
    obs = Observation(rest_ready=True, job=JobObservation(job_id="a" * 32, state="RUNNING"))
    plan = plan_session_job(r, obs, ctx(session_ready=True, session_rest_url="http://x"))
    assert [type(a) for a in plan.actions] == [CancelSessionJob]
    assert plan.status.lifecycle_state == LifecycleState.SUSPENDED


def test_an_invalid_spec_is_reported_once_not_every_pass() -> None:
    r = deployed_and_stable()
    invalid = ctx(valid=False, validation_error="spec.job.parallelism: must be > 0")
    first = plan_deployment(r, running("a" * 32), invalid)
    assert [e.reason for e in first.events].count("ValidationError") == 1
    again = plan_deployment(apply_plan(r, first), running("a" * 32), invalid)
    assert "ValidationError" not in [e.reason for e in again.events]
    fixed = plan_deployment(apply_plan(r, again), running("a" * 32), ctx())
    assert fixed.status.error is None


# ------------------------------------------------------------------ decisions read status.errorReason, not the text

LOOKS_LIKE_VALIDATION = "ValidationError: spec.job.parallelism: must be > 0"


def deployed_not_stable_yet() -> FlinkDeployment:
    r = deployment()
    r = apply_plan(r, plan_deployment(r, Observation(), ctx()))
    return apply_plan(r, plan_deployment(r, running("a" * 32, checkpoints=0), ctx()))


def with_error(r: FlinkDeployment, message: str, reason: ErrorReason) -> FlinkDeployment:
    assert r.status is not None
    return r.model_copy(update={"status": r.status.model_copy(update={"error": message, "error_reason": reason})})


def test_an_invalid_spec_is_recorded_with_its_reason() -> None:
    plan = plan_deployment(deployed_and_stable(), running("a" * 32), ctx(valid=False, validation_error="bad"))
    assert (plan.status.error, plan.status.error_reason) == ("ValidationError: bad", ErrorReason.VALIDATION_ERROR)


def test_text_that_looks_like_a_validation_error_is_not_cleared_as_one() -> None:
    r = with_error(deployed_not_stable_yet(), LOOKS_LIKE_VALIDATION, ErrorReason.RECONCILE_ERROR)
    plan = plan_deployment(r, running("a" * 32, checkpoints=0), ctx())  # a valid spec; the job is not stable yet
    assert (plan.status.error, plan.status.error_reason) == (LOOKS_LIKE_VALIDATION, ErrorReason.RECONCILE_ERROR)


def test_a_valid_spec_clears_a_validation_complaint_whatever_its_text() -> None:
    r = with_error(deployed_not_stable_yet(), "the spec was invalid", ErrorReason.VALIDATION_ERROR)
    plan = plan_deployment(r, running("a" * 32, checkpoints=0), ctx())
    assert plan.status.error is None and plan.status.error_reason is None


def test_stability_clears_a_past_failure_whose_text_looks_like_a_validation_error() -> None:
    r = with_error(deployed_not_stable_yet(), LOOKS_LIKE_VALIDATION, ErrorReason.JOB_FAILED)
    plan = plan_deployment(r, running("a" * 32), ctx())
    assert plan.status.lifecycle_state == LifecycleState.STABLE
    assert plan.status.error is None and plan.status.error_reason is None


def test_stability_keeps_the_report_that_the_new_spec_is_invalid() -> None:
    plan = plan_deployment(deployed_not_stable_yet(), running("a" * 32), ctx(valid=False, validation_error="bad"))
    assert plan.status.lifecycle_state == LifecycleState.STABLE
    assert plan.status.error_reason == ErrorReason.VALIDATION_ERROR


def test_a_failed_job_is_recorded_with_its_reason_and_a_redeploy_clears_both() -> None:
    obs = running("a" * 32, checkpoints=0)
    assert obs.job is not None
    failed = replace(obs, job=replace(obs.job, state="FAILED", error="boom"))
    plan = plan_deployment(deployed_not_stable_yet(), failed, ctx())
    assert (plan.status.error, plan.status.error_reason) == ("boom", ErrorReason.JOB_FAILED)
    r = apply_plan(deployed_not_stable_yet(), plan)
    changed = r.model_copy(update={"spec": deployment(args=["x"]).spec})
    redeploy = plan_deployment(changed, Observation(), ctx("b" * 32))
    assert any(isinstance(a, DeployCluster) for a in redeploy.actions)
    assert redeploy.status.error is None and redeploy.status.error_reason is None


def test_a_manual_restore_is_recorded_with_its_reason() -> None:
    gone = Observation(cluster_exists=True, cluster_generation=1)  # the run checkpointed; no checkpoint is left
    plan = plan_deployment(deployed_and_stable(), gone, ctx("b" * 32))
    assert plan.actions == ()
    assert plan.status.error_reason == ErrorReason.MANUAL_RESTORE_REQUIRED
    assert plan.status.lifecycle_state == LifecycleState.FAILED
