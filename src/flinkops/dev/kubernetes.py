"""A local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) as three plain processes.

No kubelet and no containers: the API serves and the controllers run (Deployment to ReplicaSet to Pod, service
accounts, namespaces, garbage collection through owner references), but pods stay Pending because no node
exists. That is enough to test what talks to the Kubernetes API (stores, runtimes, CRDs, RBAC).

The binaries are built from the Go module proxy once (:func:`flinkops.artifacts.kubernetes_binaries`,
:func:`flinkops.artifacts.etcd_binary`) and cached; the versions are pinned here. The PKI is made with the
``openssl`` command (:mod:`flinkops.dev.pki`). Everything lives in one directory::

    <data_dir>/control-plane.json        the ports (apiserver, etcd client and peer, controller-manager), kept
    <data_dir>/pki/                      CA, apiserver serving cert, admin and controller-manager client certs,
                                         service-account key pair (made once; mode 0600 for keys)
    <data_dir>/etcd-data/                etcd's data: kept across stop/start
    <data_dir>/admin.kubeconfig          cluster-admin (group system:masters), certificates embedded, context
                                         ``flinkops-dev`` (mode 0600)
    <data_dir>/controller-manager.kubeconfig
    <data_dir>/{etcd,kube-apiserver,kube-controller-manager}.pid   pid, kernel start time and port of each
    <data_dir>/{etcd,kube-apiserver,kube-controller-manager}.log   each process's output

Every port binds 127.0.0.1: the apiserver's secure port (default 6443), etcd's client and peer ports and the
controller-manager's health port (free ports picked at the first start and kept). etcd speaks plain HTTP on
loopback; the apiserver requires TLS and authenticates clients by certificate (``--client-ca-file``).

Invariants:

* At most one control plane per ``data_dir``: a start adopts the processes already running there and starts
  only the missing ones; starts and stops of one directory serialise on ``<data_dir>/.lock``.
* ``start`` returns only when ``/readyz`` answers, the controller-manager is healthy and the ``default``
  ServiceAccount of the ``default`` namespace exists (so pods can be created). When it fails, the processes it
  launched are stopped again.
* Only recorded pids are signalled, and only while they keep their recorded start time
  (:mod:`flinkops.dev.process`). ``stop`` is idempotent: controller-manager, apiserver, then etcd.

Called by: :mod:`flinkops.dev.services` (``flinkops dev up|down|status kubernetes``) and the tests'
``tests/support/kube.py``.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import httpx

from flinkops.artifacts import etcd_binary, file_lock, kubernetes_binaries
from flinkops.dev.pki import kubeconfig, make_pki
from flinkops.dev.process import HOST, CommandServer, ServerProcess, free_port, port_in_use, write_private
from flinkops.errors import RuntimeFailure

__all__ = [
    "CONTEXT",
    "DEFAULT_PORT",
    "ETCD_VERSION",
    "KUBERNETES_VERSION",
    "ControlPlaneBinaries",
    "KubeControlPlane",
    "control_plane_binaries",
]

# The newest 1.35 release of k8s.io/kubernetes that the Go module proxy lists (`go list -m -versions`); its go.mod
# says go 1.25.0. Its staging modules (k8s.io/api, ...) are pinned at v0.35.4.
KUBERNETES_VERSION = "v1.35.4"
# etcd server 3.6.x, the line kubeadm of Kubernetes 1.35 defaults to.
ETCD_VERSION = "v3.6.16"
# What these two need (their go.mod files say go 1.25.0 and go 1.26.0); checked before anything is fetched.
GO_MINIMUM = (1, 26)
DEFAULT_PORT = 6443
CONTEXT = "flinkops-dev"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/16"  # room for thousands of Services (a /24 fills at 254)
FIRST_SERVICE_IP = "10.0.0.1"  # the `kubernetes` Service's ClusterIP: must be in the apiserver's certificate

_CONFIG = "control-plane.json"
_ADMIN_KUBECONFIG = "admin.kubeconfig"
_KCM_KUBECONFIG = "controller-manager.kubeconfig"
_ADMIN_USER = "flinkops-admin"
_STOP_GRACE_SECONDS = 15.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ControlPlaneBinaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path


def control_plane_binaries(progress: Progress | None = None) -> ControlPlaneBinaries:
    """The three binaries (built with Go the first time: several minutes and a few GB of memory, once)."""
    kube = kubernetes_binaries(
        KUBERNETES_VERSION, ("kube-apiserver", "kube-controller-manager"), min_go=GO_MINIMUM, progress=progress
    )
    etcd = etcd_binary(ETCD_VERSION, min_go=GO_MINIMUM, progress=progress)
    return ControlPlaneBinaries(etcd, kube["kube-apiserver"], kube["kube-controller-manager"])


def _get(url: str, *, verify: ssl.SSLContext | bool, timeout: float = 2.0) -> httpx.Response | None:
    """One GET; None when nothing answers (refused, reset, TLS not up yet, timeout)."""
    try:
        with httpx.Client(verify=verify, timeout=timeout, trust_env=False) as client:
            return client.get(url)
    except (httpx.HTTPError, OSError, ssl.SSLError):
        return None


# ------------------------------------------------------------------------------------------------ PKI

_SANS = (
    f"IP:{HOST}",
    f"IP:{FIRST_SERVICE_IP}",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)
# name -> (subject, extension section)
_LEAVES: dict[str, tuple[str, str]] = {
    "apiserver": ("/CN=kube-apiserver", "server"),
    "admin": (f"/O=system:masters/CN={_ADMIN_USER}", "client"),
    "controller-manager": ("/CN=system:kube-controller-manager", "client"),
}


def _make_pki(pki: Path) -> None:
    """The control plane's CA, leaf certificates and service-account key pair in ``pki`` (once)."""
    make_pki(pki, _SANS, _LEAVES)


