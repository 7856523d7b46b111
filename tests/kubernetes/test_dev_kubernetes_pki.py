"""The dev Kubernetes control plane's certificates and admin kubeconfig, made with the real ``openssl`` but
without starting the control plane: what the apiserver and its clients need, made once, and the kubeconfig
embedding them. The rest of the dev control plane without processes is tests/unit/test_dev_kubernetes.py; the
real processes run in tests/kubernetes/test_control_plane_live.py."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from flinkops.dev.kubernetes import CONTEXT, KubeControlPlane, _make_pki

pytestmark = pytest.mark.integration


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
