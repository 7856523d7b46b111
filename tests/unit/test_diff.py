"""Spec-diff classes come from field metadata; the aggregate is the maximum."""

from __future__ import annotations

from flinkops.api.models import DiffType, FlinkDeploymentSpec, JobSpec, TaskManagerSpec, UpgradeMode
from flinkops.core.diff import classify

BASE = FlinkDeploymentSpec(
    job=JobSpec(jar_uri="local:///a.jar", parallelism=2),
    flink_configuration={"taskmanager.numberOfTaskSlots": "2"},
    task_manager=TaskManagerSpec(replicas=1),
)


def change(**job: object) -> FlinkDeploymentSpec:
    assert BASE.job is not None
    return BASE.model_copy(update={"job": BASE.job.model_copy(update=job)})


def test_no_change_is_ignore() -> None:
    assert classify(BASE, BASE).kind == DiffType.IGNORE
    assert not classify(BASE, BASE).changed


def test_upgrade_mode_and_snapshot_nonces_are_ignored() -> None:
    new = change(upgrade_mode=UpgradeMode.SAVEPOINT, savepoint_trigger_nonce=3, checkpoint_trigger_nonce=1)
    result = classify(BASE, new)
    assert result.kind == DiffType.IGNORE
    assert {f.path for f in result.fields} >= {"spec.job.upgradeMode", "spec.job.savepointTriggerNonce"}


def test_parallelism_is_upgrade_in_native_and_scale_in_standalone() -> None:
    new = change(parallelism=4)
    assert classify(BASE, new, mode="native").kind == DiffType.UPGRADE
    assert classify(BASE, new, mode="standalone").kind == DiffType.SCALE


def test_jar_change_is_upgrade_and_lists_the_field() -> None:
    result = classify(BASE, change(jar_uri="local:///b.jar"))
    assert result.kind == DiffType.UPGRADE
    assert result.paths() == ["spec.job.jarURI"]


def test_savepoint_redeploy_nonce_dominates() -> None:
    new = change(jar_uri="local:///b.jar", savepoint_redeploy_nonce=1, initial_savepoint_path="file:///sp")
    assert classify(BASE, new).kind == DiffType.SAVEPOINT_REDEPLOY


def test_clearing_a_nonce_is_not_a_change() -> None:
    with_nonce = change(savepoint_redeploy_nonce=1)
    assert classify(with_nonce, change(savepoint_redeploy_nonce=None)).kind == DiffType.IGNORE


def test_restart_nonce_is_upgrade() -> None:
    new = BASE.model_copy(update={"restart_nonce": 7})
    assert classify(BASE, new).kind == DiffType.UPGRADE


def test_operator_config_keys_are_ignored_but_flink_keys_upgrade() -> None:
    operator = BASE.model_copy(
        update={"flink_configuration": {**BASE.flink_configuration, "kubernetes.operator.x": "1"}}
    )
    assert classify(BASE, operator).kind == DiffType.IGNORE
    flink = BASE.model_copy(update={"flink_configuration": {"taskmanager.numberOfTaskSlots": "4"}})
    result = classify(BASE, flink)
    assert result.kind == DiffType.UPGRADE
    assert result.paths() == ["spec.flinkConfiguration.taskmanager.numberOfTaskSlots"]