# ------------------------------------------------------------------------------------------------ processes


class _Part(CommandServer):
    """One of the three processes; its ``argv`` comes from the control plane that owns it. It serves when
    ``GET <endpoint><HEALTH_PATH>`` answers 200 (TLS checked with ``verify()``)."""

    SCHEME: ClassVar[str] = "https"
    HEALTH_PATH: ClassVar[str]
    STOP_GRACE_SECONDS = _STOP_GRACE_SECONDS

    def __init__(
        self,
        data_dir: Path,
        port: int,
        argv: Callable[[], list[str]],
        verify: Callable[[], ssl.SSLContext | bool] = lambda: False,
    ) -> None:
        super().__init__(data_dir, port, argv)
        self._verify = verify

    @property
    def endpoint(self) -> str:
        return f"{self.SCHEME}://{HOST}:{self.port}"

    def healthy(self) -> bool:
        answer = _get(f"{self.endpoint}{self.HEALTH_PATH}", verify=self._verify())
        return answer is not None and answer.status_code == 200 and self._serves(answer)

    def _serves(self, answer: httpx.Response) -> bool:
        return True


class _Etcd(_Part):
    NAME = "etcd"
    PID_FILE = "etcd.pid"
    LOG_FILE = "etcd.log"
    SCHEME = "http"
    HEALTH_PATH = "/health"

    def _serves(self, answer: httpx.Response) -> bool:
        try:
            return bool(answer.json().get("health") == "true")
        except ValueError:
            return False


class _ApiServer(_Part):
    NAME = "kube-apiserver"
    PID_FILE = "kube-apiserver.pid"
    LOG_FILE = "kube-apiserver.log"
    HEALTH_PATH = "/readyz"  # as cluster-admin: ``verify`` presents the admin certificate

    def healthy(self) -> bool:
        return (self.data_dir / "pki" / "complete").exists() and super().healthy()


class _ControllerManager(_Part):
    # /healthz is served without authentication; the serving certificate is self-signed in memory (verify=False).
    NAME = "kube-controller-manager"
    PID_FILE = "kube-controller-manager.pid"
    LOG_FILE = "kube-controller-manager.log"
    HEALTH_PATH = "/healthz"


# ------------------------------------------------------------------------------------------------ the control plane


