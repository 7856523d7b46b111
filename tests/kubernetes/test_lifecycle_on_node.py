"""One stateful deployment through its whole life on the real node, proven record by record.

The session's stack (tests/support/nodestack.py: the operator as a process on the host, S3 on the bridge, the
verifier's output on a hostPath) drives one FlinkDeployment, ``life`` (standalone, no HA, savepoint upgrades,
rollback enabled), through the steps of issue 11's acceptance for a standalone cluster without HA (HA and native
mode are ``test_flink_on_node``'s). They are chained in one test so Flink starts as few times as the steps need
(six JobManager starts in all):

1. deploy v1 -> STABLE (the job RUNNING, a checkpoint completed on S3), records committed;
2. suspend -> the job stops with a savepoint, its pods go, every record up to the stop is committed once;
3. resume -> the job starts from that savepoint, its counts go on where they stopped;
4. savepoint upgrade v1 -> v2 with the operator SIGKILLed while the upgrade's stop-with-savepoint is in flight,
   then started again -> the upgrade completes from the savepoint, v2 takes over with nothing lost or duplicated
   and the keyed state carried, and becomes STABLE (the spec a rollback returns to);
5. the JobManager pod deleted (no HA) -> the operator redeploys the job from the newest checkpoint, STABLE again;
6. broken v3 (its counter throws after a few records; no restarts) -> the job FAILED, the operator rolls back
   to the last stable spec (v2) from the failed job's newest state -> ROLLED_BACK, v2 RUNNING again;
7. the TaskManager pod deleted -> Flink restarts the same job from its newest checkpoint on the replacement pod;
8. delete -> nothing left (pods, Services, ConfigMaps, Deployments); the state stays in S3.

After each step the verifier's committed output is checked (no record lost or duplicated, every key's count
continuing); the output of the stop is checked exactly at the suspend. Each step's time is printed to stderr
(``-s``) with the whole test's; figures are measured, never asserted.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from support.flinknode import trace_edges, verifier_deployment
from support.nodestack import (
    BUCKET,
    JOBS_NS,
    KEYS,
    Stack,
    checkpoints,
    deleted,
    measured,
    records_verified,
    say,
    v2_took_over,
    wait_for,
)
from support.verifier import check, read_committed

pytestmark = pytest.mark.integration

NAME = "life"
ROLLBACK = {
    "kubernetes.operator.deployment.rollback.enabled": "true",
    # The broken version fails within seconds and is rolled back on its failure; the timeout is the backstop.
    "kubernetes.operator.deployment.readiness.timeout": "3 min",
}
FAIL_AFTER = 100  # records each v3 counter subtask processes before it throws (~4 s at 50 records/s)


def _spec(stack: Stack, logic: str = "v1", *, state: str = "running") -> dict[str, Any]:
    doc = verifier_deployment(NAME, s3=stack.s3, bucket=BUCKET, host_dir=stack.host_dir, logic=logic, extra=ROLLBACK)
    job = doc["spec"]["job"]
    job["state"] = state
    if logic == "v3":
        job["args"] = [*job["args"], "--fail-after", str(FAIL_AFTER)]
    return doc


def test_suspend_resume_upgrade_through_an_operator_crash_rollback_and_taskmanager_loss(stack: Stack) -> None:
    began = time.time()
    out = stack.output(NAME)

    # 1. deploy -> STABLE
    generation = stack.apply(_spec(stack))["metadata"]["generation"]
    _running_generation(stack, generation, stack.applied_at[NAME], "deploy: apply -> job RUNNING")
    stack.wait_stable(NAME)
    measured("deploy: apply -> STABLE", time.time() - stack.applied_at[NAME])
    status = stack.status(NAME)
    assert status["jobStatus"]["state"] == "RUNNING", status
    assert status["jobManagerDeploymentStatus"] == "READY", status
    assert status["clusterInfo"]["rest-url"].endswith(":8081"), status
    # STABLE means a checkpoint completed: it is on S3, where the operator will look for it.
    assert any("/chk-" in key for key in stack.s3.objects(BUCKET, f"{NAME}/checkpoints/")), "deploy: no checkpoint"
    records_verified(stack, NAME, "v1 records committed", timeout=60)

    # 2. suspend
    moment = time.time()
    stack.apply(_spec(stack, state="suspended"))
    wait_for(f"{NAME} SUSPENDED", lambda: stack.status(NAME).get("lifecycleState") == "SUSPENDED", 120, 0.2)
    wait_for(f"{NAME}'s pods gone", lambda: not stack.pods(NAME), 120, 0.2)
    measured("suspend: apply -> SUSPENDED, pods gone", time.time() - moment)
    status = stack.status(NAME)
    assert status["jobManagerDeploymentStatus"] == "MISSING", status
    savepoint = status["jobStatus"]["upgradeSavepointPath"]
    assert savepoint.startswith(f"s3://{BUCKET}/{NAME}/savepoints/"), savepoint
    # Stopped with a savepoint: every sink subtask committed up to the stop, so the exact check applies.
    report = check(out, keys=KEYS)
    assert report.ok, report.summary()
    at_suspend = report.distinct

    # 3. resume
    moment = time.time()
    generation = stack.apply(_spec(stack))["metadata"]["generation"]
    run = _running_generation(stack, generation, moment, "resume: apply -> job RUNNING")
    assert run.get("restoredFrom") == savepoint, run
    records_verified(stack, NAME, "records after the resume", after=at_suspend)
    assert min(r.seq for r in read_committed(out) if r.seq >= at_suspend) == at_suspend, "resumed at the stop"

    # 4. savepoint upgrade v1 -> v2, the operator killed while the job is being stopped with a savepoint
    moment = time.time()
    generation = stack.apply(_spec(stack, "v2"))["metadata"]["generation"]
    caught = wait_for("the upgrade's stop-with-savepoint in flight", lambda: _stopping(stack, generation), 120, 0.05)
    stack.operator.kill()
    killed = time.time()
    say(f"operator SIGKILLed {killed - moment:.1f}s after the apply, mid-upgrade: {caught}")
    stack.operator.restart()
    wait_for("the restarted operator to lead", stack.operator.is_leader, 60)
    measured("operator crash: SIGKILL -> restarted operator leads", time.time() - killed)
    run = _running_generation(stack, generation, moment, "upgrade across an operator crash: apply -> job RUNNING")
    assert run.get("restoredFrom", "").startswith(f"s3://{BUCKET}/{NAME}/savepoints/"), run
    assert run.get("restoredFrom") != savepoint, "restored from the upgrade's own savepoint, not the suspend's"
    stack.wait_stable(NAME)
    measured("upgrade across an operator crash: apply -> STABLE", time.time() - moment)
    v2_took_over(stack, NAME, moment, "upgrade across an operator crash: downtime (last v1 -> first v2 record)")
    assert _one_job(stack) == run["jobId"], "the old job stopped; only the new one runs"

    # 5. the JobManager pod deleted without HA -> redeployed from the newest checkpoint
    _jobmanager_pod_deleted_is_redeployed_from_the_newest_checkpoint(stack)

    # 6. broken v3 -> rollback to v2
    moment = time.time()
    v2_spec = stack.status(NAME)["reconciliationStatus"]["lastStableSpec"]
    generation = stack.apply(_spec(stack, "v3"))["metadata"]["generation"]
    rolled = wait_for("the rollback to v2 RUNNING", lambda: _rolled_back(stack, generation), 300, 0.3)
    measured("broken v3: apply -> rolled back, v2 job RUNNING", time.time() - moment)
    recon = stack.status(NAME)["reconciliationStatus"]
    assert recon["lastReconciledSpec"] == recon["lastStableSpec"] == v2_spec, "the last stable spec (v2) runs"
    assert rolled.get("restoredFrom", "").startswith(f"s3://{BUCKET}/{NAME}/"), rolled
    messages = _events(stack)
    assert any(m.startswith("Rollback: ") for m in messages), messages
    assert any("deliberate v3 failure" in m for m in messages), f"the cause of the rollback is told: {messages}"
    count = len(read_committed(out))
    records_verified(stack, NAME, "records after the rollback", after=count)
    logic = [r.logic for r in check(out, keys=KEYS, live=True).logic_runs]
    assert logic[:2] == ["v1", "v2"] and logic[-1] == "v2" and set(logic) <= {"v1", "v2", "v3"}, logic

    # 7. the TaskManager pod deleted
    job_id = _one_job(stack)
    pods = stack.pods(NAME, "taskmanager")
    assert pods, "no TaskManager pod"
    moment = time.time()
    for pod in pods:
        stack.admin.delete(
            f"/api/v1/namespaces/{JOBS_NS}/pods/{pod['metadata']['name']}", params={"gracePeriodSeconds": "0"}
        ).raise_for_status()
    restored = wait_for("the job restored from a checkpoint", lambda: _restored_since(stack, job_id, moment), 180, 0.3)
    wait_for("every task RUNNING again", lambda: _all_tasks_running(stack, job_id), 120, 0.3)
    measured("TaskManager pod deleted -> same job RUNNING again (all tasks)", time.time() - moment)
    assert not restored.get("is_savepoint"), restored
    assert f"/{NAME}/checkpoints/{job_id}/chk-" in restored.get("external_path", ""), restored
    assert {p["metadata"]["name"] for p in stack.pods(NAME, "taskmanager")}.isdisjoint(
        p["metadata"]["name"] for p in pods
    ), "a replacement pod runs the tasks"
    count = len(read_committed(out))
    records_verified(stack, NAME, "records after the TaskManager loss", after=count)
    measured("TaskManager pod deleted: output gap (last record -> first after restart)", _output_gap(stack, moment))
    assert stack.status(NAME)["jobStatus"]["jobId"] == job_id

    # 8. delete
    deleted(stack, NAME, "lifecycle")
    report = check(out, keys=KEYS, live=True)
    assert report.ok, report.summary()
    # The state stays in storage after the delete.
    assert any("/chk-" in k for k in stack.s3.objects(BUCKET, f"{NAME}/checkpoints/")), "checkpoints deleted"
    measured("lifecycle: the whole test", time.time() - began)


def _jobmanager_pod_deleted_is_redeployed_from_the_newest_checkpoint(stack: Stack) -> None:
    """No HA: the JobManager pod deleted -> the operator sees the job gone and redeploys it from the newest
    checkpoint of the job that ran (a new job id, restored from a ``chk-``), records verified after it."""
    (pod,) = stack.pods(NAME, "jobmanager")
    before = stack.status(NAME)["deploymentHistory"][-1]
    wait_for("a checkpoint of the running job", lambda: checkpoints(stack, NAME, before["jobId"]), 60, 0.5)
    moment = time.time()
    stack.admin.delete(
        f"/api/v1/namespaces/{JOBS_NS}/pods/{pod['metadata']['name']}", params={"gracePeriodSeconds": "0"}
    ).raise_for_status()

    def recovered() -> dict[str, Any] | None:
        history = _history(stack)
        return history[-1] if history and history[-1].get("jobId") != before["jobId"] else None

    run = wait_for("no HA: a redeploy from the newest checkpoint after the JobManager pod's loss", recovered, 120, 0.3)
    assert f"/{NAME}/checkpoints/{before['jobId']}/chk-" in run.get("restoredFrom", ""), run
    job_id = wait_for("the redeployed job RUNNING", lambda: _running_job_id(stack), 180, 0.2)
    measured("no HA: JobManager pod deleted -> job RUNNING again", time.time() - moment)
    assert job_id == run["jobId"], (job_id, run)
    stack.wait_stable(NAME)
    count = len(read_committed(stack.output(NAME)))
    records_verified(stack, NAME, "records after the JobManager's loss", after=count)


def _running_job_id(stack: Stack) -> str | None:
    jobs = _running_jobs(stack)
    return str(jobs[0]["jid"]) if len(jobs) == 1 else None


# ------------------------------------------------------------------------------------------------ probes


def _history(stack: Stack) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = stack.status(NAME).get("deploymentHistory") or []
    return history


def _running_jobs(stack: Stack) -> list[dict[str, Any]]:
    if not stack.pods(NAME, "jobmanager"):
        return []
    rest = stack.rest(NAME)
    try:
        return rest.running()
    finally:
        rest.close()


def _running_generation(stack: Stack, generation: int, since: float, label: str) -> dict[str, Any]:
    """The run of ``generation`` once Flink runs its job (the job id status recorded); records ``label``."""

    def running() -> dict[str, Any] | None:
        history = _history(stack)
        if not history or history[-1].get("generation") != generation:
            return None
        stack.no_crash_loop(NAME)
        jobs = {j["jid"] for j in _running_jobs(stack)}
        return history[-1] if history[-1].get("jobId") in jobs else None

    try:
        run = wait_for(f"{NAME} generation {generation} RUNNING", running, 240, 0.3)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_reachable(stack)}\n{stack.diagnose(NAME)}") from None
    measured(label, time.time() - since)
    return run


def _reachable(stack: Stack) -> str:
    """How the JobManager's REST API answers from here, at its Service's ClusterIP and at its pod's IP."""
    service = stack.admin.get(f"/api/v1/namespaces/{JOBS_NS}/services/{NAME}-rest").json()
    addresses = [("ClusterIP", (service.get("spec") or {}).get("clusterIP"))]
    addresses += [("pod", p["status"].get("podIP")) for p in stack.pods(NAME, "jobmanager")]
    seen = []
    for what, address in addresses:
        try:
            response = httpx.get(f"http://{address}:8081/jobs/overview", timeout=3, trust_env=False)
            seen.append(f"{what} {address}: {response.status_code} {response.text[:200]}")
        except httpx.HTTPError as exc:
            seen.append(f"{what} {address}: {type(exc).__name__} {exc}")
    return "REST from the host: " + "; ".join(seen)


