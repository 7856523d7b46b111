"""Reading what keeps a Flink cluster's pods from running, from pod status as the kubelet and the scheduler
write it (shapes taken from pods on the dev node): the cause, the pod and what to change, in one message a user
reads in ``status.error``; the JobManager's fault before a TaskManager's; nothing for pods that are only
starting, gated on purpose, or going away."""

from __future__ import annotations

from typing import Any

from flinkops.errors import ErrorReason
from flinkops.runtimes.kubernetes.faults import cluster_fault, pod_fault, pod_signature
from flinkops.runtimes.kubernetes.pods import START_GATE

MAIN = "flink-main-container"


def pod(
    name: str = "app-6f7c9d-abcde",
    component: str = "jobmanager",
    *,
    waiting: dict[str, str] | None = None,
    terminated: dict[str, Any] | None = None,
    restarts: int = 0,
    ready: bool = False,
    conditions: list[dict[str, str]] | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": conditions or [{"type": "PodScheduled", "status": "True"}]}
    if waiting is not None or terminated is not None or restarts:
        state = {"waiting": waiting} if waiting is not None else {"running": {"startedAt": "2026-12-04T03:00:00Z"}}
        status["containerStatuses"] = [
            {
                "name": MAIN,
                "image": "docker.io/library/flink:9.9",
                "state": state,
                "lastState": {"terminated": terminated} if terminated else {},
                "restartCount": restarts,
                "ready": ready,
            }
        ]
    meta: dict[str, Any] = {"name": name, "labels": {"app": "app", "component": component}}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-04T03:00:00Z"
    return {"metadata": meta, "spec": {"containers": [{"name": MAIN, "image": "flink:9.9"}]}, "status": status}


def test_an_image_that_is_not_on_the_node() -> None:
    never = {"reason": "ErrImageNeverPull", "message": 'Container image "flink:9.9" is not present with pull policy'}
    fault = pod_fault(pod(waiting=never))
    assert fault is not None and fault.reason == ErrorReason.IMAGE_UNAVAILABLE and fault.component == "jobmanager"
    assert fault.message == (
        "JobManager pod app-6f7c9d-abcde: image flink:9.9 is not on the node (ErrImageNeverPull; its "
        "imagePullPolicy is Never): build or load it on the node, or fix spec.image"
    )
    backoff = pod_fault(pod(waiting={"reason": "ImagePullBackOff", "message": "Back-off pulling image"}))
    assert backoff is not None and backoff.reason == ErrorReason.IMAGE_UNAVAILABLE
    assert "image flink:9.9 cannot be pulled (ImagePullBackOff: Back-off pulling image)" in backoff.message


def test_a_pod_no_node_can_take() -> None:
    refused = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available.",
    }
    fault = pod_fault(pod("app-taskmanager-1-x", "taskmanager", conditions=[refused]))
    assert fault is not None and fault.reason == ErrorReason.UNSCHEDULABLE and fault.component == "taskmanager"
    assert fault.message.startswith("TaskManager pod app-taskmanager-1-x cannot be scheduled: 0/1 nodes are ")
    assert "1 Insufficient cpu." in fault.message and "spec.taskManager.resource.cpu" in fault.message
    gated = {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated", "message": "gated"}
    assert pod_fault(pod(conditions=[gated])) is None, "a JobManager held back on purpose is no fault"


def test_a_container_that_keeps_crashing_says_its_exit_code_and_last_words() -> None:
    log = (
        "Starting standalonesession as a console application on host app-6f7c9d-abcde.\n"
        "Unrecognized VM option 'NoSuchOption'\n"
        "Error: Could not create the Java Virtual Machine.\n"
        "Error: A fatal exception has occurred. Program will exit.\n"
    )
    last = {"exitCode": 1, "reason": "Error", "message": log}
    fault = pod_fault(
        pod(waiting={"reason": "CrashLoopBackOff", "message": "back-off 20s"}, terminated=last, restarts=2)
    )
    assert fault is not None and fault.reason == ErrorReason.CRASH_LOOP
    assert fault.message.startswith(
        "JobManager pod app-6f7c9d-abcde: the Flink container exited with code 1 (Error) and restarted 2 time(s); "
        "its last words: Unrecognized VM option 'NoSuchOption' | Error: Could not create the Java Virtual Machine. "
        "| Error: A fatal exception has occurred. Program will exit."
    )
    nested = {"exitCode": 1, "reason": "Error", "message": "x\nCaused by: java.net.UnknownHostException: minio\nat y"}
    found = pod_fault(pod(waiting={"reason": "CrashLoopBackOff"}, terminated=nested, restarts=1))
    assert found is not None and "its last words: Caused by: java.net.UnknownHostException: minio" in found.message
    oom = pod_fault(pod(waiting={"reason": "CrashLoopBackOff"}, terminated={"exitCode": 137, "reason": "OOMKilled"}))
    assert oom is not None and "OOMKilled" in oom.message and "spec.jobManager.resource.memory" in oom.message


def test_a_start_once_jobmanager_that_crashed_waits_rather_than_crash_looping() -> None:
    """Without HA the restarted container waits (it must not start the job again): running, not ready, after a
    failed exit. Only such a JobManager reads as crashed that way; an HA JobManager restarting after a kill is
    just restarting."""
    waits = pod(terminated={"exitCode": 1, "reason": "Error", "message": "boom"}, restarts=1, ready=False)
    fault = pod_fault(waits, start_once=True)
    assert fault is not None and fault.reason == ErrorReason.CRASH_LOOP
    assert pod_fault(waits) is None
    killed = pod(terminated={"exitCode": 0, "reason": "Completed"}, restarts=1)
    assert pod_fault(killed, start_once=True) is None, "a clean exit is not a crash"


def test_a_container_that_cannot_be_created() -> None:
    missing = {"reason": "CreateContainerConfigError", "message": 'secret "s3-keys" not found'}
    fault = pod_fault(pod(waiting=missing))
    assert fault is not None and fault.reason == ErrorReason.POD_CONFIG_ERROR
    assert '(CreateContainerConfigError: secret "s3-keys" not found)' in fault.message


def test_starting_and_leaving_pods_are_no_fault_and_the_jobmanager_comes_first() -> None:
    assert pod_fault(pod(waiting={"reason": "ContainerCreating"})) is None
    assert pod_fault(pod(ready=True, restarts=0)) is None
    assert pod_fault(pod(waiting={"reason": "ErrImageNeverPull"}, deleting=True)) is None
    tm = pod("app-taskmanager-1-x", "taskmanager", waiting={"reason": "ErrImageNeverPull"})
    jm = pod("app-zzz", "jobmanager", waiting={"reason": "CrashLoopBackOff"}, terminated={"exitCode": 2}, restarts=3)
    fault = cluster_fault([tm, jm])
    assert fault is not None and fault.component == "jobmanager" and fault.reason == ErrorReason.CRASH_LOOP
    assert cluster_fault([pod(ready=True)]) is None


def test_a_taskmanager_fault_waits_for_the_jobmanager_behind_the_start_gate() -> None:
    """Both parts ask for more CPU than the node has: until the runtime starts the gated JobManager pod, only the
    TaskManager is refused; reporting it would be replaced a pass later by the JobManager's refusal."""
    refused = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "Insufficient cpu."}]
    tm = pod("app-taskmanager-1-x", "taskmanager", conditions=refused)
    gated = pod("app-6f7c9d-abcde")
    gated["spec"]["schedulingGates"] = [{"name": START_GATE}]
    gated["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]
    assert cluster_fault([tm, gated]) is None
    # The gate lifted, the scheduler not there yet: its condition still reads SchedulingGated, or it has none.
    lifted = pod("app-6f7c9d-abcde", conditions=gated["status"]["conditions"])
    fresh = pod("app-6f7c9d-abcde")
    fresh["status"]["conditions"] = []
    assert cluster_fault([tm, lifted]) is None and cluster_fault([tm, fresh]) is None
    started = pod("app-6f7c9d-abcde", conditions=refused)
    fault = cluster_fault([tm, started])
    assert fault is not None and fault.component == "jobmanager" and "spec.jobManager.resource.cpu" in fault.message
    # Another gate (the user's own) does not hold a TaskManager's fault back, nor does a JobManager on its way out.
    other = pod("app-6f7c9d-abcde")
    other["spec"]["schedulingGates"] = [{"name": "example.com/quota"}]
    leaving = pod("app-6f7c9d-zzzzz", deleting=True)
    leaving["spec"]["schedulingGates"] = [{"name": START_GATE}]
    for jm in (other, leaving):
        fault = cluster_fault([tm, jm])
        assert fault is not None and fault.component == "taskmanager" and fault.reason == ErrorReason.UNSCHEDULABLE


def test_a_pod_signature_changes_with_its_trouble() -> None:
    starting, missing = pod(waiting={"reason": "ContainerCreating"}), pod(waiting={"reason": "ErrImageNeverPull"})
    assert pod_signature(starting) != pod_signature(missing)
    assert pod_signature(missing) == pod_signature(pod(waiting={"reason": "ErrImageNeverPull"}))


def test_a_taskmanager_fault_waits_while_the_jobmanager_container_is_being_created() -> None:
    """A missing image shows on every pod of the cluster, often on a TaskManager's first: while the JobManager's
    kubelet is still creating its container, the TaskManager's fault is held back, so the cluster's fault is said
    once, as the JobManager's (which also marks the JobManager deployment ERROR)."""
    never = {"reason": "ErrImageNeverPull"}
    tm = pod("app-taskmanager-1-x", "taskmanager", waiting=never)
    for creating in (pod("app-6f7c9d-abcde"), pod("app-6f7c9d-abcde", waiting={"reason": "ContainerCreating"})):
        creating["spec"]["nodeName"] = "10.244.0.1"
        assert cluster_fault([tm, creating]) is None
    jm = pod("app-6f7c9d-abcde", waiting=never)
    jm["spec"]["nodeName"] = "10.244.0.1"
    fault = cluster_fault([tm, jm])
    assert fault is not None and fault.component == "jobmanager" and fault.reason == ErrorReason.IMAGE_UNAVAILABLE
    # A JobManager that runs (its REST API not up yet) does not hold a TaskManager's own fault back.
    running = pod("app-6f7c9d-abcde", restarts=0, ready=False, terminated=None)
    running["spec"]["nodeName"] = "10.244.0.1"
    running["status"]["containerStatuses"] = [{"name": MAIN, "state": {"running": {}}, "ready": False}]
    fault = cluster_fault([tm, running])
    assert fault is not None and fault.component == "taskmanager"
