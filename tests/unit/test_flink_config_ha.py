"""Rendering a cluster's Flink config with ZooKeeper high availability, and reading the HA settings back."""

from __future__ import annotations

from typing import Any

from flinkops.api.loader import load_object
from flinkops.api.models import FlinkDeployment
from flinkops.flink.config import (
    ZOOKEEPER_HA_DEFAULTS,
    RenderInputs,
    ha_cluster_id,
    render_flink_config,
    zookeeper_ha,
)

STATE = "file:///home/u/.flinkops/state/payments/fraud"
ZK = {"high-availability.type": "zookeeper", "high-availability.zookeeper.quorum": "127.0.0.1:2181"}


def render(conf: dict[str, str], *, name: str = "fraud", namespace: str = "payments") -> dict[str, str]:
    body: dict[str, Any] = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"flinkVersion": "v2_2", "flinkConfiguration": conf, "jobManager": {"replicas": 2}},
    }
    resource = load_object(body)
    assert isinstance(resource, FlinkDeployment)
    inputs = RenderInputs(name=name, namespace=namespace, default_state_uri=STATE, python_executable="python3")
    return render_flink_config(resource.spec, inputs)


def test_zookeeper_ha_gets_storage_under_the_state_dir_a_cluster_id_and_fast_failover_timeouts() -> None:
    config = render(ZK)
    assert config["high-availability.storageDir"] == f"{STATE}/ha"
    assert config["high-availability.cluster-id"] == "/flinkops/payments/fraud"
    for key, value in ZOOKEEPER_HA_DEFAULTS.items():
        assert config[key] == value
    assert config["high-availability.zookeeper.client.tolerate-suspended-connections"] == "true"
    session = config["high-availability.zookeeper.client.session-timeout"]
    assert session.endswith(" s") and int(session.split()[0]) <= 10, "Flink's 60 s default makes failover slow"


def test_the_legacy_ha_key_is_understood_too() -> None:
    config = render({"high-availability": "ZooKeeper", "high-availability.zookeeper.quorum": "zk:2181"})
    assert config["high-availability.cluster-id"] == "/flinkops/payments/fraud"
    assert config["high-availability.storageDir"] == f"{STATE}/ha"


def test_user_settings_win_over_the_ha_defaults() -> None:
    config = render(
        {
            **ZK,
            "high-availability.storageDir": "s3://bucket/ha",
            "high-availability.zookeeper.client.session-timeout": "30 s",
            "high-availability.zookeeper.client.tolerate-suspended-connections": "false",
        }
    )
    assert config["high-availability.storageDir"] == "s3://bucket/ha"
    assert config["high-availability.zookeeper.client.session-timeout"] == "30 s"
    assert config["high-availability.zookeeper.client.tolerate-suspended-connections"] == "false"
    assert (
        config["high-availability.zookeeper.client.retry-wait"]
        == ZOOKEEPER_HA_DEFAULTS["high-availability.zookeeper.client.retry-wait"]
    )


def test_without_zookeeper_ha_no_ha_key_is_added() -> None:
    for conf in ({}, {"high-availability.type": "NONE"}, {"high-availability.type": "kubernetes"}):
        config = render(conf)
        assert not any(k.startswith("high-availability.zookeeper.") for k in config)
        assert "high-availability.cluster-id" not in config
        assert "high-availability.storageDir" not in config


def test_cluster_ids_never_collide_across_namespaces_and_names() -> None:
    # A '-' join would map both of these to "a-b-c"; namespaces and names never contain '/'.
    assert ha_cluster_id("a-b", "c") != ha_cluster_id("a", "b-c")
    assert render(ZK, namespace="a-b", name="c")["high-availability.cluster-id"] == "/flinkops/a-b/c"


def test_zookeeper_ha_reads_the_settings_back_like_flink_joins_paths() -> None:
    ha = zookeeper_ha(render(ZK))
    assert ha is not None
    assert ha.quorum == "127.0.0.1:2181"
    assert ha.path == "/flink/flinkops/payments/fraud"
    assert ha.latch_path == "/flink/flinkops/payments/fraud/leader/latch"
    assert ha.connection_info_path("rest_server") == "/flink/flinkops/payments/fraud/leader/rest_server/connection_info"
    assert ha.storage_dir == f"{STATE}/ha"

    custom = zookeeper_ha(
        {**ZK, "high-availability.zookeeper.path.root": "/apps/", "high-availability.cluster-id": "x/"}
    )
    assert custom is not None and custom.path == "/apps/x"
    assert zookeeper_ha({**ZK, "high-availability.cluster-id": ""}) is not None  # Flink's /default then


def test_zookeeper_ha_is_none_without_zookeeper_or_quorum() -> None:
    assert zookeeper_ha({}) is None
    assert zookeeper_ha({"high-availability.type": "kubernetes"}) is None
    assert zookeeper_ha({"high-availability.type": "zookeeper"}) is None


K8S_FACTORY = "org.apache.flink.kubernetes.highavailability.KubernetesHaServicesFactory"


def render_local(conf: dict[str, str]) -> dict[str, str]:
    body: dict[str, Any] = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "fraud", "namespace": "payments"},
        "spec": {"flinkVersion": "v2_2", "flinkConfiguration": conf},
    }
    resource = load_object(body)
    assert isinstance(resource, FlinkDeployment)
    inputs = RenderInputs("fraud", "payments", default_state_uri=STATE, python_executable="python3", local=True)
    return render_flink_config(resource.spec, inputs)


def test_kubernetes_ha_is_left_out_on_this_machine_where_there_is_no_kubernetes_api() -> None:
    """The reference's HA examples (``high-availability: ...KubernetesHaServicesFactory`` or ``.type:
    kubernetes``) crash-looped locally: Flink's Kubernetes HA needs the API server and ``kubernetes.cluster-id``.
    Locally the controller recovers a dead JobManager from the newest checkpoint instead (failed before the fix:
    the keys reached Flink)."""
    for key, value in (("high-availability.type", "kubernetes"), ("high-availability", K8S_FACTORY)):
        config = render_local({key: value, "high-availability.storageDir": "file:///flink-data/ha"})
        assert "high-availability" not in config and "kubernetes.cluster-id" not in config
        assert config["high-availability.type"] == "NONE"


def test_kubernetes_ha_is_kept_where_clusters_run_on_kubernetes() -> None:
    body: dict[str, Any] = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "fraud"},
        "spec": {"flinkVersion": "v2_2", "flinkConfiguration": {"high-availability.type": "kubernetes"}},
    }
    resource = load_object(body)
    assert isinstance(resource, FlinkDeployment)
    config = render_flink_config(resource.spec, RenderInputs("fraud", "default", None, ""))
    assert config["high-availability.type"] == "kubernetes"


def test_zookeeper_ha_stays_on_this_machine() -> None:
    assert render_local(ZK)["high-availability.type"] == "zookeeper"