def _stopping(stack: Stack, generation: int) -> str | None:
    """What the operator is doing when an upgrade to ``generation`` has begun to stop the old job: the savepoint
    trigger it wrote ahead of the stop, or (when that pass was missed) the later step it has reached."""
    status = stack.status(NAME)
    recon = status.get("reconciliationStatus") or {}
    if status.get("observedGeneration") != generation or recon.get("state") != "UPGRADING":
        return None
    info = (status.get("jobStatus") or {}).get("savepointInfo") or {}
    if info.get("triggerType") == "UPGRADE" and info.get("triggerId"):
        return f"stop-with-savepoint {info['triggerId']} in flight"
    history = status.get("deploymentHistory") or []
    if history and history[-1].get("generation") == generation:
        return "the new cluster deployed"
    if history and history[-1].get("stoppedFor"):
        return "the old job stopped"
    return None


def _rolled_back(stack: Stack, generation: int) -> dict[str, Any] | None:
    """The rollback's run once the operator says ROLLED_BACK and Flink runs that run's job."""
    status = stack.status(NAME)
    if status.get("lifecycleState") != "ROLLED_BACK" or (status.get("observedGeneration") or 0) < generation:
        return None
    history = status.get("deploymentHistory") or []
    if not history or history[-1].get("reason") != "rollback":
        return None
    return history[-1] if history[-1].get("jobId") in {j["jid"] for j in _running_jobs(stack)} else None


