"""service.fleet: the overview's rows as a person reads them (lifecycle, job state, checkpoint and savepoint age,
restarts, parallelism, last error, the Flink UI), the detail of one resource, and actions that refuse a spec that
changed after it was confirmed."""

from __future__ import annotations

import pytest

from flinkops.api.models import JobManagerDeploymentStatus, LifecycleState
from flinkops.errors import Conflict, NotFound
from flinkops.ports import ResourceKey
from flinkops.service import apply
from flinkops.service.fleet import act, basis, detail, find, restarts, rows
from flinkops.web.live import LiveWatch
from support.fleet import NOW_MS, job_figures, store_fleet, with_status
from support.service import TestTarget, deployment, session_cluster, session_job

KEY = ResourceKey("FlinkDeployment", "default", "fraud")


def test_every_deployment_and_session_job_is_a_row_with_what_its_status_says(target: TestTarget) -> None:
    (applied,) = apply(target, [deployment("fraud", parallelism=4)])
    with_status(target.store(), applied.resource, checkpoint_age_s=12, savepoint_age_s=3600, restarts=2, error="boom")
    apply(target, [session_cluster("session"), session_job("sj", "session")])

    found = {(r.kind, r.name): r for r in rows(target)}

    assert set(found) == {("FlinkDeployment", "fraud"), ("FlinkDeployment", "session"), ("FlinkSessionJob", "sj")}
    fraud = found[("FlinkDeployment", "fraud")]
    assert (fraud.lifecycle, fraud.job_state, fraud.parallelism, fraud.restarts) == ("STABLE", "RUNNING", 4, 2)
    assert fraud.checkpoint_age_s(NOW_MS) == 12 and fraud.savepoint_age_s(NOW_MS) == 3600
    assert fraud.savepoint_path is not None and fraud.savepoint_path.startswith("file:/state/fraud/savepoints/")
    assert fraud.error == "boom" and fraud.flink_ui == "http://127.0.0.1:8081"
    assert fraud.cost is None  # unknown until service.cost feeds the hook
    sj = found[("FlinkSessionJob", "sj")]
    assert (sj.lifecycle, sj.session, sj.checkpoint_ms, sj.flink_ui) == ("CREATED", "session", None, None)
    assert not found[("FlinkDeployment", "session")].has_job


def test_only_runs_that_restarted_a_dead_job_count_as_restarts() -> None:
    history = [{"reason": r} for r in ("first-deploy", "recover", "upgrade", "retry", "suspend", "resume", "recover")]
    assert restarts(history) == 3
    assert restarts(None) == 0


def test_a_cost_hook_fills_the_cost_column(target: TestTarget) -> None:
    apply(target, [deployment("fraud")])
    (row,) = rows(target, cost=lambda doc: f"$ {len(doc['metadata']['name'])}.00")
    assert row.cost == "$ 5.00"


def test_the_flink_ui_is_linked_only_while_its_jobmanager_is_up(target: TestTarget) -> None:
    (applied,) = apply(target, [deployment("fraud")])
    stored = with_status(target.store(), applied.resource)
    assert stored.status is not None and rows(target)[0].flink_ui == "http://127.0.0.1:8081"
    down = stored.status.model_copy(update={"job_manager_deployment_status": JobManagerDeploymentStatus.MISSING})
    target.store().update_status(stored.model_copy(update={"status": down}))
    (row,) = rows(target)
    assert row.flink_ui is None


def test_a_fleet_is_read_across_namespaces_or_one_namespace(target: TestTarget) -> None:
    store_fleet(target.store(), 6, namespaces=("payments", "ads"))
    assert {r.namespace for r in rows(target)} == {"payments", "ads", "default"}
    assert [r.name for r in rows(target, "ads")] == ["job-0001", "job-0003", "job-0005"]


def test_detail_shows_runs_with_downtime_conditions_and_events(target: TestTarget) -> None:
    (applied,) = apply(target, [deployment("fraud")])
    with_status(target.store(), applied.resource, restarts=1)
    target.store().record_event(KEY, "Warning", "JobManagerLost", "the JobManager died; recovering")

    found = detail(target, "fraud")

    assert [(r.reason, r.downtime_ms) for r in found.runs] == [("recover", 4_200), ("first-deploy", None)]
    assert [c["type"] for c in found.conditions] == ["Ready"]
    assert [e.reason for e in found.events] == ["JobManagerLost"]
    assert found.plan is None and found.plan_error is None  # nothing pending
    assert found.actions == ("savepoint", "suspend", "rollback")


