"""Handing Flink's Kubernetes HA leader lock on when the JobManager holding it dies, on a fake API server.

The lock record and the published leader addresses look exactly as Flink 2.2 writes them (the leader elector's
``control-plane.alpha.kubernetes.io/leader`` annotation, ``org.apache.flink.k8s.leader.<component>`` data keys with
``<session id>,<address>`` values). What a user relies on: a dead leader's lock is released at once, with the
ConfigMap's resourceVersion as a precondition; a live leader's lock is never touched, whatever pods come and go;
a write that meets a newer version changes nothing. The same takeover runs for real on the dev node in
tests/kubernetes/test_flink_on_node.py (SIGKILL of the leading JobManager -> job RUNNING again)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from fakes.specs import on_kubernetes
from flinkops.errors import Conflict
from flinkops.ports import ClusterKey
from flinkops.runtimes.kubernetes.haleader import (
    LEADER_ANNOTATION,
    EndedInstance,
    Releaser,
    decide,
    ended_instances,
    leader_hosts,
)
from flinkops.runtimes.kubernetes.render import MAIN_CONTAINER, kubernetes_flink_config
from flinkops.runtimes.kubernetes.runtime import KubernetesRuntime

Obj = dict[str, Any]
CM_PATH = "/api/v1/namespaces/jobs/configmaps/demo-cluster-config-map"
LEADER_IP, STANDBY_IP = "10.244.0.7", "10.244.0.8"
KILLED_AT = "2026-12-04T03:20:15Z"  # the kubelet's finishedAt: whole seconds
T_KILLED = 1_796_354_415.0  # KILLED_AT as epoch seconds


def _record(holder: str, renew: str) -> str:
    return json.dumps(
        {
            "holderIdentity": holder,
            "leaseDuration": 15.0,
            "acquireTime": "2026-12-04T03:10:00.000000Z",
            "renewTime": renew,
            "leaderTransitions": 1,
        }
    )


def _config_map(holder: str = "jm-a", renew: str = "2026-12-04T03:20:14.600000Z", ip: str = LEADER_IP) -> Obj:
    session = "5f0d7c5e-1111-2222-3333-444455556666"
    return {
        "metadata": {
            "name": "demo-cluster-config-map",
            "namespace": "jobs",
            "resourceVersion": "4711",
            "labels": {"app": "demo", "type": "flink-native-kubernetes"},
            "annotations": {LEADER_ANNOTATION: _record(holder, renew)},
        },
        "data": {
            "org.apache.flink.k8s.leader.dispatcher": f"{session},pekko.tcp://flink@{ip}:6123/user/rpc/dispatcher_1",
            "org.apache.flink.k8s.leader.resourcemanager": f"{session},pekko.tcp://flink@{ip}:6123/user/rpc/rm_0",
            "org.apache.flink.k8s.leader.restserver": f"{session},http://{ip}:8081",
            "org.apache.flink.k8s.leader.job-00000000000000000000000000000000": f"{session},pekko.tcp://flink@{ip}:6123/user/rpc/jobmanager_2",
            "counter": "7",
        },
    }  # fmt: skip


def _pod(name: str, ip: str, state: Obj, last: Obj | None = None, restarts: int = 0) -> Obj:
    status = {"name": MAIN_CONTAINER, "state": state, "lastState": last or {}, "restartCount": restarts}
    return {
        "metadata": {
            "name": name,
            "namespace": "jobs",
            "uid": f"uid-{name}",
            "labels": {"app": "demo", "component": "jobmanager"},
        },
        "spec": {},
        "status": {"podIP": ip, "containerStatuses": [status]},
    }


RUNNING = {"running": {"startedAt": "2026-12-04T03:09:50Z"}}
TERMINATED = {"terminated": {"exitCode": 137, "reason": "Error", "finishedAt": KILLED_AT}}


def _killed_leader() -> Obj:
    return _pod("demo-a", LEADER_IP, TERMINATED)


def _restarted_leader() -> Obj:
    return _pod("demo-a", LEADER_IP, {"running": {"startedAt": "2026-12-04T03:20:16Z"}}, TERMINATED, restarts=1)


# ------------------------------------------------------------------------------------------------ the decision


def test_the_lock_of_a_killed_leader_is_released_under_the_configmaps_resource_version() -> None:
    release, why = decide(_config_map(), ended_instances(_killed_leader()), now=T_KILLED + 1.2)

    assert release is not None, why
    meta = release.body["metadata"]
    assert meta["resourceVersion"] == "4711"
    assert set(release.body) == {"metadata"} and set(meta) == {"resourceVersion", "annotations"}
    written = json.loads(meta["annotations"][LEADER_ANNOTATION])
    assert written["holderIdentity"] == ""  # what Flink's elector writes when a leader steps down cleanly
    assert written["renewTime"] == written["acquireTime"] == "2026-12-04T03:20:16.200000Z"
    assert (written["leaseDuration"], written["leaderTransitions"]) == (15.0, 1)
    assert release.holder == "jm-a"


@pytest.mark.parametrize(
    "pod",
    [
        _restarted_leader(),  # the kubelet restarted the container before the operator looked
        _pod("demo-a", LEADER_IP, {"waiting": {"reason": "CrashLoopBackOff"}}, TERMINATED, restarts=2),
    ],
)
def test_a_leader_whose_container_restarted_or_waits_to_restart_is_dead(pod: Obj) -> None:
    release, why = decide(_config_map(), ended_instances(pod), now=T_KILLED + 2)
    assert release is not None, why


def test_a_leader_pod_gone_from_the_api_is_dead_from_its_deletion() -> None:
    gone = _pod("demo-a", LEADER_IP, RUNNING)
    gone["metadata"]["deletionTimestamp"] = KILLED_AT
    assert ended_instances(gone) == []  # still in the API and running: alive
    release, why = decide(_config_map(), ended_instances(gone, gone=True), now=T_KILLED + 1)
    assert release is not None, why


_RENEWED_LATER = _config_map(holder="jm-a2", renew="2026-12-04T03:20:31.000000Z")
_HALF_PUBLISHED = copy.deepcopy(_config_map())
_HALF_PUBLISHED["data"]["org.apache.flink.k8s.leader.restserver"] = f"s,http://{STANDBY_IP}:8081"


@pytest.mark.parametrize(
    ("config_map", "ended", "reason"),
    [
        # The standby was killed: the leader lives at another IP.
        (_config_map(), [EndedInstance(STANDBY_IP, T_KILLED, "uid-b")], "no ended JobManager"),
        # The holder renewed after the JobManager at the published address ended: a live process holds it (the
        # same pod's restarted JobManager, or the standby that has taken over).
        (_RENEWED_LATER, ended_instances(_restarted_leader()), "alive"),
        # A new leader is half-way through publishing its addresses.
        (_HALF_PUBLISHED, ended_instances(_killed_leader()), "one host"),
        (_config_map(holder=""), ended_instances(_killed_leader()), "no holder"),  # released already
        ({"metadata": {"resourceVersion": "1"}, "data": {}}, ended_instances(_killed_leader()), "no leader record"),
    ],
)
def test_a_live_holder_or_an_unclear_lock_is_left_alone(
    config_map: Obj, ended: list[EndedInstance], reason: str
) -> None:
    release, why = decide(config_map, ended, now=T_KILLED + 1)
    assert release is None and reason in why


def test_a_release_is_written_once_per_dead_jobmanager() -> None:
    """After the release the standby takes the lock but may not have published its own address yet: the data still
    names the dead leader, and a second look must not take the lock from the standby."""
    ended = ended_instances(_killed_leader())
    standby_took_it = _config_map(holder="jm-b", renew="2026-12-04T03:20:15.900000Z")  # same second as the kill
    release, why = decide(standby_took_it, ended, done=ended, now=T_KILLED + 1)
    assert release is None and "already released" in why


def test_leader_hosts_read_every_address_form_flink_publishes() -> None:
    assert leader_hosts(_config_map()) == {LEADER_IP}
    ipv6 = {"data": {"org.apache.flink.k8s.leader.restserver": "s,http://[fd00::7]:8081"}}
    assert leader_hosts(ipv6) == {"fd00::7"}
    assert leader_hosts({"data": {"counter": "3"}}) == set()


# ------------------------------------------------------------------------------------------------ the write


class FakeKube:
    """A ConfigMap and pods by path; a patch carrying ``metadata.resourceVersion`` is conditional, as on a real
    API server (409 when the object moved on)."""

    def __init__(self, *objects: tuple[str, Obj]) -> None:
        self.objects: dict[str, Obj] = {path: copy.deepcopy(obj) for path, obj in objects}
        self.patches: list[tuple[str, Obj]] = []
        self.renew_before_patch: str | None = None  # a holder's renewal that lands between our read and our write

    def get(self, path: str) -> Obj | None:
        found = self.objects.get(path)
        return copy.deepcopy(found) if found is not None else None

    def list(self, path: str, label_selector: str | None = None) -> Obj:
        return {"items": [copy.deepcopy(o) for p, o in self.objects.items() if p.startswith(path + "/")]}

    def patch(self, path: str, body: Obj, *, kind: str = "merge") -> Obj:
        target = self.objects[path]
        if self.renew_before_patch is not None:
            target["metadata"]["annotations"][LEADER_ANNOTATION] = _record("jm-a", self.renew_before_patch)
            target["metadata"]["resourceVersion"] = str(int(target["metadata"]["resourceVersion"]) + 1)
        wanted = body["metadata"].get("resourceVersion")
        if wanted is not None and wanted != target["metadata"]["resourceVersion"]:
            raise Conflict(f"the object has been modified; resourceVersion {wanted} is stale")
        self.patches.append((path, body))
        target["metadata"]["annotations"].update(body["metadata"].get("annotations") or {})
        target["metadata"]["resourceVersion"] = str(int(target["metadata"]["resourceVersion"]) + 1)
        return copy.deepcopy(target)


def _holder(kube: FakeKube) -> str:
    return str(json.loads(kube.objects[CM_PATH]["metadata"]["annotations"][LEADER_ANNOTATION])["holderIdentity"])


def test_the_releaser_writes_once_and_the_lock_is_free() -> None:
    kube = FakeKube((CM_PATH, _config_map()))
    releaser = Releaser(kube)  # type: ignore[arg-type]
    pods = [_killed_leader(), _pod("demo-b", STANDBY_IP, RUNNING)]

    assert releaser.check("jobs", "demo", pods) is not None
    assert _holder(kube) == "" and len(kube.patches) == 1
    assert releaser.check("jobs", "demo", pods) is None  # no holder now
    kube.objects[CM_PATH]["metadata"]["annotations"][LEADER_ANNOTATION] = _record("jm-b", "2026-12-04T03:20:15.9Z")
    assert releaser.check("jobs", "demo", pods) is None  # the standby's fresh lock, address not yet published
    assert _holder(kube) == "jm-b" and len(kube.patches) == 1


def test_a_holder_that_renews_between_the_read_and_the_write_keeps_its_lock() -> None:
    kube = FakeKube((CM_PATH, _config_map()))
    kube.renew_before_patch = "2026-12-04T03:20:16.000000Z"
    releaser = Releaser(kube)  # type: ignore[arg-type]

    assert releaser.check("jobs", "demo", [_killed_leader()]) is None
    assert kube.patches == [] and _holder(kube) == "jm-a"
    assert releaser.released == []


def test_without_kubernetes_ha_there_is_nothing_to_release() -> None:
    kube = FakeKube()
    assert Releaser(kube).check("jobs", "demo", [_killed_leader()]) is None  # type: ignore[arg-type]
    assert Releaser(kube).check("jobs", "demo", [_pod("demo-a", LEADER_IP, RUNNING)]) is None  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ the pod watch


def _runtime(kube: FakeKube) -> KubernetesRuntime:
    return KubernetesRuntime(kube)  # type: ignore[arg-type]


def test_the_pod_watch_releases_a_killed_leaders_lock_and_leaves_a_killed_standby_alone() -> None:
    pod_a, pod_b = "/api/v1/namespaces/jobs/pods/demo-a", "/api/v1/namespaces/jobs/pods/demo-b"
    kube = FakeKube((CM_PATH, _config_map()), (pod_a, _pod("demo-a", LEADER_IP, RUNNING)))
    kube.objects[pod_b] = _pod("demo-b", STANDBY_IP, TERMINATED)
    runtime = _runtime(kube)

    runtime._on_pod_change("MODIFIED", kube.objects[pod_b])  # the standby died: the leader is untouched
    assert kube.patches == []

    kube.objects[pod_a] = _killed_leader()
    runtime._on_pod_change("MODIFIED", kube.objects[pod_a])
    assert [path for path, _ in kube.patches] == [CM_PATH] and _holder(kube) == ""
    assert ClusterKey("jobs", "demo") in runtime.changed_clusters()


def test_the_pod_watch_releases_the_lock_of_a_leader_pod_that_was_deleted() -> None:
    kube = FakeKube((CM_PATH, _config_map()))
    gone = _pod("demo-a", LEADER_IP, RUNNING)
    gone["metadata"]["deletionTimestamp"] = KILLED_AT
    runtime = _runtime(kube)

    runtime._on_pod_change("DELETED", gone)

    assert len(kube.patches) == 1 and _holder(kube) == ""


# ------------------------------------------------------------------------------------------------ rendering


def _ha_config(user: dict[str, str]) -> dict[str, str]:
    resource = on_kubernetes(generation=1, conf=user, mode=None, jobmanager_replicas=2, job=False)
    return kubernetes_flink_config(resource, dict(user))


def test_kubernetes_ha_renders_a_one_second_retry_period_unless_the_user_sets_one() -> None:
    ha = {"high-availability.type": "kubernetes", "execution.checkpointing.dir": "s3://b/cp"}
    key = "high-availability.kubernetes.leader-election.retry-period"
    assert _ha_config(ha)[key] == "1 s"
    assert _ha_config({**ha, key: "3 s"})[key] == "3 s"
    assert key not in _ha_config({**ha, "high-availability.type": "zookeeper"})
