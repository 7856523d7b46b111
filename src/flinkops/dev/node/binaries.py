"""What the dev node runs, and where each piece comes from: Debian packages that must be installed on the host
(containerd, runc, the CNI plugins, iptables, socat, debootstrap), Kubernetes binaries built from the Go module
proxy at the control plane's version (kubelet, kube-scheduler, kube-proxy), a CoreDNS built from flinkops' own
small ``main`` with only the plugins the node needs, and the pause program of its pods.

Called by: :mod:`flinkops.dev.node.node` (``up``), :mod:`flinkops.dev.node.image` (the pause image) and
``scripts/prefetch.py``. Invariants: nothing here installs a Debian package (``scripts/bootstrap.sh`` does, and
:func:`require_host_tools` says what is missing and how to install it); every binary is built once and cached
(:mod:`flinkops.artifacts`); the CoreDNS built here has no plugin that sends a query anywhere (no ``forward``,
``grpc``, ``etcd`` ...), so a name a pod asks for can never leave the machine through it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flinkops.artifacts import go_program, kubernetes_binaries
from flinkops.dev.kubernetes import GO_MINIMUM, KUBERNETES_VERSION
from flinkops.errors import RuntimeFailure

__all__ = [
    "COREDNS_PLUGINS",
    "COREDNS_VERSION",
    "DEBIAN_PACKAGES",
    "NodeBinaries",
    "coredns_binary",
    "missing_host_tools",
    "node_binaries",
    "pause_binary",
    "require_host_tools",
]

Progress = Callable[[str], None]

# The newest CoreDNS 1.14 release on the Go module proxy when this was written; its go.mod has no replace
# directives, so a module that requires it builds as is.
COREDNS_VERSION = "v1.14.7"
COREDNS_GO = "1.25.0"  # the go line of its go.mod
# Only these: serve on one address, answer cluster names from the API, log queries, health and readiness.
COREDNS_PLUGINS = ("bind", "cache", "errors", "health", "kubernetes", "log", "ready")

# Debian package -> the files that show it is installed (what the node runs from it).
DEBIAN_PACKAGES: dict[str, tuple[str, ...]] = {
    "containerd": ("/usr/bin/containerd", "/usr/bin/ctr", "/usr/bin/containerd-shim-runc-v2"),
    "runc": ("/usr/sbin/runc",),
    "containernetworking-plugins": ("/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback"),
    "iptables": ("/usr/sbin/iptables", "/usr/sbin/iptables-save", "/usr/sbin/iptables-restore"),
    "socat": ("/usr/bin/socat",),
    "debootstrap": ("/usr/sbin/debootstrap",),
}

_COREDNS_MAIN = """\
// A CoreDNS for the flinkops dev node: only the plugins below are compiled in. None of them sends a query
// anywhere (there is no forward plugin), so names outside the cluster get an error, never an upstream answer.
package main

import (
\t"github.com/coredns/coredns/coremain"

{imports}
)

func main() {{
\tcoremain.Run()
}}
"""

_PAUSE_MAIN = """\
// The pause process of the flinkops dev node's pods: it holds the pod's namespaces until it is told to stop.
// As PID 1 of a pod that shares its process namespace it also reaps orphaned children.
package main

import (
\t"os"
\t"os/signal"
\t"syscall"
)

func main() {
\tstop := make(chan os.Signal, 1)
\tsignal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
\tchildren := make(chan os.Signal, 1)
\tsignal.Notify(children, syscall.SIGCHLD)
\tfor {
\t\tselect {
\t\tcase <-stop:
\t\t\tos.Exit(0)
\t\tcase <-children:
\t\t\tfor {
\t\t\t\tvar status syscall.WaitStatus
\t\t\t\tpid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
\t\t\t\tif pid <= 0 || err != nil {
\t\t\t\t\tbreak
\t\t\t\t}
\t\t\t}
\t\t}
\t}
}
"""


@dataclass(frozen=True)
class NodeBinaries:
    kubelet: Path
    kube_scheduler: Path
    kube_proxy: Path
    coredns: Path
    pause: Path


def missing_host_tools() -> dict[str, list[str]]:
    """Debian package -> its files that are missing on this host (empty when everything is there)."""
    missing: dict[str, list[str]] = {}
    for package, files in DEBIAN_PACKAGES.items():
        absent = [f for f in files if not (os.path.isfile(f) and os.access(f, os.X_OK))]
        if absent:
            missing[package] = absent
    return missing


def require_host_tools() -> None:
    """RuntimeFailure naming the missing Debian packages and the command that installs them; also when not root
    (the node changes network settings, mounts and cgroups of the host)."""
    if os.geteuid() != 0:
        raise RuntimeFailure(
            "the dev node needs root: it creates a bridge, iptables rules, mounts and cgroups (run as root)"
        )
    missing = missing_host_tools()
    if missing:
        names = " ".join(missing)
        files = ", ".join(f for absent in missing.values() for f in absent)
        raise RuntimeFailure(
            f"the dev node needs the Debian packages {names} (missing: {files}). Install them with "
            f"`apt-get install -y --no-install-recommends {names}` (scripts/bootstrap.sh does this), then run again"
        )
    for cgroup in ("cpu", "memory", "pids"):
        if not Path("/sys/fs/cgroup", cgroup).is_dir() and not Path("/sys/fs/cgroup/cgroup.controllers").exists():
            raise RuntimeFailure(f"the dev node needs the {cgroup} cgroup controller mounted under /sys/fs/cgroup")
    if shutil.which("ip") is None:
        raise RuntimeFailure("the dev node needs the `ip` command (Debian package iproute2)")


def coredns_binary(progress: Progress | None = None) -> Path:
    imports = "\n".join(f'\t_ "github.com/coredns/coredns/plugin/{name}"' for name in COREDNS_PLUGINS)
    return go_program(
        "coredns",
        {"main.go": _COREDNS_MAIN.format(imports=imports)},
        requires={"github.com/coredns/coredns": COREDNS_VERSION},
        go_directive=COREDNS_GO,
        min_go=GO_MINIMUM,
        progress=progress,
    )


def pause_binary(progress: Progress | None = None) -> Path:
    return go_program("pause", {"main.go": _PAUSE_MAIN}, progress=progress)


def node_binaries(progress: Progress | None = None) -> NodeBinaries:
    """Every binary the node runs that is not a Debian package (built once with Go, then cached)."""
    kube = kubernetes_binaries(
        KUBERNETES_VERSION, ("kubelet", "kube-scheduler", "kube-proxy"), min_go=GO_MINIMUM, progress=progress
    )
    return NodeBinaries(
        kubelet=kube["kubelet"],
        kube_scheduler=kube["kube-scheduler"],
        kube_proxy=kube["kube-proxy"],
        coredns=coredns_binary(progress),
        pause=pause_binary(progress),
    )