class KubeControlPlane(ServerProcess):
    """etcd, kube-apiserver and kube-controller-manager whose state lives in ``data_dir``.

    ``port`` is the apiserver's secure port; ``None`` reuses the one of an earlier start in ``data_dir``, else
    6443. ``durable=False`` runs etcd without fsync (for throw-away test clusters: faster on a busy disk, and
    a crash may lose the last writes). The object's own pid and port are the apiserver's, so
    :class:`flinkops.dev.services.DevServices` treats it like its other servers.
    """

    NAME = "the Kubernetes control plane"
    PID_FILE = _ApiServer.PID_FILE
    LOG_FILE = _ApiServer.LOG_FILE

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        progress: Progress | None = None,
        durable: bool = True,
    ) -> None:
        super().__init__(data_dir, port)
        configured = self._configured_ports()
        self.port = port if port is not None else configured.get("apiserver", DEFAULT_PORT)
        self.etcd_port = configured.get("etcd", 0) or free_port()
        self.etcd_peer_port = configured.get("etcd_peer", 0) or free_port()
        self.controller_manager_port = configured.get("controller_manager", 0) or free_port()
        self.progress = progress
        self.durable = durable
        self._binaries: ControlPlaneBinaries | None = None
        self.etcd = _Etcd(self.data_dir, self.etcd_port, self._etcd_argv)
        self.apiserver = _ApiServer(self.data_dir, self.port, self._apiserver_argv, self.admin_ssl_context)
        self.controller_manager = _ControllerManager(
            self.data_dir, self.controller_manager_port, self._controller_manager_argv
        )

    # ------------------------------------------------------------------ where things are

    @property
    def endpoint(self) -> str:
        """The apiserver's URL."""
        return f"https://{HOST}:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (context ``flinkops-dev``, certificates embedded); written by ``start``."""
        return self.data_dir / _ADMIN_KUBECONFIG

    @property
    def pki_dir(self) -> Path:
        return self.data_dir / "pki"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the apiserver's serving certificate and every client certificate."""
        return self.pki_dir / "ca.crt"

    @property
    def admin_cert_file(self) -> Path:
        return self.pki_dir / "admin.crt"

    @property
    def admin_key_file(self) -> Path:
        return self.pki_dir / "admin.key"

    @property
    def parts(self) -> tuple[ServerProcess, ServerProcess, ServerProcess]:
        """The processes in start order."""
        return (self.etcd, self.apiserver, self.controller_manager)

    def pids(self) -> dict[str, int | None]:
        """The running pid of each process by name (None for one that does not run)."""
        return {part.NAME: part.pid() for part in self.parts}

    def admin_ssl_context(self) -> ssl.SSLContext:
        """TLS settings for a cluster-admin client: trust the CA, present the admin certificate."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.load_cert_chain(str(self.admin_cert_file), str(self.admin_key_file))
        return context

    def admin_client(self, timeout: float = 30.0) -> httpx.Client:
        """An httpx client for the API as cluster-admin (``base_url`` is the apiserver); the caller closes it."""
        return httpx.Client(base_url=self.endpoint, verify=self.admin_ssl_context(), timeout=timeout, trust_env=False)

    # ------------------------------------------------------------------ state

    def healthy(self) -> bool:
        """True when all three run and answer: etcd ``/health``, the apiserver ``/readyz`` (as admin), the
        controller-manager ``/healthz``."""
        return all(part.pid() is not None and part.healthy() for part in self.parts)

    def taken_ports(self) -> list[tuple[str, int]]:
        """Ports a start would bind that another process holds now (``what``, port); empty when free or when
        the process that would bind it already runs."""
        return [
            (what, port)
            for what, port, part in (
                ("apiserver port", self.port, self.apiserver),
                ("etcd client port", self.etcd_port, self.etcd),
                ("etcd peer port", self.etcd_peer_port, self.etcd),
                ("controller-manager port", self.controller_manager_port, self.controller_manager),
            )
            if part.pid() is None and port_in_use(port)
        ]

    # ------------------------------------------------------------------ start and stop

    def start(self, timeout: float = 180.0) -> None:
        """Start what is not running (building the binaries first if needed, outside ``timeout``) and wait until
        the control plane serves and the ``default`` ServiceAccount exists. Raises RuntimeFailure, naming the
        process and the end of its log, when it does not."""
        self._binaries = control_plane_binaries(self.progress)
        with file_lock(self.data_dir / ".lock"):
            self._check_adoptable()
            taken = self.taken_ports()
            if taken:
                what = ", ".join(f"{name} {port}" for name, port in taken)
                raise RuntimeFailure(
                    f"cannot start {self.NAME}: {what} on {HOST} already in use by another process (choose another "
                    f"apiserver port, or stop what listens there; etcd and controller-manager ports were chosen at "
                    f"the first start in {self.data_dir})"
                )
            self.data_dir.mkdir(parents=True, exist_ok=True)
            _make_pki(self.pki_dir)
            self._write_config()
            launched: list[ServerProcess] = []
            deadline = time.monotonic() + timeout
            try:
                for part in self.parts:
                    if part.pid() is None:
                        launched.append(part)
                    # Launches (or adopts) the part and polls its health; one deadline for the whole start.
                    part.start(timeout=max(0.0, deadline - time.monotonic()))
                self._wait_for_default_service_account(deadline)
            except BaseException:
                for part in reversed(launched):
                    part.stop()
                raise

    def stop(self, timeout: float = _STOP_GRACE_SECONDS) -> bool:
        """Stop the controller-manager, the apiserver, then etcd (SIGTERM, then SIGKILL after ``timeout``);
        False when none of them was running. Data, certificates and kubeconfig stay."""
        if not self.data_dir.is_dir():
            return False
        with file_lock(self.data_dir / ".lock"):
            stopped = [part.stop(timeout) for part in reversed(self.parts)]
        return any(stopped)

    def _launch(self) -> None:
        """Not used on its own: :meth:`start` launches the parts in order and waits for each."""
        raise NotImplementedError("use KubeControlPlane.start()")

    def _wait_for_default_service_account(self, deadline: float) -> None:
        """The ``default`` namespace comes from the apiserver, its ``default`` ServiceAccount from the
        controller-manager; pods can be created once it exists."""
        path = "/api/v1/namespaces/default/serviceaccounts/default"
        with self.admin_client(timeout=5.0) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(path).status_code == 200:
                        return
                if self.controller_manager.pid() is None:
                    raise RuntimeFailure(
                        f"kube-controller-manager exited at start: {self.controller_manager._log_tail()}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeFailure(
                        "the default ServiceAccount did not appear in time (the controller-manager creates it): "
                        f"{self.controller_manager._log_tail()}"
                    )
                time.sleep(0.2)

    def _check_adoptable(self) -> None:
        """A running apiserver of this directory must be on the port asked for (its pid file is ours)."""
        if self.apiserver.pid() is not None:
            self._adopt()
            self.apiserver.port = self.port

    def _log_files(self) -> tuple[Path, ...]:
        return tuple(part.log_file for part in self.parts)

    # ------------------------------------------------------------------ configuration

    def _configured_ports(self) -> dict[str, int]:
        try:
            data = json.loads((self.data_dir / _CONFIG).read_text())
            return {key: int(value) for key, value in data["ports"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    def _write_config(self) -> None:
        ports = {
            "apiserver": self.port,
            "etcd": self.etcd_port,
            "etcd_peer": self.etcd_peer_port,
            "controller_manager": self.controller_manager_port,
        }
        versions = {"kubernetes": KUBERNETES_VERSION, "etcd": ETCD_VERSION}
        write_private(self.data_dir / _CONFIG, json.dumps({"ports": ports, "versions": versions}, indent=1) + "\n")
        pki = self.pki_dir
        write_private(
            self.kubeconfig,
            kubeconfig(
                self.endpoint, _ADMIN_USER, pki / "ca.crt", pki / "admin.crt", self.admin_key_file, context=CONTEXT
            ),
        )
        write_private(
            self.data_dir / _KCM_KUBECONFIG,
            kubeconfig(
                self.endpoint,
                "system:kube-controller-manager",
                pki / "ca.crt",
                pki / "controller-manager.crt",
                pki / "controller-manager.key",
                context=CONTEXT,
            ),
        )

    def _require_binaries(self) -> ControlPlaneBinaries:
        if self._binaries is None:
            self._binaries = control_plane_binaries(self.progress)
        return self._binaries

    def _etcd_argv(self) -> list[str]:
        peer = f"http://{HOST}:{self.etcd_peer_port}"
        client = f"http://{HOST}:{self.etcd_port}"
        argv = [
            str(self._require_binaries().etcd),
            "--name=flinkops-dev",
            f"--data-dir={self.data_dir / 'etcd-data'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=flinkops-dev={peer}",
            "--initial-cluster-state=new",
            "--log-level=warn",
        ]
        if not self.durable:
            argv.append("--unsafe-no-fsync")
        return argv

    def _apiserver_argv(self) -> list[str]:
        pki = self.pki_dir
        return [
            str(self._require_binaries().kube_apiserver),
            f"--etcd-servers=http://{HOST}:{self.etcd_port}",
            f"--bind-address={HOST}",
            f"--advertise-address={HOST}",
            # Endpoints may not hold a loopback address, so the `kubernetes` Service gets none (nothing runs in
            # the cluster to use it); a reconciler would log a validation error every few seconds.
            "--endpoint-reconciler-type=none",
            f"--secure-port={self.port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--allow-privileged=true",
            # A dev node (flinkops.dev.node) is named after its IP; the apiserver reaches its kubelet there for
            # logs and exec, never through a name the machine's resolver would be asked about.
            "--kubelet-preferred-address-types=InternalIP",
            "--profiling=false",
        ]

    def _controller_manager_argv(self) -> list[str]:
        pki = self.pki_dir
        kubeconfig = self.data_dir / _KCM_KUBECONFIG
        return [
            str(self._require_binaries().kube_controller_manager),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            # Client certificates from our CA; no front-proxy CA to look up in kube-system (there is none: the
            # lookup would log an error every few milliseconds).
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authentication-skip-lookup=true",
            f"--bind-address={HOST}",
            f"--secure-port={self.controller_manager_port}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            "--use-service-account-credentials=true",
            "--controllers=*",
            "--leader-elect=false",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--profiling=false",
        ]
