"""The dev node's configuration files, rendered without running anything: the settings that make the node work
on this kind of machine (cgroup v1 through cgroupfs, no negative oom_score_adj, containerd's own directories)
and the ones that keep it on the machine (one fenced bridge, no masquerading, DNS through CoreDNS only and no
upstream, registries unreachable, servers on the bridge IP or loopback). Also the Debian mirror look-up and the
Flink configuration edits of the image. The processes themselves run in tests/kubernetes/test_node_live.py."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml

from flinkops.dev.node import config as cfg
from flinkops.dev.node.binaries import COREDNS_PLUGINS, DEBIAN_PACKAGES
from flinkops.dev.node.image import debian_mirror, flink_config_yaml, flink_image_names
from flinkops.errors import RuntimeFailure


@pytest.fixture
def layout(tmp_path: Path) -> cfg.NodeLayout:
    return cfg.NodeLayout(
        root=tmp_path / "node",
        image_store=tmp_path / "store",
        apiserver_port=6443,
        kubelet_healthz_port=20001,
        proxy_healthz_port=20002,
        proxy_metrics_port=20003,
        scheduler_port=20004,
        coredns_health_port=20005,
        coredns_ready_port=20006,
        sandbox_image="localhost/flinkops/pause:1",
    )


def test_containerd_runs_from_its_own_directories_with_runc_on_cgroupfs(layout: cfg.NodeLayout) -> None:
    config = tomllib.loads(cfg.containerd_config(layout))
    assert config["version"] == 2
    assert config["root"] == str(layout.image_store) and config["state"] == str(layout.containerd_state)
    assert config["grpc"]["address"] == str(layout.containerd_socket)
    assert config["metrics"]["address"] == ""  # no metrics listener at all
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == "localhost/flinkops/pause:1"
    assert cri["restrict_oom_score_adj"] is True  # root here has no CAP_SYS_RESOURCE
    assert cri["netns_mounts_under_state_dir"] is True  # network namespaces under the node's own directory
    assert cri["stream_server_address"] == "127.0.0.1"
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"] == {"SystemdCgroup": False, "BinaryName": "/usr/sbin/runc", "Root": str(layout.runc_root)}
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    assert cri["cni"] == {"bin_dir": "/usr/lib/cni", "conf_dir": str(layout.cni_conf_dir), "max_conf_num": 1}
    assert cri["registry"]["config_path"] == str(layout.registry_hosts_dir)


def test_registries_point_at_a_loopback_port_where_nothing_listens() -> None:
    hosts = cfg.registry_hosts()
    assert {"_default", "docker.io"} <= set(hosts)
    for text in hosts.values():
        parsed = tomllib.loads(text)
        assert parsed["server"] == cfg.NO_REGISTRY_PROXY
        assert set(parsed["host"]) == {cfg.NO_REGISTRY_PROXY}
    assert cfg.NO_REGISTRY_PROXY.startswith("http://127.0.0.1:")


def test_the_pod_network_is_one_bridge_without_masquerading(layout: cfg.NodeLayout) -> None:
    network = json.loads(cfg.cni_config(layout))
    (bridge,) = network["plugins"]
    assert bridge["type"] == "bridge" and bridge["bridge"] == cfg.BRIDGE
    assert bridge["ipMasq"] is False and bridge["isGateway"] is True and bridge["hairpinMode"] is True
    assert bridge["ipam"]["ranges"] == [[{"subnet": cfg.POD_CIDR, "gateway": cfg.BRIDGE_IP}]]
    assert bridge["ipam"]["dataDir"] == str(layout.ipam_dir)  # not /var/lib/cni/networks
    assert len(cfg.BRIDGE) <= 15  # a Linux interface name


def test_the_fence_passes_bridge_traffic_and_drops_everything_else_in_and_out() -> None:
    rules = cfg.fence_rules("br-test")
    assert rules[0] == ["-i", "br-test", "-o", "br-test", "-j", "RETURN"]
    assert ["-i", "br-test", "-j", "DROP"] in rules[1:] and ["-o", "br-test", "-j", "DROP"] in rules[1:]


def test_the_hosts_own_packets_to_an_untranslated_service_address_are_refused_not_routed_off_the_machine() -> None:
    rules = cfg.output_fence_rules("10.0.0.0/16")
    assert rules == [
        ["-d", "10.0.0.0/16", "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
        ["-d", "10.0.0.0/16", "-j", "REJECT", "--reject-with", "icmp-port-unreachable"],
    ]
    assert cfg.OUTPUT_FENCE_CHAIN.startswith("FLINKOPS-NODE-")  # so remove_chains takes it away at down


def test_the_kubelet_listens_on_the_bridge_and_hands_pods_coredns_only(layout: cfg.NodeLayout) -> None:
    config = yaml.safe_load(cfg.kubelet_config(layout))
    assert config["address"] == cfg.BRIDGE_IP and config["readOnlyPort"] == 0
    assert (config["healthzBindAddress"], config["healthzPort"]) == ("127.0.0.1", 20001)
    assert config["cgroupDriver"] == "cgroupfs" and config["failCgroupV1"] is False
    assert config["oomScoreAdj"] == 0 and config["failSwapOn"] is False
    assert config["protectKernelDefaults"] is False  # true makes the kubelet refuse to start on this host
    assert config["containerRuntimeEndpoint"] == f"unix://{layout.containerd_socket}"
    assert config["clusterDNS"] == [cfg.BRIDGE_IP] and config["clusterDomain"] == "cluster.local"
    assert config["resolvConf"] == str(layout.resolv_conf)
    assert config["authorization"] == {"mode": "AlwaysAllow"}  # acceptable only on the fenced bridge address
    assert config["imageGCHighThresholdPercent"] == 100  # the locally built image can never be pulled again
    assert config["podCIDR"] == cfg.POD_CIDR
    assert cfg.resolv_conf().split("\n", 1)[1] == f"nameserver {cfg.BRIDGE_IP}\n"


def test_kube_proxy_writes_no_sysctl_and_keeps_node_ports_off_loopback(layout: cfg.NodeLayout) -> None:
    config = yaml.safe_load(cfg.kube_proxy_config(layout))
    assert config["mode"] == "iptables" and config["iptables"]["localhostNodePorts"] is False
    assert config["nodePortAddresses"] == [f"{cfg.BRIDGE_IP}/32"]
    assert config["conntrack"]["maxPerCore"] == 0 and config["conntrack"]["min"] == 0
    assert config["conntrack"]["tcpEstablishedTimeout"] == "0s" and config["conntrack"]["tcpCloseWaitTimeout"] == "0s"
    assert config["healthzBindAddress"].startswith("127.0.0.1:") and config["metricsBindAddress"].startswith("127.0.")
    assert config["hostnameOverride"] == cfg.NODE_NAME == cfg.BRIDGE_IP


def test_coredns_serves_the_cluster_on_the_bridge_with_no_upstream(layout: cfg.NodeLayout) -> None:
    corefile = cfg.corefile(layout)
    assert f"bind {cfg.BRIDGE_IP}" in corefile
    assert f"kubeconfig {layout.kubeconfig('coredns')}" in corefile
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa" in corefile
    assert "health 127.0.0.1:20005" in corefile and "ready 127.0.0.1:20006" in corefile
    for upstream in ("forward", "proxy", "grpc", "etcd", "fallthrough"):
        assert upstream not in corefile
    assert "forward" not in COREDNS_PLUGINS and "kubernetes" in COREDNS_PLUGINS


def test_the_host_tools_are_debian_packages() -> None:
    assert {"containerd", "runc", "containernetworking-plugins", "iptables", "socat", "debootstrap"} == set(
        DEBIAN_PACKAGES
    )


def test_the_debian_mirror_comes_from_the_machines_apt_sources(tmp_path: Path) -> None:
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb deb-src\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main contrib\n"
    )
    assert debian_mirror(apt) == "http://mirror.invalid/debian"
    one_line = tmp_path / "old"
    one_line.mkdir()
    (one_line / "sources.list").write_text(
        "# a comment\ndeb-src http://src.invalid/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://list.invalid/debian bookworm main non-free\n"
    )
    assert debian_mirror(one_line) == "http://list.invalid/debian"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuntimeFailure, match="no apt source for Debian bookworm"):
        debian_mirror(empty)


def test_the_images_flink_configuration_binds_every_interface() -> None:
    original = (
        "jobmanager:\n  bind-host: localhost\n  rpc:\n    address: localhost\n"
        "taskmanager:\n  bind-host: localhost\n  host: localhost\n  numberOfTaskSlots: 1\n"
        "rest:\n  address: localhost\n  bind-address: localhost\n"
    )
    edited = yaml.safe_load(flink_config_yaml(original))
    assert edited["jobmanager"]["bind-host"] == "0.0.0.0" and edited["taskmanager"]["bind-host"] == "0.0.0.0"
    assert edited["rest"] == {"address": "0.0.0.0", "bind-address": "0.0.0.0"}
    assert "host" not in edited["taskmanager"] and edited["taskmanager"]["numberOfTaskSlots"] == 1
    assert edited["jobmanager"]["rpc"]["address"] == "localhost"  # the entrypoint sets it per container


def test_the_image_carries_the_names_specs_use() -> None:
    assert flink_image_names("2.2.1") == (
        "docker.io/library/flink:2.2",
        "docker.io/library/flink:2.2.1",
        "docker.io/library/flink:2.2.1-java17",
    )
