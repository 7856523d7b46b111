"""What is wrong with a Flink cluster's pods, read from their status: the faults Flink itself cannot report.

A JobManager whose image is not on the node never starts, so its REST API never answers and Flink has nothing to
say; the pod's status does: a container waiting with ``ErrImageNeverPull``/``ErrImagePull``/``ImagePullBackOff``,
a ``PodScheduled=False`` condition with reason ``Unschedulable`` ("0/1 nodes are available: 1 Insufficient cpu"),
a container in ``CrashLoopBackOff`` with the exit code and the last lines of its log (the main container's
``terminationMessagePolicy`` is ``FallbackToLogsOnError``, so the kubelet keeps them in ``lastState.terminated``),
a container that cannot be created because a Secret it names is missing. :func:`cluster_fault` turns the first of
these into a ``ClusterFault`` whose message names the pod and the cause and says what to change.

A JobManager without HA runs behind a guard that does not start Flink again in a restarted container (it waits;
see ``pods.py``): its crash shows as a container that restarted after a non-zero exit and never became ready,
not as ``CrashLoopBackOff``; ``start_once`` says to read it so.

Called by: ``runtime.KubernetesRuntime.observe`` (while a pod of the cluster is not ready) and its pod watch
(:func:`pod_signature`, to wake the controller when a pod's trouble changes). Pure: plain pod dicts in, values out.
Invariant: decisions read ``ClusterFault.reason`` (from the kubelet's and scheduler's reason codes, not from their
messages); the messages only go to people.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flinkops.api.plugins import MAIN_CONTAINER
from flinkops.errors import ClusterFault, ErrorReason
from flinkops.runtimes.kubernetes.pods import has_start_gate

__all__ = ["cluster_fault", "pod_fault", "pod_signature"]

Obj = Mapping[str, Any]

_NEVER_PULL = "ErrImageNeverPull"
_PULL = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageInspect", "RegistryUnavailable"})
_CREATE = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
_CRASH_LOOP = "CrashLoopBackOff"
_OOM = "OOMKilled"
_WHO = {"jobmanager": "JobManager", "taskmanager": "TaskManager"}
_PART = {"jobmanager": "jobManager", "taskmanager": "taskManager"}
_MAX_SAID = 400


def _component(pod: Obj) -> str:
    return str(((pod.get("metadata") or {}).get("labels") or {}).get("component") or "taskmanager")


def _containers(pod: Obj) -> list[Obj]:
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def _image(pod: Obj, container: Obj) -> str:
    name = container.get("name")
    spec = pod.get("spec") or {}
    for declared in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if declared.get("name") == name and declared.get("image"):
            return str(declared["image"])
    return str(container.get("image") or "?")


def _said(terminated: Obj) -> str:
    """What a container's last words say broke (shown to people only): the innermost ``Caused by:`` of a stack
    trace, else its last three lines that are not stack frames (a JVM that will not start says why in the first
    of three: "Unrecognized VM option 'X'", "Error: Could not create the Java Virtual Machine.", ...)."""
    lines = [line.strip() for line in str(terminated.get("message") or "").splitlines() if line.strip()]
    causes = [line for line in lines if line.startswith("Caused by:")]
    plain = [line for line in lines if not line.startswith(("at ", "..."))]
    said = causes[-1] if causes else " | ".join(plain[-3:])
    return said if len(said) <= _MAX_SAID else said[: _MAX_SAID - 1] + "…"


def _crash(component: str, pod_name: str, container: Obj) -> ClusterFault | None:
    who, part = _WHO.get(component, "Flink"), _PART.get(component, "taskManager")
    last = (container.get("lastState") or {}).get("terminated") or {}
    if not last:
        return None
    restarts = int(container.get("restartCount") or 0)
    code, why = last.get("exitCode"), last.get("reason") or "Error"
    if why == _OOM:
        message = (
            f"{who} pod {pod_name}: the Flink container was killed for using more memory than its limit (OOMKilled) "
            f"and restarted {restarts} time(s): raise spec.{part}.resource.memory or lower Flink's memory settings"
        )
    else:
        said = _said(last)
        message = (
            f"{who} pod {pod_name}: the Flink container exited with code {code} ({why}) and restarted {restarts} "
            f"time(s)" + (f"; its last words: {said}" if said else "") + f" (kubectl logs {pod_name} --previous): "
            "fix the spec (its flinkConfiguration, image or pod template) and apply it again"
        )
    return ClusterFault(ErrorReason.CRASH_LOOP, component, message)


def pod_fault(pod: Obj, *, start_once: bool = False) -> ClusterFault | None:
    """What keeps this pod from running Flink, if anything: its image, a container that cannot be created, a
    container that keeps exiting, or no node to run on (in that order)."""
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp") is not None:
        return None
    component = _component(pod)
    who, part = _WHO.get(component, "Flink"), _PART.get(component, "taskManager")
    name = str(meta.get("name") or "?")
    found: list[ClusterFault] = []
    for container in _containers(pod):
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason, said = str(waiting.get("reason") or ""), str(waiting.get("message") or "").strip()
        image = _image(pod, container)
        if reason == _NEVER_PULL:
            return ClusterFault(
                ErrorReason.IMAGE_UNAVAILABLE,
                component,
                f"{who} pod {name}: image {image} is not on the node ({reason}; its imagePullPolicy is Never): "
                "build or load it on the node, or fix spec.image",
            )
        if reason in _PULL:
            return ClusterFault(
                ErrorReason.IMAGE_UNAVAILABLE,
                component,
                f"{who} pod {name}: image {image} cannot be pulled ({reason}" + (f": {said}" if said else "") + "): "
                "check the name, the registry and its pull secret (kubernetes.container.image.pull-secrets), "
                "or fix spec.image",
            )
        if reason in _CREATE:
            found.append(
                ClusterFault(
                    ErrorReason.POD_CONFIG_ERROR,
                    component,
                    f"{who} pod {name}: container {container.get('name')} cannot be created ({reason}"
                    + (f": {said}" if said else "")
                    + "): create what it names (a Secret, a ConfigMap) or fix the pod template",
                )
            )
            continue
        restarted_and_waits = (
            start_once
            and container.get("name") == MAIN_CONTAINER
            and int(container.get("restartCount") or 0) > 0
            and not container.get("ready")
            and ((container.get("lastState") or {}).get("terminated") or {}).get("exitCode") not in (None, 0)
        )
        if reason == _CRASH_LOOP or restarted_and_waits:
            crash = _crash(component, name, container)
            if crash is not None:
                found.append(crash)
    if found:
        return found[0]
    for condition in (pod.get("status") or {}).get("conditions") or []:
        refused = condition.get("status") == "False" and condition.get("reason") == "Unschedulable"
        if condition.get("type") == "PodScheduled" and refused:
            said = str(condition.get("message") or "no node can take it.").strip()
            return ClusterFault(
                ErrorReason.UNSCHEDULABLE,
                component,
                f"{who} pod {name} cannot be scheduled: {said} Lower spec.{part}.resource.cpu or .memory, "
                "relax its node selector or tolerations, or add room on the nodes",
            )
    return None


def _not_judged_yet(pod: Obj) -> bool:
    """The scheduler has not judged the pod yet: it waits behind the start-once gate, or the gate was just lifted
    (or it never had one) and no node was chosen nor refused; the condition still reads ``SchedulingGated`` until
    the scheduler writes its own."""
    if (pod.get("metadata") or {}).get("deletionTimestamp") is not None:
        return False
    spec = pod.get("spec") or {}
    if has_start_gate(spec):
        return True
    if spec.get("schedulingGates") or spec.get("nodeName"):
        return False
    scheduled = next(
        (c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "PodScheduled"), None
    )
    return scheduled is None or (scheduled.get("status") == "False" and scheduled.get("reason") == "SchedulingGated")


def cluster_fault(pods: Iterable[Obj], *, start_once: bool = False) -> ClusterFault | None:
    """The first fault among a cluster's pods: a JobManager's before a TaskManager's, then by pod name.
    ``start_once``: the JobManager pods run behind the start-once guard (an application cluster without HA).

    While a JobManager pod is not judged by the scheduler yet (behind the start-once gate before the runtime lifts
    it, or just after), or is on a node whose kubelet is still creating its containers, a TaskManager's fault is not
    reported: the JobManager's own fault, known a moment later, may be the one to report (a missing image shows on
    every pod of the cluster, the TaskManagers' often first), and a cluster's fault should be said once rather than
    one part's and then the other's."""

    def order(pod: Obj) -> tuple[int, str]:
        return (0 if _component(pod) == "jobmanager" else 1, str((pod.get("metadata") or {}).get("name") or ""))

    ordered = sorted(pods, key=order)
    jobmanager_pending = any(
        _component(p) == "jobmanager" and (_not_judged_yet(p) or _being_created(p)) for p in ordered
    )
    for pod in ordered:
        if jobmanager_pending and _component(pod) != "jobmanager":
            break
        fault = pod_fault(pod, start_once=start_once and _component(pod) == "jobmanager")
        if fault is not None:
            return fault
    return None


_CREATING = frozenset({"ContainerCreating", "PodInitializing"})


def _being_created(pod: Obj) -> bool:
    """The pod is on a node and its kubelet has not got the Flink container to a state yet (no status, or waiting to
    be created or for the init containers): whether it can start is not known yet."""
    if (pod.get("metadata") or {}).get("deletionTimestamp") is not None or not (pod.get("spec") or {}).get("nodeName"):
        return False
    main = next((c for c in _containers(pod) if c.get("name") == MAIN_CONTAINER), None)
    if main is None or not main.get("state"):
        return True
    return str(((main.get("state") or {}).get("waiting") or {}).get("reason") or "") in _CREATING


def pod_signature(pod: Obj) -> tuple[str, ...]:
    """The reason codes of a pod's trouble (waiting reasons, a scheduling refusal): a pod watch that sees them
    change wakes the controller, so a fault is reported on the pass right after it shows."""
    waiting = tuple(str(((c.get("state") or {}).get("waiting") or {}).get("reason") or "") for c in _containers(pod))
    scheduled = next(
        (
            str(c.get("reason") or "")
            for c in (pod.get("status") or {}).get("conditions") or []
            if c.get("type") == "PodScheduled" and c.get("status") == "False"
        ),
        "",
    )
    return (*waiting, scheduled)
