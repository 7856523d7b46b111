"""Fixtures for the Kubernetes tests: one real control plane (etcd, kube-apiserver, kube-controller-manager) for
the whole session, and on request one real node on it (``node``: containerd, kubelet, kube-proxy,
kube-scheduler, CoreDNS and the locally built Flink image; pods run), see ``tests/support/kube.py``. Tests that
only need the API ask for ``kube``; pods stay Pending for them unless another test in the session started the
node. Setting it up fails loudly (a missing Go toolchain
or openssl is an error, never a skip). Some modules here need no API server, only the Kubernetes tooling
(``helm``, ``openssl`` for the dev control plane's certificates, the operator image's wheel); they never ask for
``kube``, so running them alone starts no control plane."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from support.jvm import TEST_JVM_ARGS
from support.kube import KubeCluster, NodeHandle, kube_control_plane, kube_node
from support.nodestack import Stack, node_stack


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """A real control plane on free 127.0.0.1 ports, stopped at the end of the session."""
    with kube_control_plane(tmp_path_factory.mktemp("kube")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def node(kube: KubeCluster) -> Iterator[NodeHandle]:
    """The real node on the session's control plane (one per machine: the node's modules are one group, run by
    one worker; tests/conftest.py), stopped before the control plane; its teardown fails when the host is not
    restored."""
    _without_leftovers(kube)
    with kube_node(kube) as handle:
        yield handle


_SYSTEM_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}


def _without_leftovers(kube: KubeCluster) -> None:
    """Delete the namespaces the tests on the API server alone left (they run before the node starts): their
    Deployments would otherwise put pods on the node, asking for CPU and images the node tests need or lack."""
    with kube.client() as admin:
        names = [ns["metadata"]["name"] for ns in admin.get("/api/v1/namespaces").json()["items"]]
        for name in names:
            if name not in _SYSTEM_NAMESPACES:
                admin.delete(f"/api/v1/namespaces/{name}")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            left = [
                pod["metadata"]["name"]
                for pod in admin.get("/api/v1/pods").json()["items"]
                if pod["metadata"]["namespace"] not in _SYSTEM_NAMESPACES
            ]
            if not left:
                return
            time.sleep(0.2)
        raise AssertionError(f"pods of the tests on the API server still there: {left[:5]}")


@pytest.fixture(scope="session")
def stack(kube: KubeCluster, node: NodeHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The operator, S3 on the bridge and the verifier's output directory (``support.nodestack``), shared by every
    module that drives Flink on the node; each module deletes the deployments it made. The pods' JVMs get the
    tests' flags (C1 only, the serial collector: ``support.jvm``), as the local runtime's do in the tests, and the
    operator checks on Flink every second (``--progress-check-interval``; 10 s by default, as the reference
    operator): a job RUNNING or its first checkpoint is seen within a second, as the local controller sees it,
    instead of up to 10 s later at each step of a test."""
    work = tmp_path_factory.mktemp("flink-on-node")
    with node_stack(kube, work, jvm_args=TEST_JVM_ARGS, progress_check="1 s") as shared:
        yield shared


_ON_THE_API_SERVER = "on-the-api-server"
_ON_THE_NODE = "on-the-node"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tag the tests that use the control plane (the summary below speaks of those only). The tag travels in the
    test's report, so it reaches the summary from a parallel worker too."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "tests/kubernetes/" not in item.nodeid:
            continue
        if "node" in names:
            item.user_properties.append((_ON_THE_NODE, True))
        elif "kube" in names:
            item.user_properties.append((_ON_THE_API_SERVER, True))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly what these tests cannot cover here, so a green run is not read as more than it is."""

    def count(tag: str) -> int:
        return sum(
            1
            for outcome in ("passed", "failed", "error")
            for report in terminalreporter.stats.get(outcome, [])
            if any(name == tag for name, _ in getattr(report, "user_properties", ()))
        )

    on_node = count(_ON_THE_NODE)
    if on_node:
        terminalreporter.write_line(
            f"tests/kubernetes: {on_node} test(s) ran pods on a real node (kubelet, containerd, runc, kube-proxy, "
            "CoreDNS) with the locally built Flink image."
        )
    ran = count(_ON_THE_API_SERVER)
    if ran:
        terminalreporter.write_line(
            f"tests/kubernetes: {ran} test(s) ran on a real kube-apiserver + kube-controller-manager without asking "
            "for the node: for them pods may stay Pending, so no JobManager answers there. What happens inside Flink "
            "is covered by the tests on the node and by the local-runtime integration tests."
        )
