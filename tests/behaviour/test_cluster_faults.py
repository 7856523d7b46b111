"""Faults Flink cannot report, as a Kubernetes runtime reads them from the pods (an image the node does not have,
a pod no node can take, a JobManager that keeps crashing, a container that cannot be created), and S3 that the
pods cannot reach: the first pass that sees one records the cause in ``status.error``, a Warning event named
after the fault and Degraded=True; nothing is redeployed, restarted or cancelled for it; the error goes once the
fault does. The runtime's reading of real pod status is tested in ``tests/unit/test_kube_faults.py`` and on the
node in ``tests/kubernetes/test_faults_on_node.py``."""

from __future__ import annotations

from dataclasses import replace

import pytest

from behaviour.steps import deploy, running_stable, settled
from fakes.flink import JobScript
from fakes.specs import application
from fakes.world import World
from flinkops.api.models import JobManagerDeploymentStatus
from flinkops.errors import ClusterFault, ErrorReason
from flinkops.s3 import S3Problem

E = ErrorReason
JM_FAULTS = [
    ClusterFault(
        E.IMAGE_UNAVAILABLE,
        "jobmanager",
        "JobManager pod app-7d9-x: image flink:9.9 is not on the node (ErrImageNeverPull; its imagePullPolicy is "
        "Never): build or load it on the node, or fix spec.image",
    ),
    ClusterFault(
        E.UNSCHEDULABLE,
        "jobmanager",
        "JobManager pod app-7d9-x cannot be scheduled: 0/1 nodes are available: 1 Insufficient cpu. Lower "
        "spec.jobManager.resource.cpu or .memory, relax its node selector or tolerations, or add room on the nodes",
    ),
    ClusterFault(
        E.CRASH_LOOP,
        "jobmanager",
        "JobManager pod app-7d9-x: the Flink container exited with code 1 (Error) and restarted 2 time(s); its "
        "last words: Unrecognized VM option 'NoSuchOption'",
    ),
    ClusterFault(
        E.POD_CONFIG_ERROR,
        "jobmanager",
        "JobManager pod app-7d9-x: container flink-main-container cannot be created (CreateContainerConfigError: "
        'secret "s3-keys" not found): create what it names (a Secret, a ConfigMap) or fix the pod template',
    ),
]
TM_UNSCHEDULABLE = ClusterFault(
    E.UNSCHEDULABLE,
    "taskmanager",
    "TaskManager pod app-tm-5c-y cannot be scheduled: 0/1 nodes are available: 1 Insufficient memory. Lower "
    "spec.taskManager.resource.cpu or .memory, relax its node selector or tolerations, or add room on the nodes",
)
S3_DOWN = (
    "org.apache.flink.util.FlinkRuntimeException: Failed to create checkpoint storage at checkpoint coordinator "
    "side.\nCaused by: java.net.UnknownHostException: minio.s3.svc: Name or service not known"
)


def degraded(world: World, name: str) -> tuple[str, str, str]:
    condition = next(c for c in world.deployment_status(name).conditions if c.type == "Degraded")
    return condition.status, condition.reason, condition.message


def warnings(world: World, name: str, reason: str) -> int:
    """How many times a Warning event with ``reason`` was recorded (a repeated event bumps its count)."""
    return sum(e.count for e in world.events(name) if e.type == "Warning" and e.reason == reason)


@pytest.mark.parametrize("fault", JM_FAULTS, ids=[f.reason.value for f in JM_FAULTS])
def test_a_jobmanager_pod_fault_is_reported_in_one_pass_and_nothing_is_redeployed(
    world: World, fault: ClusterFault
) -> None:
    world.apply(application("app"))
    world.reconcile("app")  # the first deployment
    world.runtime.fault_pods("app", fault)
    world.reconcile("app")  # one pass sees it
    status = world.deployment_status("app")
    assert (status.error, status.error_reason) == (fault.message, fault.reason)
    assert degraded(world, "app") == ("True", fault.reason.value, fault.message)
    assert warnings(world, "app", fault.reason.value) == 1
    assert status.job_manager_deployment_status == JobManagerDeploymentStatus.ERROR
    assert world.lifecycle("app") == "FAILED"

    world.run_for(300)
    assert warnings(world, "app", fault.reason.value) == 1, "told once, not every pass"
    assert len(world.runtime.requests) == 1 and world.runtime.deleted == [], "nothing redeployed or deleted"

    world.runtime.fault_pods("app", None)  # the image was loaded, a node was added, the Secret created...
    world.run_until(running_stable("app"), what="STABLE once the pods are fine")
    status = world.deployment_status("app")
    assert status.error is None and degraded(world, "app")[0] == "False"
    assert "FaultCleared" in world.reasons("app")
    assert len(world.runtime.requests) == 1, "the cluster deployed first is the one that runs"


