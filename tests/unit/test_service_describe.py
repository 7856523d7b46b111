"""service.description: where a deployment's state lives (the controller's rendering with the target's defaults),
what flinkops adds to its cluster, its events, and where its logs are."""

from __future__ import annotations

import pytest

from flinkops.api.models import FlinkDeploymentStatus, ReconciliationStatus
from flinkops.core.specs import dump_reconciled_spec
from flinkops.errors import InvalidInput, NotFound
from flinkops.ports import ResourceKey
from flinkops.service import KubernetesTarget, apply, describe, log_files
from flinkops.service.config import rendered_config, state_locations
from support.service import TestTarget, deployment, session_cluster, session_job

KEY = ResourceKey("FlinkDeployment", "default", "fraud")


def test_a_local_deployment_keeps_its_state_under_the_home(target: TestTarget) -> None:
    apply(target, [deployment()])
    target.store().record_event(KEY, "Normal", "Submit", "Starting deployment")
    found = describe(target, "fraud")
    state = target.home / "state" / "default" / "fraud"
    assert found.state is not None
    assert found.state.checkpoints == (state / "checkpoints").as_uri()
    assert found.state.savepoints == (state / "savepoints").as_uri()
    assert found.state.ha_metadata is None
    assert found.log_dir == target.home / "clusters" / "default" / "fraud" / "log"
    assert found.lifecycle == "CREATED" and not found.spec_stable
    assert [(e.reason, e.message) for e in found.events] == [("Submit", "Starting deployment")]
    assert found.data_plane is not None and found.data_plane.plugins == () and found.data_plane.s3_access is None


def test_s3_state_names_the_plugin_and_where_access_comes_from_never_the_keys(target: TestTarget) -> None:
    config = {
        "execution.checkpointing.dir": "s3p://bucket/checkpoints",
        "s3.endpoint": "http://127.0.0.1:9000",
        "s3.access-key": "AKIAEXAMPLE",
        "s3.secret-key": "very-secret",
        "flinkops.connectors": "kafka",
    }
    apply(target, [deployment(config=config)])
    found = describe(target, "fraud")
    assert found.state is not None and found.state.checkpoints == "s3p://bucket/checkpoints"
    plane = found.data_plane
    assert plane is not None and [p.name for p in plane.plugins] == ["s3-fs-presto"]
    assert plane.connectors == ("kafka",)
    assert plane.s3_access is not None and "127.0.0.1:9000" in plane.s3_access
    assert "very-secret" not in plane.s3_access and "AKIAEXAMPLE" not in plane.s3_access


def test_the_spec_is_stable_once_the_last_reconciled_one_is_the_last_stable_one(target: TestTarget) -> None:
    (applied,) = apply(target, [deployment()])
    spec = dump_reconciled_spec(applied.resource.spec, first_deployment=True)
    status = FlinkDeploymentStatus(
        reconciliation_status=ReconciliationStatus(last_reconciled_spec=spec, last_stable_spec=spec)
    )
    target.store().update_status(applied.resource.model_copy(update={"status": status}))
    assert describe(target, "fraud").spec_stable


def test_a_session_job_has_no_state_of_its_own(target: TestTarget) -> None:
    apply(target, [session_cluster(), session_job()])
    found = describe(target, "sj")
    assert found.state is None and found.data_plane is None and found.log_dir is None
    with pytest.raises(NotFound):
        describe(target, "nope")


def test_kubernetes_renders_no_default_state_directory() -> None:
    rendered = rendered_config(KubernetesTarget(context="elsewhere"), deployment())
    assert state_locations(rendered).checkpoints is None


def test_logs_of_a_deployment_that_never_ran(target: TestTarget) -> None:
    apply(target, [deployment()])
    with pytest.raises(NotFound, match="no logs for fraud"):
        log_files(target, "fraud")
    with pytest.raises(InvalidInput, match="works on local clusters only"):
        log_files(KubernetesTarget(context="elsewhere"), "fraud")
