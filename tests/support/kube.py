"""A real Kubernetes control plane for tests: etcd, kube-apiserver and kube-controller-manager on free 127.0.0.1
ports, from :class:`flinkops.dev.kubernetes.KubeControlPlane`.

Interface (other test files rely on it)::

    with kube_control_plane(tmp_dir) as kube:
        kube.kubeconfig      # Path of an admin kubeconfig (context "flinkops-dev", certificates embedded)
        kube.server          # "https://127.0.0.1:<port>"
        kube.ca_file         # Path of the CA that signed the apiserver's certificate
        kube.client()        # an httpx.Client as cluster-admin, base_url = server (close it, or use `with`)
        kube.control_plane   # the KubeControlPlane (pids(), log files, stop/start)

Everything is stopped when the ``with`` block ends, also when a test fails inside it. There is no kubelet:
pods are created but stay Pending. etcd runs without fsync (a throw-away cluster; much faster on a busy disk).

A real node on that control plane (containerd, kubelet, kube-proxy, kube-scheduler, CoreDNS; pods run)::

    with kube_node(kube) as node:
        node.node            # the flinkops.dev.node.node.KubeNode
        node.image           # "flink:2.2": the locally built Flink image, with the test jobs' jar at
                             # /opt/flink/usrlib/flinkops-testjobs.jar (TESTJOBS_IN_IMAGE), the examples'
                             # jar and its Kafka connector next to it
        node.host_before     # the host as observed before the node first started (host_snapshot())

``host_snapshot()`` observes the host settings the node may change (sysctls, iptables chains, network links,
mounts, cgroups) independently of the node's own bookkeeping, so a test can compare before and after ``down``.
The first run on a machine builds the binaries with Go (many minutes, once); that progress goes to the real
stderr past pytest's capture, so a long first run does not look like a hang.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from flinkops.api.crds import custom_resource_definitions
from flinkops.artifacts import file_lock
from flinkops.dev.kubernetes import KubeControlPlane
from flinkops.dev.node.node import KubeNode
from flinkops.dev.process import free_port

__all__ = [
    "NODE_IMAGE",
    "TESTJOBS_IN_IMAGE",
    "HostSnapshot",
    "KubeCluster",
    "NodeHandle",
    "crd_established",
    "host_snapshot",
    "install_crds",
    "kube_control_plane",
    "kube_node",
    "node_image_jars",
    "server_side_apply",
    "service_account_token",
]

NODE_IMAGE = "flink:2.2"
TESTJOBS_IN_IMAGE = "/opt/flink/usrlib/flinkops-testjobs.jar"


def _progress(message: str) -> None:
    stream = sys.__stderr__ or sys.stderr
    stream.write(f"[kubernetes] {message}\n")
    stream.flush()


@dataclass(frozen=True)
class KubeCluster:
    control_plane: KubeControlPlane

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.kubeconfig

    @property
    def server(self) -> str:
        return self.control_plane.endpoint

    @property
    def ca_file(self) -> Path:
        return self.control_plane.ca_file

    @property
    def admin_cert_file(self) -> Path:
        return self.control_plane.admin_cert_file

    @property
    def admin_key_file(self) -> Path:
        return self.control_plane.admin_key_file

    def client(self, timeout: float = 30.0) -> httpx.Client:
        """An httpx client as cluster-admin (group system:masters); ``base_url`` is the apiserver."""
        return self.control_plane.admin_client(timeout=timeout)


@contextlib.contextmanager
def kube_control_plane(tmp_dir: Path, *, timeout: float = 240.0) -> Iterator[KubeCluster]:
    """Start a fresh control plane with its state in ``tmp_dir`` (free ports), yield it, stop it afterwards."""
    plane = KubeControlPlane(Path(tmp_dir), free_port(), progress=_progress, durable=False)
    try:
        plane.start(timeout=timeout)
        yield KubeCluster(plane)
    finally:
        plane.stop()


def crd_established(admin: httpx.Client, name: str) -> bool:
    """Whether the CRD ``name`` is served (condition Established=True); False while it is being set up."""
    response = admin.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    if response.status_code != 200:
        return False
    conditions = (response.json().get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def install_crds(admin: httpx.Client, timeout: float = 60.0) -> None:
    """Server-side apply flinkops' CRDs and wait until the API server serves them."""
    names = []
    for crd in custom_resource_definitions():
        name = crd["metadata"]["name"]
        admin.patch(
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
            content=json.dumps(crd),
            params={"fieldManager": "flinkops-tests", "force": "true"},
            headers={"Content-Type": "application/apply-patch+yaml"},
        ).raise_for_status()
        names.append(name)
    deadline = time.monotonic() + timeout
    while not all(crd_established(admin, name) for name in names):
        if time.monotonic() > deadline:
            raise AssertionError(f"CRDs not established after {timeout:.0f}s: {names}")
        time.sleep(0.1)


# ------------------------------------------------------------------------------------------------ the node


def node_image_jars() -> dict[str, Path]:
    """The jars the tests' Flink image carries in /opt/flink/usrlib (scripts/prefetch.py builds the same image)."""
    from flinkops.dev.node.image import example_jars
    from support.testjobs import testjobs_jar

    return {**example_jars(_progress), Path(TESTJOBS_IN_IMAGE).name: testjobs_jar()}