def test_a_taskmanager_that_cannot_be_scheduled_next_to_a_running_job_leaves_the_job_alone(world: World) -> None:
    deploy(world, application("app"))
    [job] = world.runs("app")
    cluster = world.runtime.cluster("app")
    assert cluster is not None
    world.runtime.fault_pods("app", TM_UNSCHEDULABLE)
    world.reconcile("app")
    status = world.deployment_status("app")
    assert (status.error, status.error_reason) == (TM_UNSCHEDULABLE.message, E.UNSCHEDULABLE)
    assert degraded(world, "app") == ("True", "Unschedulable", TM_UNSCHEDULABLE.message)
    assert warnings(world, "app", "Unschedulable") == 1
    assert status.job_manager_deployment_status == JobManagerDeploymentStatus.READY, "the JobManager is fine"

    world.run_for(120)
    assert job.state == "RUNNING" and job.restarts == 0 and world.runs("app") == [job], "the job was not touched"
    assert world.runtime.requests == [cluster.request] and world.runtime.deleted == []
    assert world.deployment_status("app").error == TM_UNSCHEDULABLE.message, "still reported while it lasts"
    assert world.job_state("app") == "RUNNING"

    world.runtime.fault_pods("app", None)
    world.run_until(lambda w: w.deployment_status("app").error is None, what="the fault cleared")
    assert degraded(world, "app")[0] == "False" and world.lifecycle("app") == "STABLE"


def test_a_jobmanager_without_ha_that_crashes_before_its_job_runs_is_not_redeployed_into_the_same_crash(
    world: World,
) -> None:
    crash = JM_FAULTS[2]
    world.apply(application("app", conf={"env.java.opts.jobmanager": "-XX:NoSuchOption"}))
    world.reconcile("app")
    world.runtime.fault_pods("app", crash, lost=True)  # the start-once JobManager exited and now waits
    world.reconcile("app")
    status = world.deployment_status("app")
    assert (status.error, status.error_reason) == (crash.message, E.CRASH_LOOP)
    assert degraded(world, "app") == ("True", "CrashLoop", crash.message) and world.lifecycle("app") == "FAILED"

    world.run_for(300)
    assert len(world.runtime.requests) == 1, "no redeploy loop"
    assert "RecoverDeployment" not in world.reasons("app") and warnings(world, "app", "CrashLoop") == 1

    world.edit("app", conf={"env.java.opts.jobmanager": None})  # the fix
    world.run_until(running_stable("app", 2), what="the fixed spec STABLE")
    assert len(world.runtime.requests) == 2 and world.deployment_status("app").error is None


def test_a_jobmanager_that_crashes_after_its_job_ran_is_still_recovered_from_its_newest_checkpoint(
    world: World,
) -> None:
    deploy(world, application("app"))
    world.run_for(5)
    world.runtime.kill_jobmanager("app")
    world.runtime.fault_pods("app", JM_FAULTS[2], lost=True)
    world.run_until(lambda w: len(w.runs("app")) == 2 and w.job_state("app") == "RUNNING", what="recovered")
    old, new = world.runs("app")
    assert new.restored_from is not None and f"/{old.job_id}/chk-" in new.restored_from
    assert "RecoverDeployment" in world.reasons("app")
    world.run_until(running_stable("app"))
    assert world.deployment_status("app").error is None


