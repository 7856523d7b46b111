"""A job release of the flink-job library chart runs to STABLE on the real node (issue 13's acceptance).

The chart's example (deploy/helm/flink-job-example) is rendered by the real ``helm template`` with a values file,
and what ``helm install`` would create is applied server-side into the jobs namespace of the session's stack
(tests/support/nodestack.py: the operator chart's RBAC, with its job Role ``flinkops-job``, and one operator):
the job's own ServiceAccount, its RoleBinding to that Role, and the FlinkDeployment. The operator takes it to
STABLE (its job RUNNING with a completed checkpoint on S3); its pods run as the job's ServiceAccount and carry the
tags and the Datadog annotations the values ask for; deleting the release leaves nothing.

Only values change, each for this machine: the node's image (``flink:2.2``, never pulled) with the test jobs' jar
in usrlib (the example's StateMachineExample jar is not in that image), small pods (two cores), the stack's S3
(endpoint, keys from its Secret, the Presto plugin enabled) and no node pool (the dev node has no Karpenter).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from support.flinknode import S3_SECRET, _plugin_jar
from support.helm import documents_of, helm
from support.kube import TESTJOBS_IN_IMAGE, server_side_apply
from support.nodestack import BUCKET, JOBS_NS, Stack, deleted, measured, wait_for
from support.testjobs import COUNTING_JOB

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "flink-job-example"
RELEASE = "chart-job"


def _values(stack: Stack) -> dict[str, Any]:
    plugin = _plugin_jar()
    return {
        "image": {"repository": "flink", "tag": "2.2", "pullPolicy": "Never"},
        "job": {
            "jarURI": f"local://{TESTJOBS_IN_IMAGE}",
            "entryClass": COUNTING_JOB,
            "args": ["--rate", "20", "--keys", "8"],
            "parallelism": 1,
        },
        "jobManager": {"cpu": 0.25, "memory": "704m"},
        "taskManager": {"cpu": 0.25, "memory": "960m", "slots": 1},
        "state": {
            "checkpointsDir": f"s3://{BUCKET}/{RELEASE}/checkpoints",
            "savepointsDir": f"s3://{BUCKET}/{RELEASE}/savepoints",
            "checkpointInterval": "2 s",
            "checkpointMinPause": "1 s",
        },
        "nodePool": {"name": ""},
        "flinkConfiguration": {
            "s3.endpoint": stack.s3.endpoint,
            "s3.path.style.access": "true",
            "kubernetes.env.secretKeyRef": (
                f"env:AWS_ACCESS_KEY_ID,secret:{S3_SECRET},key:access;"
                f"env:AWS_SECRET_ACCESS_KEY,secret:{S3_SECRET},key:secret"
            ),
            "containerized.master.env.ENABLE_BUILT_IN_PLUGINS": plugin,
            "containerized.taskmanager.env.ENABLE_BUILT_IN_PLUGINS": plugin,
            "kubernetes.jobmanager.cpu.limit-factor": "8",
            "kubernetes.taskmanager.cpu.limit-factor": "8",
            "jobmanager.memory.jvm-metaspace.size": "160m",
            "taskmanager.memory.jvm-metaspace.size": "160m",
        },
    }


_PATHS = {
    "ServiceAccount": f"/api/v1/namespaces/{JOBS_NS}/serviceaccounts",
    "RoleBinding": f"/apis/rbac.authorization.k8s.io/v1/namespaces/{JOBS_NS}/rolebindings",
}


def test_a_job_release_of_the_library_chart_runs_to_stable_on_the_node(stack: Stack) -> None:
    text = helm("template", RELEASE, str(EXAMPLE), "--namespace", JOBS_NS, values=_values(stack))
    rendered = [doc for _, doc in documents_of(text)]
    kinds = sorted(doc["kind"] for doc in rendered)
    assert kinds == ["FlinkDeployment", "RoleBinding", "ServiceAccount"], kinds
    others = [doc for doc in rendered if doc["kind"] != "FlinkDeployment"]
    (deployment,) = [doc for doc in rendered if doc["kind"] == "FlinkDeployment"]
    name = deployment["metadata"]["name"]
    for doc in others:  # Helm installs the ServiceAccount and its binding before the custom resource
        server_side_apply(stack.admin, f"{_PATHS[doc['kind']]}/{doc['metadata']['name']}", doc)
    try:
        stack.apply(deployment)
        stack.wait_stable(name)
        measured(f"{RELEASE}: apply -> STABLE", time.time() - stack.applied_at[name])
        status = stack.status(name)
        assert status["jobStatus"]["state"] == "RUNNING", status
        assert any("/chk-" in k for k in stack.s3.objects(BUCKET, f"{RELEASE}/checkpoints/")), "no checkpoint"
        account = deployment["spec"]["serviceAccount"]
        assert account == next(d for d in others if d["kind"] == "ServiceAccount")["metadata"]["name"]
        pods = wait_for(f"{name}'s pods", lambda: stack.pods(name) or None, 30)
        tags = deployment["metadata"]["labels"]
        for pod in pods:
            assert pod["spec"]["serviceAccountName"] == account, pod["spec"].get("serviceAccountName")
            labels = pod["metadata"].get("labels") or {}
            assert {k: labels.get(k) for k in ("env", "owner")} == {k: tags.get(k) for k in ("env", "owner")}, labels
        (jobmanager,) = stack.pods(name, "jobmanager")
        annotations = jobmanager["metadata"].get("annotations") or {}
        assert any(key.startswith("ad.datadoghq.com/") for key in annotations), annotations
        deleted(stack, name, RELEASE)
    finally:
        if stack.fd(name) is not None:
            stack.admin.delete(f"/apis/flink.apache.org/v1beta1/namespaces/{JOBS_NS}/flinkdeployments/{name}")
        for doc in others:
            stack.admin.delete(f"{_PATHS[doc['kind']]}/{doc['metadata']['name']}")