@dataclass(frozen=True)
class HostSnapshot:
    """Host settings the node may change, read straight from the kernel and the tools."""

    sysctls: dict[str, str]
    chains: frozenset[str]  # "<family> <table> <chain>"
    links: frozenset[str]
    mounts: frozenset[str]
    cgroups: frozenset[str]  # top-level entries of each cgroup hierarchy

    def differences(self, other: HostSnapshot) -> list[str]:
        found = [
            f"sysctl {name}: {value} -> {other.sysctls.get(name)}"
            for name, value in self.sysctls.items()
            if other.sysctls.get(name) != value
        ]
        for what in ("chains", "links", "mounts", "cgroups"):
            before, after = getattr(self, what), getattr(other, what)
            found += [f"{what}: {item} appeared" for item in sorted(after - before)]
            found += [f"{what}: {item} disappeared" for item in sorted(before - after)]
        return found


_WATCHED_SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv6/conf/all/forwarding",
    "net/bridge/bridge-nf-call-iptables",
    "net/ipv4/conf/all/route_localnet",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
)


def host_snapshot() -> HostSnapshot:
    sysctls = {}
    for name in _WATCHED_SYSCTLS:
        with contextlib.suppress(OSError):
            sysctls[name] = Path("/proc/sys", name).read_text().strip()
    chains = set()
    for tool in ("iptables-save", "ip6tables-save"):
        for table in ("filter", "nat", "mangle", "raw"):
            out = subprocess.run([tool, "-t", table], capture_output=True, text=True, check=False).stdout
            chains |= {f"{tool} {table} {line[1:].split()[0]}" for line in out.splitlines() if line.startswith(":")}
            chains |= {f"{tool} {table} rule {line}" for line in out.splitlines() if line.startswith("-A")}
    links = {p.name for p in Path("/sys/class/net").iterdir()}
    # An image build's scratch root (``images/.tmp-*``, /proc mounted in it for a chroot) belongs to whoever builds
    # an image meanwhile (another session's prefetch), never to the node.
    mounts = {
        point
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if "/.tmp-" not in (point := line.split()[4])
    }
    cgroups = {
        f"{h.name}/{entry.name}"
        for h in Path("/sys/fs/cgroup").iterdir()
        if h.is_dir()
        for entry in h.iterdir()
        if entry.is_dir()
    }
    return HostSnapshot(sysctls, frozenset(chains), frozenset(links), frozenset(mounts), frozenset(cgroups))


@dataclass(frozen=True)
class NodeHandle:
    node: KubeNode
    host_before: HostSnapshot
    image: str = NODE_IMAGE


def _one_session_at_a_time(root: Path) -> contextlib.AbstractContextManager[None]:
    """The machine has room for one node: a test session holds this lock while its node exists, and another
    session (a second checkout's tests) waits for it instead of failing."""
    waiting = "another test session uses this machine's Kubernetes node: waiting for it to finish"
    return file_lock(root / "test-session.lock", waiting=lambda: _progress(waiting))


@contextlib.contextmanager
def kube_node(cluster: KubeCluster, *, timeout: float = 240.0) -> Iterator[NodeHandle]:
    """Start the real node on ``cluster``'s control plane, yield it, stop it afterwards; the stop fails loudly
    when the host is not back as it was before the start."""
    node = KubeNode(cluster.control_plane, usrlib=node_image_jars(), progress=_progress)
    node.prepare()  # builds (once) outside the timed start
    with _one_session_at_a_time(node.root):
        left = node.recover()  # a session killed mid-run left its node: finish that stop before the snapshot
        if left:
            _progress(f"an earlier session's node was left behind ({len(left)} things, e.g. {left[0]}): cleaned up")
        with _started(node, timeout) as handle:
            yield handle


@contextlib.contextmanager
def _started(node: KubeNode, timeout: float) -> Iterator[NodeHandle]:
    before = host_snapshot()
    try:
        started = time.monotonic()
        node.start(timeout=timeout)
        _progress(f"node Ready in {time.monotonic() - started:.1f}s")
        yield NodeHandle(node, before)
    finally:
        problems = node.stop()
    after = host_snapshot()
    left = before.differences(after)
    if problems or left:
        raise AssertionError(f"the node's down left the host changed: {problems + left}")


def server_side_apply(admin: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply ``body`` at ``path`` as the tests' field manager (taking over conflicting fields)."""
    import yaml

    response = admin.patch(
        path,
        content=yaml.safe_dump(body),
        params={"fieldManager": "test", "force": "true"},
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert response.status_code < 300, f"{path}: {response.status_code} {response.text}"
    result: dict[str, Any] = response.json()
    return result


def service_account_token(admin: httpx.Client, namespace: str, name: str, seconds: int = 3600) -> str:
    """A token of ServiceAccount ``name`` (created in the existing ``namespace``, bound to cluster-admin by the
    ClusterRoleBinding ``namespace-name``), valid for ``seconds``: verified by the API server itself."""
    server_side_apply(
        admin,
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}},
    )
    binding = f"{namespace}-{name}"
    server_side_apply(
        admin,
        f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{binding}",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": binding},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    )
    answer = admin.post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": seconds}},
    )
    assert answer.status_code < 300, f"TokenRequest for {namespace}/{name}: {answer.status_code} {answer.text}"
    token: str = answer.json()["status"]["token"]
    return token
