"""The dev node's configuration files, rendered as text from one :class:`NodeLayout`: containerd's TOML, the CNI
network, the kubelet's and kube-proxy's configuration, CoreDNS's Corefile, the pods' resolv.conf and the fence
rules. Pure: no file is written and nothing runs here, so every setting is unit-tested.

The settings that keep the node on this machine are made here and nowhere else:

* the pod network is one bridge with one subnet, no masquerading (``ipMasq: false``), and a fence in the
  ``mangle`` table's FORWARD chain (:func:`fence_rules`) that lets traffic pass between the bridge's ports and
  drops everything else that enters or leaves the bridge (kube-proxy inserts rules at the top of the ``filter``
  table's FORWARD chain, so a fence there would not hold); the host's own connections to a Service address
  that kube-proxy has not translated yet are refused (:func:`output_fence_rules`) instead of following the
  default route off the machine;
* every server binds the bridge IP or 127.0.0.1; the node is named after the bridge IP, so nothing resolves
  its name through the machine's resolver;
* pods resolve names through CoreDNS on the bridge IP only (``clusterDNS`` and the kubelet's ``resolvConf``),
  and CoreDNS has no upstream;
* containerd reaches registries only through a proxy address where nothing listens
  (:data:`NO_REGISTRY_PROXY`): an image the node does not have fails to pull at once, with no DNS lookup and
  no connection off the machine.

Called by: :mod:`flinkops.dev.node.node`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = [
    "BRIDGE",
    "BRIDGE_IP",
    "CLUSTER_DOMAIN",
    "FENCE_CHAIN",
    "NETWORK_NAME",
    "NODE_NAME",
    "NO_REGISTRY_PROXY",
    "OUTPUT_FENCE_CHAIN",
    "POD_CIDR",
    "NodeLayout",
    "cni_config",
    "containerd_config",
    "corefile",
    "fence_rules",
    "kube_proxy_config",
    "kubelet_config",
    "output_fence_rules",
    "resolv_conf",
]

BRIDGE = "flinkops-cni0"
BRIDGE_IP = "10.244.0.1"
POD_CIDR = "10.244.0.0/24"
POD_PREFIX = 24
NODE_NAME = BRIDGE_IP  # named after its IP: a name would be resolved through the machine's resolver
NETWORK_NAME = "flinkops-node"
CLUSTER_DOMAIN = "cluster.local"
FENCE_CHAIN = "FLINKOPS-NODE-FENCE"
OUTPUT_FENCE_CHAIN = "FLINKOPS-NODE-OUTPUT"  # in filter, jumped to from OUTPUT (IPv4: Services have v4 addresses)
# Port 9 ("discard") on loopback: nothing listens there, so a registry request is refused locally at once.
NO_REGISTRY_PROXY = "http://127.0.0.1:9"


@dataclass(frozen=True)
class NodeLayout:
    """Where the node's files live and which ports its servers use.

    ``root`` holds the node's own state (configuration, pid files, logs, the kubelet's directory and
    containerd's runtime state); ``image_store`` is containerd's content and snapshot store, kept across
    ``down``/``up`` so a warm ``up`` imports nothing.
    """

    root: Path
    image_store: Path
    apiserver_port: int  # the control plane's secure port on 127.0.0.1; relayed on the bridge IP
    kubelet_healthz_port: int
    proxy_healthz_port: int
    proxy_metrics_port: int
    scheduler_port: int
    coredns_health_port: int
    coredns_ready_port: int
    sandbox_image: str

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def pki_dir(self) -> Path:
        return self.root / "pki"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd_state / "containerd.sock"

    @property
    def runc_root(self) -> Path:
        return self.containerd_state / "runc"

    @property
    def kubelet_dir(self) -> Path:
        return self.root / "kubelet"

    @property
    def pod_logs_dir(self) -> Path:
        return self.root / "pod-logs"

    @property
    def cni_conf_dir(self) -> Path:
        return self.config_dir / "cni"

    @property
    def ipam_dir(self) -> Path:
        return self.root / "ipam"

    @property
    def registry_hosts_dir(self) -> Path:
        return self.config_dir / "registry-hosts"

    @property
    def resolv_conf(self) -> Path:
        return self.config_dir / "resolv.conf"

    def kubeconfig(self, component: str) -> Path:
        return self.config_dir / f"{component}.kubeconfig"

    def config_file(self, name: str) -> Path:
        return self.config_dir / name


def _toml(value: object) -> str:
    """A TOML scalar or array of scalars (strings are JSON-quoted, which TOML basic strings accept)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(str(value))