def test_detail_of_a_name_that_does_not_exist_is_not_found(target: TestTarget) -> None:
    with pytest.raises(NotFound):
        detail(target, "nope")
    with pytest.raises(NotFound):
        find(target, "nope")


def test_a_pending_change_is_planned_by_the_controller(target: TestTarget) -> None:
    (applied,) = apply(target, [deployment("fraud")])
    with_status(target.store(), applied.resource)
    apply(target, [deployment("fraud", parallelism=3)])  # generation 2, not reconciled yet

    found = detail(target, "fraud")

    assert found.row.pending
    assert found.plan is not None, found.plan_error
    summary, steps = found.plan
    assert summary and steps


def test_an_action_on_the_confirmed_spec_is_applied_as_the_cli_does_it(target: TestTarget) -> None:
    (applied,) = apply(target, [deployment("fraud")])
    with_status(target.store(), applied.resource)
    document = find(target, "fraud")

    done = act(target, KEY, "savepoint", basis(document, "savepoint"))

    assert "savepointTriggerNonce=1" in done.message
    stored = target.store().get(KEY)
    assert stored is not None and stored.spec.job is not None and stored.spec.job.savepoint_trigger_nonce == 1
    assert target.controller_starts == 2  # apply, then the savepoint


def test_an_action_on_a_spec_that_changed_since_the_confirmation_is_refused_and_nothing_is_written(
    target: TestTarget,
) -> None:
    (applied,) = apply(target, [deployment("fraud")])
    with_status(target.store(), applied.resource)
    confirmed = basis(find(target, "fraud"), "suspend")
    apply(target, [deployment("fraud", parallelism=2)])  # someone applies a new spec meanwhile
    before = target.store().document(KEY)

    with pytest.raises(Conflict, match="changed since you confirmed"):
        act(target, KEY, "suspend", confirmed)

    assert target.store().document(KEY) == before


def test_a_status_write_alone_does_not_refuse_a_savepoint(target: TestTarget) -> None:
    """A busy job's status changes with every checkpoint; the spec the person confirmed is what counts."""
    (applied,) = apply(target, [deployment("fraud")])
    stored = with_status(target.store(), applied.resource)
    confirmed = basis(find(target, "fraud"), "savepoint")
    with_status(target.store(), stored, checkpoint_age_s=1)  # a newer checkpoint: resourceVersion moved
    act(target, KEY, "savepoint", confirmed)


def test_a_rollback_is_refused_when_the_stable_spec_it_would_restore_changed(target: TestTarget) -> None:
    (applied,) = apply(target, [deployment("fraud")])
    stored = with_status(target.store(), applied.resource)
    confirmed = basis(find(target, "fraud"), "rollback")
    assert stored.status is not None
    recon = stored.status.reconciliation_status.model_copy(update={"last_stable_spec": '{"spec":{}}'})
    status = stored.status.model_copy(update={"reconciliation_status": recon, "lifecycle_state": LifecycleState.FAILED})
    target.store().update_status(stored.model_copy(update={"status": status}))  # another spec became the stable one

    with pytest.raises(Conflict):
        act(target, KEY, "rollback", confirmed)


# ----------------------------------------------------------------------------- Flink's own checkpoints, live


def test_the_checkpoint_age_is_flinks_own_last_checkpoint_when_it_is_newer(target: TestTarget) -> None:
    (applied,) = apply(target, [deployment("fraud")])
    with_status(target.store(), applied.resource, checkpoint_age_s=600)  # the controller's last one: 10 min ago
    watch = LiveWatch(target, lambda _: {KEY: job_figures(last_checkpoint_time=(NOW_MS - 4_000) / 1000)})
    found = rows(target)
    watch.refresh(found)
    (row,) = watch.apply(found)
    assert row.checkpoint_age_s(NOW_MS) == 4


def test_a_jobmanager_that_does_not_answer_leaves_the_recorded_age_never_zero(target: TestTarget) -> None:
    (applied,) = apply(target, [deployment("fraud")])
    with_status(target.store(), applied.resource, checkpoint_age_s=600)
    apply(target, [deployment("other")])  # not running: nobody is asked about it
    watch = LiveWatch(target, lambda _: {KEY: None})  # its JobManager did not answer
    found = rows(target)
    watch.refresh(found)
    ages = {r.name: r.checkpoint_age_s(NOW_MS) for r in watch.apply(found)}
    assert ages == {"fraud": 600, "other": None}
