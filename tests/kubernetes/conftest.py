"""Fixtures for the Kubernetes tests: one real control plane (etcd, kube-apiserver, kube-controller-manager; no
kubelet) for the whole session, see ``tests/support/kube.py``. Setting it up fails loudly (a missing Go toolchain
or openssl is an error, never a skip). Some modules here need no API server, only the Kubernetes tooling
(``helm``, ``openssl`` for the dev control plane's certificates, the operator image's wheel); they never ask for
``kube``, so running them alone starts no control plane."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.kube import KubeCluster, kube_control_plane


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """A real control plane on free 127.0.0.1 ports, stopped at the end of the session."""
    with kube_control_plane(tmp_path_factory.mktemp("kube")) as cluster:
        yield cluster


_ON_THE_API_SERVER = "on-the-api-server"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tag the tests that use the control plane (the summary below speaks of those only). The tag travels in the
    test's report, so it reaches the summary from a parallel worker too."""
    for item in items:
        if "kube" in getattr(item, "fixturenames", ()) and "tests/kubernetes/" in item.nodeid:
            item.user_properties.append((_ON_THE_API_SERVER, True))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly what these tests cannot cover here, so a green run is not read as more than it is."""
    ran = sum(
        1
        for outcome in ("passed", "failed", "error")
        for report in terminalreporter.stats.get(outcome, [])
        if any(name == _ON_THE_API_SERVER for name, _ in getattr(report, "user_properties", ()))
    )
    if ran:
        terminalreporter.write_line(
            f"tests/kubernetes: {ran} test(s) ran on a real kube-apiserver + kube-controller-manager without a "
            "kubelet: pods stay Pending, so no JobManager ever answers there. What happens inside Flink is covered "
            "by the local-runtime integration tests, which run the same controller on real Flink processes."
        )
