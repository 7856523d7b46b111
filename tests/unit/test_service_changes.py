"""service.changes: delete (and waiting until the controller removed it), suspend/resume, rollback. The test plays
the controller by writing to the store from the clock's sleep hook; no Flink process runs."""

from __future__ import annotations

import pytest

from flinkops.api.models import FlinkDeployment, FlinkDeploymentStatus, JobState, LifecycleState, ReconciliationStatus
from flinkops.core.specs import dump_reconciled_spec
from flinkops.errors import FlinkopsError, InvalidInput, NotFound
from flinkops.ports import ResourceKey
from flinkops.service import (
    apply,
    delete,
    deletion_order,
    get,
    request_deletion,
    resolve,
    resume,
    rollback,
    suspend,
    wait_deleted,
)
from support.service import TestTarget, deployment, session_cluster, session_job

KEY = ResourceKey("FlinkDeployment", "default", "fraud")


def test_delete_asks_the_controller_and_waits_until_it_removed_the_resource(target: TestTarget) -> None:
    apply(target, [deployment()])
    store = target.store()
    passes: list[float] = []

    def controller() -> None:  # removes the resource on its third pass
        passes.append(target.clock.now())
        if len(passes) == 3:
            store.remove(KEY)

    target.manual_clock.hooks.append(controller)
    deletion = delete(target, "fraud", timeout=10)
    assert deletion.key == KEY and not deletion.gone
    assert len(passes) == 3 and store.get(KEY) is None
    assert target.controller_starts == 2  # apply, delete


def test_waiting_for_a_deletion_gives_up_at_the_deadline(target: TestTarget) -> None:
    apply(target, [deployment()])
    assert not request_deletion(target, KEY).gone
    assert get(target, "fraud").lifecycle == "DELETING"
    with pytest.raises(FlinkopsError, match="still being deleted after 5s"):
        wait_deleted(target, KEY, timeout=5)
    assert target.clock.now() - 1_700_000_000.0 == pytest.approx(5.0, abs=0.25)  # polled every 0.2 s until then


def test_deleting_what_is_gone_already(target: TestTarget) -> None:
    assert request_deletion(target, KEY).gone
    with pytest.raises(NotFound):
        delete(target, "fraud")


def test_deleting_a_file_takes_session_jobs_first_and_reports_the_missing(target: TestTarget) -> None:
    apply(target, [session_cluster(), session_job()])
    present, missing = deletion_order(target, [session_cluster(), deployment(), session_job()])
    assert [k.name for k in present] == ["sj", "session"]
    assert missing == [KEY]


def test_suspend_and_resume_set_the_job_state_once(target: TestTarget) -> None:
    apply(target, [deployment()])
    suspended = suspend(target, "fraud")
    assert suspended.changed and suspended.state == JobState.SUSPENDED
    stored = resolve(target, "fraud")
    assert stored.spec.job is not None and stored.spec.job.state == JobState.SUSPENDED
    assert stored.metadata.generation == 2
    assert not suspend(target, "fraud").changed  # already suspended: nothing written
    assert resolve(target, "fraud").metadata.generation == 2
    assert resume(target, "fraud").changed
    assert resolve(target, "fraud").metadata.generation == 3
    apply(target, [session_cluster()])
    with pytest.raises(InvalidInput) as exc:
        suspend(target, "session")
    assert exc.value.problems[0].path == "spec.job"


def recorded(resource: FlinkDeployment, reconciled: FlinkDeployment, stable: FlinkDeployment) -> FlinkDeployment:
    """``resource`` with the status a controller leaves: the spec it deployed last, and the last stable one."""
    recon = ReconciliationStatus(
        last_reconciled_spec=dump_reconciled_spec(reconciled.spec, first_deployment=False),
        last_stable_spec=dump_reconciled_spec(stable.spec, first_deployment=False),
    )
    status = FlinkDeploymentStatus(
        reconciliation_status=recon,
        observed_generation=resource.metadata.generation,
        lifecycle_state=LifecycleState.DEPLOYED,
    )
    return resource.model_copy(update={"status": status})


def test_rollback_puts_the_last_stable_spec_back(target: TestTarget) -> None:
    v1, v2 = deployment(), deployment(parallelism=4)
    apply(target, [v1])
    with pytest.raises(FlinkopsError, match="no stable spec"):
        rollback(target, "fraud")
    (second,) = apply(target, [v2])
    store = target.store()
    assert isinstance(second.resource, FlinkDeployment)
    store.update_status(recorded(second.resource, v2, v1))

    def controller() -> None:  # runs the rolled-back generation stably
        current = store.get(KEY)
        assert current is not None and current.status is not None
        status = current.status.model_copy(
            update={"observed_generation": current.metadata.generation, "lifecycle_state": LifecycleState.STABLE}
        )
        store.update_status(current.model_copy(update={"status": status}))

    target.manual_clock.hooks.append(controller)
    rolling = rollback(target, "fraud", wait=True, timeout=10)
    assert rolling.generation == 3
    current = resolve(target, "fraud")
    assert isinstance(current, FlinkDeployment) and current.spec == v1.spec
    assert current.status is not None and current.status.lifecycle_state == LifecycleState.STABLE
    store.update_status(recorded(current, v1, v1))
    with pytest.raises(FlinkopsError, match="nothing to roll back"):
        rollback(target, "fraud")
