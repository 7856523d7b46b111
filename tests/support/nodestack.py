"""The stack the tests on the real node drive Flink with: CRDs, the Helm chart's RBAC, S3 (MinIO) relayed onto
the node's bridge with a bucket and a Secret of keys, a host directory for the verifier's output, and one
operator (``flinkops operator run`` on the host with ``--rest-address cluster-ip``), plus the steps the tests
repeat (apply until STABLE, wait for a RUNNING job, records verified, v2 took over, deleted, the checkpoints of a
job, the leading JobManager of an HA cluster, its JVM killed).

Called by: tests/kubernetes/conftest.py (the session's ``stack`` fixture), the test modules on the node, and
benchmarks/kubernetes.py.
Invariant: one stack per session, in the namespaces ``OPERATOR_NS`` and ``JOBS_NS``; modules sharing it use
FlinkDeployment names of their own; its teardown deletes every FlinkDeployment left and waits for them to go
before the operator stops.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from support.flinknode import S3_SECRET, BridgeS3, FlinkRest, bridge_s3, host_output_dir, trace_edges
from support.helm import render
from support.kube import KubeCluster, install_crds, server_side_apply
from support.operator import OperatorProcess, service_account_kubeconfig
from support.verifier import check, read_committed

T = TypeVar("T")

OPERATOR_NS = "flinkops-node-system"
JOBS_NS = "flink-node"
BUCKET = "flink-state"
FD = f"/apis/flink.apache.org/v1beta1/namespaces/{JOBS_NS}/flinkdeployments"
KEYS = 16
TIMINGS: dict[str, float] = {}


def say(message: str) -> None:
    stream = sys.__stderr__ or sys.stderr
    stream.write(f"[flink-on-node] {message}\n")
    stream.flush()


def measured(what: str, seconds: float) -> None:
    TIMINGS[what] = seconds
    say(f"{what}: {seconds:.1f}s")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 120.0, interval: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            last = probe()
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


_PLURAL = {
    "ServiceAccount": "serviceaccounts",
    "Role": "roles",
    "RoleBinding": "rolebindings",
}


@dataclass
class Stack:
    admin: httpx.Client
    s3: BridgeS3
    host_dir: Path
    operator: OperatorProcess
    applied_at: dict[str, float] = field(default_factory=dict)
    #: JVM flags every Flink JVM of a FlinkDeployment applied here gets (``env.java.opts.all``), unless the
    #: document sets that key itself; None: Flink's own (the benchmarks measure with those).
    jvm_args: str | None = None

    # ------------------------------------------------------------------ the resource

    def apply(self, doc: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(doc)
        body["metadata"]["namespace"] = JOBS_NS
        if self.jvm_args is not None:
            body["spec"].setdefault("flinkConfiguration", {}).setdefault("env.java.opts.all", self.jvm_args)
        self.applied_at[body["metadata"]["name"]] = time.time()
        return server_side_apply(self.admin, f"{FD}/{body['metadata']['name']}", body)

    def get(self, path: str) -> dict[str, Any] | None:
        """The object at ``path``; None when it does not exist (404)."""
        response = self.admin.get(path)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def fd(self, name: str) -> dict[str, Any] | None:
        return self.get(f"{FD}/{name}")

    def status(self, name: str) -> dict[str, Any]:
        return ((self.fd(name) or {}).get("status")) or {}

    def stable(self, name: str, generation: int | None = None) -> dict[str, Any] | None:
        obj = self.fd(name)
        if obj is None:
            return None
        status = obj.get("status") or {}
        wanted = generation if generation is not None else obj["metadata"]["generation"]
        if status.get("lifecycleState") == "STABLE" and status.get("observedGeneration") == wanted:
            return obj
        return None

    def wait_stable(self, name: str, timeout: float = 240.0) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            found = self.stable(name)
            if found is None:
                status = self.status(name)
                assert status.get("lifecycleState") != "FAILED", f"{name} FAILED: {status.get('error')}"
            return found

        try:
            return wait_for(f"{name} STABLE", probe, timeout, 0.3)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnose(name)}") from None

    # ------------------------------------------------------------------ what runs

    def pods(self, name: str, component: str | None = None) -> list[dict[str, Any]]:
        selector = f"app={name}" + (f",component={component}" if component else "")
        response = self.admin.get(f"/api/v1/namespaces/{JOBS_NS}/pods", params={"labelSelector": selector})
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def no_crash_loop(self, name: str) -> None:
        """Fail at once (with the pods' logs) when a container of the cluster keeps crashing."""
        for pod in self.pods(name):
            for container in pod["status"].get("containerStatuses") or []:
                waiting = (container.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") == "CrashLoopBackOff":
                    raise AssertionError(f"{pod['metadata']['name']} crash-loops\n{self.diagnose(name)}")

    def rest(self, name: str) -> FlinkRest:
        service = self.admin.get(f"/api/v1/namespaces/{JOBS_NS}/services/{name}-rest")
        service.raise_for_status()
        return FlinkRest(service.json()["spec"]["clusterIP"])

    def left_behind(self, name: str) -> list[str]:
        """Every object of the cluster still in the namespace: pods, Services, ConfigMaps (Flink's HA ones too,
        labelled ``app=<name>``), Deployments."""
        found = []
        for api, plural in (
            ("api/v1", "pods"),
            ("api/v1", "services"),
            ("api/v1", "configmaps"),
            ("apis/apps/v1", "deployments"),
        ):
            items = self.admin.get(
                f"/{api}/namespaces/{JOBS_NS}/{plural}", params={"labelSelector": f"app={name}"}
            ).json()["items"]
            found += [f"{plural}/{i['metadata']['name']}" for i in items]
        return found

    def output(self, name: str) -> Path:
        return self.host_dir / name

    def trace(self, name: str) -> Path:
        return self.host_dir / f"{name}-trace"

    def diagnose(self, name: str) -> str:
        status = self.status(name)
        pods = [
            f"{p['metadata']['name']}: {p['status'].get('phase')} "
            f"{[c.get('state') for c in p['status'].get('containerStatuses') or []]}"
            for p in self.pods(name)
        ]
        events = self.admin.get(
            f"/api/v1/namespaces/{JOBS_NS}/events", params={"fieldSelector": f"involvedObject.name={name}"}
        ).json()["items"]
        logs = []
        for pod in self.pods(name):
            statuses = pod["status"].get("containerStatuses") or []
            previous = "true" if any(c.get("restartCount") for c in statuses) else "false"
            response = self.admin.get(
                f"/api/v1/namespaces/{JOBS_NS}/pods/{pod['metadata']['name']}/log",
                params={"tailLines": "400", "previous": previous},
            )
            lines = response.text.splitlines()
            causes = [line for line in lines if "Caused by" in line or "Exception:" in line][-6:]
            logs.append(
                f"--- {pod['metadata']['name']} (previous={previous}):\n" + "\n".join([*causes, "...", *lines[-12:]])
            )
        return (
            f"status: {yaml.safe_dump({k: status.get(k) for k in ('lifecycleState', 'error', 'jobStatus')})}"
            f"pods: {pods}\nevents: {[e['message'] for e in events][-8:]}\n{chr(10).join(logs)}\n"
            f"operator log:\n{self.operator.log()[-3000:]}"
        )


@contextlib.contextmanager
def node_stack(
    kube: KubeCluster,
    work: Path,
    *,
    on_node: bool = True,
    jvm_args: str | None = None,
    progress_check: str | None = None,
) -> Iterator[Stack]:
    """CRDs, the chart's RBAC (operator Role, the ``flink`` ServiceAccount and its Role), S3 on the bridge with a
    bucket and a Secret of keys, a host directory for the verifier's output, and one operator. ``on_node=False``:
    a control plane without the node (no bridge; S3 on loopback), where pods are created but never run.
    ``jvm_args``: see :attr:`Stack.jvm_args`; ``progress_check``: the operator's ``--progress-check-interval``
    (None: its default, 10 s)."""
    with (
        kube.client() as admin,
        bridge_s3(work / "home", relay_to_bridge=on_node) as s3,
        host_output_dir(Path("/tmp") / f"flinkops-node-output-{uuid.uuid4().hex[:8]}") as host_dir,
    ):
        install_crds(admin)
        for ns in (OPERATOR_NS, JOBS_NS):
            server_side_apply(
                admin, f"/api/v1/namespaces/{ns}", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            )
        chart = render({"watchNamespaces": [JOBS_NS]}, namespace=OPERATOR_NS)
        for obj in chart:
            if obj["kind"] in _PLURAL:
                meta, api = obj["metadata"], obj["apiVersion"]
                prefix = f"/apis/{api}" if "/" in api else f"/api/{api}"
                plural = _PLURAL[obj["kind"]]
                server_side_apply(admin, f"{prefix}/namespaces/{meta['namespace']}/{plural}/{meta['name']}", obj)
        s3.create_bucket(BUCKET)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": S3_SECRET, "namespace": JOBS_NS},
            "data": {
                "access": base64.b64encode(s3.access_key.encode()).decode(),
                "secret": base64.b64encode(s3.secret_key.encode()).decode(),
            },
        }
        server_side_apply(admin, f"/api/v1/namespaces/{JOBS_NS}/secrets/{S3_SECRET}", secret)
        account = next(
            o["metadata"]["name"]
            for o in chart
            if o["kind"] == "ServiceAccount" and o["metadata"].get("namespace") == OPERATOR_NS
        )
        kubeconfig = service_account_kubeconfig(
            admin, kube.server, kube.ca_file, OPERATOR_NS, account, work / "operator.kubeconfig"
        )
        operator = OperatorProcess(
            kubeconfig,
            work / "operator.log",
            namespaces=[JOBS_NS],
            lease_namespace=OPERATOR_NS,
            identity="node-operator",
            env={
                "FLINKOPS_REST_ADDRESS": "cluster-ip",
                **({"FLINKOPS_PROGRESS_CHECK_INTERVAL": progress_check} if progress_check else {}),
                # The operator lists checkpoints with its own credentials (pods read theirs from the Secret).
                "AWS_ACCESS_KEY_ID": s3.access_key,
                "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            },
        )
        try:
            wait_for("the operator to lead", operator.is_leader, 30)
            yield Stack(admin, s3, host_dir, operator, jvm_args=jvm_args)
        finally:
            for obj in admin.get(FD).json().get("items", []):
                admin.delete(f"{FD}/{obj['metadata']['name']}")
            with contextlib.suppress(AssertionError):
                wait_for("every FlinkDeployment gone", lambda: not admin.get(FD).json().get("items"), 120)
            operator.stop()
            say("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in TIMINGS.items()))


def wait_running(stack: Stack, name: str, since: float, label: str, timeout: float = 240.0) -> dict[str, Any]:
    """Wait until the JobManager's REST API shows a RUNNING job; record ``label`` (seconds since ``since``)."""
    rest = wait_for(f"{name}'s REST Service", lambda: stack.rest(name), 60)

    def running() -> list[dict[str, Any]]:
        jobs = rest.running()
        if not jobs:
            stack.no_crash_loop(name)
        return jobs

    try:
        (job,) = wait_for(f"{name}'s job RUNNING", running, timeout, 0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.diagnose(name)}") from None
    finally:
        rest.close()
    measured(label, time.time() - since)
    return job


def applied_until_stable(stack: Stack, doc: dict[str, Any], label: str) -> None:
    """Apply ``doc``; record ``<label>: apply -> job RUNNING`` and ``<label>: apply -> STABLE``."""
    name = doc["metadata"]["name"]
    stack.apply(doc)
    wait_running(stack, name, stack.applied_at[name], f"{label}: apply -> job RUNNING")
    stack.wait_stable(name)
    measured(f"{label}: apply -> STABLE", time.time() - stack.applied_at[name])


def records_verified(stack: Stack, name: str, what: str, *, after: int = 0, timeout: float = 90.0) -> None:
    """Until 100 records more than ``after`` are committed, then every record checked: none lost or duplicated."""
    output = stack.output(name)
    wait_for(what, lambda: len(read_committed(output)) >= after + 100, timeout, 0.5)
    report = check(output, keys=KEYS, live=True)
    assert report.ok, report.summary()


def v2_took_over(stack: Stack, name: str, moment: float, label: str) -> None:
    """After an upgrade to logic v2 at ``moment``: v2 records committed, the output checked (v1 then v2, none lost
    or duplicated), and the downtime from the trace recorded as ``label``."""
    wait_for("v2 records committed", lambda: logic_count(stack.output(name), "v2") >= 100, 90, 0.5)
    report = check(stack.output(name), keys=KEYS, live=True)
    assert report.ok, report.summary()
    assert [r.logic for r in report.logic_runs] == ["v1", "v2"], report.summary()
    last_v1, first_v2 = trace_edges(stack.trace(name), moment)
    assert last_v1 is not None and first_v2 is not None
    measured(label, first_v2 - last_v1)


def deleted(stack: Stack, name: str, label: str) -> None:
    """Delete the FlinkDeployment ``name``; record ``<label>: delete -> pods gone``; nothing of it is left."""
    moment = time.time()
    stack.admin.delete(f"{FD}/{name}").raise_for_status()
    wait_for(f"{name}'s pods gone", lambda: not stack.pods(name), 120, 0.2)
    measured(f"{label}: delete -> pods gone", time.time() - moment)
    wait_for(f"{name} gone", lambda: stack.fd(name) is None, 60, 0.2)
    assert stack.left_behind(name) == []


def logic_count(output: Path, logic: str) -> int:
    return sum(1 for r in read_committed(output) if r.logic == logic)


def checkpoints(stack: Stack, name: str, job_id: str) -> list[str]:
    """The keys of the completed checkpoints (``.../chk-N/...``) job ``job_id`` of ``name`` wrote to S3."""
    return [k for k in stack.s3.objects(BUCKET, f"{name}/checkpoints/{job_id}/") if "/chk-" in k]


def leader_pod(stack: Stack, name: str) -> dict[str, Any]:
    """The JobManager pod whose address Flink's HA leader ConfigMap names."""
    pods = stack.pods(name, "jobmanager")

    def leader() -> dict[str, Any] | None:
        for config_map in stack.admin.get(
            f"/api/v1/namespaces/{JOBS_NS}/configmaps", params={"labelSelector": f"app={name}"}
        ).json()["items"]:
            values = " ".join(str(v) for v in (config_map.get("data") or {}).values())
            for pod in pods:
                ip = pod["status"].get("podIP")
                if ip and f"{ip}:" in values:
                    return pod
        return None

    return wait_for(f"{name}'s leading JobManager", leader, 30, 0.5)


def kill_jvm(pod: dict[str, Any]) -> list[int]:
    """SIGKILL the Java processes of ``pod``'s containers (found on the host by the pod's cgroup)."""
    marker = f"pod{pod['metadata']['uid']}"
    killed = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (proc / "cgroup").read_text() and b"java" in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
    return killed
