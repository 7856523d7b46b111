"""service.planning: plan is the controller's own preview (the real controller of the local target, with no
cluster running), changes nothing, and checks input exactly as apply does; lint needs no store.

The recorded status is written by the test the way the controller records a deployed job."""

from __future__ import annotations

from pathlib import Path

import pytest

from flinkops.api.models import (
    DeploymentRecord,
    FlinkDeployment,
    FlinkDeploymentStatus,
    JobManagerDeploymentStatus,
    JobStatus,
    LifecycleState,
    ReconciliationState,
    ReconciliationStatus,
)
from flinkops.core.specs import dump_reconciled_spec
from flinkops.errors import InvalidInput
from flinkops.service import KubernetesTarget, apply, lint, load_text, plan, resolve
from support.service import TestTarget, deployment, session_cluster, session_job

CHECKPOINTED = {"execution.checkpointing.interval": "10 s"}
JOB_ID = "a" * 32


def version(arg: str) -> FlinkDeployment:
    return deployment(config=CHECKPOINTED, upgrade_mode="savepoint", args=[arg])


def deployed(target: TestTarget, resource: FlinkDeployment) -> None:
    """Record ``resource`` as running stably, after one restart that took 1.5 s."""
    (applied,) = apply(target, [resource])
    spec = dump_reconciled_spec(resource.spec, first_deployment=True)
    status = FlinkDeploymentStatus(
        reconciliation_status=ReconciliationStatus(
            last_reconciled_spec=spec, last_stable_spec=spec, state=ReconciliationState.DEPLOYED
        ),
        observed_generation=1,
        lifecycle_state=LifecycleState.STABLE,
        job_status=JobStatus(job_id=JOB_ID, state="RUNNING"),
        job_manager_deployment_status=JobManagerDeploymentStatus.READY,
        deployment_history=[
            DeploymentRecord(generation=1, job_id="b" * 32),
            DeploymentRecord(generation=1, job_id=JOB_ID, reason="recover", stopped_at=1_000, running_at=2_500),
        ],
    )
    target.store().update_status(applied.resource.model_copy(update={"status": status}))


def test_a_new_deployment_plans_its_first_deploy_and_writes_nothing(target: TestTarget) -> None:
    report = plan(target, [version("--a")])
    (planned,) = report.resources
    assert planned.create and planned.change is None and planned.downtime is None
    assert planned.summary == "first deployment"
    assert planned.steps == ("deploy cluster for generation 1",)
    assert target.documents() == [] and target.controller_starts == 0
    (findings,) = report.lint
    assert {f.rule_id for f in findings.findings} >= {"FO006"}  # savepoint mode without a savepoint directory


def test_an_update_shows_the_diff_class_the_fields_and_the_measured_downtime(target: TestTarget) -> None:
    deployed(target, version("--a"))
    (planned,) = plan(target, [version("--b")]).resources
    assert not planned.create
    assert planned.change is not None and (planned.change.kind, planned.change.fields) == (
        "UPGRADE",
        ("spec.job.args",),
    )
    assert planned.steps == ("deploy cluster for generation 2",)
    # No cluster runs here: the controller says it falls back to the last state instead of a savepoint.
    assert "SavepointFallback" in {n.reason for n in planned.notes}
    assert "SpecChanged" not in {n.reason for n in planned.notes}
    assert planned.downtime is not None and planned.downtime.measured_ms == (1_500,)
    assert planned.downtime.median_s == 1.5 and planned.downtime.last_s == 1.5
    assert resolve(target, "fraud").metadata.generation == 1  # plan changes nothing

    (same,) = plan(target, [version("--a")]).resources
    assert same.change is not None and not same.change.any


def test_plan_checks_input_as_apply_does(target: TestTarget) -> None:
    with pytest.raises(InvalidInput) as exc:
        plan(target, [session_job("misplaced", cluster="fraud"), deployment(parallelism=0)])
    assert {p.path for p in exc.value.problems} == {"spec.deploymentName", "spec.job.parallelism"}
    (cluster, job) = plan(target, [session_cluster(), session_job()]).resources
    assert cluster.create and job.create and job.downtime is None


def test_plan_reasons_about_the_whole_file_as_apply_does(target: TestTarget) -> None:
    # Jobs first, their cluster last (the order GitOps tools may use): the jobs wait for the cluster of this file.
    first, second, cluster = plan(target, [session_job("a"), session_job("b"), session_cluster()]).resources
    assert cluster.create and cluster.summary == "first deployment"
    for job in (first, second):
        assert job.create and "no valid spec" not in job.summary
        assert "session cluster 'session'" in job.summary and "this input" in job.summary, job.summary
        assert job.steps == ("submit the job once session cluster 'session' is ready",)
        assert not [n for n in job.notes if n.type == "Warning"]
    (orphan,) = plan(target, [session_job("orphan", cluster="nowhere")]).resources
    assert "session cluster 'nowhere'" in orphan.summary and "does not exist yet" in orphan.summary


def test_plan_is_for_local_clusters_only() -> None:
    with pytest.raises(InvalidInput, match="works on local clusters only"):
        plan(KubernetesTarget(context="elsewhere"), [deployment()])


def test_lint_needs_only_the_resources() -> None:
    clean, risky = lint([session_cluster(), version("--a")])
    assert clean.findings == ()
    assert risky.key.name == "fraud" and any(f.severity == "error" for f in risky.findings)


CANARIES = """\
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: canary
  labels: {flink.apache.org/canary: "true"}
---
apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata:
  name: canary-job
  labels: {flink.apache.org/canary: "true"}
"""


def test_canaries_are_accepted_and_plan_to_deploy_nothing(target: TestTarget) -> None:
    resources = load_text(target, CANARIES, "canaries.yaml", Path("."))
    report = plan(target, resources)
    for planned in report.resources:
        assert planned.steps == () and "health probe" in planned.summary, planned
    assert all(findings.findings == () for findings in report.lint)
    assert [a.outcome for a in apply(target, resources)] == ["created", "created"]