def test_s3_unreachable_when_the_job_starts_fails_it_with_the_cause(world: World) -> None:
    world.flink.script("s3-down", JobScript(fail_after=0, failure=S3_DOWN))
    world.apply(application("app", args=("s3-down",)))
    world.run_until(settled("app", "FAILED"), what="FAILED")
    status = world.deployment_status("app")
    assert status.error == S3_DOWN and status.error_reason == E.JOB_FAILED
    assert degraded(world, "app") == ("True", "JobFailed", S3_DOWN.splitlines()[0])
    [event] = [e for e in world.events("app") if e.type == "Warning" and e.reason == "Error"]
    assert "UnknownHostException: minio.s3.svc" in event.message, "the innermost cause, not the wrapper"


def test_checkpoints_failing_on_unreachable_s3_report_the_cause_and_leave_the_job_to_flink() -> None:
    world = World(restart_delay=0.0)
    world.flink.script("ckpt-down", JobScript(fail_after=2, crash_loop=True, failure=S3_DOWN))
    world.apply(application("app", args=("ckpt-down",)))
    world.run_until(lambda w: w.deployment_status("app").error_reason == E.JOB_RESTARTING, what="JobRestarting")
    status = world.deployment_status("app")
    assert status.error is not None and "UnknownHostException: minio.s3.svc" in status.error
    assert degraded(world, "app")[:2] == ("True", "JobRestarting")
    [event] = [e for e in world.events("app") if e.reason == "JobRestarting"]
    assert event.type == "Warning" and "UnknownHostException" in event.message
    world.run_for(60)
    [job] = world.runs("app")
    assert not job.terminal and job.restarts >= 1, "Flink's restart strategy is left at work"
    assert len(world.runtime.requests) == 1 and world.runtime.deleted == [], "nothing redeployed or cancelled"

    job.script = replace(job.script, fail_after=None, crash_loop=False)  # S3 reachable again
    world.run_until(running_stable("app"), what="STABLE once checkpoints complete")
    status = world.deployment_status("app")
    assert status.error is None and degraded(world, "app")[0] == "False"
    [cleared] = [e for e in world.events("app") if e.reason == "FaultCleared"]
    assert cleared.type == "Normal" and "UnknownHostException" in cleared.message
    assert world.runs("app") == [job] and len(world.runtime.requests) == 1, "the same job, never redeployed"


CKPT_THRESHOLD = (
    "org.apache.flink.util.FlinkRuntimeException: Exceeded checkpoint tolerable failure threshold. The latest "
    "checkpoint failed due to Failure to finalize checkpoint., view the Checkpoint History tab or the Job Manager "
    "log to find out why continuous checkpoints failed.\n\tat org.apache.flink.runtime.checkpoint.Foo.bar(Foo.java:1)"
)


def test_checkpoints_failing_with_no_cause_from_flink_are_told_with_what_the_operator_finds_in_storage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Flink's exception for failing checkpoints names no cause (it is in the JobManager's log); the operator
    reads the same storage and tells what it finds there (here a bucket that does not exist)."""
    world = World(restart_delay=0.0)
    world.flink.script("ckpt-refused", JobScript(fail_after=2, crash_loop=True, failure=CKPT_THRESHOLD))
    world.apply(application("app", args=("ckpt-refused",)))
    world.reconcile("app")  # deployed while the storage answers
    missing = S3Problem("S3 bucket 'gone' of 's3://gone/cp' does not exist (NoSuchBucket); create it first")

    def refused(checkpoint_dir: str, job_id: str) -> str | None:
        raise missing

    monkeypatch.setattr(world.snapshots, "latest_checkpoint", refused)
    world.run_until(lambda w: w.deployment_status("app").error_reason == E.JOB_RESTARTING, what="JobRestarting")
    status = world.deployment_status("app")
    assert status.error is not None and "Exceeded checkpoint tolerable failure threshold" in status.error
    assert "bucket 'gone'" in status.error and "NoSuchBucket" in status.error
    [event] = [e for e in world.events("app") if e.reason == "JobRestarting"]
    assert event.type == "Warning" and "NoSuchBucket" in event.message, "the cause, not Flink's wrapper"
    assert len(world.runtime.requests) == 1 and world.runtime.deleted == [], "nothing redeployed or cancelled"