def containerd_config(layout: NodeLayout) -> str:
    """containerd 1.6 (config version 2): its own root, state and socket; the CRI plugin with the node's pause
    image, runc under cgroupfs with its own root, the node's CNI network, network namespaces under the state
    directory, and no negative ``oom_score_adj`` (root here lacks CAP_SYS_RESOURCE)."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    sections: list[tuple[str, dict[str, object]]] = [
        (
            "",
            {
                "version": 2,
                "root": str(layout.image_store),
                "state": str(layout.containerd_state),
                "oom_score": 0,
                "disabled_plugins": [
                    "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.tracing.processor.v1.otlp",
                    "io.containerd.internal.v1.tracing",
                ],
            },
        ),
        ("grpc", {"address": str(layout.containerd_socket)}),
        ("ttrpc", {"address": f"{layout.containerd_socket}.ttrpc"}),
        ("metrics", {"address": ""}),
        ('plugins."io.containerd.internal.v1.opt"', {"path": str(layout.containerd_state / "opt")}),
        (
            cri,
            {
                "sandbox_image": layout.sandbox_image,
                "restrict_oom_score_adj": True,
                "netns_mounts_under_state_dir": True,
                "stream_server_address": "127.0.0.1",
                "stream_server_port": "0",
                "enable_selinux": False,
                "disable_apparmor": True,
                "max_container_log_line_size": 16384,
            },
        ),
        (f"{cri}.containerd", {"snapshotter": "overlayfs", "default_runtime_name": "runc"}),
        (f"{cri}.containerd.runtimes.runc", {"runtime_type": "io.containerd.runc.v2"}),
        (
            f"{cri}.containerd.runtimes.runc.options",
            {"SystemdCgroup": False, "BinaryName": "/usr/sbin/runc", "Root": str(layout.runc_root)},
        ),
        (f"{cri}.cni", {"bin_dir": "/usr/lib/cni", "conf_dir": str(layout.cni_conf_dir), "max_conf_num": 1}),
        (f"{cri}.registry", {"config_path": str(layout.registry_hosts_dir)}),
    ]
    lines = ["# Written by flinkops dev up kubernetes --node; rewritten at every start."]
    for table, values in sections:
        if table:
            lines += ["", f"[{table}]"]
        lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def cni_config(layout: NodeLayout) -> str:
    """The pod network: the bridge plugin on :data:`BRIDGE` (gateway :data:`BRIDGE_IP`, no masquerading,
    hairpin for a pod reaching itself through a Service) with host-local addresses kept under the node's root."""
    network = {
        "cniVersion": "0.4.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": BRIDGE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.ipam_dir),
                },
            }
        ],
    }
    return json.dumps(network, indent=2) + "\n"


def kubelet_config(layout: NodeLayout) -> str:
    """The kubelet on this machine: cgroup v1 through cgroupfs (PID 1 is not systemd), containerd's socket, the
    bridge IP as its address and cluster DNS, anonymous ``AlwaysAllow`` on that fenced address (the dev
    apiserver has no kubelet client certificate), no sysctl it would refuse to run without, no image garbage
    collection (the Flink image is built locally and cannot be pulled again) and eviction only when the
    machine is nearly out of memory or disk."""
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": BRIDGE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": layout.kubelet_healthz_port,
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}, "x509": {}},
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "oomScoreAdj": 0,
        "protectKernelDefaults": False,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "clusterDNS": [BRIDGE_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": str(layout.resolv_conf),
        "podCIDR": POD_CIDR,
        "podLogsDir": str(layout.pod_logs_dir),
        "volumePluginDir": str(layout.kubelet_dir / "volume-plugins"),
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "maxPods": 110,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "registerNode": True,
        "nodeStatusUpdateFrequency": "5s",
        "syncFrequency": "10s",
        "shutdownGracePeriod": "0s",
        "containerLogMaxSize": "10Mi",
        "containerLogMaxFiles": 2,
    }
    return yaml.safe_dump(config, sort_keys=False)


