"""The dev Kubernetes control plane without starting it: ``flinkops dev`` treating it as an opt-in service, and a
taken port. The certificates and the admin kubeconfig (made with the real ``openssl``) are
tests/kubernetes/test_dev_kubernetes_pki.py; the real processes run in tests/kubernetes/test_control_plane_live.py."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flinkops.cli.main import app
from flinkops.dev import DEFAULT_SERVICES, SERVICES
from flinkops.dev.services import DevServices
from flinkops.errors import RuntimeFailure


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLINKOPS_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_kubernetes_is_a_dev_service_but_not_a_default_one(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "kubernetes" in SERVICES and "kubernetes" not in DEFAULT_SERVICES
    services = DevServices(home)
    (status,) = services.status(["kubernetes"])
    assert (status.running, status.healthy, status.pid, status.endpoint) == (False, False, None, None)
    assert services.kubeconfig() is None
    assert services.down(["kubernetes"]) == []
    assert not (home / "dev" / "kubernetes").exists()  # reading state and a no-op down create nothing

    asked: list[list[str]] = []
    monkeypatch.setattr(DevServices, "up", lambda self, names, ports, progress=None: asked.append(list(names)) or [])
    result = CliRunner().invoke(app, ["dev", "up"])
    assert result.exit_code == 0, result.output
    assert asked == [["kafka", "s3", "zookeeper"]]
    result = CliRunner().invoke(app, ["dev", "up", "--help"])
    assert "--kubernetes-port" in result.output


def test_a_taken_apiserver_port_is_an_error_naming_the_option(home: Path, listener: int) -> None:
    with pytest.raises(RuntimeFailure) as caught:
        DevServices(home).up(["kubernetes"], {"kubernetes": listener})
    message = str(caught.value)
    assert f"port {listener}" in message and "--kubernetes-port" in message


def test_node_flag_starts_the_control_plane_then_the_node_and_down_node_stops_only_the_node(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flinkops.dev.services import NodeStatus

    calls: list[object] = []
    monkeypatch.setattr(DevServices, "up", lambda self, names, ports, progress=None: calls.append(list(names)) or [])
    monkeypatch.setattr(
        DevServices,
        "up_node",
        lambda self, progress=None, usrlib={}: calls.append("node up") or NodeStatus(True, True, {}, home / "node"),
    )
    result = CliRunner().invoke(app, ["dev", "up", "s3", "--node"])
    assert result.exit_code == 0, result.output
    assert calls == [["s3", "kubernetes"], "node up"]  # --node implies the control plane, which starts first

    monkeypatch.setattr(DevServices, "down_node", lambda self: calls.append("node down") or [])
    monkeypatch.setattr(DevServices, "down", lambda self, names: calls.append(("down", names)) or [])
    result = CliRunner().invoke(app, ["dev", "down", "kubernetes", "--node"])
    assert result.exit_code == 0, result.output
    assert calls[-1] == "node down" and "host settings restored" in result.output

    monkeypatch.setattr(DevServices, "down_node", lambda self: ["sysctl vm.overcommit_memory=1 (was 0)"])
    result = CliRunner().invoke(app, ["dev", "down", "--node"])
    assert result.exit_code == 1 and "vm.overcommit_memory" in result.output


def test_a_home_without_a_node_reports_none_and_its_down_touches_nothing(home: Path) -> None:
    services = DevServices(home)  # a node of another home on this machine (if any) is not this home's
    assert services.node_status() is None
    assert services.down_node() is None
