"""The YAML from the seed guides loads and validates unchanged: what users already run must keep working."""

from __future__ import annotations

from pathlib import Path

import pytest

from flinkops.api.loader import Resource, load_documents, load_object
from flinkops.api.models import FlinkDeployment, FlinkSessionJob, UpgradeMode
from flinkops.api.validation import validate_against, validate_resource
from flinkops.core.lint import lint

SEEDS = Path(__file__).parent.parent / "fixtures" / "seeds"
FIXTURES = sorted(p.name for p in SEEDS.glob("*.yaml"))


def load(name: str) -> Resource:
    (resource,) = load_documents((SEEDS / name).read_text(), name)
    return resource


def key(r: Resource) -> tuple[str, str, str]:
    return (r.kind, r.metadata.namespace, r.metadata.name)


def test_all_seed_fixtures_are_present() -> None:
    assert FIXTURES == [
        "datalake-session-job.yaml",
        "eks-session-cluster.yaml",
        "eks-session-job.yaml",
        "fraud-scoring-rollback.yaml",
        "fraud-scoring.yaml",
    ]


@pytest.mark.parametrize("name", FIXTURES)
def test_seed_parses_and_validates_as_is(name: str) -> None:
    resource = load(name)

    assert validate_resource(resource) == []


@pytest.mark.parametrize("name", FIXTURES)
def test_seed_lints_clean(name: str) -> None:
    assert lint(load(name)) == []


def test_fraud_scoring_keeps_every_setting_of_the_guide() -> None:
    resource = load("fraud-scoring.yaml")

    assert isinstance(resource, FlinkDeployment)
    assert (resource.metadata.namespace, resource.metadata.name) == ("payments", "fraud-scoring")
    spec = resource.spec
    assert spec.image == "<REGISTRY>/payments/fraud-scoring:1.4.0"
    assert spec.service_account == "flink"
    assert spec.job is not None
    assert spec.job.jar_uri == "local:///opt/flink/usrlib/fraud-scoring.jar"
    assert (spec.job.parallelism, spec.job.upgrade_mode) == (6, UpgradeMode.SAVEPOINT)
    assert spec.job_manager is not None and spec.job_manager.resource is not None
    assert (spec.job_manager.resource.memory, spec.job_manager.resource.cpu) == ("2048m", 1)
    assert spec.task_manager is not None and spec.task_manager.resource is not None
    assert (spec.task_manager.resource.memory, spec.task_manager.resource.cpu) == ("4096m", 2)
    assert spec.task_manager.pod_template == spec.job_manager.pod_template
    assert spec.job_manager.pod_template is not None
    annotations = spec.job_manager.pod_template["metadata"]["annotations"]
    assert annotations["vault.hashicorp.com/agent-inject-secret-kafka.properties"] == "secret/payments/kafka"
    assert len(spec.flink_configuration) == 18
    assert spec.flink_configuration["execution.checkpointing.interval"] == "30 s"
    assert spec.flink_configuration["metrics.reporter.dghttp.apikey"] == "${DD_API_KEY}"


def test_rollback_fixture_is_the_deployment_plus_the_rollback_patch() -> None:
    deployment, rollback = load("fraud-scoring.yaml"), load("fraud-scoring-rollback.yaml")

    assert isinstance(rollback, FlinkDeployment) and isinstance(deployment, FlinkDeployment)
    assert rollback.spec.image == "<REGISTRY>/payments/fraud-scoring:1.4.0"
    assert rollback.spec.job is not None and deployment.spec.job is not None
    assert rollback.spec.job.initial_savepoint_path == (
        "s3://kv-flink-state-payments-prod/savepoints/savepoint-abc123-..."
    )
    assert rollback.spec.job.upgrade_mode is UpgradeMode.SAVEPOINT
    unpatched_job = rollback.spec.job.model_copy(update={"initial_savepoint_path": None})
    assert rollback.model_copy(update={"spec": rollback.spec.model_copy(update={"job": unpatched_job})}) == deployment


def test_eks_session_job_validates_against_its_session_cluster() -> None:
    cluster, job = load("eks-session-cluster.yaml"), load("eks-session-job.yaml")

    assert isinstance(cluster, FlinkDeployment) and cluster.is_session_cluster
    assert isinstance(job, FlinkSessionJob) and job.spec.job is None
    assert validate_against([cluster, job], {}) == []
    assert validate_against([job], {key(cluster): cluster}) == []
    assert validate_against([job], {}) == []  # not there yet: the job waits for it


def test_datalake_session_job_validates_against_its_session_deployment() -> None:
    job = load("datalake-session-job.yaml")
    assert isinstance(job, FlinkSessionJob) and job.spec.job is not None
    assert job.spec.job.jar_uri == "s3://897823709432-eu-west-2-datalake/jars/oc-inventory-app.jar"
    assert (job.spec.job.parallelism, job.spec.job.upgrade_mode) == (4, UpgradeMode.STATELESS)
    cluster = load_object(
        {
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkDeployment",
            "metadata": {"name": "oc-inventory-session-deployment-fdeploy"},
            "spec": {
                "flinkVersion": "v1_17",
                "flinkConfiguration": {"parallelism.default": "4", "s3.region": "eu-west-2"},
            },
        }
    )

    assert validate_resource(cluster) == []
    assert validate_against([job], {key(cluster): cluster}) == []
    assert validate_against([cluster, job], {}) == []


def test_all_seeds_together_are_one_valid_batch() -> None:
    resources = [load(name) for name in FIXTURES if name != "fraud-scoring-rollback.yaml"]
    datalake_cluster = load_object(
        {
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkDeployment",
            "metadata": {"name": "oc-inventory-session-deployment-fdeploy"},
            "spec": {"flinkVersion": "v1_17"},
        }
    )

    assert validate_against([*resources, datalake_cluster], {}) == []
