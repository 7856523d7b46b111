"""The planner's pre-started upgrade, pass by pass: ask for the new cluster, wait for it, stop the old job as
without it (keeping the prepared cluster), deploy; or fall back when it is refused or late."""

from __future__ import annotations

from dataclasses import replace

from flinkops.api.models import FlinkDeployment, ReconciliationState, UpgradeMode
from flinkops.core.planner import (
    DeleteCluster,
    DeployCluster,
    Observation,
    PrepareCluster,
    TriggerObservation,
    TriggerSavepoint,
    plan_deployment,
)
from flinkops.core.planner.prestart import PRESTART_TIMEOUT_MS
from unit.test_planner_state import JOB_A, JOB_B, NOW, ctx, deployment, edit, running, step

ON = {"flinkops.upgrade.prestart": "true"}


def stable(mode: UpgradeMode, conf: dict[str, str] = ON) -> FlinkDeployment:
    r = deployment(mode, conf)
    r = step(r, plan_deployment(r, Observation(), ctx()))
    return step(r, plan_deployment(r, running(JOB_A), ctx()))


def asked(mode: UpgradeMode) -> FlinkDeployment:
    r = edit(stable(mode), args=["v2"])
    plan = plan_deployment(r, running(JOB_A), ctx(JOB_B))
    assert [type(a) for a in plan.actions] == [PrepareCluster]
    assert plan.intent is not None and plan.intent.reconciliation_status.state == ReconciliationState.UPGRADING
    marker = plan.intent.prepared_cluster  # type: ignore[union-attr]
    assert marker is not None and (marker.generation, marker.used, marker.fallback) == (2, False, None)
    assert "PrestartCluster" in [e.reason for e in plan.events]
    return step(r, plan)


def test_a_savepoint_upgrade_waits_for_the_new_cluster_then_stops_with_a_savepoint() -> None:
    r = asked(UpgradeMode.SAVEPOINT)
    starting = plan_deployment(r, running(JOB_A, prepared_generation=2), ctx(JOB_B, now=NOW + 5_000))
    assert starting.actions == () and starting.requeue_after < 1.0, "waits, the old job untouched"
    ready = plan_deployment(r, running(JOB_A, prepared_generation=2, prepared_ready=True), ctx(JOB_B, now=NOW + 9_000))
    assert [type(a) for a in ready.actions] == [TriggerSavepoint]
    assert ready.intent is not None and ready.intent.prepared_cluster.used  # type: ignore[union-attr]
    r = step(r, ready)
    done = TriggerObservation("COMPLETED", location="file:/sp/savepoint-1")
    plan = plan_deployment(
        r, running(JOB_A, savepoint_trigger=done, prepared_generation=2, prepared_ready=True), ctx(JOB_B)
    )
    delete, deploy = plan.actions
    assert isinstance(delete, DeleteCluster) and delete.keep_prepared
    assert isinstance(deploy, DeployCluster) and deploy.restore_path == "file:/sp/savepoint-1"
    assert deploy.job_id == JOB_B
    assert plan.status.prepared_cluster is None  # type: ignore[union-attr]


def test_a_last_state_upgrade_stops_first_keeping_the_new_cluster_and_restores_from_storage() -> None:
    r = asked(UpgradeMode.LAST_STATE)
    ready = plan_deployment(r, running(JOB_A, prepared_generation=2, prepared_ready=True), ctx(JOB_B))
    [delete] = ready.actions
    assert isinstance(delete, DeleteCluster) and delete.keep_prepared
    r = step(r, ready)
    gone = Observation(latest_stored_checkpoint="file:/ck/a/chk-9")
    plan = plan_deployment(r, gone, ctx(JOB_B))
    [deploy] = plan.actions
    assert isinstance(deploy, DeployCluster) and deploy.restore_path == "file:/ck/a/chk-9"


def test_no_prepared_cluster_means_the_runtime_refused_it_and_the_upgrade_goes_on_as_usual() -> None:
    r = asked(UpgradeMode.SAVEPOINT)
    plan = plan_deployment(r, running(JOB_A), ctx(JOB_B))
    assert [type(a) for a in plan.actions] == [TriggerSavepoint]
    assert "PrestartFallback" in [e.reason for e in plan.events]
    r = step(r, plan)
    done = TriggerObservation("COMPLETED", location="file:/sp/savepoint-1")
    delete, _ = plan_deployment(r, running(JOB_A, savepoint_trigger=done), ctx(JOB_B)).actions
    assert isinstance(delete, DeleteCluster) and not delete.keep_prepared, "the prepared cluster goes too"


def test_a_prepared_cluster_late_beyond_the_bound_is_given_up() -> None:
    r = asked(UpgradeMode.LAST_STATE)
    late = ctx(JOB_B, now=NOW + PRESTART_TIMEOUT_MS + 1)
    plan = plan_deployment(r, running(JOB_A, prepared_generation=2), late)
    [delete] = plan.actions
    assert isinstance(delete, DeleteCluster) and not delete.keep_prepared
    assert any("not ready within" in e.message for e in plan.events if e.reason == "PrestartFallback")


def test_asking_again_after_a_crash_is_not_planned_twice() -> None:
    r = asked(UpgradeMode.SAVEPOINT)
    again = plan_deployment(r, replace(running(JOB_A), prepared_generation=2), ctx(JOB_B, now=NOW + 1_000))
    assert again.actions == (), "the marker on record: wait for the cluster, do not ask again"


def test_the_opt_out_stops_at_once() -> None:
    r = edit(stable(UpgradeMode.SAVEPOINT, {"flinkops.upgrade.prestart": "false"}), args=["v2"])
    plan = plan_deployment(r, running(JOB_A), ctx(JOB_B))
    assert [type(a) for a in plan.actions] == [TriggerSavepoint]


def test_a_stateless_upgrade_is_not_pre_started() -> None:
    r = edit(stable(UpgradeMode.STATELESS), args=["v2"])
    assert PrepareCluster not in [type(a) for a in plan_deployment(r, running(JOB_A), ctx(JOB_B)).actions]


def test_deleting_the_resource_stops_a_prepared_cluster_left_without_an_active_one() -> None:
    r = asked(UpgradeMode.LAST_STATE)
    r = step(r, plan_deployment(r, running(JOB_A, prepared_generation=2, prepared_ready=True), ctx(JOB_B)))
    deleted = r.model_copy(
        update={"metadata": r.metadata.model_copy(update={"deletion_timestamp": "2026-01-01T00:00:00Z"})}
    )
    plan = plan_deployment(deleted, Observation(), ctx(JOB_B))
    assert any(isinstance(a, DeleteCluster) and not a.keep_prepared for a in plan.actions)


def test_an_old_job_that_stops_running_meanwhile_ends_the_wait() -> None:
    r = asked(UpgradeMode.LAST_STATE)
    down = Observation(cluster_exists=True, cluster_generation=1, prepared_generation=2)
    plan = plan_deployment(r, replace(down, latest_stored_checkpoint="file:/ck/a/chk-9"), ctx(JOB_B))
    assert "PrestartFallback" in [e.reason for e in plan.events]
    assert plan.actions and isinstance(plan.actions[0], DeleteCluster) and not plan.actions[0].keep_prepared