def kube_proxy_config(layout: NodeLayout) -> str:
    """kube-proxy in iptables mode: NodePorts on the bridge IP only and never on localhost (which would turn on
    ``route_localnet``), conntrack settings at 0 so it writes no conntrack sysctl."""
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(layout.kubeconfig("kube-proxy"))},
        "mode": "iptables",
        "hostnameOverride": NODE_NAME,
        "bindAddress": BRIDGE_IP,
        "clusterCIDR": POD_CIDR,
        "healthzBindAddress": f"127.0.0.1:{layout.proxy_healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{layout.proxy_metrics_port}",
        "nodePortAddresses": [f"{BRIDGE_IP}/32"],
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False, "syncPeriod": "30s", "minSyncPeriod": "0s"},
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
            "udpTimeout": "0s",
            "udpStreamTimeout": "0s",
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


def corefile(layout: NodeLayout) -> str:
    """CoreDNS on the bridge IP: cluster names from the API (as the ``coredns`` user of its kubeconfig), every
    query logged, and no upstream: a name outside ``cluster.local`` and the reverse zones gets SERVFAIL."""
    return (
        f".:53 {{\n"
        f"    bind {BRIDGE_IP}\n"
        f"    errors\n"
        f"    log\n"
        f"    health 127.0.0.1:{layout.coredns_health_port}\n"
        f"    ready 127.0.0.1:{layout.coredns_ready_port}\n"
        f"    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{\n"
        f"        kubeconfig {layout.kubeconfig('coredns')}\n"
        f"        pods insecure\n"
        f"        ttl 5\n"
        f"    }}\n"
        f"    cache 5\n"
        f"}}\n"
    )


def resolv_conf() -> str:
    """The resolv.conf the kubelet gives pods with ``dnsPolicy: Default`` (and the base of every other pod's):
    CoreDNS on the bridge IP, never the machine's own resolver."""
    return f"# Written by flinkops: pods resolve through the node's CoreDNS only.\nnameserver {BRIDGE_IP}\n"


def registry_hosts() -> dict[str, str]:
    """containerd's registry host files (directory name -> hosts.toml): ``_default`` and the common registries
    all point at :data:`NO_REGISTRY_PROXY`'s address, so a pull is refused on loopback."""
    text = f'server = "{NO_REGISTRY_PROXY}"\n\n[host."{NO_REGISTRY_PROXY}"]\n  capabilities = ["pull", "resolve"]\n'
    return {name: text for name in ("_default", "docker.io", "registry.k8s.io", "quay.io", "ghcr.io")}


def fence_rules(bridge: str = BRIDGE) -> list[list[str]]:
    """The fence chain's rules (``iptables -t mangle -A FENCE_CHAIN`` arguments), in order: traffic between the
    bridge's ports passes, anything else entering or leaving the bridge is dropped. The chain is jumped to from
    the first rule of ``mangle FORWARD``; traffic to and from the host itself (INPUT, OUTPUT) is not forwarded,
    so pods still reach CoreDNS and the apiserver relay on the bridge IP, and the host reaches the pods."""
    return [
        ["-i", bridge, "-o", bridge, "-j", "RETURN"],
        ["-i", bridge, "-j", "DROP"],
        ["-o", bridge, "-j", "DROP"],
    ]


def output_fence_rules(service_cidr: str) -> list[list[str]]:
    """The host-output fence's rules (``iptables -t filter -A OUTPUT_FENCE_CHAIN`` arguments): the host's own
    packets still addressed to a Service address are refused at once. kube-proxy translates a ClusterIP in
    ``nat OUTPUT``, which runs before ``filter OUTPUT``, so a translated packet carries a pod address and passes;
    an untranslated one (a Service kube-proxy has not written rules for yet, a moment after it is created) would
    otherwise follow the default route off the machine, and a client there could get an answer from whatever
    picks it up (an HTTP client kept that connection alive and read 404s from it)."""
    return [
        ["-d", service_cidr, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
        ["-d", service_cidr, "-j", "REJECT", "--reject-with", "icmp-port-unreachable"],
    ]
