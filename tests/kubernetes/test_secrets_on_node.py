"""Secret references on the real node: values from a Kubernetes Secret reach the job through the kubelet, and no
object, log or status the operator or Flink writes holds them, through a whole life.

A FlinkDeployment (standalone) runs the probe job (tests/jobs: it appends the sha256 of a job argument and of a
configuration value to a file on the host, then counts) with ``--probe-password=${secret:k8s:probe/password}`` and
``probe.config.password: ${secret:k8s:probe/config-password}``. The operator renders ``secretKeyRef`` env
entries and ``$(VAR)`` in the container args; it never reads the Secret. Steps: deploy -> STABLE; savepoint upgrade
-> STABLE; the JobManager pod deleted (no HA: the operator redeploys from the newest checkpoint); delete. Each start
of the job must have seen both values (one probe line per start, each with the right hashes), and at every step no
ConfigMap, Deployment, Pod, Service, Event, FlinkDeployment (spec or status), container log of the cluster, Flink
REST configuration view or operator log line may hold either value.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.flinknode import OUTPUT_MOUNT, verifier_deployment
from support.nodestack import BUCKET, JOBS_NS, Stack, deleted, measured, say, wait_for

pytestmark = pytest.mark.integration

NAME = "secretive"
SECRET = "probe"
PROBE = "flinkops.testjobs.SecretProbeJob"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _spec(stack: Stack, rate: int) -> dict[str, Any]:
    doc = verifier_deployment(
        NAME, s3=stack.s3, bucket=BUCKET, host_dir=stack.host_dir, parallelism=1,
        extra={"probe.config.password": f"${{secret:k8s:{SECRET}/config-password}}"},
    )  # fmt: skip
    job = doc["spec"]["job"]
    job["entryClass"] = PROBE
    job["args"] = [
        f"--probe-out={OUTPUT_MOUNT}/{NAME}-probe",
        f"--probe-password=${{secret:k8s:{SECRET}/password}}",
        "--probe-keys=probe.config.password",
        "--rate", str(rate), "--keys", "4",
    ]  # fmt: skip
    return doc


def _probe_lines(stack: Stack) -> list[str]:
    path: Path = stack.host_dir / f"{NAME}-probe"
    return path.read_text().splitlines() if path.exists() else []


def _leaks(stack: Stack, values: list[str]) -> list[str]:
    """Where any of ``values`` shows up in the namespace's objects, the cluster's logs, Flink's configuration views
    and the operator's log."""
    found = []
    for api, plural in (
        ("api/v1", "configmaps"), ("api/v1", "pods"), ("api/v1", "services"), ("api/v1", "events"),
        ("apis/apps/v1", "deployments"), ("apis/flink.apache.org/v1beta1", "flinkdeployments"),
    ):  # fmt: skip
        text = stack.admin.get(f"/{api}/namespaces/{JOBS_NS}/{plural}").text
        found += [f"{plural} holds a secret value" for v in values if v in text]
    for pod in stack.pods(NAME):
        log = stack.admin.get(f"/api/v1/namespaces/{JOBS_NS}/pods/{pod['metadata']['name']}/log").text
        found += [f"the log of {pod['metadata']['name']} holds a secret value" for v in values if v in log]
    if stack.pods(NAME, "jobmanager"):
        rest = stack.rest(NAME)
        try:
            views = json.dumps(
                [rest.client.get(path).text for path in ("/jobmanager/config", "/jobmanager/environment")]
            )
            found += ["Flink's REST configuration views hold a secret value" for v in values if v in views]
        except httpx.HTTPError as exc:  # the JobManager between two starts: the objects above were still checked
            say(f"Flink's REST API not read: {exc}")
        finally:
            rest.close()
    found += ["the operator's log holds a secret value" for v in values if v in stack.operator.log()]
    return found


def test_values_from_a_kubernetes_secret_reach_the_job_and_nothing_else_through_its_life(stack: Stack) -> None:
    began = time.time()
    password, config_password = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    values = [password, config_password]
    expected = f"password={_sha(password)} probe.config.password={_sha(config_password)}"
    body = {
        "metadata": {"name": SECRET, "namespace": JOBS_NS},
        "data": {
            "password": base64.b64encode(password.encode()).decode(),
            "config-password": base64.b64encode(config_password.encode()).decode(),
        },
    }
    stack.admin.delete(f"/api/v1/namespaces/{JOBS_NS}/secrets/{SECRET}")
    stack.admin.post(f"/api/v1/namespaces/{JOBS_NS}/secrets", json=body).raise_for_status()
    try:
        # 1. deploy -> STABLE; the job saw both values
        stack.apply(_spec(stack, rate=40))
        stack.wait_stable(NAME)
        wait_for("the first start's probe line", lambda: len(_probe_lines(stack)) >= 1 or None, 60)
        assert _probe_lines(stack) == [expected], stack.diagnose(NAME)
        jm = stack.pods(NAME, "jobmanager")[0]
        env = jm["spec"]["containers"][0].get("env") or []
        refs = [e["valueFrom"]["secretKeyRef"] for e in env if "secretKeyRef" in (e.get("valueFrom") or {})]
        assert {(r["name"], r["key"]) for r in refs} >= {(SECRET, "password"), (SECRET, "config-password")}
        assert _leaks(stack, values) == []

        # 2. savepoint upgrade -> STABLE on the new spec; its start saw the values too
        moment = time.time()
        generation = stack.apply(_spec(stack, rate=30))["metadata"]["generation"]
        wait_for("the upgrade", lambda: stack.stable(NAME, generation), 240)
        measured("secrets: savepoint upgrade -> STABLE", time.time() - moment)
        wait_for("the upgrade's probe line", lambda: len(_probe_lines(stack)) >= 2 or None, 60)
        assert _probe_lines(stack) == [expected] * 2
        assert _leaks(stack, values) == []

        # 3. the JobManager pod deleted -> redeployed from the newest checkpoint; the values again
        moment = time.time()
        pod = stack.pods(NAME, "jobmanager")[0]["metadata"]["name"]
        stack.admin.delete(f"/api/v1/namespaces/{JOBS_NS}/pods/{pod}").raise_for_status()
        wait_for("the recovery's probe line", lambda: len(_probe_lines(stack)) >= 3 or None, 240)
        stack.wait_stable(NAME)
        measured("secrets: JobManager pod deleted -> STABLE", time.time() - moment)
        assert set(_probe_lines(stack)) == {expected}
        assert _leaks(stack, values) == []

        # 4. delete -> nothing left, and nothing held the values
        deleted(stack, NAME, "secrets")
        assert _leaks(stack, values) == []
    finally:
        stack.admin.delete(f"/apis/flink.apache.org/v1beta1/namespaces/{JOBS_NS}/flinkdeployments/{NAME}")
        stack.admin.delete(f"/api/v1/namespaces/{JOBS_NS}/secrets/{SECRET}")
    measured("secrets: the whole life", time.time() - began)
