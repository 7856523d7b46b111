"""Lint guardrails: each rule fires on the pitfall it names and stays quiet on the recommended setup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flinkops.api.loader import Resource, load_documents, load_object
from flinkops.core.lint import RULES, Finding, lint

SEEDS = Path(__file__).parent.parent / "fixtures" / "seeds"

# A stateful job that follows the fraud-scoring guide, minus S3 (so the plugin rule stays out of the way).
GOOD: dict[str, str] = {
    "high-availability.type": "kubernetes",
    "high-availability.storageDir": "file:///state/ha",
    "state.backend.type": "rocksdb",
    "state.backend.incremental": "true",
    "state.checkpoints.dir": "file:///state/checkpoints",
    "state.savepoints.dir": "file:///state/savepoints",
    "execution.checkpointing.interval": "30 s",
    "execution.checkpointing.timeout": "10 min",
    "execution.checkpointing.min-pause": "10 s",
    "execution.checkpointing.max-concurrent-checkpoints": "1",
    "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
}


def deployment(
    conf: dict[str, Any] | None = None,
    *,
    job: dict[str, Any] | None = None,
    without: tuple[str, ...] = (),
    **spec: Any,
) -> Resource:
    flink_conf = {k: v for k, v in {**GOOD, **(conf or {})}.items() if k not in without}
    body: dict[str, Any] = {"flinkVersion": "v1_20", "flinkConfiguration": flink_conf, **spec}
    body["job"] = {"jarURI": "local:///job.jar", "parallelism": 2, "upgradeMode": "savepoint", **(job or {})}
    return load_object(
        {
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkDeployment",
            "metadata": {"name": "orders"},
            "spec": body,
        }
    )


def rules(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.rule_id, f.severity) for f in findings]


def only(findings: list[Finding], rule_id: str) -> list[Finding]:
    return [f for f in findings if f.rule_id == rule_id]


def seed(name: str) -> Resource:
    (resource,) = load_documents((SEEDS / name).read_text(), name)
    return resource


# --------------------------------------------------------------------------------------------- baseline


def test_the_recommended_setup_is_clean() -> None:
    assert lint(deployment()) == []


@pytest.mark.parametrize("name", ["fraud-scoring.yaml", "fraud-scoring-rollback.yaml"])
def test_the_fraud_scoring_seed_is_clean(name: str) -> None:
    assert lint(seed(name)) == []


def test_every_finding_explains_itself_and_has_a_known_rule() -> None:
    messy = deployment(
        {"high-availability.storageDir": "", "execution.checkpointing.min-pause": "0", "s3.secret-key": "x"},
        without=("state.savepoints.dir", "state.backend.incremental"),
        job={"upgradeMode": "stateless"},
    )

    findings = lint(messy)

    assert {f.rule_id for f in findings} == {"FO001", "FO002", "FO004", "FO005", "FO008"}
    for finding in findings:
        assert finding.rule_id in RULES
        assert finding.severity in ("error", "warning")
        assert finding.path and finding.message and finding.why and finding.fix
        assert finding.rule_id in finding.render()


# --------------------------------------------------------------------------------------------- FO001


def test_stateful_job_with_stateless_upgrades_is_an_error() -> None:
    (finding,) = lint(deployment(job={"upgradeMode": "stateless"}))

    assert (finding.rule_id, finding.severity, finding.path) == ("FO001", "error", "spec.job.upgradeMode")
    assert "checkpoint directory" in finding.message


def test_stateless_by_default_says_so() -> None:
    resource = load_object(
        {
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkDeployment",
            "metadata": {"name": "orders"},
            "spec": {"flinkVersion": "v1_20", "flinkConfiguration": GOOD, "job": {"parallelism": 1}},
        }
    )

    (finding,) = only(lint(resource), "FO001")
    assert "defaults to stateless" in finding.message


def test_rocksdb_alone_makes_a_job_stateful() -> None:
    conf = {"state.backend": "rocksdb", "state.backend.incremental": "true"}
    resource = load_object(
        {
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkSessionJob",
            "metadata": {"name": "j"},
            "spec": {"deploymentName": "s", "flinkConfiguration": conf, "job": {"jarURI": "https://r/j.jar"}},
        }
    )

    assert "FO001" in {f.rule_id for f in lint(resource)}


def test_a_stateless_job_without_state_config_may_upgrade_statelessly() -> None:
    assert lint(seed("datalake-session-job.yaml")) == []
    plain = deployment(
        job={"upgradeMode": "stateless"},
        without=tuple(GOOD),
    )
    assert lint(plain) == []


# --------------------------------------------------------------------------------------------- FO002


def test_ha_without_storage_dir_is_an_error() -> None:
    (finding,) = lint(deployment(without=("high-availability.storageDir",)))

    assert (finding.rule_id, finding.severity) == ("FO002", "error")
    assert finding.path == 'spec.flinkConfiguration["high-availability.type"]'


def test_legacy_ha_key_counts_and_none_is_off() -> None:
    legacy = deployment(
        {"high-availability": "zookeeper"}, without=("high-availability.type", "high-availability.storageDir")
    )
    off = deployment({"high-availability.type": "NONE"}, without=("high-availability.storageDir",))

    assert rules(lint(legacy)) == [("FO002", "error")]
    assert lint(off) == []


# --------------------------------------------------------------------------------------------- FO003

S3 = {
    "state.checkpoints.dir": "s3://bucket/checkpoints",
    "state.savepoints.dir": "s3://bucket/savepoints",
    "high-availability.storageDir": "s3://bucket/ha",
}


def with_plugins(env: str, where: str = "podTemplate") -> dict[str, Any]:
    template = {
        "spec": {
            "containers": [
                {
                    "name": "sidecar",
                    "env": [{"name": "ENABLE_BUILT_IN_PLUGINS", "value": "flink-s3-fs-hadoop.jar"}],
                },
                {
                    "name": "flink-main-container",
                    "env": [
                        {"name": "TZ", "value": "UTC"},
                        {"name": "ENABLE_BUILT_IN_PLUGINS", "value": env},
                    ],
                },
            ]
        }
    }
    if where == "podTemplate":
        return {"podTemplate": template}
    return {where: {"podTemplate": template}}


def test_image_with_s3_and_no_plugin_declaration_is_trusted() -> None:
    # The image may bake the plugin into plugins/ (the fraud-scoring Dockerfile does exactly that).
    assert lint(deployment(S3, image="registry/fraud:1.4.0")) == []


def test_exactly_one_declared_s3_plugin_is_clean() -> None:
    assert lint(deployment(S3, image="flink:1.18", **with_plugins("flink-s3-fs-presto-1.18.1.jar"))) == []
    assert lint(deployment({**S3, "flinkops.plugins": "s3-fs-presto"})) == []


def test_both_s3_plugins_with_s3_scheme_is_an_error() -> None:
    resource = deployment(
        S3, image="flink:1.18", **with_plugins("flink-s3-fs-presto-1.18.1.jar;flink-s3-fs-hadoop-1.18.1.jar")
    )

    (finding,) = lint(resource)

    assert (finding.rule_id, finding.severity) == ("FO003", "error")
    assert "both S3 filesystem plugins" in finding.message
    assert finding.path == "spec.podTemplate.spec.containers[1].env[1].value"


def test_both_plugins_are_fine_when_paths_pick_one_explicitly() -> None:
    explicit = {k: v.replace("s3://", "s3p://") for k, v in S3.items()}

    assert lint(deployment({**explicit, "flinkops.plugins": "s3-fs-presto;s3-fs-hadoop"})) == []


def test_declared_plugins_without_an_s3_one() -> None:
    in_image = deployment(S3, image="flink:1.18", **with_plugins("flink-queryable-state-runtime.jar"))
    local = deployment({**S3, "flinkops.plugins": "metrics-prometheus"})

    assert rules(lint(in_image)) == [("FO003", "warning")]  # the image might still carry it
    assert rules(lint(local)) == [("FO003", "error")]  # nothing else can provide it locally
    assert lint(local)[0].path == 'spec.flinkConfiguration["flinkops.plugins"]'


def test_scheme_specific_plugins() -> None:
    s3a = {k: v.replace("s3://", "s3a://") for k, v in S3.items()}

    (finding,) = lint(deployment({**s3a, "flinkops.plugins": "s3-fs-presto"}))
    assert "s3a://" in finding.message and "s3-fs-hadoop" in finding.message
    assert lint(deployment({**s3a, "flinkops.plugins": "s3-fs-hadoop"})) == []


def test_role_specific_pod_templates_are_checked() -> None:
    resource = deployment(
        S3, image="flink:1.18", **with_plugins("flink-s3-fs-presto.jar;flink-s3-fs-hadoop.jar", "taskManager")
    )

    (finding,) = lint(resource)
    assert finding.path.startswith("spec.taskManager.podTemplate.")


def test_local_deployment_with_s3_and_no_declaration_is_clean() -> None:
    # flinkops enables the S3 plugin the paths need on the local runtime (api.plugins.choose_plugins).
    assert lint(deployment(S3)) == []


# --------------------------------------------------------------------------------------------- FO004


def test_rocksdb_without_incremental_warns() -> None:
    (missing,) = lint(deployment(without=("state.backend.incremental",)))
    (off,) = lint(deployment({"state.backend.incremental": "false"}))

    assert (missing.rule_id, missing.severity) == ("FO004", "warning")
    assert "not enabled" in missing.message
    assert "turned off" in off.message


def test_flink2_incremental_key_counts() -> None:
    conf = {"execution.checkpointing.incremental": "true"}
    assert lint(deployment(conf, without=("state.backend.incremental",))) == []


def test_hashmap_backend_needs_no_incremental() -> None:
    assert lint(deployment({"state.backend.type": "hashmap"}, without=("state.backend.incremental",))) == []


# --------------------------------------------------------------------------------------------- FO005


@pytest.mark.parametrize(
    ("interval", "timeout", "min_pause", "concurrent", "fires"),
    [
        ("30 s", "10 min", "10 s", "1", False),  # the guide's recommendation
        ("10 s", "10 min", "0", "3", True),  # several checkpoints in flight at once
        ("10s", "600000", "0 ms", "1", True),  # back to back, no breathing room
        ("1 min", "30 s", "0", "1", False),  # a checkpoint always ends before the next is due
        ("30 s", "10 min", "5 s", "3", False),  # a min-pause limits Flink to one checkpoint at a time
        ("10 s", "10 min", "10 s", "1", True),  # min-pause >= interval: the interval means nothing
        ("10 s", None, None, None, True),  # Flink defaults: 10 min timeout, no min-pause
    ],
)
def test_checkpoint_timing(
    interval: str, timeout: str | None, min_pause: str | None, concurrent: str | None, fires: bool
) -> None:
    keys = {
        "execution.checkpointing.interval": interval,
        "execution.checkpointing.timeout": timeout,
        "execution.checkpointing.min-pause": min_pause,
        "execution.checkpointing.max-concurrent-checkpoints": concurrent,
    }
    conf = {k: v for k, v in keys.items() if v is not None}
    resource = deployment(conf, without=tuple(k for k, v in keys.items() if v is None))

    findings = lint(resource)

    assert rules(findings) == ([("FO005", "warning")] if fires else [])


def test_overlap_message_names_the_numbers() -> None:
    conf = {
        "execution.checkpointing.interval": "10 s",
        "execution.checkpointing.min-pause": "0",
        "execution.checkpointing.max-concurrent-checkpoints": "3",
    }

    (finding,) = lint(deployment(conf))

    assert "up to 3 checkpoints" in finding.message
    assert "10 min" in finding.message and "10 s" in finding.message


def test_no_checkpointing_no_timing_finding() -> None:
    assert lint(deployment(without=("execution.checkpointing.interval",))) == []


def test_unreadable_durations_are_errors() -> None:
    findings = lint(deployment({"execution.checkpointing.interval": "30 seconds please"}))

    assert rules(findings) == [("FO009", "error")]
    assert findings[0].path == 'spec.flinkConfiguration["execution.checkpointing.interval"]'


# --------------------------------------------------------------------------------------------- FO006


def test_savepoint_mode_without_savepoint_dir_is_an_error() -> None:
    (finding,) = lint(deployment(without=("state.savepoints.dir",)))

    assert (finding.rule_id, finding.severity, finding.path) == ("FO006", "error", "spec.job.upgradeMode")


def test_periodic_savepoints_without_savepoint_dir() -> None:
    key = "kubernetes.operator.periodic.savepoint.interval"
    resource = deployment({key: "1h"}, job={"upgradeMode": "last-state"}, without=("state.savepoints.dir",))

    (finding,) = lint(resource)
    assert (finding.rule_id, finding.path) == ("FO006", f'spec.flinkConfiguration["{key}"]')
    assert lint(deployment({key: "1h"})) == []


def test_flink2_savepoint_dir_counts() -> None:
    conf = {"execution.checkpointing.savepoint-dir": "file:///sp"}
    assert lint(deployment(conf, without=("state.savepoints.dir",))) == []


# --------------------------------------------------------------------------------------------- FO007


@pytest.mark.parametrize("value", [None, "DELETE_ON_CANCELLATION", "NO_EXTERNALIZED_CHECKPOINTS"])
def test_stateful_job_without_retained_checkpoints_warns(value: str | None) -> None:
    key = "execution.checkpointing.externalized-checkpoint-retention"
    resource = deployment({key: value} if value else {}, without=() if value else (key,))

    (finding,) = lint(resource)

    assert (finding.rule_id, finding.severity) == ("FO007", "warning")
    assert finding.path == f'spec.flinkConfiguration["{key}"]'


def test_retention_value_is_case_insensitive() -> None:
    conf = {"execution.checkpointing.externalized-checkpoint-retention": "retain_on_cancellation"}
    assert lint(deployment(conf)) == []


# --------------------------------------------------------------------------------------------- FO008

SECRET = "hunter2-Sup3rSecret-value"


@pytest.mark.parametrize(
    "key",
    [
        "metrics.reporter.dghttp.apikey",
        "s3.secret-key",
        "s3.access-key",
        "fs.s3a.secret.key",
        "security.ssl.rest.keystore-password",
        "metrics.reporter.x.api-key",
        "custom.auth.token",
        "gcs.credentials",
    ],
)
def test_literal_secrets_are_errors_and_never_printed(key: str) -> None:
    (finding,) = lint(deployment({key: SECRET}))

    assert (finding.rule_id, finding.severity) == ("FO008", "error")
    assert finding.path == f'spec.flinkConfiguration["{key}"]'
    assert SECRET not in finding.render()
    assert SECRET not in repr(finding)


def test_secret_inside_a_larger_value_is_found_and_not_printed() -> None:
    jaas = f'org.apache.kafka.common.security.scram.ScramLoginModule required user="fraud" password="{SECRET}";'

    (finding,) = lint(deployment({"properties.sasl.jaas.config": jaas}))

    assert finding.rule_id == "FO008"
    assert SECRET not in repr(finding)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("metrics.reporter.dghttp.apikey", "${DD_API_KEY}"),
        ("s3.secret-key", ""),
        ("fs.s3a.aws.credentials.provider", "com.amazonaws.auth.WebIdentityTokenCredentialsProvider"),
        ("security.delegation.tokens.enabled", "false"),
        ("kubernetes.secrets", "kafka-credentials:/opt/secrets"),
        (
            "properties.sasl.jaas.config",
            'ScramLoginModule required username="u" password="${KAFKA_PASSWORD}";',
        ),
    ],
)
def test_references_and_non_secret_keys_are_fine(key: str, value: str) -> None:
    assert lint(deployment({key: value})) == []


# --------------------------------------------------------------------------------------------- FO010 autoscaler


def test_an_autoscaler_without_the_adaptive_scheduler_rescales_by_restarts() -> None:
    (finding,) = only(lint(deployment({"job.autoscaler.enabled": "true"})), "FO010")
    assert (finding.severity, finding.path) == ("warning", 'spec.flinkConfiguration["jobmanager.scheduler"]')
    assert "savepoint upgrade" in finding.message
    adaptive = deployment({"job.autoscaler.enabled": "true", "jobmanager.scheduler": "adaptive"})
    assert only(lint(adaptive), "FO010") == []
    assert only(lint(deployment({"job.autoscaler.enabled": "false"})), "FO010") == []


def test_an_autoscaler_on_a_session_job_does_nothing_and_says_so() -> None:
    job = load_object(
        {
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkSessionJob",
            "metadata": {"name": "orders"},
            "spec": {
                "deploymentName": "session",
                "flinkConfiguration": {"job.autoscaler.enabled": "true"},
                "job": {"jarURI": "https://jars.example.invalid/job.jar", "upgradeMode": "stateless"},
            },
        }
    )
    (finding,) = only(lint(job), "FO010")
    assert finding.path == 'spec.flinkConfiguration["job.autoscaler.enabled"]' and "session job" in finding.message
