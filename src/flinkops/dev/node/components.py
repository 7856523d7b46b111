"""The dev node's processes: containerd, the kubelet, kube-proxy, kube-scheduler, CoreDNS and the relay that
serves the apiserver (on 127.0.0.1) on the bridge IP for pods. Each is a :class:`~flinkops.dev.process.
CommandServer` with its pid file and log in the node's root, started in its own session and stopped by its
recorded pid; its health check is the one its project documents (a health endpoint, or a socket that accepts).

Called by: :mod:`flinkops.dev.node.node`, which builds the argument lists. Invariant: every server here binds
127.0.0.1 or the bridge IP, never all interfaces.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar

import httpx

from flinkops.dev.node.config import BRIDGE_IP
from flinkops.dev.process import CommandServer

__all__ = [
    "ApiRelay",
    "Component",
    "Containerd",
    "CoreDns",
    "KubeProxy",
    "KubeScheduler",
    "Kubelet",
]


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """GET ``url`` answers 200 (TLS not verified: these are loopback health endpoints with self-signed
    certificates)."""
    try:
        with httpx.Client(verify=False, timeout=timeout, trust_env=False) as client:
            return client.get(url).status_code == 200
    except (httpx.HTTPError, OSError):
        return False


def accepts(address: tuple[str, int] | str, timeout: float = 1.0) -> bool:
    """A TCP address (host, port) or a Unix socket path accepts a connection."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError:
            return False
    return True


class Component(CommandServer):
    """One node process; ``argv`` and ``env`` come from the node. By default it serves when ``GET
    http://127.0.0.1:<port><HEALTH>`` answers 200."""

    HEALTH: ClassVar[str] = ""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.HEALTH}"

    def healthy(self) -> bool:
        return http_ok(self.endpoint)


class Containerd(Component):
    NAME = "containerd"
    PID_FILE = "containerd.pid"
    LOG_FILE = "containerd.log"

    def __init__(self, root: Path, socket_path: Path, argv: Callable[[], list[str]], env: Mapping[str, str]) -> None:
        super().__init__(root, 0, argv, env=env)
        self.socket_path = socket_path

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket_path}"

    def healthy(self) -> bool:
        return accepts(str(self.socket_path))


class Kubelet(Component):
    NAME = "kubelet"
    PID_FILE = "kubelet.pid"
    LOG_FILE = "kubelet.log"
    HEALTH = "/healthz"


class KubeProxy(Component):
    NAME = "kube-proxy"
    PID_FILE = "kube-proxy.pid"
    LOG_FILE = "kube-proxy.log"
    HEALTH = "/livez"


class KubeScheduler(Component):
    NAME = "kube-scheduler"
    PID_FILE = "kube-scheduler.pid"
    LOG_FILE = "kube-scheduler.log"

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}/healthz"


class CoreDns(Component):
    NAME = "CoreDNS"
    PID_FILE = "coredns.pid"
    LOG_FILE = "coredns.log"
    HEALTH = "/ready"  # the ready plugin: 200 once the kubernetes plugin has synced with the API


class ApiRelay(Component):
    """socat forwarding ``BRIDGE_IP:port`` to the apiserver on 127.0.0.1 (the endpoint of the ``kubernetes``
    Service, so pods reach the API; a relay rather than an iptables DNAT to loopback, which would need
    ``route_localnet``)."""

    NAME = "the apiserver relay"
    PID_FILE = "apiserver-relay.pid"
    LOG_FILE = "apiserver-relay.log"

    @property
    def endpoint(self) -> str:
        return f"tcp://{BRIDGE_IP}:{self.port}"

    def healthy(self) -> bool:
        with contextlib.suppress(OSError):
            return accepts((BRIDGE_IP, self.port))
        return False
