"""Semantic validation: the rules a loaded resource must pass before flinkops runs it."""

from __future__ import annotations

from typing import Any

import pytest

from flinkops.api.loader import Resource, dump_resource, load_documents, load_object
from flinkops.api.models import FlinkDeployment, FlinkSessionJob
from flinkops.api.validation import config_path, validate_against, validate_resource, validate_update
from flinkops.errors import InvalidInput, Problem

CHECKPOINTS = {"state.checkpoints.dir": "file:///tmp/cp"}
SAVEPOINTS = {"state.savepoints.dir": "file:///tmp/sp"}
HA = {"high-availability.type": "kubernetes", "high-availability.storageDir": "file:///tmp/ha"}


def deployment(
    name: str = "orders",
    *,
    namespace: str = "default",
    conf: dict[str, Any] | None = None,
    job: dict[str, Any] | None = None,
    **spec: Any,
) -> FlinkDeployment:
    body: dict[str, Any] = {"flinkVersion": "v1_20", **spec}
    if conf is not None:
        body["flinkConfiguration"] = conf
    if job is not None:
        body["job"] = job
    resource = load_object(
        {
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": body,
        }
    )
    assert isinstance(resource, FlinkDeployment)
    return resource


def app(conf: dict[str, Any] | None = None, **job: Any) -> FlinkDeployment:
    return deployment(conf=conf, job={"jarURI": "local:///job.jar", "parallelism": 2, **job})


