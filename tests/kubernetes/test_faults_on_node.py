"""Faults on the real node as a user meets them: an image the node does not have, pods that ask for more CPU than
the node has, a JobManager whose JVM will not start (Flink cannot report these), and S3 that the pods cannot
write their checkpoints to (Flink reports it, as a job failing over). For the first three, the
operator of the session's stack (tests/support/nodestack.py) reads the cause from the pods and records, on the
first pass that sees it, ``status.error`` naming the pod and the cause, the matching ``errorReason``, a Warning
event with that reason on the FlinkDeployment and ``Degraded=True``; it redeploys nothing for it (the JobManager
Deployment keeps the generation it was applied with and no second job id is started). The CLI's ``apply --wait``
ends with exit 1 and the cause, not a traceback.

For S3, the job runs and every checkpoint fails: the operator records the failover's cause as ``status.error``
(``JobRestarting``) with a Warning event and Degraded=True, leaves Flink's restart strategy at work (same pods,
same job id, nothing redeployed) and, once S3 takes the checkpoints, says ``FaultCleared`` and clears the error.

No Flink job has to run for the pod faults: the pods never get that far. The times (apply -> fault reported) are
printed with ``-s``, never asserted; waits are for conditions, never fixed sleeps.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from flinkops.runtimes.kubernetes.names import GENERATION_ANNOTATION
from support.flinknode import verifier_deployment
from support.kube import KubeCluster
from support.kubeconfigs import run_cli
from support.nodestack import BUCKET, JOBS_NS, Stack, deleted, measured, say, wait_for

pytestmark = pytest.mark.integration


def _deployment(stack: Stack, name: str) -> dict[str, Any]:
    doc = verifier_deployment(name, s3=stack.s3, bucket=BUCKET, host_dir=stack.host_dir)
    doc["metadata"]["namespace"] = JOBS_NS
    return doc


def _faulted(stack: Stack, name: str, reason: str, timeout: float = 90.0) -> dict[str, Any]:
    """Until the status reports ``reason``; the status then, with the time since apply recorded."""

    def reported() -> dict[str, Any] | None:
        status = stack.status(name)
        return status if status.get("errorReason") == reason else None

    try:
        status = wait_for(f"{name}: {reason} in status", reported, timeout, 0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.diagnose(name)}") from None
    measured(f"{name}: apply -> {reason} reported", time.time() - stack.applied_at[name])
    return status


def _reported_as_a_user_sees_it(stack: Stack, name: str, reason: str, *cause: str) -> dict[str, Any]:
    """``status.error`` with the cause, Degraded=True with the reason, and one Warning event with it."""
    status = _faulted(stack, name, reason)
    error = status.get("error") or ""
    for part in cause:
        assert part in error, error
    degraded = next(c for c in status.get("conditions") or [] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", reason), degraded
    events = stack.admin.get(
        f"/api/v1/namespaces/{JOBS_NS}/events",
        params={"fieldSelector": f"involvedObject.name={name},involvedObject.kind=FlinkDeployment"},
    ).json()["items"]
    warned = [e for e in events if e.get("type") == "Warning" and e.get("reason") == reason]
    assert len(warned) == 1 and warned[0]["message"] == error, [(e["reason"], e["message"]) for e in events]
    say(f"{name}: {error}")
    return status


def _nothing_redeployed(stack: Stack, name: str, status: dict[str, Any]) -> None:
    """One deploy only: the JobManager Deployment is the one of generation 1, one run in the history."""
    history = status.get("deploymentHistory") or []
    assert len(history) == 1, history
    deployment = stack.admin.get(f"/apis/apps/v1/namespaces/{JOBS_NS}/deployments/{name}").json()
    assert deployment["metadata"]["annotations"][GENERATION_ANNOTATION] == "1"


def test_an_image_the_node_does_not_have(stack: Stack) -> None:
    doc = _deployment(stack, "fault-image")
    doc["spec"]["image"] = "flink:0.0-not-built"
    stack.apply(doc)
    status = _reported_as_a_user_sees_it(
        stack, "fault-image", "ImageUnavailable", "image flink:0.0-not-built is not on the node (ErrImageNeverPull"
    )
    # The error, its event and Degraded come on the pass that sees the pod; the JobManager's ERROR (and with it
    # the FAILED lifecycle) may land on the status write after it.
    status = wait_for(
        "fault-image FAILED with its JobManager in ERROR",
        lambda: (
            (s := stack.status("fault-image")).get("lifecycleState") == "FAILED"
            and s.get("jobManagerDeploymentStatus") == "ERROR"
            and s
        ),
        30,
        0.2,
    )
    _nothing_redeployed(stack, "fault-image", status)
    deleted(stack, "fault-image", "image missing")


def test_pods_that_ask_for_more_cpu_than_the_node_has(stack: Stack) -> None:
    doc = _deployment(stack, "fault-cpu")
    for part in ("jobManager", "taskManager"):  # no pod runs (a TaskManager without its JobManager is slow to stop)
        doc["spec"][part]["resource"]["cpu"] = 64
    stack.apply(doc)
    status = _reported_as_a_user_sees_it(stack, "fault-cpu", "Unschedulable", "cannot be scheduled", "Insufficient cpu")
    assert "spec.jobManager.resource.cpu" in status["error"]
    _nothing_redeployed(stack, "fault-cpu", status)
    deleted(stack, "fault-cpu", "unschedulable")


def test_a_jobmanager_whose_jvm_will_not_start_is_reported_not_redeployed(
    stack: Stack, kube: KubeCluster, tmp_path: Path
) -> None:
    """An application cluster without HA: the JobManager's start-once guard holds the restarted container, so the
    operator sees the JobManager lost; it must say why instead of redeploying into the same crash."""
    doc = _deployment(stack, "fault-crash")
    # Every Flink JVM of the cluster gets it (``env.java.opts.all``); an unknown -XX option would not do, Flink's
    # scripts add -XX:+IgnoreUnrecognizedVMOptions. An agent that does not exist stops the JVM before main().
    doc["spec"]["flinkConfiguration"]["env.java.opts.all"] = "-javaagent:/opt/flink/flinkops-no-such-agent.jar"
    manifest = tmp_path / "fault-crash.yaml"
    manifest.write_text(yaml.safe_dump(copy.deepcopy(doc)))
    stack.applied_at["fault-crash"] = time.time()
    done = run_cli(
        kube.kubeconfig,
        tmp_path / "home",
        "apply",
        "-f",
        str(manifest),
        "--wait",
        "--timeout",
        "150",
        context="flinkops-dev",
        timeout=180,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "Traceback" not in said and "flinkops-no-such-agent.jar" in said.replace("\n", ""), said
    status = _reported_as_a_user_sees_it(
        stack, "fault-crash", "CrashLoop", "the Flink container exited with code", "flinkops-no-such-agent.jar"
    )
    assert status["lifecycleState"] == "FAILED"
    _nothing_redeployed(stack, "fault-crash", status)
    reasons = [
        e["reason"]
        for e in stack.admin.get(
            f"/api/v1/namespaces/{JOBS_NS}/events", params={"fieldSelector": "involvedObject.name=fault-crash"}
        ).json()["items"]
    ]
    assert "RecoverDeployment" not in reasons, reasons
    deleted(stack, "fault-crash", "crash")


def test_s3_the_pods_cannot_write_checkpoints_to_is_reported_and_the_job_left_to_flink(stack: Stack) -> None:
    """Checkpoints on a bucket that does not exist (the pods' S3 refuses every write): reported with the cause on
    the first pass that sees the job fail over; then the bucket is created (S3 fixed) and the same job, never
    redeployed, completes a checkpoint -> STABLE, the error cleared with a ``FaultCleared`` event."""
    name, bucket = "fault-s3", "fault-s3-not-created"
    # Flink's restarts 2 s apart (its default backs off up to a minute): the fixed bucket is used at once.
    restarts = {
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "2147483647",
        "restart-strategy.fixed-delay.delay": "2 s",
    }
    doc = verifier_deployment(name, s3=stack.s3, bucket=bucket, host_dir=stack.host_dir, extra=restarts)
    doc["metadata"]["namespace"] = JOBS_NS
    stack.apply(doc)
    status = _faulted(stack, name, "JobRestarting", timeout=240)
    error = status["error"]
    # Flink's exception says only that checkpoints fail; the cause is what the operator finds in the storage.
    assert "failing over" in error and f"S3 bucket '{bucket}'" in error and "does not exist" in error, error
    degraded = next(c for c in status.get("conditions") or [] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "JobRestarting"), degraded
    events = _events(stack, name)
    warned = [e for e in events if e.get("type") == "Warning" and e.get("reason") == "JobRestarting"]
    assert warned and f"S3 bucket '{bucket}'" in warned[-1]["message"], [(e["reason"], e["message"]) for e in events]
    say(f"{name}: {warned[-1]['message']}")
    job_id = status["jobStatus"]["jobId"]
    (pod,) = stack.pods(name, "jobmanager")

    moment = time.time()
    stack.s3.create_bucket(bucket)
    stack.wait_stable(name, timeout=120)
    measured(f"{name}: bucket created -> STABLE, fault cleared", time.time() - moment)
    status = stack.status(name)
    assert status.get("error") is None and status.get("errorReason") is None, status
    degraded = next(c for c in status.get("conditions") or [] if c["type"] == "Degraded")
    assert degraded["status"] == "False", degraded
    cleared = [e for e in _events(stack, name) if e.get("reason") == "FaultCleared"]
    assert [e.get("type") for e in cleared] == ["Normal"], cleared
    # Left to Flink: the same JobManager pod and job, the cluster of generation 1, no recovery by the operator.
    assert status["jobStatus"]["jobId"] == job_id
    assert [p["metadata"]["uid"] for p in stack.pods(name, "jobmanager")] == [pod["metadata"]["uid"]]
    _nothing_redeployed(stack, name, status)
    assert "RecoverDeployment" not in [e.get("reason") for e in _events(stack, name)]
    assert any("/chk-" in k for k in stack.s3.objects(bucket, f"{name}/checkpoints/{job_id}/")), "no checkpoint"
    deleted(stack, name, "S3 refused")


def _events(stack: Stack, name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = stack.admin.get(
        f"/api/v1/namespaces/{JOBS_NS}/events",
        params={"fieldSelector": f"involvedObject.name={name},involvedObject.kind=FlinkDeployment"},
    ).json()["items"]
    return items
