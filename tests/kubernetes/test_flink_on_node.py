"""The operator driving real Flink on the real dev node, proven record by record with the verifier job.

One operator (``flinkops operator run`` as a process on the host, with the Helm chart's RBAC and
``--rest-address cluster-ip``: cluster DNS names do not resolve on the host) serves the whole module. The
JobManagers and TaskManagers are pods of the node's Flink image (``flink:2.2``, the test jobs' jar in usrlib);
checkpoints, savepoints and Kubernetes HA metadata are on ``s3://`` (MinIO relayed onto the bridge, keys from a
Secret through ``kubernetes.env.secretKeyRef``); the verifier's committed output and its timestamped trace are
on a hostPath volume the test reads on the host.

The deployments go through their lives in file order (each test is one step, and a step builds on the ones
before it):

* ``verify`` (standalone, no HA): apply -> STABLE; savepoint upgrade v1 -> v2 with 0 lost, 0 duplicated and the
  keyed state carried; its JobManager pod deleted -> redeployed from the newest checkpoint, records verified;
  delete -> nothing left.
* ``verify-ha`` (standalone, Kubernetes HA, two JobManagers): apply -> STABLE; last-state upgrade from the newest
  checkpoint with one job running, not two; the leading JobManager killed -> the standby takes over the same job
  id, restored; delete -> nothing left, HA ConfigMaps included.
* ``native`` (native mode): apply -> STABLE with TaskManager pods Flink created; delete -> nothing left.

Timings (apply -> job RUNNING, -> STABLE, upgrade downtime from the trace, JobManager loss -> RUNNING, delete ->
pods gone) are printed to stderr (``-s``) and collected at the end of the module; they are measured, never
asserted.
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
import pytest
import yaml

from flinkops.runtimes.kubernetes.runtime import ha_selector, is_ha_config_map_name
from support.flinknode import (
    S3_SECRET,
    BridgeS3,
    FlinkRest,
    bridge_s3,
    host_output_dir,
    trace_edges,
    verifier_deployment,
)
from support.helm import render
from support.kube import KubeCluster, NodeHandle, install_crds, server_side_apply
from support.operator import OperatorProcess, service_account_kubeconfig
from support.verifier import check, read_committed

pytestmark = pytest.mark.integration

T = TypeVar("T")

OPERATOR_NS = "flinkops-node-system"
JOBS_NS = "flink-node"
BUCKET = "flink-state"
FD = f"/apis/flink.apache.org/v1beta1/namespaces/{JOBS_NS}/flinkdeployments"
KEYS = 16
TIMINGS: dict[str, float] = {}


def _say(message: str) -> None:
    stream = sys.__stderr__ or sys.stderr
    stream.write(f"[flink-on-node] {message}\n")
    stream.flush()


def _measured(what: str, seconds: float) -> None:
    TIMINGS[what] = seconds
    _say(f"{what}: {seconds:.1f}s")


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

    # ------------------------------------------------------------------ the resource

    def apply(self, doc: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(doc)
        body["metadata"]["namespace"] = JOBS_NS
        self.applied_at[body["metadata"]["name"]] = time.time()
        return server_side_apply(self.admin, f"{FD}/{body['metadata']['name']}", body)

    def fd(self, name: str) -> dict[str, Any] | None:
        response = self.admin.get(f"{FD}/{name}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

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


@pytest.fixture(scope="module")
def stack(kube: KubeCluster, node: NodeHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """CRDs, the chart's RBAC (operator Role, the ``flink`` ServiceAccount and its Role), S3 on the bridge with a
    bucket and a Secret of keys, a host directory for the verifier's output, and one operator."""
    work = tmp_path_factory.mktemp("flink-on-node")
    with (
        kube.client() as admin,
        bridge_s3(work / "home") as s3,
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
                # The operator lists checkpoints with its own credentials (pods read theirs from the Secret).
                "AWS_ACCESS_KEY_ID": s3.access_key,
                "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            },
        )
        try:
            wait_for("the operator to lead", operator.is_leader, 30)
            yield Stack(admin, s3, host_dir, operator)
        finally:
            for obj in admin.get(FD).json().get("items", []):
                admin.delete(f"{FD}/{obj['metadata']['name']}")
            with contextlib.suppress(AssertionError):
                wait_for("every FlinkDeployment gone", lambda: not admin.get(FD).json().get("items"), 120)
            operator.stop()
            _say("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in TIMINGS.items()))


def _wait_running(stack: Stack, name: str, since: float, label: str, timeout: float = 240.0) -> dict[str, Any]:
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
    _measured(label, time.time() - since)
    return job


def _applied_until_stable(stack: Stack, doc: dict[str, Any], label: str) -> None:
    """Apply ``doc``; record ``<label>: apply -> job RUNNING`` and ``<label>: apply -> STABLE``."""
    name = doc["metadata"]["name"]
    stack.apply(doc)
    _wait_running(stack, name, stack.applied_at[name], f"{label}: apply -> job RUNNING")
    stack.wait_stable(name)
    _measured(f"{label}: apply -> STABLE", time.time() - stack.applied_at[name])


def _records_verified(stack: Stack, name: str, what: str, *, after: int = 0, timeout: float = 90.0) -> None:
    """Until 100 records more than ``after`` are committed, then every record checked: none lost or duplicated."""
    output = stack.output(name)
    wait_for(what, lambda: len(read_committed(output)) >= after + 100, timeout, 0.5)
    report = check(output, keys=KEYS, live=True)
    assert report.ok, report.summary()


def _v2_took_over(stack: Stack, name: str, moment: float, label: str) -> None:
    """After an upgrade to logic v2 at ``moment``: v2 records committed, the output checked (v1 then v2, none lost
    or duplicated), and the downtime from the trace recorded as ``label``."""
    wait_for("v2 records committed", lambda: _logic_count(stack.output(name), "v2") >= 100, 90, 0.5)
    report = check(stack.output(name), keys=KEYS, live=True)
    assert report.ok, report.summary()
    assert [r.logic for r in report.logic_runs] == ["v1", "v2"], report.summary()
    last_v1, first_v2 = trace_edges(stack.trace(name), moment)
    assert last_v1 is not None and first_v2 is not None
    _measured(label, first_v2 - last_v1)


def _deleted(stack: Stack, name: str, label: str) -> None:
    """Delete the FlinkDeployment ``name``; record ``<label>: delete -> pods gone``; nothing of it is left."""
    moment = time.time()
    stack.admin.delete(f"{FD}/{name}").raise_for_status()
    wait_for(f"{name}'s pods gone", lambda: not stack.pods(name), 120, 0.2)
    _measured(f"{label}: delete -> pods gone", time.time() - moment)
    wait_for(f"{name} gone", lambda: stack.fd(name) is None, 60, 0.2)
    assert stack.left_behind(name) == []


# ------------------------------------------------------------------------------------------------ verify


def test_standalone_deployment_becomes_stable_with_state_on_s3(stack: Stack) -> None:
    doc = verifier_deployment("verify", s3=stack.s3, bucket=BUCKET, host_dir=stack.host_dir)
    _applied_until_stable(stack, doc, "standalone")
    status = stack.status("verify")
    assert status["jobStatus"]["state"] == "RUNNING"
    assert status["jobManagerDeploymentStatus"] == "READY"
    assert status["clusterInfo"]["rest-url"].endswith(":8081")
    # STABLE means a checkpoint completed: it is on S3, where the operator will look for it.
    assert any("/chk-" in key for key in stack.s3.objects(BUCKET, "verify/checkpoints/"))
    _records_verified(stack, "verify", "committed records", timeout=60)


def test_savepoint_upgrade_carries_state_with_nothing_lost_or_duplicated(stack: Stack) -> None:
    moment = time.time()
    generation = stack.apply(
        verifier_deployment("verify", s3=stack.s3, bucket=BUCKET, host_dir=stack.host_dir, logic="v2")
    )["metadata"]["generation"]
    _wait_running_generation(stack, "verify", generation, moment, "savepoint upgrade: apply -> new job RUNNING")
    stack.wait_stable("verify")
    _measured("savepoint upgrade: apply -> STABLE again", time.time() - moment)
    status = stack.status("verify")
    run = status["deploymentHistory"][-1]
    assert run.get("restoredFrom", "").startswith(f"s3://{BUCKET}/verify/savepoints/"), run
    _v2_took_over(stack, "verify", moment, "savepoint upgrade: downtime (last v1 record -> first v2 record)")


def test_jobmanager_pod_deleted_without_ha_is_redeployed_from_the_newest_checkpoint(stack: Stack) -> None:
    (pod,) = stack.pods("verify", "jobmanager")
    before = stack.status("verify")["deploymentHistory"][-1]
    wait_for("a checkpoint of the running job", lambda: _checkpoints(stack, "verify", before["jobId"]), 60, 0.5)
    moment = time.time()
    stack.admin.delete(
        f"/api/v1/namespaces/{JOBS_NS}/pods/{pod['metadata']['name']}", params={"gracePeriodSeconds": "0"}
    ).raise_for_status()

    def recovered() -> dict[str, Any] | None:
        history = stack.status("verify").get("deploymentHistory") or []
        return history[-1] if history and history[-1].get("jobId") != before["jobId"] else None

    run = wait_for("a redeploy from the newest checkpoint", recovered, 120, 0.3)
    assert "/chk-" in run.get("restoredFrom", ""), run
    (job,) = _running_jobs(stack, "verify", 180)
    _measured("no HA: JobManager pod deleted -> job RUNNING again", time.time() - moment)
    assert job["jid"] == run["jobId"]
    stack.wait_stable("verify")
    count = len(read_committed(stack.output("verify")))
    _records_verified(stack, "verify", "records after the recovery", after=count)


def _logic_count(output: Path, logic: str) -> int:
    return sum(1 for r in read_committed(output) if r.logic == logic)


def _checkpoints(stack: Stack, name: str, job_id: str) -> list[str]:
    return [k for k in stack.s3.objects(BUCKET, f"{name}/checkpoints/{job_id}/") if "/chk-" in k]


def _running_jobs(stack: Stack, name: str, timeout: float) -> list[dict[str, Any]]:
    rest = wait_for(f"{name}'s REST Service", lambda: stack.rest(name), 60)
    try:
        return wait_for(f"{name}'s job RUNNING", rest.running, timeout, 0.2)
    finally:
        rest.close()


def _wait_running_generation(stack: Stack, name: str, generation: int, since: float, label: str) -> None:
    """Until the job of ``generation`` runs (its job id recorded in status is the one Flink runs)."""

    def running() -> bool:
        status = stack.status(name)
        history = status.get("deploymentHistory") or []
        if not history or history[-1].get("generation") != generation:
            return False
        stack.no_crash_loop(name)
        jobs = {j["jid"] for j in _running_jobs(stack, name, 1)} if stack.pods(name, "jobmanager") else set()
        return history[-1].get("jobId") in jobs

    def settle() -> bool:
        with contextlib.suppress(AssertionError):
            return running()
        return False

    wait_for(f"{name} generation {generation} RUNNING", settle, 240, 0.3)
    _measured(label, time.time() - since)


def test_deleted_deployment_leaves_nothing_behind(stack: Stack) -> None:
    _deleted(stack, "verify", "no HA")
    # Its state stays in storage.
    assert _checkpoints_any(stack, "verify")


# ------------------------------------------------------------------------------------------------ verify-ha


def _ha(stack: Stack, logic: str = "v1") -> dict[str, Any]:
    return verifier_deployment(
        "verify-ha", s3=stack.s3, bucket=BUCKET, host_dir=stack.host_dir, ha=True, jobmanagers=2,
        upgrade_mode="last-state", logic=logic,
    )  # fmt: skip


def test_ha_deployment_with_two_jobmanagers_becomes_stable(stack: Stack) -> None:
    _applied_until_stable(stack, _ha(stack), "HA")
    assert len(stack.pods("verify-ha", "jobmanager")) == 2
    assert _ha_config_maps(stack, "verify-ha"), "Flink wrote no HA ConfigMaps"


def test_last_state_upgrade_with_ha_runs_one_job_from_the_newest_checkpoint(stack: Stack) -> None:
    before = stack.status("verify-ha")["deploymentHistory"][-1]
    moment = time.time()
    generation = stack.apply(_ha(stack, logic="v2"))["metadata"]["generation"]
    _wait_running_generation(stack, "verify-ha", generation, moment, "HA last-state upgrade: apply -> new job RUNNING")
    run = stack.status("verify-ha")["deploymentHistory"][-1]
    assert run["jobId"] != before["jobId"]
    assert f"/checkpoints/{before['jobId']}/chk-" in (run.get("restoredFrom") or ""), run
    stack.wait_stable("verify-ha")
    # One job: Flink did not recover the old job next to the new one.
    rest = stack.rest("verify-ha")
    try:
        assert [(j["jid"], j["state"]) for j in rest.jobs()] == [(run["jobId"], "RUNNING")]
    finally:
        rest.close()
    _v2_took_over(stack, "verify-ha", moment, "HA last-state upgrade: downtime (last v1 record -> first v2 record)")


def test_killed_leading_jobmanager_hands_over_to_the_standby_with_the_same_job(stack: Stack) -> None:
    job_id = stack.status("verify-ha")["jobStatus"]["jobId"]
    leader = _leader_pod(stack, "verify-ha")
    moment = time.time()
    killed = _kill_jvm(leader)
    assert killed, f"no Java process found for pod {leader['metadata']['name']}"
    rest = stack.rest("verify-ha")
    try:

        def restored() -> bool:
            jobs = rest.running()
            return bool(jobs) and jobs[0]["jid"] == job_id and jobs[0]["start-time"] > moment * 1000

        wait_for("the job RUNNING again under the new leader", restored, 120, 0.2)
    finally:
        rest.close()
    _measured("HA: leading JobManager SIGKILLed -> job RUNNING again", time.time() - moment)
    assert stack.status("verify-ha")["jobStatus"]["jobId"] == job_id
    count = len(read_committed(stack.output("verify-ha")))
    _records_verified(stack, "verify-ha", "records after the takeover", after=count)


def test_deleted_ha_deployment_leaves_no_ha_config_maps(stack: Stack) -> None:
    _deleted(stack, "verify-ha", "HA")
    assert _ha_config_maps(stack, "verify-ha") == []


def _checkpoints_any(stack: Stack, name: str) -> list[str]:
    return [k for k in stack.s3.objects(BUCKET, f"{name}/checkpoints/") if "/chk-" in k]


def _ha_config_maps(stack: Stack, name: str) -> list[str]:
    """The HA ConfigMaps Flink wrote for cluster ``name`` (Flink 2.2 labels them ``app`` and ``type`` only)."""
    params = {"labelSelector": ha_selector(name)}
    items = stack.admin.get(f"/api/v1/namespaces/{JOBS_NS}/configmaps", params=params).json()["items"]
    return sorted(n for n in (i["metadata"]["name"] for i in items) if is_ha_config_map_name(name, n))


def _leader_pod(stack: Stack, name: str) -> dict[str, Any]:
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


def _kill_jvm(pod: dict[str, Any]) -> list[int]:
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


# ------------------------------------------------------------------------------------------------ native


def test_native_deployment_becomes_stable_with_taskmanager_pods_flink_created(stack: Stack) -> None:
    doc = verifier_deployment("native", s3=stack.s3, bucket=BUCKET, host_dir=stack.host_dir, mode="native")
    _applied_until_stable(stack, doc, "native")
    taskmanagers = stack.pods("native", "taskmanager")
    assert taskmanagers, "Flink created no TaskManager pod"
    for pod in taskmanagers:  # made by Flink's resource manager, owned by the JobManager Deployment
        owners = [o["kind"] for o in pod["metadata"].get("ownerReferences") or []]
        assert owners == ["Deployment"], owners
    deployments = stack.admin.get(
        f"/apis/apps/v1/namespaces/{JOBS_NS}/deployments", params={"labelSelector": "app=native"}
    ).json()["items"]
    assert [d["metadata"]["name"] for d in deployments] == ["native"]  # no TaskManager Deployment of ours
    _records_verified(stack, "native", "committed records")
    _deleted(stack, "native", "native")
