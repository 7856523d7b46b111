"""The dev node for real: pods from the locally built Flink image run under the kubelet, containerd and runc; a
JobManager's REST answers from the host through its Service's ClusterIP (kube-proxy); pods resolve Service
names through CoreDNS; nothing a pod sends leaves the machine; and ``down`` puts every host setting back.

All on the session's one node (``node`` fixture, tests/kubernetes/conftest.py). Timings are printed to stderr
(``-s`` shows them); they are measured, never asserted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flinkops.dev.node import host
from flinkops.dev.node.binaries import node_binaries
from flinkops.dev.node.config import BRIDGE, BRIDGE_IP, POD_CIDR
from flinkops.flink.distribution import find_distribution
from support.kube import TESTJOBS_IN_IMAGE, KubeCluster, NodeHandle, host_snapshot

pytestmark = pytest.mark.integration

# TEST-NET-3 (RFC 5737): an address reserved for documentation, which no network routes; a pod's attempt to reach
# it must be dropped by the fence before it could leave the machine.
OUTSIDE_ADDRESS = "203.0.113.1"
OUTSIDE_NAME = "flinkops-outside-check.example.com"
# CoreDNS plugins that send queries or data to another server; none may be compiled into the node's CoreDNS.
UPSTREAM_PLUGINS = {"forward", "grpc", "etcd", "route53", "azure", "clouddns", "secondary", "dnstap", "proxy"}


def _say(message: str) -> None:
    (sys.__stderr__ or sys.stderr).write(f"[node] {message}\n")


def _wait(what: str, check: Callable[[], Any], timeout: float = 120.0, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError, OSError, KeyError, ValueError):
            result = check()
            if result:
                return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


@pytest.fixture
def namespace(kube: KubeCluster, node: NodeHandle) -> Iterator[str]:
    """A fresh namespace (with its default ServiceAccount, so pods may be created), deleted afterwards."""
    name = f"node-{uuid.uuid4().hex[:8]}"
    with kube.client() as client:
        client.post("/api/v1/namespaces", json={"metadata": {"name": name}}).raise_for_status()
        _wait(
            "the namespace's default ServiceAccount",
            lambda: client.get(f"/api/v1/namespaces/{name}/serviceaccounts/default").status_code == 200,
        )
        try:
            yield name
        finally:
            client.delete(f"/api/v1/namespaces/{name}")


def _pod(name: str, image: str, *, args: list[str] | None = None, command: list[str] | None = None,
         env: dict[str, str] | None = None, labels: dict[str, str] | None = None, cpu: str = "100m",
         memory: str = "128Mi", dns_policy: str = "ClusterFirst") -> dict[str, Any]:  # fmt: skip
    container: dict[str, Any] = {
        "name": "main",
        "image": image,
        "imagePullPolicy": "Never",
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
    }
    if args is not None:
        container["args"] = args
    if command is not None:
        container["command"] = command
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "dnsPolicy": dns_policy,
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
        },
    }


def _run_pod(client: httpx.Client, namespace: str, pod: dict[str, Any], timeout: float = 90.0) -> str:
    """Create a pod that runs to completion; its log (read through the apiserver from the kubelet)."""
    name = pod["metadata"]["name"]
    client.post(f"/api/v1/namespaces/{namespace}/pods", json=pod).raise_for_status()
    phase = _wait(
        f"pod {name} to finish",
        lambda: (
            (p := client.get(f"/api/v1/namespaces/{namespace}/pods/{name}").json()["status"].get("phase"))
            in ("Succeeded", "Failed")
            and p
        ),
        timeout,
    )
    log = client.get(f"/api/v1/namespaces/{namespace}/pods/{name}/log")
    log.raise_for_status()
    assert phase == "Succeeded", log.text
    return log.text


def _describe(client: httpx.Client, namespace: str, node: NodeHandle) -> str:
    """What a person would look at when a pod does not answer: pods, endpoints, events, the node's log tails."""
    lines = []
    for pod in client.get(f"/api/v1/namespaces/{namespace}/pods").json().get("items", []):
        status = pod.get("status", {})
        lines.append(f"pod {pod['metadata']['name']}: {status.get('phase')} ip={status.get('podIP')} "
                     f"containers={status.get('containerStatuses')}")  # fmt: skip
        log = client.get(f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}/log",
                         params={"tailLines": "20"})  # fmt: skip
        lines.append(f"--- its log ({log.status_code}):\n{log.text}")
    for slices in client.get(f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices").json()["items"]:
        lines.append(f"endpointslice {slices['metadata']['name']}: {slices.get('endpoints')}")
    for event in client.get(f"/api/v1/namespaces/{namespace}/events").json().get("items", []):
        lines.append(f"event {event['involvedObject']['name']}: {event.get('reason')} {event.get('message')}")
    for part in (node.node.kubelet, node.node.proxy):
        tail = part.log_file.read_text(errors="replace").splitlines()[-15:]
        lines.append(f"--- {part.log_file}:\n" + "\n".join(tail))
    return "\n".join(lines)


def _fields(log: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in log.splitlines() if "=" in line and " " not in line.split("=", 1)[0])


def test_a_jobmanager_pod_answers_rest_through_its_service_cluster_ip(
    kube: KubeCluster, node: NodeHandle, namespace: str
) -> None:
    """The Flink image's entrypoint runs a JobManager (as the official image's ``jobmanager`` command does), with
    FLINK_PROPERTIES written ``key: value`` (a space after the colon, which the official entrypoint gets wrong);
    the host reaches its REST API through the Service's ClusterIP."""
    pod = _pod(
        "jobmanager",
        node.image,
        args=["jobmanager"],
        env={"FLINK_PROPERTIES": "jobmanager.memory.process.size: 640m\nrest.flamegraph.enabled: true\n"},
        labels={"app": "jobmanager"},
        cpu="250m",
        memory="700Mi",
    )
    service = {
        "metadata": {"name": "jobmanager-rest"},
        "spec": {"selector": {"app": "jobmanager"}, "ports": [{"port": 8081, "targetPort": 8081}]},
    }
    with kube.client() as client:
        started = time.monotonic()
        client.post(f"/api/v1/namespaces/{namespace}/pods", json=pod).raise_for_status()
        created = client.post(f"/api/v1/namespaces/{namespace}/services", json=service)
        created.raise_for_status()
        cluster_ip = created.json()["spec"]["clusterIP"]
        with httpx.Client(base_url=f"http://{cluster_ip}:8081", timeout=2.0, trust_env=False) as rest:
            try:
                overview = _wait(
                    "the JobManager's REST API through the ClusterIP",
                    lambda: (r := rest.get("/overview")).status_code == 200 and r.json(),
                    timeout=180,
                    every=0.5,
                )
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{_describe(client, namespace, node)}") from None
            _say(f"pod created -> JobManager REST answers through its ClusterIP: {time.monotonic() - started:.1f}s")
            config = {entry["key"]: entry["value"] for entry in rest.get("/jobmanager/config").json()}
        status = client.get(f"/api/v1/namespaces/{namespace}/pods/jobmanager").json()["status"]
    assert overview["flink-version"] == find_distribution().version
    assert config.get("rest.flamegraph.enabled") == "true"
    assert config.get("jobmanager.memory.process.size") == "640m"
    assert status["podIP"].startswith(POD_CIDR.rsplit(".", 2)[0] + ".")
    (container,) = status["containerStatuses"]
    assert container["image"].endswith("flink:2.2") and "running" in container["state"]


def test_pods_resolve_service_names_through_coredns_only(kube: KubeCluster, node: NodeHandle, namespace: str) -> None:
    """A Service name resolves to its ClusterIP (full name and through the search path), the apiserver's
    ``kubernetes`` Service answers from inside the pod, and a pod's resolv.conf names CoreDNS on the bridge only,
    also with ``dnsPolicy: Default`` (which would otherwise copy the machine's own resolver)."""
    service = {"metadata": {"name": "lookup-target"}, "spec": {"selector": {"app": "none"}, "ports": [{"port": 80}]}}
    script = (
        f"echo full=$(getent hosts lookup-target.{namespace}.svc.cluster.local | cut -d' ' -f1); "
        "echo short=$(getent hosts lookup-target | cut -d' ' -f1); "
        "echo api=$(getent hosts kubernetes.default | cut -d' ' -f1); "
        "echo nameservers=$(grep ^nameserver /etc/resolv.conf | cut -d' ' -f2 | tr '\\n' ,); "
        "timeout 5 bash -c 'echo > /dev/tcp/kubernetes.default/443' && echo api_reached=yes"
    )
    plain = "echo nameservers=$(grep ^nameserver /etc/resolv.conf | cut -d' ' -f2 | tr '\\n' ,)"
    with kube.client() as client:
        created = client.post(f"/api/v1/namespaces/{namespace}/services", json=service)
        created.raise_for_status()
        cluster_ip = created.json()["spec"]["clusterIP"]
        api_ip = client.get("/api/v1/namespaces/default/services/kubernetes").json()["spec"]["clusterIP"]
        started = time.monotonic()
        seen = _fields(_run_pod(client, namespace, _pod("resolver", node.image, command=["bash", "-c", script])))
        _say(f"a lookup pod created -> finished: {time.monotonic() - started:.1f}s")
        default = _fields(
            _run_pod(
                client, namespace, _pod("default-dns", node.image, command=["bash", "-c", plain], dns_policy="Default")
            )
        )
    assert seen["full"] == cluster_ip and seen["short"] == cluster_ip
    assert seen["api"] == api_ip and seen.get("api_reached") == "yes"
    assert seen["nameservers"] == f"{BRIDGE_IP},"
    assert default["nameservers"] == f"{BRIDGE_IP},"


def test_the_image_runs_flink_as_its_own_user_with_the_jobs_jars_baked_in(
    kube: KubeCluster, node: NodeHandle, namespace: str
) -> None:
    """Started as root, the entrypoint runs any command as the user flink (uid/gid 9999, the official image's);
    Flink's scripts are on PATH (native mode runs ``kubernetes-jobmanager.sh`` that way) and the test jobs' jar
    is where a jarURI ``local://`` names it."""
    script = (
        "echo uid=$(id -u); echo gid=$(id -g); echo script=$(command -v kubernetes-jobmanager.sh); "
        f"test -s {TESTJOBS_IN_IMAGE} && echo testjobs=yes; test -s /opt/flink/usrlib/flinkops-examples.jar && "
        "echo examples=yes; echo java=$(java -version 2>&1 | head -1 | cut -d'\"' -f2)"
    )
    with kube.client() as client:
        seen = _fields(_run_pod(client, namespace, _pod("whoami", node.image, args=["bash", "-c", script])))
    assert (seen["uid"], seen["gid"]) == ("9999", "9999")
    assert seen["script"] == "/opt/flink/bin/kubernetes-jobmanager.sh"
    assert seen.get("testjobs") == "yes" and seen.get("examples") == "yes"
    assert seen["java"].startswith("17.")


@contextlib.contextmanager
def _counting_pod_dns_elsewhere() -> Iterator[Callable[[], int]]:
    """A counting rule (no target: it only counts) for DNS packets from the pod network to any address but
    CoreDNS, in the raw table where every packet from a pod passes first; removed afterwards."""
    rules = [
        ["PREROUTING", "-s", POD_CIDR, "!", "-d", BRIDGE_IP, "-p", proto, "--dport", "53", "-m", "comment",
         "--comment", "flinkops-test-dns-elsewhere"]
        for proto in ("udp", "tcp")
    ]  # fmt: skip
    for rule in rules:
        subprocess.run(["iptables", "-w", "-t", "raw", "-I", *rule], check=True)

    def count() -> int:
        out = subprocess.run(
            ["iptables", "-w", "-t", "raw", "-n", "-v", "-x", "-L", "PREROUTING"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return sum(int(line.split()[0]) for line in out.splitlines() if "flinkops-test-dns-elsewhere" in line)

    try:
        yield count
    finally:
        for rule in rules:
            subprocess.run(["iptables", "-w", "-t", "raw", "-D", *rule], check=False)


def test_nothing_a_pod_sends_leaves_the_machine(kube: KubeCluster, node: NodeHandle, namespace: str) -> None:
    """A pod's connection to an outside address is dropped by the fence (its drop counter moves); a lookup of an
    outside name fails, answered by CoreDNS itself (it logs SERVFAIL; it has no plugin that asks another server);
    and no DNS packet from a pod goes anywhere but CoreDNS on the bridge, so the host's resolver gets none."""
    plugins = set(subprocess.run([str(node_binaries().coredns), "-plugins"], capture_output=True, text=True,
                                 check=True).stdout.split())  # fmt: skip
    assert "kubernetes" in plugins and not plugins & UPSTREAM_PLUGINS
    assert host.fence_drops() >= 0, "the fence is not installed: refusing to send anything"
    # The host's own packets to a Service address no rule has DNATed stay on the bridge (not the default route).
    unclaimed = subprocess.run(["ip", "route", "get", "10.0.255.254"], capture_output=True, text=True, check=True)
    assert f"dev {BRIDGE}" in unclaimed.stdout, unclaimed.stdout
    script = (
        f"timeout 5 bash -c 'echo > /dev/tcp/{OUTSIDE_ADDRESS}/80'; echo connect=$?; "
        f"getent hosts {OUTSIDE_NAME}; echo lookup=$?; getent hosts {OUTSIDE_NAME}.; echo absolute=$?"
    )
    drops_before = host.fence_drops()
    with _counting_pod_dns_elsewhere() as dns_elsewhere, kube.client() as client:
        seen = _fields(_run_pod(client, namespace, _pod("outside", node.image, command=["bash", "-c", script])))
        elsewhere = dns_elsewhere()
    assert seen["connect"] != "0"  # refused or timed out, never connected
    assert host.fence_drops() > drops_before  # ... because the fence dropped it
    assert seen["lookup"] != "0" and seen["absolute"] != "0"
    assert elsewhere == 0
    coredns_log = node.node.coredns.log_file.read_text(errors="replace")
    answered = [line for line in coredns_log.splitlines() if f'"A IN {OUTSIDE_NAME}. ' in line]
    assert answered and all("SERVFAIL" in line for line in answered), answered


def test_a_node_killed_without_down_is_cleaned_up_by_the_next_up(
    kube: KubeCluster, node: NodeHandle, namespace: str
) -> None:
    """The node's processes are killed while a pod runs (as when a session or the machine's processes are killed):
    its containers, mounts and host record stay behind. The next ``up`` finishes that stop first (the old
    containers are gone, their mounts too) and the node is Ready again; the session's end then checks the host
    against the snapshot taken before the first ``up``."""
    with kube.client() as client:
        client.post(
            f"/api/v1/namespaces/{namespace}/pods", json=_pod("sleeper", node.image, command=["sleep", "3600"])
        ).raise_for_status()
        _wait(
            "the sleeper pod to run",
            lambda: client.get(f"/api/v1/namespaces/{namespace}/pods/sleeper").json()["status"]["phase"] == "Running",
        )
    containers = [pid for pid in _kubepods_pids() if b"sleep" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert containers, "the sleeper's process is not in the kubepods cgroups"
    for pid in node.node.pids().values():
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)  # the session started them: collect them, or they stay zombies
    assert not node.node.running()
    left = node.node.unclean()
    assert any(item.startswith("mount ") for item in left) and any("host record" in item for item in left), left
    assert all(Path(f"/proc/{pid}").exists() for pid in containers)  # killing the node does not stop its pods
    started = time.monotonic()
    node.node.start()
    _say(f"up after a killed node -> node Ready: {time.monotonic() - started:.1f}s")
    assert node.node.healthy()
    assert not any(Path(f"/proc/{pid}").exists() for pid in containers)


def _kubepods_pids() -> set[int]:
    pids: set[int] = set()
    for procs in Path("/sys/fs/cgroup").glob("*/kubepods/**/cgroup.procs"):
        with contextlib.suppress(OSError, ValueError):
            pids.update(int(pid) for pid in procs.read_text().split())
    return pids


def test_down_restores_every_host_setting_and_a_warm_up_is_quick(node: NodeHandle) -> None:
    """``down`` deletes the pods, stops every process and restores the host: sysctls equal to before the first
    ``up``, no bridge, no chains, no mounts, no kubepods cgroups (observed independently of the node's own
    record). Then ``up`` again, as the session's later tests still use the node."""
    started = time.monotonic()
    problems = node.node.stop()
    _say(f"down: {time.monotonic() - started:.1f}s")
    assert problems == []
    assert node.host_before.differences(host_snapshot()) == []
    assert not node.node.running()
    assert not (host.bridge_exists() or host.mounts_under([node.node.root]))
    started = time.monotonic()
    node.node.start()
    _say(f"warm up -> node Ready: {time.monotonic() - started:.1f}s")
    assert node.node.healthy()
