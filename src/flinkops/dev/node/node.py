"""A real Kubernetes node on the dev control plane: ``flinkops dev up kubernetes --node``.

:class:`KubeNode` runs containerd, the kubelet, kube-proxy, kube-scheduler, CoreDNS and an apiserver relay as
plain processes (:mod:`~flinkops.dev.node.components`) on a bridge it creates and fences
(:mod:`~flinkops.dev.node.config`), imports the Flink and pause images into containerd
(:mod:`~flinkops.dev.node.image`), and restores the host at ``stop`` (:mod:`~flinkops.dev.node.host`).

There is one node per machine (a fixed bridge and address, host-wide sysctls), so its state lives in one
machine-wide directory, :data:`NODE_ROOT`::

    node.json            which control plane it serves, its ports and image
    host.json            the host settings recorded before the first change (until ``stop`` restored them)
    .lock                held by ``start`` and ``stop``: they never overlap
    config/ pki/         configuration files, kubeconfigs and client certificates (signed by the control
                         plane's CA)
    containerd/          containerd's runtime state and socket, runc's state, pod network namespaces
    kubelet/ pod-logs/ ipam/   the kubelet's directory, container logs, pod addresses
    <process>.pid/.log   one pair per process

containerd's image store is ``cache_dir()/node/containerd``: it outlives ``stop``, so a warm ``start`` imports
no image.

Invariants:

* ``start`` is idempotent: what runs is adopted; it returns once the Node is Ready and CoreDNS serves, or stops
  what it launched and raises. A node already serving another control plane is an error, never taken over.
* ``stop`` deletes the node's pods, stops every process by its recorded pid (then any container process left in
  the ``kubepods`` cgroups and any containerd shim of the node's own socket), and restores the host; it names
  what could not be restored.
* Nothing the node runs can send a packet or a DNS query off the machine (see :mod:`~flinkops.dev.node.config`).

Called by: :mod:`flinkops.dev.services`, the tests' ``tests/support/kube.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from flinkops.artifacts import cache_dir, file_lock
from flinkops.dev.kubernetes import CONTEXT, SERVICE_CLUSTER_IP_RANGE, KubeControlPlane
from flinkops.dev.node import config as cfg
from flinkops.dev.node import host
from flinkops.dev.node.binaries import NodeBinaries, node_binaries, require_host_tools
from flinkops.dev.node.components import (
    ApiRelay,
    Component,
    Containerd,
    CoreDns,
    Kubelet,
    KubeProxy,
    KubeScheduler,
)
from flinkops.dev.node.image import BuiltImage, flink_image, pause_image
from flinkops.dev.pki import client_certificate, kubeconfig
from flinkops.dev.process import free_port, write_private
from flinkops.errors import RuntimeFailure

__all__ = ["NODE_ROOT", "KubeNode"]

NODE_ROOT = Path(os.environ.get("FLINKOPS_NODE_ROOT", "/var/lib/flinkops-node"))
_FIELD_MANAGER = "flinkops-dev-node"
_COREDNS_USER = "flinkops:coredns"
Progress = Callable[[str], None]


class KubeNode:
    """The dev node of ``control_plane`` (which must run while the node starts and stops)."""

    def __init__(
        self,
        control_plane: KubeControlPlane,
        *,
        root: Path = NODE_ROOT,
        usrlib: Mapping[str, Path] = {},  # read only
        progress: Progress | None = None,
    ) -> None:
        self.control_plane = control_plane
        self.root = root
        self.usrlib = dict(usrlib)
        self.progress = progress
        saved = self._record()
        ports = saved.get("ports", {}) if saved.get("control_plane") == str(control_plane.data_dir) else {}

        def port(name: str) -> int:
            value = ports.get(name)
            return int(value) if isinstance(value, int) and value > 0 else free_port()

        self.layout = cfg.NodeLayout(
            root=root,
            image_store=cache_dir() / "node" / "containerd",
            apiserver_port=control_plane.port,
            kubelet_healthz_port=port("kubelet_healthz"),
            proxy_healthz_port=port("proxy_healthz"),
            proxy_metrics_port=port("proxy_metrics"),
            scheduler_port=port("scheduler"),
            coredns_health_port=port("coredns_health"),
            coredns_ready_port=port("coredns_ready"),
            sandbox_image=str(saved.get("sandbox_image", "")),
        )
        self._binaries: NodeBinaries | None = None
        self._prepared: tuple[NodeBinaries, BuiltImage, BuiltImage] | None = None
        lay = self.layout
        no_registry = {
            "HTTP_PROXY": cfg.NO_REGISTRY_PROXY,
            "HTTPS_PROXY": cfg.NO_REGISTRY_PROXY,
            "http_proxy": cfg.NO_REGISTRY_PROXY,
            "https_proxy": cfg.NO_REGISTRY_PROXY,
            "NO_PROXY": "",
            "no_proxy": "",
        }
        self.containerd = Containerd(root, lay.containerd_socket, self._containerd_argv, {**os.environ, **no_registry})
        self.relay = ApiRelay(root, lay.apiserver_port, self._relay_argv)
        self.kubelet = Kubelet(root, lay.kubelet_healthz_port, self._kubelet_argv)
        self.proxy = KubeProxy(root, lay.proxy_healthz_port, self._proxy_argv)
        self.scheduler = KubeScheduler(root, lay.scheduler_port, self._scheduler_argv)
        self.coredns = CoreDns(root, lay.coredns_ready_port, self._coredns_argv)

    # ------------------------------------------------------------------ state

    @property
    def components(self) -> tuple[Component, ...]:
        """Every process, in start order."""
        return (self.containerd, self.relay, self.kubelet, self.proxy, self.scheduler, self.coredns)

    @property
    def host_record(self) -> Path:
        return self.root / "host.json"

    def pids(self) -> dict[str, int | None]:
        return {part.NAME: part.pid() for part in self.components}

    def running(self) -> bool:
        return any(part.pid() is not None for part in self.components)

    def healthy(self) -> bool:
        return all(part.pid() is not None and part.healthy() for part in self.components) and self._ready()

    def owner(self) -> str | None:
        """The data directory of the control plane the node on this machine was last started for (None: none)."""
        owner = self._record().get("control_plane")
        return str(owner) if owner else None

    def _record(self) -> dict[str, Any]:
        try:
            loaded = json.loads((self.root / "node.json").read_text())
            return loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            return {}

    def _say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)

    # ------------------------------------------------------------------ start

    def prepare(self) -> tuple[NodeBinaries, BuiltImage, BuiltImage]:
        """Build (once) and return what the node runs: binaries, the pause image and the Flink image. A handle
        looks them up once: ``start`` after ``prepare`` (the tests build outside the timed start) reuses them."""
        if self._prepared is None:
            require_host_tools()
            binaries = node_binaries(self.progress)
            self._prepared = binaries, pause_image(self.progress), flink_image(self.usrlib, self.progress)
        return self._prepared

    def start(self, timeout: float = 180.0) -> None:
        """Start the node (building what it needs first, outside ``timeout``) and wait until it is Ready."""
        self._binaries, pause, flink = self.prepare()
        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.root / ".lock"):
            self._check_owner()
            self._finish_unclean_stop(timeout)
            if self.control_plane.apiserver.pid() is None:
                raise RuntimeFailure("the Kubernetes control plane is not running: start it first (`flinkops dev up "
                                     "kubernetes`)")  # fmt: skip
            self.layout = dataclasses.replace(self.layout, sandbox_image=pause.names[0])
            launched: list[Component] = []
            deadline = time.monotonic() + timeout
            fresh = not self.running()
            try:
                host.save_host_state(self.host_record)
                host.ensure_bridge()
                host.ensure_service_route(SERVICE_CLUSTER_IP_RANGE)
                host.ensure_fence()  # before forwarding is turned on: nothing is ever forwarded unfenced
                host.ensure_forwarding()
                self._write_files()
                self._write_record(flink)
                for part in self.components:
                    if part.pid() is None:
                        launched.append(part)
                self._say(f"starting containerd (socket {self.layout.containerd_socket})")
                self.containerd.start(timeout=max(1.0, deadline - time.monotonic()))
                self._import(pause)
                self._import(flink)
                self._ensure_api_objects()
                self._say("starting the kubelet, kube-proxy, kube-scheduler, CoreDNS and the apiserver relay")
                with ThreadPoolExecutor(max_workers=5) as pool:
                    rest = [self.relay, self.kubelet, self.proxy, self.scheduler, self.coredns]
                    futures = [pool.submit(p.start, max(1.0, deadline - time.monotonic())) for p in rest]
                    for future in futures:
                        future.result()
                self._say(f"waiting for the node {cfg.NODE_NAME} to be Ready")
                self._wait_ready(deadline)
            except BaseException:
                for part in reversed(launched):
                    with contextlib.suppress(Exception):
                        part.stop()
                if fresh:  # nothing of the node ran before: leave the host as it was
                    with contextlib.suppress(Exception):
                        self._stop_locked(timeout=10.0)
                raise

    def unclean(self) -> list[str]:
        """What a run of the node that ended without ``down`` (killed, or the machine's processes stopped) left
        on the host while no part of the node runs: its host record, mounts under its root, kubepods cgroups."""
        if self.running():
            return []
        left = [f"mount {point}" for point in host.mounts_under([self.root])]
        left += [f"cgroup {group}" for group in host.kubepods_cgroups()]
        if self.host_record.exists():
            left.append(f"the host record {self.host_record} (the host settings were not restored)")
        return left

    def _finish_unclean_stop(self, timeout: float) -> None:
        left = self.unclean()
        if left:
            self._say(f"the node's last run ended without `down` ({len(left)} things left, e.g. {left[0]}): "
                      "finishing its stop first")  # fmt: skip
            self._stop_locked(timeout)

    def recover(self, timeout: float = 60.0) -> list[str]:
        """Finish the stop of a node that ended without ``down``; returns what was found (empty: nothing)."""
        if not self.root.exists():
            return []
        with file_lock(self.root / ".lock"):
            left = self.unclean()
            if left:
                self._finish_unclean_stop(timeout)
            return left

    def _check_owner(self) -> None:
        owner = self.owner()
        if owner and owner != str(self.control_plane.data_dir) and self.running() and not _control_plane_runs(owner):
            self._say(f"the node still runs for the control plane in {owner}, which no longer runs: stopping it first")
            self._stop_locked(timeout=60.0)
        if owner and owner != str(self.control_plane.data_dir) and self.running():
            raise RuntimeFailure(
                f"a dev node already runs on this machine for the control plane in {owner} (one node per "
                f"machine): stop it first with that FLINKOPS_HOME: `flinkops dev down kubernetes`"
            )
        if owner and owner != str(self.control_plane.data_dir):
            for name in ("pki", "config"):  # certificates of another control plane's CA
                shutil.rmtree(self.root / name, ignore_errors=True)

    def _write_record(self, flink: BuiltImage) -> None:
        lay = self.layout
        record = {
            "control_plane": str(self.control_plane.data_dir),
            "apiserver_port": lay.apiserver_port,
            "sandbox_image": lay.sandbox_image,
            "flink_image": list(flink.names),
            "ports": {
                "kubelet_healthz": lay.kubelet_healthz_port,
                "proxy_healthz": lay.proxy_healthz_port,
                "proxy_metrics": lay.proxy_metrics_port,
                "scheduler": lay.scheduler_port,
                "coredns_health": lay.coredns_health_port,
                "coredns_ready": lay.coredns_ready_port,
            },
        }
        write_private(self.root / "node.json", json.dumps(record, indent=1) + "\n")

    def _write_files(self) -> None:
        lay = self.layout
        for directory in (lay.config_dir, lay.cni_conf_dir, lay.pki_dir, lay.kubelet_dir, lay.pod_logs_dir):
            directory.mkdir(parents=True, exist_ok=True)
        files = {
            lay.config_file("containerd.toml"): cfg.containerd_config(lay),
            lay.cni_conf_dir / "10-flinkops-node.conflist": cfg.cni_config(lay),
            lay.config_file("kubelet.yaml"): cfg.kubelet_config(lay),
            lay.config_file("kube-proxy.yaml"): cfg.kube_proxy_config(lay),
            lay.config_file("Corefile"): cfg.corefile(lay),
            lay.resolv_conf: cfg.resolv_conf(),
        }
        for name, text in cfg.registry_hosts().items():
            files[lay.registry_hosts_dir / name / "hosts.toml"] = text
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        pki = self.control_plane.pki_dir
        users = {
            "kubelet": f"/O=system:nodes/CN=system:node:{cfg.NODE_NAME}",
            "kube-proxy": "/CN=system:kube-proxy",
            "kube-scheduler": "/CN=system:kube-scheduler",
            "coredns": f"/CN={_COREDNS_USER}",
        }
        for name, subject in users.items():
            cert, key = client_certificate(pki, lay.pki_dir, name, subject)
            user = subject.rsplit("CN=", 1)[1]
            text = kubeconfig(self.control_plane.endpoint, user, pki / "ca.crt", cert, key, context=CONTEXT)
            write_private(lay.kubeconfig(name), text)

    # ------------------------------------------------------------------ argument lists

    def _bins(self) -> NodeBinaries:
        if self._binaries is None:
            self._binaries = node_binaries(self.progress)
        return self._binaries

    def _containerd_argv(self) -> list[str]:
        return ["/usr/bin/containerd", "--config", str(self.layout.config_file("containerd.toml"))]

    def _relay_argv(self) -> list[str]:
        port = self.layout.apiserver_port
        return ["/usr/bin/socat", f"TCP-LISTEN:{port},bind={cfg.BRIDGE_IP},reuseaddr,fork", f"TCP:127.0.0.1:{port}"]

    def _kubelet_argv(self) -> list[str]:
        lay = self.layout
        return [
            str(self._bins().kubelet),
            f"--config={lay.config_file('kubelet.yaml')}",
            f"--kubeconfig={lay.kubeconfig('kubelet')}",
            f"--root-dir={lay.kubelet_dir}",
            f"--cert-dir={lay.kubelet_dir / 'pki'}",
            f"--hostname-override={cfg.NODE_NAME}",
            f"--node-ip={cfg.BRIDGE_IP}",
            "--v=1",
        ]

    def _proxy_argv(self) -> list[str]:
        return [str(self._bins().kube_proxy), f"--config={self.layout.config_file('kube-proxy.yaml')}", "--v=1"]

    def _scheduler_argv(self) -> list[str]:
        kubeconfig = self.layout.kubeconfig("kube-scheduler")
        return [
            str(self._bins().kube_scheduler),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--client-ca-file={self.control_plane.ca_file}",
            "--authentication-skip-lookup=true",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.layout.scheduler_port}",
            "--leader-elect=false",
            "--profiling=false",
        ]

    def _coredns_argv(self) -> list[str]:
        return [str(self._bins().coredns), "-conf", str(self.layout.config_file("Corefile"))]

    # ------------------------------------------------------------------ images

    def ctr(self, *args: str, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
        """``ctr`` on the node's containerd, namespace ``k8s.io`` (the kubelet's)."""
        argv = ["/usr/bin/ctr", "--address", str(self.layout.containerd_socket), "--namespace", "k8s.io", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def images(self) -> dict[str, str]:
        """Image name -> manifest digest, as containerd has them."""
        listed = self.ctr("images", "ls")
        found: dict[str, str] = {}
        for line in listed.stdout.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 3:
                found[fields[0]] = fields[2]
        return found

    def _import(self, image: BuiltImage) -> None:
        have = self.images()
        if all(have.get(name) == image.digest for name in image.names):
            return
        self._say(f"importing {image.names[0]} into containerd (once per image build)")
        started = time.monotonic()
        done = self.ctr("images", "import", "--snapshotter", "overlayfs", str(image.archive), timeout=1200)
        if done.returncode != 0:
            raise RuntimeFailure(f"`ctr images import {image.archive}` failed: {(done.stderr or done.stdout).strip()}")
        self._say(f"imported {image.names[0]} in {time.monotonic() - started:.0f}s")

    # ------------------------------------------------------------------ the API

    def _apply(self, client: httpx.Client, path: str, body: Mapping[str, Any]) -> None:
        response = client.patch(
            path,
            content=json.dumps(body),
            params={"fieldManager": _FIELD_MANAGER, "force": "true"},
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        if response.status_code >= 300:
            raise RuntimeFailure(f"the apiserver refused {path}: {response.status_code} {response.text[:300]}")

    def _ensure_api_objects(self) -> None:
        """The ``kubernetes`` Service's endpoints (the relay on the bridge IP; the dev apiserver runs no endpoint
        reconciler) and CoreDNS's read access to Services, EndpointSlices, pods and namespaces."""
        port = self.layout.apiserver_port
        rbac = "/apis/rbac.authorization.k8s.io/v1"
        with self.control_plane.admin_client(timeout=10.0) as client:
            self._apply(client, "/api/v1/namespaces/default/endpoints/kubernetes", {
                "apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                "subsets": [{"addresses": [{"ip": cfg.BRIDGE_IP}],
                             "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
            })  # fmt: skip
            self._apply(client, "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes", {
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"kubernetes.io/service-name": "kubernetes",
                                        "endpointslice.kubernetes.io/managed-by": _FIELD_MANAGER}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [cfg.BRIDGE_IP], "conditions": {"ready": True}}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            })  # fmt: skip
            self._apply(client, f"{rbac}/clusterroles/flinkops:coredns", {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "flinkops:coredns"},
                "rules": [
                    {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                     "verbs": ["list", "watch"]},
                    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
                ],
            })  # fmt: skip
            self._apply(client, f"{rbac}/clusterrolebindings/flinkops:coredns", {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "flinkops:coredns"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flinkops:coredns"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": _COREDNS_USER}],
            })  # fmt: skip

    def _ready(self) -> bool:
        try:
            with self.control_plane.admin_client(timeout=5.0) as client:
                response = client.get(f"/api/v1/nodes/{cfg.NODE_NAME}")
        except (httpx.HTTPError, OSError):
            return False
        if response.status_code != 200:
            return False
        conditions = (response.json().get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def _wait_ready(self, deadline: float) -> None:
        while not self._ready():
            for part in (self.kubelet, self.containerd):
                if part.pid() is None:
                    raise RuntimeFailure(f"{part.NAME} exited while the node started: {part._log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeFailure(f"the node did not become Ready in time: {self.kubelet._log_tail()}")
            time.sleep(0.2)

    # ------------------------------------------------------------------ stop

    def stop(self, timeout: float = 60.0) -> list[str]:
        """Stop the node and restore the host; returns what could not be restored (empty: all is back).
        Safe to run when nothing runs (it then only finishes an unfinished restore)."""
        if not self.root.exists():
            return []
        with file_lock(self.root / ".lock"):
            return self._stop_locked(timeout)

    def _stop_locked(self, timeout: float) -> list[str]:
        was_running = self.running()
        self.scheduler.stop()  # no pod lands on the node while its pods are deleted
        if self.kubelet.pid() is not None and self.control_plane.apiserver.pid() is not None:
            self._delete_pods(timeout)
        for part in (self.coredns, self.proxy, self.relay, self.kubelet):
            part.stop()
        if self.containerd.pid() is not None:
            self._remove_containers()
        self.containerd.stop()
        self._kill_leftovers()
        problems: list[str] = []
        if was_running or self.host_record.exists() or host.mounts_under([self.root]):
            kube_proxy = self._binaries.kube_proxy if self._binaries else _cached_kube_proxy()
            lay = self.layout
            remove = [lay.containerd_state, lay.kubelet_dir, lay.pod_logs_dir, lay.ipam_dir]
            host.unmount_under([lay.image_store])
            problems = host.restore(self.host_record, remove=remove, kube_proxy=kube_proxy)
        if self.control_plane.apiserver.pid() is not None:
            self._forget_node()
        return problems

    def _delete_pods(self, timeout: float) -> None:
        selector = {"fieldSelector": f"spec.nodeName={cfg.NODE_NAME}"}
        deadline = time.monotonic() + timeout
        with contextlib.suppress(httpx.HTTPError, OSError), self.control_plane.admin_client(timeout=10.0) as client:
            pods = client.get("/api/v1/pods", params=selector).json().get("items", [])
            for pod in pods:
                meta = pod["metadata"]
                client.delete(
                    f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                    params={"gracePeriodSeconds": "1"},
                )
            while time.monotonic() < deadline:
                left = client.get("/api/v1/pods", params=selector).json().get("items", [])
                if not left and not self.ctr("tasks", "ls", "-q").stdout.strip():
                    return
                time.sleep(0.3)

    def _remove_containers(self) -> None:
        for task in self.ctr("tasks", "ls", "-q").stdout.split():
            self.ctr("tasks", "kill", "--signal", "SIGKILL", task, timeout=30)
            self.ctr("tasks", "delete", "--force", task, timeout=30)
        for container in self.ctr("containers", "ls", "-q").stdout.split():
            self.ctr("containers", "delete", container, timeout=30)

    def _kill_leftovers(self) -> None:
        """Container processes still in the kubepods cgroups, and containerd shims serving the node's socket."""
        victims: set[int] = set()
        for procs in Path("/sys/fs/cgroup").glob("*/kubepods/**/cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                victims.update(int(pid) for pid in procs.read_text().split())
        socket_arg = str(self.layout.containerd_socket)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if argv and argv[0].endswith(b"containerd-shim-runc-v2") and socket_arg.encode() in argv:
                    victims.add(int(entry.name))
        victims.discard(os.getpid())
        for pid in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while victims and time.monotonic() < deadline:
            victims = {pid for pid in victims if Path(f"/proc/{pid}").exists()}
            time.sleep(0.05)

    def _forget_node(self) -> None:
        """Delete the Node object and the ``kubernetes`` endpoints the node set."""
        with contextlib.suppress(httpx.HTTPError, OSError), self.control_plane.admin_client(timeout=10.0) as client:
            client.delete(f"/api/v1/nodes/{cfg.NODE_NAME}")
            client.delete("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")
            client.delete("/api/v1/namespaces/default/endpoints/kubernetes")


def _control_plane_runs(data_dir: str) -> bool:
    """Whether the apiserver of the dev control plane in ``data_dir`` runs (its recorded pid is alive): a node
    whose control plane is gone (its test session was killed, its directory deleted) is an orphan, stopped by
    the next ``up``."""
    return KubeControlPlane(Path(data_dir)).apiserver.pid() is not None


def _cached_kube_proxy() -> Path | None:
    from flinkops.dev.kubernetes import KUBERNETES_VERSION

    path = cache_dir() / "go" / f"kube-proxy-{KUBERNETES_VERSION}" / "kube-proxy"
    return path if path.exists() else None
