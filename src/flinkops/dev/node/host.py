"""The host settings the dev node changes, recorded before the first change and put back at ``down``.

What ``up`` changes and ``down`` restores (see :func:`restore`):

* sysctls: the bridge plugin turns on ``net.ipv4.ip_forward``; the kubelet writes ``vm.overcommit_memory``,
  ``vm.panic_on_oom``, ``kernel.panic``, ``kernel.panic_on_oops`` and the root key quotas. Their values are saved
  in ``host.json`` before anything changes (once: a retried ``up`` after a crash keeps the first record) and
  written back;
* iptables: the fence chains (:data:`~flinkops.dev.node.config.FENCE_CHAIN` in ``mangle``,
  :data:`~flinkops.dev.node.config.OUTPUT_FENCE_CHAIN` in ``filter``), kube-proxy's ``KUBE-*`` chains, the
  kubelet's ``KUBE-FIREWALL``/``KUBE-KUBELET-CANARY``/``KUBE-IPTABLES-HINT`` and any ``CNI-*`` chain, in both
  address families: every such chain that did not exist before ``up`` is unhooked, flushed and deleted;
* the bridge, the ``kubepods`` cgroups in every hierarchy, mounts under the node's directories (volumes,
  network namespaces, container root filesystems), the CNI result cache in ``/var/lib/cni``.

Called by: :mod:`flinkops.dev.node.node`; the tests read :func:`leftovers` after ``down``. Invariants: nothing
here touches a chain, cgroup, mount or file that is not the node's (names and paths are the node's own, and
chains or cgroups that existed before ``up`` are left alone); a directory is deleted only once no mount is left
under it, so a bind mount can never lead a deletion into the host's files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from flinkops.artifacts.cache import write_atomic
from flinkops.dev.kubernetes import SERVICE_CLUSTER_IP_RANGE
from flinkops.dev.node.config import (
    BRIDGE,
    BRIDGE_IP,
    FENCE_CHAIN,
    NETWORK_NAME,
    OUTPUT_FENCE_CHAIN,
    POD_PREFIX,
    fence_rules,
    output_fence_rules,
)
from flinkops.errors import RuntimeFailure

__all__ = [
    "SYSCTLS",
    "bridge_exists",
    "ensure_bridge",
    "ensure_fence",
    "ensure_forwarding",
    "ensure_service_route",
    "fence_drops",
    "leftovers",
    "mounts_under",
    "read_sysctls",
    "remove_chains",
    "restore",
    "save_host_state",
    "unmount_under",
]

SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.ipv4.conf.all.route_localnet",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_tcp_timeout_established",
    "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
)
_TABLES = ("filter", "nat", "mangle", "raw")
_CHAIN_PREFIXES = ("KUBE-", "CNI-", "FLINKOPS-NODE-")
_FAMILIES = (("iptables", "iptables-save"), ("ip6tables", "ip6tables-save"))
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_CNI_CACHE = Path("/var/lib/cni")


# ------------------------------------------------------------------------------------------------ commands


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeFailure(f"`{shlex.join(argv)}` could not run: {exc}") from exc
    if check and done.returncode != 0:
        raise RuntimeFailure(f"`{shlex.join(argv)}` failed: {(done.stderr or done.stdout).strip()}")
    return done


def _have(tool: str) -> bool:
    return shutil.which(tool) is not None


# ------------------------------------------------------------------------------------------------ sysctls


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys", *name.split("."))


def read_sysctls(names: Iterable[str] = SYSCTLS) -> dict[str, str | None]:
    """Current values (None for a sysctl this kernel does not have)."""
    values: dict[str, str | None] = {}
    for name in names:
        try:
            values[name] = _sysctl_path(name).read_text().strip()
        except OSError:
            values[name] = None
    return values


def _write_sysctl(name: str, value: str) -> None:
    with contextlib.suppress(OSError):
        if _sysctl_path(name).read_text().strip() != value:
            _sysctl_path(name).write_text(value + "\n")


# ------------------------------------------------------------------------------------------------ the record


def save_host_state(record: Path) -> dict[str, object]:
    """Record the settings ``up`` may change (once: an existing record from an earlier, unfinished ``up`` is
    kept, since the host may already be changed). Returns the record."""
    if record.exists():
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(record.read_text())
            if isinstance(loaded, dict):
                return loaded
    state: dict[str, object] = {
        "sysctls": read_sysctls(),
        "chains": {family: _chains(family) for family, _ in _FAMILIES if _have(family)},
        "cgroups": [str(path) for path in kubepods_cgroups()],
        "bridge": bridge_exists(),
        "cni_cache": _CNI_CACHE.exists(),
    }
    record.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(record, json.dumps(state, indent=1) + "\n")
    return state


# ------------------------------------------------------------------------------------------------ bridge and fence


def bridge_exists() -> bool:
    return Path("/sys/class/net", BRIDGE).exists()


def ensure_bridge() -> None:
    """The pod bridge with the gateway address, up (created when missing)."""
    if not bridge_exists():
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    addresses = _run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE]).stdout
    if f" {BRIDGE_IP}/" not in addresses:
        _run(["ip", "addr", "add", f"{BRIDGE_IP}/{POD_PREFIX}", "dev", BRIDGE])
    _run(["ip", "link", "set", BRIDGE, "up"])


def ensure_service_route(cidr: str) -> None:
    """Route the Service range onto the bridge, from the bridge's address: the host's connection to a ClusterIP
    is DNATed to a pod by kube-proxy after this route is chosen, and before kube-proxy has the Service's rule
    (or for an address no Service has) the packet stays on the bridge, where nothing answers it, instead of
    taking the default route off the machine. The route goes with the bridge; :func:`restore` also deletes it
    from a bridge that existed before."""
    _run(["ip", "route", "replace", cidr, "dev", BRIDGE, "src", BRIDGE_IP])


def ensure_fence() -> None:
    """The fence chain in ``mangle`` (both address families where the tool exists), jumped to first from
    FORWARD, and the host-output fence in ``filter`` (IPv4), jumped to first from OUTPUT. Rewritten as a whole,
    so a stale chain is corrected; ``remove_chains`` takes both away (their names carry the node's prefix)."""
    for family, _ in _FAMILIES:
        if not _have(family):
            continue
        base = [family, "-w", "-t", "mangle"]
        if _run([*base, "-n", "-L", FENCE_CHAIN], check=False).returncode != 0:
            _run([*base, "-N", FENCE_CHAIN])
        _run([*base, "-F", FENCE_CHAIN])
        for rule in fence_rules():
            _run([*base, "-A", FENCE_CHAIN, *rule])
        if _run([*base, "-C", "FORWARD", "-j", FENCE_CHAIN], check=False).returncode != 0:
            _run([*base, "-I", "FORWARD", "1", "-j", FENCE_CHAIN])
    base = ["iptables", "-w", "-t", "filter"]
    if _run([*base, "-n", "-L", OUTPUT_FENCE_CHAIN], check=False).returncode != 0:
        _run([*base, "-N", OUTPUT_FENCE_CHAIN])
    _run([*base, "-F", OUTPUT_FENCE_CHAIN])
    for rule in output_fence_rules(SERVICE_CLUSTER_IP_RANGE):
        _run([*base, "-A", OUTPUT_FENCE_CHAIN, *rule])
    if _run([*base, "-C", "OUTPUT", "-j", OUTPUT_FENCE_CHAIN], check=False).returncode != 0:
        _run([*base, "-I", "OUTPUT", "1", "-j", OUTPUT_FENCE_CHAIN])


def ensure_forwarding() -> None:
    """The two sysctls pods need: routing between the bridge and the host (Service traffic is DNATed on the host)
    and bridged traffic passing iptables (kube-proxy's rules for a pod reaching a Service). Both are recorded
    before and restored by :func:`restore`; the fence keeps the forwarding to the bridge."""
    _write_sysctl("net.ipv4.ip_forward", "1")
    _write_sysctl("net.bridge.bridge-nf-call-iptables", "1")


def fence_drops() -> int:
    """Packets the IPv4 fence has dropped so far (its DROP rules' counters); -1 when the fence is not there."""
    done = _run(["iptables", "-w", "-t", "mangle", "-n", "-v", "-x", "-L", FENCE_CHAIN], check=False)
    if done.returncode != 0:
        return -1
    total = 0
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] == "DROP" and fields[0].isdigit():
            total += int(fields[0])
    return total