def session_job(
    name: str = "inv-job-1",
    *,
    target: str = "session",
    namespace: str = "default",
    job: dict[str, Any] | None = None,
    conf: dict[str, Any] | None = None,
) -> FlinkSessionJob:
    spec: dict[str, Any] = {"deploymentName": target}
    if job is not None:
        spec["job"] = job
    if conf is not None:
        spec["flinkConfiguration"] = conf
    resource = load_object(
        {
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkSessionJob",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )
    assert isinstance(resource, FlinkSessionJob)
    return resource


def paths(problems: list[Problem]) -> list[str]:
    assert all(p.hint for p in problems), "every problem tells the user what to do"
    return [p.path for p in problems]


# ------------------------------------------------------------------------------------------- one resource


def test_a_plain_application_and_a_session_cluster_are_valid() -> None:
    assert validate_resource(app()) == []
    assert validate_resource(deployment()) == []


@pytest.mark.parametrize("name", ["a", "fraud-scoring", "a" * 45, "job-2"])
def test_valid_deployment_names(name: str) -> None:
    assert validate_resource(deployment(name)) == []


@pytest.mark.parametrize("name", ["Fraud", "fraud_scoring", "2fraud", "fraud-", "a" * 46, "fraud.scoring"])
def test_invalid_deployment_names_get_a_suggestion(name: str) -> None:
    (problem,) = validate_resource(deployment(name))

    assert problem.path == "metadata.name"
    assert f"'{name}' is not a valid FlinkDeployment name" in problem.message
    assert problem.hint.startswith("try '")


def test_session_job_names_follow_kubernetes_object_names() -> None:
    assert validate_resource(session_job("inventory.job-1")) == []
    assert paths(validate_resource(session_job("Inventory_Job"))) == ["metadata.name"]


def test_invalid_namespace() -> None:
    assert paths(validate_resource(deployment(namespace="Payments"))) == ["metadata.namespace"]


def test_problems_name_the_resource_they_are_about() -> None:
    (problem,) = validate_resource(deployment("Bad"))
    assert problem.source == "FlinkDeployment default/Bad"
    (problem,) = validate_resource(deployment("Bad"), source="apps.yaml#2")
    assert problem.source == "apps.yaml#2"


def test_flink_version_is_required_but_the_image_may_be_anything() -> None:
    resource = deployment(image="<REGISTRY>/whatever:latest").model_copy(deep=True)
    without_version = resource.model_copy(update={"spec": resource.spec.model_copy(update={"flink_version": None})})

    assert validate_resource(resource) == []
    (problem,) = validate_resource(without_version)
    assert (problem.path, problem.message) == ("spec.flinkVersion", "missing required field")
    assert "v1_20" in problem.hint


def test_unsupported_flink_versions() -> None:
    assert paths(validate_resource(deployment(flinkVersion="v1_14"))) == ["spec.flinkVersion"]
    assert validate_resource(deployment(flinkVersion="v1_15")) == []


@pytest.mark.parametrize("parallelism", [0, -1, None])
def test_parallelism_must_be_positive_without_taskmanager_replicas(parallelism: int | None) -> None:
    job: dict[str, Any] = {"jarURI": "local:///job.jar"}
    if parallelism is not None:
        job["parallelism"] = parallelism

    assert paths(validate_resource(deployment(job=job))) == ["spec.job.parallelism"]
    assert validate_resource(deployment(job=job, taskManager={"replicas": 2})) == []


def test_jobmanager_replicas() -> None:
    assert paths(validate_resource(deployment(jobManager={"replicas": 0}))) == ["spec.jobManager.replicas"]
    (problem,) = validate_resource(deployment(jobManager={"replicas": 2}))
    assert problem.path == "spec.jobManager.replicas"
    assert "high availability" in problem.message
    assert validate_resource(deployment(jobManager={"replicas": 2}, conf=HA)) == []


@pytest.mark.parametrize(
    ("conf", "ok"),
    [
        ({"high-availability": "zookeeper", "high-availability.zookeeper.quorum": "zk:2181"}, True),  # legacy key
        ({"high-availability.type": "KUBERNETES"}, True),
        (
            {"high-availability": "org.apache.flink.kubernetes.highavailability.KubernetesHaServicesFactory"},
            True,
        ),
        ({"high-availability.type": "NONE"}, False),
        ({"high-availability.type": "none", "high-availability": "zookeeper"}, False),  # the new key wins
        ({}, False),
    ],
)
def test_what_counts_as_high_availability(conf: dict[str, str], ok: bool) -> None:
    problems = validate_resource(deployment(jobManager={"replicas": 2}, conf=conf))

    assert (problems == []) is ok


def test_zookeeper_high_availability_needs_a_quorum() -> None:
    for key in ("high-availability.type", "high-availability"):
        problems = validate_resource(deployment(jobManager={"replicas": 2}, conf={key: "zookeeper"}))
        assert paths(problems) == [config_path(key)]
        assert "high-availability.zookeeper.quorum" in problems[0].message
    quorum = {"high-availability.type": "zookeeper", "high-availability.zookeeper.quorum": "127.0.0.1:2181"}
    assert validate_resource(deployment(jobManager={"replicas": 2}, conf=quorum)) == []


def test_unknown_high_availability_type() -> None:
    problems = validate_resource(deployment(conf={"high-availability.type": "kubernets"}))

    assert paths(problems) == ['spec.flinkConfiguration["high-availability.type"]']
    assert "unknown high-availability type 'kubernets'" in problems[0].message


def test_taskmanager_replicas_at_least_one_when_set() -> None:
    assert paths(validate_resource(deployment(taskManager={"replicas": 0}))) == ["spec.taskManager.replicas"]
    assert validate_resource(deployment(taskManager={"replicas": 1})) == []


@pytest.mark.parametrize("key", ["kubernetes.namespace", "kubernetes.cluster-id", "high-availability.cluster-id"])
def test_forbidden_configuration_keys(key: str) -> None:
    assert paths(validate_resource(deployment(conf={key: "x"}))) == [f'spec.flinkConfiguration["{key}"]']


def test_log_configuration_files() -> None:
    good = {"log4j-console.properties": "rootLogger.level = INFO", "logback-console.xml": "<configuration/>"}
    assert validate_resource(deployment(logConfiguration=good)) == []
    problems = validate_resource(deployment(logConfiguration={"log4j.properties": "x"}))
    assert paths(problems) == ['spec.logConfiguration["log4j.properties"]']


@pytest.mark.parametrize("mode", ["last-state", "savepoint"])
def test_stateful_upgrade_modes_need_a_checkpoint_dir(mode: str) -> None:
    problems = validate_resource(app(conf=SAVEPOINTS, upgradeMode=mode))

    assert paths(problems) == ["spec.job.upgradeMode"]
    assert "checkpoint directory" in problems[0].message
    assert validate_resource(app(conf={**CHECKPOINTS, **SAVEPOINTS}, upgradeMode=mode)) == []
    assert (
        validate_resource(app(conf={"execution.checkpointing.dir": "s3://b/cp", **SAVEPOINTS}, upgradeMode=mode)) == []
    )


def test_savepoint_upgrade_mode_needs_a_savepoint_dir() -> None:
    problems = validate_resource(app(conf=CHECKPOINTS, upgradeMode="savepoint"))

    assert paths(problems) == ["spec.job.upgradeMode"]
    assert "savepoint directory" in problems[0].message
    flink2 = {**CHECKPOINTS, "execution.checkpointing.savepoint-dir": "s3://b/sp"}
    assert validate_resource(app(conf=flink2, upgradeMode="savepoint")) == []


def test_savepoint_trigger_nonce_needs_a_savepoint_dir() -> None:
    assert paths(validate_resource(app(savepointTriggerNonce=1))) == ["spec.job.savepointTriggerNonce"]
    assert validate_resource(app(conf=SAVEPOINTS, savepointTriggerNonce=1)) == []


def test_periodic_savepoints_need_a_savepoint_dir() -> None:
    key = "kubernetes.operator.periodic.savepoint.interval"
    assert paths(validate_resource(app(conf={key: "1h"}))) == [f'spec.flinkConfiguration["{key}"]']
    assert validate_resource(app(conf={key: "1h", **SAVEPOINTS})) == []
    assert validate_resource(app(conf={key: "0"})) == []  # 0 turns them off
    (problem,) = validate_resource(app(conf={key: "hourly", **SAVEPOINTS}))
    assert "'hourly' is not a duration" in problem.message


def test_savepoint_redeploy_needs_an_initial_savepoint_path() -> None:
    assert paths(validate_resource(app(savepointRedeployNonce=1))) == ["spec.job.savepointRedeployNonce"]
    assert validate_resource(app(savepointRedeployNonce=1, initialSavepointPath="s3://b/sp/savepoint-1")) == []


def test_rollback_needs_somewhere_to_find_the_last_state() -> None:
    key = "kubernetes.operator.deployment.rollback.enabled"
    assert paths(validate_resource(app(conf={key: "true"}))) == [f'spec.flinkConfiguration["{key}"]']
    assert validate_resource(app(conf={key: "true", **HA})) == []
    assert validate_resource(app(conf={key: "true", **CHECKPOINTS})) == [], "no HA needed: storage has the state"
    assert validate_resource(app(conf={key: "true"}), default_state_dirs=True) == []
    assert validate_resource(app(conf={key: "false"})) == []


def test_periodic_snapshots_accept_durations_and_quartz_cron() -> None:
    key = "kubernetes.operator.periodic.savepoint.interval"
    assert validate_resource(app(conf={key: "0 0 */6 * * ?", **SAVEPOINTS})) == []
    ckey = "kubernetes.operator.periodic.checkpoint.interval"
    assert validate_resource(app(conf={ckey: "10 min", **SAVEPOINTS})) == []
    (problem,) = validate_resource(app(conf={ckey: "0 0 * * *", **SAVEPOINTS}))
    assert problem.path == f'spec.flinkConfiguration["{ckey}"]'


def test_session_job_without_a_job_is_valid() -> None:
    assert validate_resource(session_job()) == []


def test_session_job_with_a_job_needs_a_jar() -> None:
    assert paths(validate_resource(session_job(job={"parallelism": 2}))) == ["spec.job.jarURI"]
    assert validate_resource(session_job(job={"jarURI": "https://repo/job.jar"})) == []
    assert paths(validate_resource(session_job(job={"jarURI": "https://repo/job.jar", "parallelism": 0}))) == [
        "spec.job.parallelism"
    ]


def test_all_problems_of_a_resource_are_reported_together() -> None:
    resource = deployment(
        "Bad_Name",
        jobManager={"replicas": 3},
        conf={"kubernetes.namespace": "x"},
        job={"jarURI": "local:///j.jar", "upgradeMode": "savepoint"},
    )

    assert sorted(paths(validate_resource(resource))) == sorted(
        [
            "metadata.name",
            'spec.flinkConfiguration["kubernetes.namespace"]',
            "spec.jobManager.replicas",
            "spec.job.upgradeMode",
            "spec.job.upgradeMode",
            "spec.job.parallelism",
        ]
    )


# ------------------------------------------------------------------------------------- across resources


def key(r: Resource) -> tuple[str, str, str]:
    return (r.kind, r.metadata.namespace, r.metadata.name)


def test_session_job_target_in_the_same_batch_or_existing() -> None:
    cluster = deployment("session")
    job = session_job(job={"jarURI": "https://repo/job.jar"})

    assert validate_against([cluster, job], {}) == []
    assert validate_against([job], {key(cluster): cluster}) == []


def test_a_session_job_whose_cluster_does_not_exist_yet_is_valid() -> None:
    # GitOps tools apply objects in any order: the job waits for its cluster, as the reference operator's does.
    job = session_job()
    elsewhere = deployment("session", namespace="other")

    assert validate_against([job], {}) == []
    assert validate_against([job], {key(elsewhere): elsewhere}) == []


def test_session_job_target_must_be_a_session_cluster() -> None:
    application = deployment("session", job={"jarURI": "local:///j.jar", "parallelism": 1})

    (problem,) = validate_against([session_job(), application], {})

    assert problem.path == "spec.deploymentName"
    assert "application cluster" in problem.message


def test_the_batch_replaces_what_exists() -> None:
    old_session = deployment("session")
    now_application = deployment("session", job={"jarURI": "local:///j.jar", "parallelism": 1})

    assert paths(validate_against([now_application, session_job()], {key(old_session): old_session})) == [
        "spec.deploymentName"
    ]


def test_session_job_state_dirs_may_come_from_the_session_cluster() -> None:
    stateful = {"jarURI": "https://repo/job.jar", "upgradeMode": "savepoint"}
    bare = deployment("session")
    configured = deployment("session", conf={**CHECKPOINTS, **SAVEPOINTS})

    assert validate_resource(session_job(job=stateful)) == []  # cannot know yet
    assert paths(validate_against([bare, session_job(job=stateful)], {})) == [
        "spec.job.upgradeMode",
        "spec.job.upgradeMode",
    ]
    assert validate_against([configured, session_job(job=stateful)], {}) == []
    assert validate_against([bare, session_job(job=stateful, conf={**CHECKPOINTS, **SAVEPOINTS})], {}) == []


def test_duplicates_in_one_batch() -> None:
    problems = validate_against([deployment("a"), deployment("a"), deployment("a", namespace="x")], {})

    assert paths(problems) == ["metadata.name"]
    assert "defined more than once" in problems[0].message


def test_validate_against_accepts_keys_typed_with_the_models_literal_kinds() -> None:
    cluster = deployment("session")
    existing = {(cluster.kind, cluster.metadata.namespace, cluster.metadata.name): cluster}

    assert validate_against([session_job()], existing) == []


# --------------------------------------------------------------------------------------------- updates


def test_session_and_application_cannot_be_swapped() -> None:
    session = deployment("x")
    application = deployment("x", job={"jarURI": "local:///j.jar", "parallelism": 1})

    assert paths(validate_update(session, application)) == ["spec.job"]
    assert paths(validate_update(application, session)) == ["spec.job"]
    assert validate_update(application, application) == []


def test_mode_cannot_change_but_unset_means_native() -> None:
    assert paths(validate_update(deployment(mode="native"), deployment(mode="standalone"))) == ["spec.mode"]
    assert validate_update(deployment(), deployment(mode="native")) == []


def test_session_job_cannot_move_to_another_cluster() -> None:
    assert paths(validate_update(session_job(target="a"), session_job(target="b"))) == ["spec.deploymentName"]
    assert validate_update(session_job(target="a"), session_job(target="a", job={"jarURI": "https://r/j.jar"})) == []


def test_local_default_state_dirs_satisfy_stateful_upgrade_modes() -> None:
    """The local runtime supplies checkpoint/savepoint dirs under FLINKOPS_HOME; Kubernetes does not."""
    from flinkops.api.loader import load_documents
    from flinkops.api.validation import validate_resource as check

    (resource,) = load_documents(
        "apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata: {name: x}\n"
        "spec: {flinkVersion: v2_2, job: {jarURI: 'local:///j.jar', parallelism: 1, upgradeMode: savepoint}}\n"
    )
    assert {p.path for p in check(resource)} >= {"spec.job.upgradeMode"}
    assert check(resource, default_state_dirs=True) == []


def test_savepoint_retention_settings_are_checked() -> None:
    key = "kubernetes.operator.savepoint.history.max.count"
    (problem,) = validate_resource(app(conf={key: "ten", **SAVEPOINTS}))
    assert problem.path == f'spec.flinkConfiguration["{key}"]' and "'ten' is not a whole number" in problem.message
    age = "kubernetes.operator.savepoint.history.max.age"
    assert paths(validate_resource(app(conf={age: "forever", **SAVEPOINTS}))) == [f'spec.flinkConfiguration["{age}"]']
    assert validate_resource(app(conf={key: "3", age: "2 h", **SAVEPOINTS})) == []


CANARY = """\
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: canary
  labels:
    flink.apache.org/canary: "true"
---
apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata:
  name: canary-job
  labels:
    flink.apache.org/canary: "TRUE"
"""


def test_canaries_need_no_spec_and_are_valid() -> None:
    # The reference's canaries (its health probe of the control loop) carry only the label.
    cluster, job = load_documents(CANARY, "canaries.yaml")
    assert cluster.is_canary and job.is_canary
    assert validate_resource(cluster) == [] and validate_resource(job) == []
    assert validate_against([cluster, job], {}) == []
    assert load_object(dump_resource(job)) == job  # they round-trip through a store


def test_a_resource_labelled_canary_false_still_needs_its_spec() -> None:
    with pytest.raises(InvalidInput) as exc:
        load_documents(CANARY.split("---")[0].replace('"true"', '"false"'), "x.yaml")
    assert [p.path for p in exc.value.problems] == ["spec"]