def _one_job(stack: Stack) -> str:
    rest = stack.rest(NAME)
    try:
        jobs = wait_for(f"{NAME}'s job", rest.jobs, 30, 0.3)
    finally:
        rest.close()
    assert [j["state"] for j in jobs] == ["RUNNING"], jobs
    jid: str = jobs[0]["jid"]
    return jid


def _restored_since(stack: Stack, job_id: str, moment: float) -> dict[str, Any] | None:
    """Flink's record of the job's latest restore, once that restore happened after ``moment``."""
    rest = stack.rest(NAME)
    try:
        response = rest.client.get(f"/jobs/{job_id}/checkpoints")
    finally:
        rest.close()
    if response.status_code != 200:
        return None
    restored: dict[str, Any] = ((response.json().get("latest") or {}).get("restored")) or {}
    return restored if restored.get("restore_timestamp", 0) > moment * 1000 else None


def _all_tasks_running(stack: Stack, job_id: str) -> bool:
    rest = stack.rest(NAME)
    try:
        return rest.all_tasks_running() and [j["jid"] for j in rest.running()] == [job_id]
    finally:
        rest.close()


def _output_gap(stack: Stack, moment: float) -> float:
    """Seconds from the last record processed by a task started before ``moment`` to the first processed by a
    task started after it (the verifier's trace)."""
    last, first = trace_edges(stack.trace(NAME), moment)
    assert last is not None and first is not None, (last, first)
    return first - last


def _events(stack: Stack) -> list[str]:
    items = stack.admin.get(
        f"/api/v1/namespaces/{JOBS_NS}/events", params={"fieldSelector": f"involvedObject.name={NAME}"}
    ).json()["items"]
    return [f"{e.get('reason')}: {e.get('message')}" for e in items]