# ------------------------------------------------------------------------------------------------ iptables chains


def _save(save_tool: str, table: str) -> list[str]:
    done = _run([save_tool, "-t", table], check=False)
    return done.stdout.splitlines() if done.returncode == 0 else []


def _chains(family: str) -> dict[str, list[str]]:
    save_tool = dict(_FAMILIES)[family]
    return {
        table: [line[1:].split()[0] for line in _save(save_tool, table) if line.startswith(":")] for table in _TABLES
    }


def _ours(chain: str, keep: Iterable[str]) -> bool:
    return chain.startswith(_CHAIN_PREFIXES) and chain not in set(keep)


def remove_chains(keep: dict[str, dict[str, list[str]]] | None = None) -> None:
    """Unhook, flush and delete the node's chains (KUBE-*, CNI-*, the fence) in every table of both families,
    except those in ``keep`` (family -> table -> chains that existed before ``up``)."""
    for family, save_tool in _FAMILIES:
        if not _have(family):
            continue
        for table in _TABLES:
            kept = (keep or {}).get(family, {}).get(table, [])
            lines = _save(save_tool, table)
            chains = [line[1:].split()[0] for line in lines if line.startswith(":")]
            ours = [chain for chain in chains if _ours(chain, kept)]
            if not ours:
                continue
            base = [family, "-w", "-t", table]
            for line in lines:
                if not line.startswith("-A "):
                    continue
                words = shlex.split(line)
                chain = words[1]
                if chain in ours:
                    continue
                target = next((words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-j", "-g")), "")
                if target in ours:
                    _run([*base, "-D", chain, *words[2:]], check=False)
            for chain in ours:
                _run([*base, "-F", chain], check=False)
            for chain in ours:
                _run([*base, "-X", chain], check=False)


# ------------------------------------------------------------------------------------------------ mounts and cgroups


def _unescape(field: str) -> str:
    """A mountinfo path field (spaces and such are octal escapes)."""
    return field.encode().decode("unicode_escape") if "\\" in field else field


def mounts_under(roots: Iterable[Path]) -> list[str]:
    """Mount points at or under any of ``roots``, deepest first."""
    prefixes = [str(root.resolve()) for root in roots]
    found: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            if len(fields) > 4:
                point = _unescape(fields[4])
                if any(point == p or point.startswith(p + "/") for p in prefixes):
                    found.append(point)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def unmount_under(roots: Iterable[Path]) -> list[str]:
    """Unmount everything under ``roots`` (deepest first; lazily when busy); the mount points still left."""
    roots = list(roots)
    for _ in range(3):
        points = mounts_under(roots)
        if not points:
            return []
        for point in points:
            if _run(["umount", point], check=False).returncode != 0:
                _run(["umount", "-l", point], check=False)
    return mounts_under(roots)


def kubepods_cgroups() -> list[Path]:
    with contextlib.suppress(OSError):
        return sorted(h / "kubepods" for h in _CGROUP_ROOT.iterdir() if (h / "kubepods").is_dir())
    return []


def _remove_empty_dirs(top: Path) -> None:
    """Remove the directories under ``top`` (and ``top``) that are empty, deepest first: what holds a file (or a
    cgroup with a process) stays."""
    for current, _dirs, _files in sorted(os.walk(top, topdown=False), key=lambda entry: -entry[0].count("/")):
        with contextlib.suppress(OSError):
            os.rmdir(current)


# ------------------------------------------------------------------------------------------------ restore


def _remove_tree(path: Path) -> None:
    """Delete a directory of the node's, but never while something is mounted under it."""
    if not path.exists():
        return
    left = mounts_under([path])
    if left:
        raise RuntimeFailure(f"cannot delete {path}: still mounted under it: {', '.join(left[:5])}")
    shutil.rmtree(path, ignore_errors=True)


def restore(record: Path, *, remove: Sequence[Path], kube_proxy: Path | None) -> list[str]:
    """Put the host back as ``record`` found it; ``remove`` are the node's directories to unmount and delete
    (its state, never the image store, whose mounts are unmounted too). Returns what could not be restored
    (empty when all is back); the record is deleted only then."""
    problems: list[str] = []
    try:
        state = json.loads(record.read_text())
    except (OSError, ValueError):
        state = {}
    left = unmount_under(remove)
    if left:
        problems.append(f"mounts still present: {', '.join(left[:5])}")
    if kube_proxy is not None and kube_proxy.exists():
        _run([str(kube_proxy), "--cleanup", "--v=0"], check=False, timeout=120)
    remove_chains(state.get("chains"))
    if bridge_exists() and not state.get("bridge", False):
        _run(["ip", "link", "del", BRIDGE], check=False)
    elif bridge_exists():
        for route in _run(["ip", "-o", "route", "show", "dev", BRIDGE], check=False).stdout.splitlines():
            if f" src {BRIDGE_IP}" in route and "proto kernel" not in route:  # ours, not the subnet's own
                _run(["ip", "route", "del", *route.split()[:1], "dev", BRIDGE], check=False)
    before_cgroups = set(state.get("cgroups", []))
    for top in kubepods_cgroups():
        if str(top) not in before_cgroups:
            _remove_empty_dirs(top)
    results = _CNI_CACHE / "results"
    if results.is_dir():
        for entry in results.iterdir():
            if entry.name.startswith(f"{NETWORK_NAME}-"):
                entry.unlink(missing_ok=True)
    if not state.get("cni_cache", True):
        _remove_empty_dirs(_CNI_CACHE)  # only directories left empty: nothing but ours is removed
    for path in remove:
        try:
            _remove_tree(path)
        except RuntimeFailure as exc:
            problems.append(str(exc))
    for name, value in (state.get("sysctls") or {}).items():
        if value is not None:
            _write_sysctl(name, value)
    problems += leftovers(state, remove)
    if not problems:
        record.unlink(missing_ok=True)
    return problems


def leftovers(state: dict[str, object], roots: Sequence[Path]) -> list[str]:
    """What differs from the recorded host (``state`` as saved by :func:`save_host_state`): sysctls, the node's
    chains, the bridge, kubepods cgroups, mounts under ``roots``. Empty when the host is as it was."""
    found: list[str] = []
    saved = state.get("sysctls") or {}
    if isinstance(saved, dict):
        now = read_sysctls(saved)
        found += [f"sysctl {name}={now[name]} (was {value})" for name, value in saved.items() if now[name] != value]
    chains = state.get("chains") or {}
    for family, _ in _FAMILIES:
        if not _have(family):
            continue
        kept = chains.get(family, {}) if isinstance(chains, dict) else {}
        for table, names in _chains(family).items():
            found += [f"{family} {table} chain {n}" for n in names if _ours(n, kept.get(table, []))]
            if family == "iptables" and table == "mangle":
                rules = _save("iptables-save", "mangle")
                found += [f"iptables mangle rule {r}" for r in rules if FENCE_CHAIN in r and r.startswith("-A")]
    if bridge_exists() and not state.get("bridge", False):
        found.append(f"bridge {BRIDGE}")
    before = state.get("cgroups") or []
    found += [f"cgroup {p}" for p in kubepods_cgroups() if str(p) not in (before if isinstance(before, list) else [])]
    found += [f"mount {p}" for p in mounts_under(roots)]
    return found
