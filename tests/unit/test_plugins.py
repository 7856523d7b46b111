"""Which S3 plugins and connectors a deployment gets, from its paths or an explicit list."""

from __future__ import annotations

from typing import Any

import pytest

from flinkops.api.loader import load_object
from flinkops.api.models import FlinkDeployment
from flinkops.api.plugins import (
    S3_HADOOP,
    S3_PRESTO,
    choose_plugins,
    connector_coordinates,
    plugin_name,
    requested_connectors,
)


def deployment(config: dict[str, str], **spec: Any) -> FlinkDeployment:
    body = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "d"},
        "spec": {"flinkVersion": "v2_2", "flinkConfiguration": config, **spec},
    }
    resource = load_object(body)
    assert isinstance(resource, FlinkDeployment)
    return resource


def test_state_on_plain_s3_gets_presto() -> None:
    config = {"execution.checkpointing.dir": "s3://b/checkpoints", "high-availability.storageDir": "s3://b/ha"}
    choice = choose_plugins(deployment(config).spec, config)
    assert choice.plugins == (S3_PRESTO,)
    assert "s3://b/checkpoints" in choice.reasons[S3_PRESTO]


def test_a_sink_path_on_s3_gets_hadoop_which_then_serves_state_too() -> None:
    config = {"execution.checkpointing.dir": "s3://b/checkpoints"}
    choice = choose_plugins(deployment(config).spec, config, ["--output", "s3://lake/bronze/"])
    assert choice.plugins == (S3_HADOOP,)
    assert choice.ambiguity is None


def test_explicit_schemes_enable_both_without_ambiguity() -> None:
    config = {"execution.checkpointing.dir": "s3p://b/checkpoints"}
    choice = choose_plugins(deployment(config).spec, config, ["--output=s3a://lake/bronze/"])
    assert choice.plugins == (S3_HADOOP, S3_PRESTO)
    assert choice.ambiguity is None


def test_enable_built_in_plugins_in_a_pod_template_wins_at_our_flink_version() -> None:
    jars = "flink-s3-fs-presto-1.17.1.jar;flink-s3-fs-hadoop-1.17.1.jar"
    env = [{"name": "ENABLE_BUILT_IN_PLUGINS", "value": jars}]
    template = {"spec": {"containers": [{"name": "flink-main-container", "env": env}]}}
    config = {"execution.checkpointing.dir": "s3://b/c"}
    choice = choose_plugins(deployment(config, podTemplate=template).spec, config)
    assert choice.explicit and choice.plugins == (S3_PRESTO, S3_HADOOP)
    assert choice.ambiguity is not None and "s3p://" in choice.ambiguity


def test_containerized_env_key_and_flinkops_plugins_are_explicit_lists() -> None:
    config = {"containerized.taskmanager.env.ENABLE_BUILT_IN_PLUGINS": "flink-s3-fs-hadoop-2.2.1.jar"}
    assert choose_plugins(deployment(config).spec, config).plugins == (S3_HADOOP,)
    config = {"flinkops.plugins": "s3-fs-presto", "execution.checkpointing.dir": "s3a://b/c"}
    assert choose_plugins(deployment(config).spec, config).plugins == (S3_PRESTO,)


def test_no_s3_no_plugins() -> None:
    config = {"execution.checkpointing.dir": "file:///tmp/c"}
    assert choose_plugins(deployment(config).spec, config, ["--output", "/tmp/x"]).plugins == ()


@pytest.mark.parametrize(
    ("jar", "name"),
    [
        ("flink-s3-fs-presto-1.17.1.jar", "s3-fs-presto"),
        ("/opt/flink/opt/flink-s3-fs-hadoop-2.2.1.jar", "s3-fs-hadoop"),
        ("flink-gs-fs-hadoop-2.0.0.jar", "gs-fs-hadoop"),
        ("my-job.jar", None),
    ],
)
def test_plugin_names_from_jar_names(jar: str, name: str | None) -> None:
    assert plugin_name(jar) == name


def test_connectors_match_the_flink_version() -> None:
    assert requested_connectors({"flinkops.connectors": "Kafka, "}) == ["kafka"]
    assert connector_coordinates("kafka", "2.2.1") == ("org.apache.flink", "flink-sql-connector-kafka", "5.0.0-2.2")
    with pytest.raises(ValueError, match="unknown connector"):
        connector_coordinates("pulsar", "2.2.1")
    with pytest.raises(ValueError, match=r"Flink 1\.9\.0"):
        connector_coordinates("kafka", "1.9.0")
