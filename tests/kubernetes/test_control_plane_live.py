"""A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager built from the Go module proxy)
on 127.0.0.1: the API serves with certificate authentication and RBAC; a Deployment created through the API
gets a ReplicaSet and Pods from the controller-manager; deleting it garbage-collects them through owner
references; ``flinkops dev up|status|env|down kubernetes`` runs one end to end in a private FLINKOPS_HOME.

There is no kubelet and no node, so pods are created but never scheduled or run: they stay Pending, and the
test expects exactly that. The first run on a machine builds the binaries (many minutes, once).
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import signal
import ssl
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from flinkops.dev.kubernetes import CONTEXT, KUBERNETES_VERSION
from flinkops.dev.process import free_port
from integration.flinkops_cli import Flinkops, running
from support.kube import KubeCluster

pytestmark = pytest.mark.integration

T = TypeVar("T")


def wait(probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    last = probe()
    while not done(last):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}"[:4000])
        time.sleep(0.2)
        last = probe()
    return last


def items(client: httpx.Client, path: str, owner_uid: str | None = None) -> list[dict[str, Any]]:
    answer = client.get(path)
    answer.raise_for_status()
    found: list[dict[str, Any]] = answer.json()["items"]
    if owner_uid is None:
        return found
    return [i for i in found if any(o["uid"] == owner_uid for o in i["metadata"].get("ownerReferences", []))]


def test_api_serves_with_certificates_and_rbac(kube: KubeCluster) -> None:
    with kube.client() as client:
        version = client.get("/version").json()
        assert version["gitVersion"] == KUBERNETES_VERSION
        assert client.get("/readyz").text == "ok"
        whoami = client.post(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        assert whoami.status_code == 201, whoami.text
        assert "system:masters" in whoami.json()["status"]["userInfo"]["groups"]

    # Without a client certificate the API answers, but as system:anonymous, whom RBAC allows nothing here.
    with httpx.Client(base_url=kube.server, verify=ssl.create_default_context(cafile=str(kube.ca_file))) as anon:
        assert anon.get("/api/v1/namespaces").status_code == 403

    config = yaml.safe_load(kube.kubeconfig.read_text())
    assert config["current-context"] == CONTEXT
    (cluster,) = config["clusters"]
    assert cluster["cluster"]["server"] == kube.server
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == kube.ca_file.read_bytes()
    (user,) = config["users"]
    assert {"client-certificate-data", "client-key-data"} <= set(user["user"])
    assert kube.kubeconfig.stat().st_mode & 0o077 == 0


def test_deployment_gets_replicaset_and_pending_pods_then_garbage_collection(kube: KubeCluster) -> None:
    namespace = f"deploy-{uuid.uuid4().hex[:8]}"
    labels = {"app": "web"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]},
            },
        },
    }
    with kube.client() as client:
        created = client.post("/api/v1/namespaces", json={"metadata": {"name": namespace}})
        assert created.status_code == 201, created.text
        # The namespace's `default` ServiceAccount comes from the controller-manager; pods need it.
        wait(
            lambda: client.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/default").status_code,
            lambda code: code == 200,
            timeout=60,
            what="the default ServiceAccount",
        )
        answer = client.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", json=deployment)
        assert answer.status_code == 201, answer.text
        deployment_uid = answer.json()["metadata"]["uid"]

        replica_sets = wait(
            lambda: items(client, f"/apis/apps/v1/namespaces/{namespace}/replicasets", deployment_uid),
            lambda found: len(found) == 1,
            timeout=60,
            what="the Deployment's ReplicaSet",
        )
        replica_set_uid = replica_sets[0]["metadata"]["uid"]
        pods = wait(
            lambda: items(client, f"/api/v1/namespaces/{namespace}/pods", replica_set_uid),
            lambda found: len(found) == 2,
            timeout=60,
            what="two Pods of the ReplicaSet",
        )
        # No kubelet and no node: nothing schedules or runs them.
        assert {pod["status"].get("phase") for pod in pods} == {"Pending"}
        assert all(not pod["spec"].get("nodeName") for pod in pods)
        assert all(pod["spec"]["serviceAccountName"] == "default" for pod in pods)
        wait(
            lambda: client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web").json()["status"],
            lambda status: status.get("replicas") == 2 and status.get("observedGeneration") == 1,
            timeout=60,
            what="the Deployment's status",
        )

        deleted = client.delete(f"/apis/apps/v1/namespaces/{namespace}/deployments/web")
        assert deleted.status_code == 200, deleted.text
        wait(
            lambda: (
                items(client, f"/apis/apps/v1/namespaces/{namespace}/replicasets")
                + items(client, f"/api/v1/namespaces/{namespace}/pods")
            ),
            lambda left: left == [],
            timeout=90,
            what="the garbage collector to delete the ReplicaSet and its Pods",
        )


# ------------------------------------------------------------------------------------------------ flinkops dev


@pytest.fixture
def dev() -> Iterator[Flinkops]:
    with tempfile.TemporaryDirectory(prefix="flinkops-kube-home-") as home:
        cli = Flinkops(Path(home))
        try:
            yield cli
        finally:
            cli.run("dev", "down", "kubernetes")
            for pid_file in cli.home.glob("dev/kubernetes/*.pid"):  # last resort, by recorded pid only
                pid = int(json.loads(pid_file.read_text())["pid"])
                if running(pid):
                    os.kill(pid, signal.SIGKILL)


def dev_status(cli: Flinkops) -> dict[str, Any]:
    (status,) = json.loads(cli.ok("dev", "status", "kubernetes", "-o", "json"))["services"]
    assert isinstance(status, dict)
    return status


def test_flinkops_dev_up_status_env_down(dev: Flinkops) -> None:
    port = free_port()
    dev.ok("dev", "up", "kubernetes", "--kubernetes-port", str(port), timeout=1800)
    status = dev_status(dev)
    assert status["healthy"], status
    assert status["endpoint"] == f"https://127.0.0.1:{port}"
    data_dir = dev.home / "dev" / "kubernetes"
    pids = {
        name: int(json.loads((data_dir / f"{name}.pid").read_text())["pid"])
        for name in ("etcd", "kube-apiserver", "kube-controller-manager")
    }
    assert pids["kube-apiserver"] == status["pid"]
    assert all(running(pid) for pid in pids.values())

    exports = dict(line.removeprefix("export ").split("=", 1) for line in dev.ok("dev", "env").splitlines())
    kubeconfig = Path(shlex.split(exports["KUBECONFIG"])[0])
    assert kubeconfig == data_dir / "admin.kubeconfig"
    config = yaml.safe_load(kubeconfig.read_text())
    user = config["users"][0]["user"]
    with tempfile.TemporaryDirectory() as tmp:
        cert, key, ca = Path(tmp) / "c.pem", Path(tmp) / "k.pem", Path(tmp) / "ca.pem"
        cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        ca.write_bytes(base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]))
        context = ssl.create_default_context(cafile=str(ca))
        context.load_cert_chain(str(cert), str(key))
        with httpx.Client(base_url=config["clusters"][0]["cluster"]["server"], verify=context) as client:
            assert client.get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200

    # `up` again leaves the running processes alone.
    dev.ok("dev", "up", "kubernetes")
    assert dev_status(dev)["pid"] == pids["kube-apiserver"]

    assert "kubernetes stopped" in dev.ok("dev", "down", "kubernetes")
    assert not any(running(pid) for pid in pids.values())
    stopped = dev.run("dev", "status", "kubernetes", "-o", "json")
    assert stopped.code == 1
    assert json.loads(stopped.stdout)["services"][0]["running"] is False
    assert "KUBECONFIG" not in dev.run("dev", "env").stdout
    assert "kubernetes was not running" in dev.ok("dev", "down", "kubernetes")
