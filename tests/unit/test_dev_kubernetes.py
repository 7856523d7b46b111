"""The dev Kubernetes control plane without starting it: the certificates it makes (with the real ``openssl``),
the admin kubeconfig, ``flinkops dev`` treating it as an opt-in service, and a taken port. The real processes
run in tests/kubernetes/test_control_plane_live.py."""

from __future__ import annotations

import base64
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from flinkops.cli.main import app
from flinkops.dev import DEFAULT_SERVICES, SERVICES
from flinkops.dev.kubernetes import CONTEXT, KubeControlPlane, _make_pki
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


def certificate_text(path: Path) -> str:
    return subprocess.run(
        ["openssl", "x509", "-in", str(path), "-noout", "-text"], capture_output=True, text=True, check=True
    ).stdout


def test_pki_is_made_once_with_what_the_apiserver_and_clients_need(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    _make_pki(pki)
    names = {p.name for p in pki.iterdir()}
    assert {"ca.crt", "ca.key", "apiserver.crt", "admin.crt", "controller-manager.crt", "sa.key", "sa.pub"} <= names
    assert all((pki / name).stat().st_mode & 0o077 == 0 for name in names if name.endswith(".key"))

    server = certificate_text(pki / "apiserver.crt")
    assert "IP Address:127.0.0.1" in server and "IP Address:10.0.0.1" in server
    assert "DNS:kubernetes.default.svc" in server and "TLS Web Server Authentication" in server
    admin = certificate_text(pki / "admin.crt")
    assert "O = system:masters" in admin and "TLS Web Client Authentication" in admin
    assert "CN = system:kube-controller-manager" in certificate_text(pki / "controller-manager.crt")
    for leaf in ("apiserver", "admin", "controller-manager"):
        verified = subprocess.run(
            ["openssl", "verify", "-CAfile", str(pki / "ca.crt"), str(pki / f"{leaf}.crt")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert verified.returncode == 0, verified.stderr

    before = (pki / "ca.crt").read_bytes()
    _make_pki(pki)
    assert (pki / "ca.crt").read_bytes() == before  # made once; a restart keeps every client's trust


def test_admin_kubeconfig_embeds_the_certificates(tmp_path: Path) -> None:
    plane = KubeControlPlane(tmp_path / "kube", 16443)
    plane.data_dir.mkdir()
    _make_pki(plane.pki_dir)
    plane._write_config()
    config: dict[str, Any] = yaml.safe_load(plane.kubeconfig.read_text())
    assert config["current-context"] == CONTEXT
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:16443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == plane.ca_file.read_bytes()
    user = config["users"][0]["user"]
    assert base64.b64decode(user["client-certificate-data"]) == plane.admin_cert_file.read_bytes()
    assert base64.b64decode(user["client-key-data"]) == plane.admin_key_file.read_bytes()
    assert plane.kubeconfig.stat().st_mode & 0o077 == 0
    # A later handle on the directory finds the same ports (clients configured with them stay valid).
    again = KubeControlPlane(tmp_path / "kube")
    assert (again.port, again.etcd_port, again.etcd_peer_port) == (16443, plane.etcd_port, plane.etcd_peer_port)


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
