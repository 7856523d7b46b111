"""The operator on a real kube-apiserver (with kube-controller-manager), running with the Helm chart's RBAC.

There is no kubelet on this machine: the Deployments the operator creates get ReplicaSets and Pods, but the pods
stay Pending, so no JobManager ever answers. These tests therefore cover everything the operator does with the
Kubernetes API (CRDs, children with owner references and generation stamps, status through the status
subresource, conflicts, events, finalizers, leader election, restarts mid-upgrade); what happens inside Flink
is covered by the local-runtime tests, which run the same controller against real Flink processes.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from flinkops.controller.executor import FAILPOINT_ENV, FAILPOINT_EXIT_CODE
from support.helm import render
from support.kube import KubeCluster, install_crds, server_side_apply
from support.operator import OperatorProcess, sample_deployment, service_account_kubeconfig, wait_for

SEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "seeds"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
OPERATOR_NS = "flinkops-system"
WATCHED = ("flink-a", "flink-b")
UNWATCHED = "flink-other"
GENERATION_ANNOTATION = "flinkops.io/generation"
LEASE = "flinkops-leader"  # the Lease the chart's Role lets the operator use (release "flinkops")
FD = "/apis/flink.apache.org/v1beta1/namespaces/{ns}/flinkdeployments"


_PLURAL = {
    "Namespace": "namespaces",
    "ServiceAccount": "serviceaccounts",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "CustomResourceDefinition": "customresourcedefinitions",
}


def _path_of(obj: dict[str, Any]) -> str:
    api, kind = obj["apiVersion"], obj["kind"]
    prefix = f"/api/{api}" if "/" not in api else f"/apis/{api}"
    ns = obj["metadata"].get("namespace")
    scoped = f"/namespaces/{ns}" if ns and kind not in ("ClusterRole", "ClusterRoleBinding", "Namespace") else ""
    return f"{prefix}{scoped}/{_PLURAL[kind]}/{obj['metadata']['name']}"


def fd(admin: httpx.Client, ns: str, name: str) -> dict[str, Any] | None:
    response = admin.get(f"{FD.format(ns=ns)}/{name}")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def deployment(admin: httpx.Client, ns: str, name: str) -> dict[str, Any] | None:
    response = admin.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
    if response.status_code == 404:
        return None
    result: dict[str, Any] = response.json()
    return result


def apply_fd(admin: httpx.Client, doc: dict[str, Any], ns: str) -> dict[str, Any]:
    body = copy.deepcopy(doc)
    body["metadata"]["namespace"] = ns
    body["metadata"].pop("annotations", None)
    return server_side_apply(admin, f"{FD.format(ns=ns)}/{body['metadata']['name']}", body)


def events_of(admin: httpx.Client, ns: str, name: str) -> list[dict[str, Any]]:
    response = admin.get(f"/api/v1/namespaces/{ns}/events", params={"fieldSelector": f"involvedObject.name={name}"})
    response.raise_for_status()
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def seed(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((SEEDS / name).read_text()) if d]


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def cluster(kube: KubeCluster) -> Iterator[httpx.Client]:
    """CRDs, namespaces, and the chart's RBAC for the operator (watching flink-a and flink-b)."""
    with kube.client() as admin:
        install_crds(admin)
        for ns in (OPERATOR_NS, *WATCHED, UNWATCHED):
            server_side_apply(
                admin, f"/api/v1/namespaces/{ns}", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            )
        chart = render({"watchNamespaces": list(WATCHED)}, namespace=OPERATOR_NS)
        operator_args = next(o for o in chart if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
        assert f"--lease-name={LEASE}" in operator_args["args"]
        for obj in chart:
            if obj["kind"] in _PLURAL:
                server_side_apply(admin, _path_of(obj), obj)
        yield admin


@pytest.fixture(scope="module")
def operator_kubeconfig(kube: KubeCluster, cluster: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> Path:
    accounts = [
        o["metadata"]["name"]
        for o in render({"watchNamespaces": list(WATCHED)}, namespace=OPERATOR_NS)
        if o["kind"] == "ServiceAccount" and o["metadata"].get("namespace") == OPERATOR_NS
    ]
    assert accounts, "the chart renders no operator ServiceAccount"
    into = tmp_path_factory.mktemp("operator") / "operator.kubeconfig"
    return service_account_kubeconfig(cluster, kube.server, kube.ca_file, OPERATOR_NS, accounts[0], into)


class _SharedOperator:
    """The operator the tests that need one leading share (started once: each start costs seconds); the tests that
    run operators of their own, contending for the lease, stop it first (``alone``)."""

    def __init__(self, kubeconfig: Path, logs: Path) -> None:
        self.kubeconfig, self.logs, self.starts = kubeconfig, logs, 0
        self.proc: OperatorProcess | None = None

    def running(self) -> OperatorProcess:
        if self.proc is None or self.proc.proc.poll() is not None:
            self.starts += 1
            self.proc = OperatorProcess(
                self.kubeconfig, self.logs / f"operator-{self.starts}.log", namespaces=WATCHED,
                lease_namespace=OPERATOR_NS, identity="op-1",
            )  # fmt: skip
            wait_for("the operator to lead", self.proc.is_leader, timeout=30)
        return self.proc

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


@pytest.fixture(scope="module")
def shared_operator(operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_SharedOperator]:
    shared = _SharedOperator(operator_kubeconfig, tmp_path_factory.mktemp("shared-operator"))
    yield shared
    shared.stop()


@pytest.fixture()
def operator(shared_operator: _SharedOperator) -> OperatorProcess:
    return shared_operator.running()


@pytest.fixture()
def alone(shared_operator: _SharedOperator) -> None:
    """No shared operator running: the test starts the operators it needs."""
    shared_operator.stop()


def _settled_deployed(admin: httpx.Client, ns: str, name: str) -> dict[str, Any] | None:
    obj = fd(admin, ns, name)
    if obj is None:
        return None
    status = obj.get("status") or {}
    generation = obj["metadata"]["generation"]
    dep = deployment(admin, ns, name)
    if (
        status.get("lifecycleState") == "DEPLOYED"
        and status.get("observedGeneration") == generation
        and dep is not None
        and dep["metadata"].get("annotations", {}).get(GENERATION_ANNOTATION) == str(generation)
    ):
        return obj
    return None


def _state_on_aws_s3(doc: dict[str, Any]) -> bool:
    """State directories on ``s3://`` with no endpoint of their own: AWS itself, which this machine cannot reach."""
    conf = doc["spec"].get("flinkConfiguration") or {}
    flat = {str(k): str(v) for k, v in conf.items()} if isinstance(conf, dict) else {}
    uses_s3 = any(v.startswith(("s3://", "s3a://", "s3p://")) for v in flat.values())
    uses_s3 = uses_s3 or str((doc["spec"].get("job") or {}).get("initialSavepointPath", "")).startswith("s3")
    return uses_s3 and not any(k in flat for k in ("s3.endpoint", "fs.s3a.endpoint"))


def _s3_error(admin: httpx.Client, ns: str, name: str) -> dict[str, Any] | None:
    obj = fd(admin, ns, name)
    error = ((obj or {}).get("status") or {}).get("error") or ""
    return obj if "S3" in error else None


# ------------------------------------------------------------------------------------------------ tests


def test_seeds_and_examples_deploy_children_with_owner_references_and_status(
    cluster: httpx.Client, operator: OperatorProcess
) -> None:
    admin = cluster
    docs = [d for f in sorted(SEEDS.glob("*.yaml")) for d in seed(f.name) if d["kind"] == "FlinkDeployment"]
    for example in sorted(EXAMPLES.glob("*/*.yaml")):
        docs += [d for d in yaml.safe_load_all(example.read_text()) if d and d.get("kind") == "FlinkDeployment"]
    names: set[str] = set()
    on_aws: set[str] = set()
    for doc in docs:
        name = doc["metadata"]["name"]
        if name in names:
            continue  # two seeds may share a name; one is enough on the API server
        names.add(name)
        if _state_on_aws_s3(doc):
            on_aws.add(name)
        apply_fd(admin, doc, "flink-a")
    # Resources whose state is on AWS S3 (the payments seeds) cannot reach it from this machine: the operator
    # says so in their status and with a Warning event, and serves the others meanwhile.
    outcome: dict[str, dict[str, Any]] = {}
    for name in sorted(names):

        def settled(name: str = name) -> dict[str, Any] | None:
            return _settled_deployed(admin, "flink-a", name) or _s3_error(admin, "flink-a", name)

        outcome[name] = wait_for(f"{name} deployed, or its S3 problem reported", settled, 90)
    unreachable = {n for n, o in outcome.items() if (o.get("status") or {}).get("error")}
    assert unreachable <= on_aws, f"errors other than unreachable AWS S3: {sorted(unreachable - on_aws)}"
    for name in sorted(unreachable):
        assert any(e["type"] == "Warning" and "S3" in e["message"] for e in events_of(admin, "flink-a", name))
        conditions = {c["type"]: c["status"] for c in outcome[name]["status"]["conditions"]}
        assert conditions["Degraded"] == "True"
    deployed = sorted(names - unreachable)
    assert len(deployed) >= 3, f"too few resources exercise the whole path: {deployed}"
    for name in deployed:
        obj = wait_for(f"{name} DEPLOYED with its children", lambda n=name: _settled_deployed(admin, "flink-a", n), 90)
        uid = obj["metadata"]["uid"]
        selector = f"app.kubernetes.io/managed-by=flinkops,app={name}"
        children = []
        for api, plural, kind in (
            ("apis/apps/v1", "deployments", "Deployment"),
            ("api/v1", "services", "Service"),
            ("api/v1", "configmaps", "ConfigMap"),
        ):
            items = admin.get(f"/{api}/namespaces/flink-a/{plural}", params={"labelSelector": selector}).json()["items"]
            children += [{**item, "kind": kind} for item in items]  # list items carry no kind of their own
        kinds = sorted({c["kind"] for c in children})
        assert kinds == ["ConfigMap", "Deployment", "Service"], f"{name}: {kinds}"
        for child in children:
            owners = child["metadata"].get("ownerReferences") or []
            assert [(o["kind"], o["uid"], o.get("controller")) for o in owners] == [("FlinkDeployment", uid, True)]
        status = obj["status"]
        # Written through the status subresource by the operator's field manager.
        managers = {(m["manager"], m.get("subresource", "")) for m in obj["metadata"].get("managedFields", [])}
        assert ("flinkops", "status") in managers
        conditions = {c["type"]: c for c in status["conditions"]}
        assert {"Ready", "Progressing", "Degraded"} <= set(conditions)
        if name not in on_aws:  # one with state on AWS S3 may be deployed and still fail to read it
            assert conditions["Degraded"]["status"] == "False"
        assert conditions["Progressing"]["status"] == "True"  # pods cannot start here: it never becomes stable
        assert status["jobManagerDeploymentStatus"] in ("DEPLOYING", "DEPLOYED_NOT_READY")
        assert any(e["reason"] == "Submit" for e in events_of(admin, "flink-a", name))
        # The finalizer keeps the resource until its children are cleaned up.
        assert "flinkops.io/cleanup" in obj["metadata"]["finalizers"]
    # The session jobs of the seeds and examples: accepted, and the operator reports that their session cluster
    # is not ready (its JobManager pod cannot start here) instead of failing or submitting anything.
    jobs = [d for f in sorted(SEEDS.glob("*.yaml")) for d in seed(f.name) if d["kind"] == "FlinkSessionJob"]
    jobs += [
        d
        for example in sorted(EXAMPLES.glob("*/*.yaml"))
        for d in yaml.safe_load_all(example.read_text())
        if d and d.get("kind") == "FlinkSessionJob"
    ]
    sj = "/apis/flink.apache.org/v1beta1/namespaces/flink-a/flinksessionjobs"
    for job in jobs:
        body = copy.deepcopy(job)
        body["metadata"]["namespace"] = "flink-a"
        server_side_apply(admin, f"{sj}/{body['metadata']['name']}", body)
    for job in jobs:
        name = job["metadata"]["name"]

        def reported(name: str = name) -> dict[str, Any] | None:
            obj: dict[str, Any] = admin.get(f"{sj}/{name}").json()
            status = obj.get("status") or {}
            ok = status.get("error") or (status.get("lifecycleState") and status.get("conditions"))
            return obj if ok else None

        obj = wait_for(f"session job {name} to get a status", reported, 60)
        if obj["status"].get("error"):  # a seed's session cluster that the seeds do not include
            assert job["spec"]["deploymentName"] in obj["status"]["error"], obj["status"]
        else:
            assert obj["status"]["lifecycleState"] in ("CREATED", "DEPLOYED", "UPGRADING"), obj["status"]
        assert not (obj["status"].get("jobStatus") or {}).get("jobId")  # nothing submitted to an absent cluster
    assert (operator.metric("flinkops_reconcile_total") or 0) >= len(names) + len(jobs)
    assert unreachable, "the payments seeds keep their state on AWS S3, which cannot be reached from here"


def test_unwatched_namespace_is_left_alone(cluster: httpx.Client, operator: OperatorProcess) -> None:
    admin = cluster
    apply_fd(admin, sample_deployment("elsewhere"), UNWATCHED)
    apply_fd(admin, sample_deployment("watched-probe"), "flink-b")
    wait_for("watched-probe deployed", lambda: _settled_deployed(admin, "flink-b", "watched-probe"), 60)
    obj = fd(admin, UNWATCHED, "elsewhere")
    assert obj is not None and not obj.get("status") and deployment(admin, UNWATCHED, "elsewhere") is None


def test_invalid_resource_gets_error_and_event_while_others_are_served(
    cluster: httpx.Client, operator: OperatorProcess
) -> None:
    admin = cluster
    bad = sample_deployment("bad-upgrade-mode", mode="savepoint")  # savepoint upgrades need a savepoint directory
    apply_fd(admin, bad, "flink-b")
    good = sample_deployment("good-neighbour")
    apply_fd(admin, good, "flink-b")

    def errored() -> dict[str, Any] | None:
        obj = fd(admin, "flink-b", "bad-upgrade-mode")
        return obj if obj and (obj.get("status") or {}).get("error") else None

    obj = wait_for("bad-upgrade-mode to report its error", errored, 60)
    assert "savepoint" in obj["status"]["error"]
    assert deployment(admin, "flink-b", "bad-upgrade-mode") is None  # nothing was started
    degraded = {c["type"]: c for c in obj["status"]["conditions"]}["Degraded"]
    assert degraded["status"] == "True"
    assert any(e["type"] == "Warning" for e in events_of(admin, "flink-b", "bad-upgrade-mode"))
    wait_for("good-neighbour deployed", lambda: _settled_deployed(admin, "flink-b", "good-neighbour"), 60)


def test_delete_cleans_up_children_through_the_finalizer(cluster: httpx.Client, operator: OperatorProcess) -> None:
    admin = cluster
    apply_fd(admin, sample_deployment("short-lived"), "flink-a")
    wait_for("short-lived deployed", lambda: _settled_deployed(admin, "flink-a", "short-lived"), 60)
    assert admin.delete(f"{FD.format(ns='flink-a')}/short-lived").status_code < 300
    wait_for("short-lived gone", lambda: fd(admin, "flink-a", "short-lived") is None, 60)
    selector = "app.kubernetes.io/managed-by=flinkops,app=short-lived"
    for api, plural in (("apis/apps/v1", "deployments"), ("api/v1", "services"), ("api/v1", "configmaps")):
        items = admin.get(f"/{api}/namespaces/flink-a/{plural}", params={"labelSelector": selector}).json()["items"]
        assert items == [], f"{plural} left behind: {[i['metadata']['name'] for i in items]}"


def test_concurrent_status_writer_loses_nothing(cluster: httpx.Client, operator: OperatorProcess) -> None:
    """Another controller writes its own condition into the status while the operator upgrades the resource:
    both writes survive, because every status write is conditional and a 409 makes the operator re-read."""
    admin = cluster
    apply_fd(admin, sample_deployment("contended"), "flink-b")
    wait_for("contended deployed", lambda: _settled_deployed(admin, "flink-b", "contended"), 60)
    stop = threading.Event()
    writes = {"ok": 0, "conflict": 0}

    def writer() -> None:
        while not stop.is_set():
            obj = fd(admin, "flink-b", "contended")
            assert obj is not None
            status = obj.get("status") or {}
            conditions = [c for c in status.get("conditions", []) if c["type"] != "ExternalCheck"]
            conditions.append(
                {"type": "ExternalCheck", "status": "True", "reason": "Probe", "message": str(writes["ok"]),
                 "lastTransitionTime": "2026-01-01T00:00:00Z"}
            )  # fmt: skip
            body = {**obj, "status": {**status, "conditions": conditions}}
            response = admin.put(f"{FD.format(ns='flink-b')}/contended/status", json=body)
            writes["ok" if response.status_code == 200 else "conflict"] += 1
            time.sleep(0.02)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        changed = sample_deployment("contended", image="flink:2.2.1-java21")
        apply_fd(admin, changed, "flink-b")
        obj = wait_for("contended upgraded", lambda: _settled_deployed(admin, "flink-b", "contended"), 90)
    finally:
        stop.set()
        thread.join(10)
    assert obj["metadata"]["generation"] == 2
    history = obj["status"]["deploymentHistory"]
    assert [r["generation"] for r in history] == [1, 2]
    final = fd(admin, "flink-b", "contended")
    assert final is not None
    types = {c["type"] for c in final["status"]["conditions"]}
    assert "ExternalCheck" in types and "Ready" in types  # neither writer erased the other
    assert writes["ok"] > 0
    image = deployment(admin, "flink-b", "contended")["spec"]["template"]["spec"]["containers"][0]["image"]  # type: ignore[index]
    assert image == "flink:2.2.1-java21"


@pytest.mark.usefixtures("alone")
def test_standby_takes_over_after_the_leader_is_killed(
    cluster: httpx.Client, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    admin = cluster
    lease_duration = 6.0
    first = OperatorProcess(
        operator_kubeconfig, tmp_path / "a.log", namespaces=WATCHED, lease_namespace=OPERATOR_NS, identity="op-a",
        lease_duration=lease_duration,
    )  # fmt: skip
    second = None
    try:
        wait_for("op-a leads", first.is_leader, 30)
        second = OperatorProcess(
            operator_kubeconfig, tmp_path / "b.log", namespaces=WATCHED, lease_namespace=OPERATOR_NS, identity="op-b",
            lease_duration=lease_duration,
        )  # fmt: skip
        assert first.is_leader() and not second.is_leader()
        first.kill()
        killed_at = time.monotonic()
        wait_for("op-b to take over", second.is_leader, lease_duration * 3)
        took = time.monotonic() - killed_at
        assert took <= lease_duration + 4.0, f"standby took {took:.1f}s for a {lease_duration:.0f}s lease"
        lease = admin.get(f"/apis/coordination.k8s.io/v1/namespaces/{OPERATOR_NS}/leases/{LEASE}").json()
        assert lease["spec"]["holderIdentity"] == "op-b"
        apply_fd(admin, sample_deployment("after-failover"), "flink-a")
        wait_for("after-failover deployed by op-b", lambda: _settled_deployed(admin, "flink-a", "after-failover"), 60)
    finally:
        first.kill()
        if second is not None:
            second.stop()


@pytest.mark.usefixtures("alone")
def test_restart_mid_upgrade_resumes_from_the_write_ahead_status(
    cluster: httpx.Client, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    admin = cluster
    first = OperatorProcess(
        operator_kubeconfig, tmp_path / "a.log", namespaces=WATCHED, lease_namespace=OPERATOR_NS, identity="op-x",
        env={FAILPOINT_ENV: "after:DeleteCluster"},
    )  # fmt: skip
    try:
        apply_fd(admin, sample_deployment("mid-upgrade"), "flink-a")
        wait_for("mid-upgrade deployed", lambda: _settled_deployed(admin, "flink-a", "mid-upgrade"), 60)
        apply_fd(admin, sample_deployment("mid-upgrade", image="flink:2.2.1-java21"), "flink-a")
        code = first.wait_exit(60)
        assert code == FAILPOINT_EXIT_CODE, first.log()
    finally:
        first.kill()
    obj = fd(admin, "flink-a", "mid-upgrade")
    assert obj is not None
    assert obj["status"]["lifecycleState"] == "UPGRADING"  # the intent was written before the old cluster went
    assert deployment(admin, "flink-a", "mid-upgrade") is None
    second = OperatorProcess(
        operator_kubeconfig, tmp_path / "b.log", namespaces=WATCHED, lease_namespace=OPERATOR_NS, identity="op-y"
    )
    try:
        obj = wait_for("the upgrade to finish", lambda: _settled_deployed(admin, "flink-a", "mid-upgrade"), 90)
    finally:
        second.stop()
    assert [(r["generation"], r["reason"]) for r in obj["status"]["deploymentHistory"]] == [
        (1, "first-deploy"),
        (2, "upgrade"),
    ]
    dep = deployment(admin, "flink-a", "mid-upgrade")
    assert dep is not None and dep["spec"]["template"]["spec"]["containers"][0]["image"] == "flink:2.2.1-java21"
