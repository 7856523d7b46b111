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
The first run on a machine builds the binaries with Go (many minutes, once); that progress goes to the real
stderr past pytest's capture, so a long first run does not look like a hang.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from flinkops.api.crds import custom_resource_definitions
from flinkops.dev.kubernetes import KubeControlPlane
from flinkops.dev.process import free_port

__all__ = ["KubeCluster", "crd_established", "install_crds", "kube_control_plane"]


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
