"""``flinkops --context NAME`` works on a real API server's custom resources, the way kubectl would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from support.kube import KubeCluster, install_crds

SEED = Path(__file__).resolve().parents[1] / "fixtures" / "seeds" / "eks-session-cluster.yaml"


def flinkops(kube: KubeCluster, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {})}
    environment.pop("KUBECONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "flinkops", "--kubeconfig", str(kube.kubeconfig), "--context", "flinkops-dev", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )


@pytest.fixture(scope="module")
def crds(kube: KubeCluster) -> httpx.Client:
    admin = kube.client()
    install_crds(admin)
    return admin


def test_apply_get_describe_delete_against_the_api_server(kube: KubeCluster, crds: httpx.Client) -> None:
    applied = flinkops(kube, "apply", "-f", str(SEED))
    assert applied.returncode == 0, applied.stderr
    assert "flinkdeployment/basic-session-cluster created" in applied.stdout
    again = flinkops(kube, "apply", "-f", str(SEED))
    assert "unchanged" in again.stdout, again.stdout + again.stderr

    stored = crds.get("/apis/flink.apache.org/v1beta1/namespaces/default/flinkdeployments/basic-session-cluster")
    assert stored.status_code == 200
    assert stored.json()["spec"]["image"] == "docker.io/library/flink:2.0.0-java17"
    assert "flinkops.io/source-dir" not in (stored.json()["metadata"].get("annotations") or {})

    listed = flinkops(kube, "get", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    names = [item["metadata"]["name"] for item in json.loads(listed.stdout).get("items", [])] or [
        json.loads(listed.stdout)["metadata"]["name"]
    ]
    assert "basic-session-cluster" in names

    described = flinkops(kube, "describe", "basic-session-cluster")
    assert described.returncode == 0, described.stderr
    assert "basic-session-cluster" in described.stdout

    refused = flinkops(kube, "logs", "basic-session-cluster")
    assert refused.returncode == 2 and "kubectl logs" in refused.stderr

    deleted = flinkops(kube, "delete", "basic-session-cluster")
    assert deleted.returncode == 0, deleted.stderr
    gone = crds.get("/apis/flink.apache.org/v1beta1/namespaces/default/flinkdeployments/basic-session-cluster")
    assert gone.status_code == 404


def test_bad_context_is_invalid_input(kube: KubeCluster) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    done = subprocess.run(
        [sys.executable, "-m", "flinkops", "--kubeconfig", str(kube.kubeconfig), "--context", "nope", "get"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )
    assert done.returncode == 2
    assert "flinkops-dev" in done.stderr  # the error lists the contexts there are
