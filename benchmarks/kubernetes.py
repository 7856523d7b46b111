"""Flink on the real Kubernetes dev node: the operator next to the same work done by hand, and next to the
reference operator's figures recorded on the same kind of node.

Setup: a fresh dev control plane and the real node on it (``support.kube``: kubelet, containerd, kube-proxy,
CoreDNS and the locally built Flink image; the node is one per machine, so this waits on its lock while a test
session uses it), and the node stack the tests use (``support.nodestack``: CRDs, the chart's RBAC, MinIO on the
bridge, one ``flinkops operator run`` on the host with ``--rest-address cluster-ip``). The job is the verifier
job at 50 records/s (checkpoints every 2 s on ``s3://``), JobManager and TaskManager pods requesting 0.25 CPU.

Each figure has two sides, run one after the other (the order alternates by round):

* **flinkops**: a FlinkDeployment applied; the operator does the rest.
* **floor**: no operator. The manifests the operator renders for the same spec (its own rendering code:
  ConfigMap, Services, JobManager and TaskManager Deployments, without owner references or the start gate),
  server-side applied by hand, and the Flink REST calls an operator makes, made by hand as fast as they can be
  (stop-with-savepoint polled every 0.1 s; cluster deleted and the pods waited for before the next one starts,
  as the operator does, so two JobManagers of one cluster never run at once).

Figures (seconds unless said; REST polled every 0.2 s through the REST Service's ClusterIP):

* apply -> job RUNNING, apply -> all tasks RUNNING;
* savepoint upgrade v1 -> v2: downtime from the verifier's trace (last record processed by v1 -> first by
  v2), checked record by record (none lost or duplicated, v1 then v2), and upgrade start -> v2 job RUNNING;
* JobManager failure: with Kubernetes HA (two JobManagers), the leader's JVM SIGKILLed -> the same job RUNNING
  again; without HA, the JobManager pod deleted -> a job RUNNING again from the newest checkpoint (the floor
  finds it in S3 and redeploys by hand, Flink alone would restart the job from scratch);
* batch (a bounded job): the job's end time (Flink's ``end-time``) -> every pod gone;
* the operator's CPU and RSS, idle (no deployment) and at 100 deployments. The 100 are FlinkDeployments whose
  pods stay Pending (a node selector no node matches, as while Karpenter has not yet provided a node): the
  operator does all its per-deployment work for them (renders and applies the children, follows them and the
  JobManager pods in its informers, lifts the start gates, writes status, keeps reconciling; on the node it also
  reads why the scheduler refused the pods and reports them Unschedulable), and only the JobManager's REST answers
  are missing. Suspended deployments would be cheaper and less representative: the
  operator keeps no children for them. The floor here is a process that only follows the same objects with
  the same informers (``--watch-only``), the cost of watching without any reconciling.

Reference operator (1.15.0): figures from ``real-kubernetes-node.md`` (same kind of node, measured on
2026-12-03; its 1.13+ releases are not on Maven Central, so it is not run here).
Goals: savepoint-upgrade downtime <= 25 s (0.8 x the reference's 31.1 s to RUNNING); HA failover <= 5 s (Flink's
lease alone is 15 s); batch teardown <= 10 s (the reference keeps a finished JobManager for a day); operator
RSS <= 100 MiB at 100 deployments.

Run: ``make bench`` or ``.venv/bin/python benchmarks/kubernetes.py [--rounds N | --quick] [--check] [--home
FLINKOPS_HOME]`` as root (the node changes host settings and restores them). By default it starts a control plane
and node of its own and stops them after; ``--home`` uses the ones ``flinkops dev up kubernetes --node`` runs for
that home instead (left running; the image with the verifier job is imported into it). ``--quick``: one round, a
shorter batch job and shorter CPU windows. ``--check`` exits 1 when a goal is missed (without it the table is only
printed). ``--resources-only``: only the operator's CPU and RSS (idle and at 100 deployments, next to the
watch-only floor), on a control plane of its own without the node (S3 on loopback): the 100 deployments' pods stay
Pending there too, so the operator's work is the same, and the machine's one node stays free for others. Not part
of ``make test``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from flinkops.api.models import FlinkDeployment  # noqa: E402
from flinkops.controller.requests import RequestBuilder  # noqa: E402
from flinkops.core.planner.types import DeployCluster  # noqa: E402
from flinkops.errors import ErrorReason  # noqa: E402
from flinkops.flink.rest import FlinkRestClient  # noqa: E402
from flinkops.provisioning.pods import PodProvisioner  # noqa: E402
from flinkops.runtimes.kubernetes import render  # noqa: E402
from flinkops.runtimes.kubernetes.runtime import (  # noqa: E402
    MANAGED_SELECTOR,
    ha_selector,
    is_ha_config_map_name,
    manifest_path,
)
from support.flinknode import batch_deployment, verifier_deployment  # noqa: E402
from support.kube import (  # noqa: E402
    KubeCluster,
    kube_control_plane,
    kube_node,
    node_image_jars,
    server_side_apply,
)
from support.nodestack import (  # noqa: E402
    BUCKET,
    FD,
    JOBS_NS,
    TIMINGS,
    Stack,
    checkpoints,
    kill_jvm,
    leader_pod,
    node_stack,
    v2_took_over,
    wait_for,
)

FLOOR_MANAGER = "flinkops-benchmark-floor"  # the floor's objects are never the operator's
POLL = 0.2
SAVEPOINT_POLL = 0.1
DEPLOYMENTS = 100
PENDING_SELECTOR = {"flinkops.io/benchmark": "no-such-node"}
MIB = 2**20

# figure keys, in table order
APPLY_RUNNING = "apply -> job RUNNING"
APPLY_TASKS = "apply -> all tasks RUNNING"
DOWNTIME = "savepoint upgrade: downtime, last v1 -> first v2 record"
UPGRADE_RUNNING = "savepoint upgrade: start -> v2 job RUNNING"
HA_FAILOVER = "HA: leader JobManager SIGKILLed -> job RUNNING"
NO_HA = "no HA: JobManager pod deleted -> job RUNNING"
BATCH = "batch: job FINISHED -> pods gone"
CPU_IDLE = "operator CPU, idle (%)"
RSS_IDLE = "operator RSS, idle (MiB)"
CPU_100 = f"operator CPU, {DEPLOYMENTS} deployments (%)"
RSS_100 = f"operator RSS, {DEPLOYMENTS} deployments (MiB)"
PEAK_100 = f"operator peak RSS, {DEPLOYMENTS} deployments (MiB)"

REFERENCE = {
    APPLY_RUNNING: "33.7 / 23.9",
    APPLY_TASKS: "- / 48.4",
    DOWNTIME: "33.1 / 29.1 (to RUNNING)",
    UPGRADE_RUNNING: "33.1 / 29.1",
    HA_FAILOVER: "-",
    NO_HA: "-",
    BATCH: "86400 (1 day)",
    CPU_IDLE: "0.17-0.45",
    RSS_IDLE: "232 (fresh)",
    CPU_100: "1.28 (1 deployment)",
    RSS_100: "359 (1 deployment)",
    PEAK_100: "-",
}
RESOURCE_FIGURES = (CPU_IDLE, RSS_IDLE, CPU_100, RSS_100, PEAK_100)
GOALS = {DOWNTIME: 25.0, HA_FAILOVER: 5.0, BATCH: 10.0, RSS_100: 100.0}


def say(message: str) -> None:
    print(f"[bench] {time.strftime('%H:%M:%S')} {message}", flush=True)


@dataclass
class Results:
    sides: dict[str, dict[str, list[float]]] = field(default_factory=lambda: {"flinkops": {}, "floor": {}})
    verified: list[str] = field(default_factory=list)  # what the verifier checked, or why it failed

    def add(self, side: str, figure: str, value: float) -> None:
        self.sides[side].setdefault(figure, []).append(value)
        say(f"{side}: {figure}: {value:.2f}")


# ------------------------------------------------------------------------------------------------ REST


def jobs(stack: Stack, name: str) -> list[dict[str, Any]]:
    """The jobs ``name``'s JobManager reports ([] while its Service or REST API is not there)."""
    with contextlib.suppress(httpx.HTTPError):
        rest = stack.rest(name)
        try:
            return rest.jobs()
        finally:
            rest.close()
    return []


def wait_job(stack: Stack, name: str, want: Callable[[dict[str, Any]], bool], timeout: float = 300) -> dict[str, Any]:
    """Poll ``name``'s jobs until one satisfies ``want``; a crash-looping container fails at once."""

    def probe() -> dict[str, Any] | None:
        found = next((j for j in jobs(stack, name) if want(j)), None)
        if found is None:
            stack.no_crash_loop(name)
        return found

    try:
        return wait_for(f"{name}'s job", probe, timeout, POLL)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.diagnose(name)}") from None


def running(job: dict[str, Any]) -> bool:
    return job.get("state") == "RUNNING"


def all_tasks(job: dict[str, Any]) -> bool:
    tasks = job.get("tasks") or {}
    return running(job) and bool(tasks.get("total")) and tasks.get("running") == tasks.get("total")


def newest_checkpoint(stack: Stack, name: str, job_id: str) -> str | None:
    """``s3://`` path of the newest completed checkpoint (its ``_metadata`` written) of job ``job_id``."""
    done = [k.rsplit("/", 1)[0] for k in checkpoints(stack, name, job_id) if k.endswith("/_metadata")]
    if not done:
        return None
    newest = max(done, key=lambda k: int(k.rsplit("chk-", 1)[1]))
    return f"s3://{BUCKET}/{newest}"


def pods_gone(stack: Stack, name: str, timeout: float = 180) -> float:
    wait_for(f"{name}'s pods gone", lambda: not stack.pods(name), timeout, POLL)
    return time.time()


# ------------------------------------------------------------------------------------------------ the floor


def _by_hand(obj: Any) -> Any:
    """A rendered object as a user applies it without the operator: no owner reference, no start gate (the
    operator lifts it), and a manager label of its own so the operator never takes the objects for its own."""
    if isinstance(obj, dict):
        return {
            k: FLOOR_MANAGER if k == render.MANAGED_BY_LABEL else _by_hand(v)
            for k, v in obj.items()
            if k not in ("ownerReferences", "schedulingGates")
        }
    if isinstance(obj, list):
        return [_by_hand(v) for v in obj]
    return obj


class Floor:
    """The same manifests and Flink REST calls as the operator's, by hand."""

    def __init__(self, stack: Stack, work: Path) -> None:
        self.stack = stack
        self.provisioner = PodProvisioner(work)

    def deploy(self, doc: dict[str, Any], job_id: str, restore: str | None = None) -> None:
        body = copy.deepcopy(doc)
        body["metadata"].update(namespace=JOBS_NS, generation=1, uid=str(uuid.uuid4()))
        resource = FlinkDeployment.model_validate(body)
        action = DeployCluster(spec=resource.spec, generation=1, job_id=job_id, restore_path=restore)
        request = RequestBuilder(None, self.provisioner).cluster_request(resource, action)  # type: ignore[arg-type]
        for manifest in render.render_request(request):
            server_side_apply(self.stack.admin, manifest_path(manifest), _by_hand(manifest))

    def stop_with_savepoint(self, name: str, job_id: str) -> str:
        service = self.stack.admin.get(f"/api/v1/namespaces/{JOBS_NS}/services/{name}-rest").json()
        with FlinkRestClient(f"http://{service['spec']['clusterIP']}:8081") as client:
            trigger = client.stop_with_savepoint(job_id)

            def completed() -> str | None:
                status = client.savepoint_status(job_id, trigger)
                if status.failure is not None:
                    raise RuntimeError(f"stop-with-savepoint of {name} failed: {status.failure}")
                return status.location

            return wait_for(f"{name}'s savepoint", completed, 120, SAVEPOINT_POLL)

    def stop_cluster(self, name: str) -> None:
        """Delete the cluster's Deployments and wait until its pods are gone (Services and ConfigMap stay)."""
        self._delete("apis/apps/v1", "deployments", name)
        pods_gone(self.stack, name)

    def delete(self, name: str) -> None:
        """Everything of the cluster, Flink's HA ConfigMaps too once its pods are gone."""
        self.stop_cluster(name)
        for api, plural in (("api/v1", "services"), ("api/v1", "configmaps")):
            self._delete(api, plural, name)
        params = {"labelSelector": ha_selector(name)}
        items = self.stack.admin.get(f"/api/v1/namespaces/{JOBS_NS}/configmaps", params=params).json()["items"]
        for item in items:
            if is_ha_config_map_name(name, item["metadata"]["name"]):
                self.stack.admin.delete(f"/api/v1/namespaces/{JOBS_NS}/configmaps/{item['metadata']['name']}")

    def _delete(self, api: str, plural: str, name: str) -> None:
        """Delete the floor's objects of one kind; Deployments in the foreground (their pods go first, as the
        operator deletes them)."""
        selector = f"app={name},{render.MANAGED_BY_LABEL}={FLOOR_MANAGER}"
        base = f"/{api}/namespaces/{JOBS_NS}/{plural}"
        body = {"propagationPolicy": "Foreground" if plural == "deployments" else "Background"}
        for item in self.stack.admin.get(base, params={"labelSelector": selector}).json()["items"]:
            self.stack.admin.request("DELETE", f"{base}/{item['metadata']['name']}", json=body)


# ------------------------------------------------------------------------------------------------ scenarios


@dataclass
class Bench:
    stack: Stack
    floor: Floor
    results: Results
    batch_records: int

    def doc(self, name: str, **kwargs: Any) -> dict[str, Any]:
        return verifier_deployment(name, s3=self.stack.s3, bucket=BUCKET, host_dir=self.stack.host_dir, **kwargs)

    def batch_doc(self, name: str) -> dict[str, Any]:
        return batch_deployment(
            name, s3=self.stack.s3, bucket=BUCKET, host_dir=self.stack.host_dir, records=self.batch_records, rate=50
        )

    def verified(self, side: str, name: str, moment: float) -> None:
        """The upgrade's output checked (none lost or duplicated, v1 then v2); its downtime from the trace."""
        label = f"{name}: upgrade downtime"
        v2_took_over(self.stack, name, moment, label)
        self.results.verified.append(f"{side} {name}: v1 -> v2, nothing lost or duplicated")
        self.results.add(side, DOWNTIME, TIMINGS[label])

    def delete_resource(self, name: str) -> None:
        self.stack.admin.delete(f"{FD}/{name}").raise_for_status()
        pods_gone(self.stack, name)
        wait_for(f"{name} gone", lambda: self.stack.fd(name) is None, 120, POLL)

    # -------------------------------------------------------------- apply, savepoint upgrade, no-HA loss

    def lifecycle_flinkops(self, name: str) -> None:
        side, add = "flinkops", self.results.add
        self.stack.apply(self.doc(name))
        applied = self.stack.applied_at[name]
        old = wait_job(self.stack, name, running)
        add(side, APPLY_RUNNING, time.time() - applied)
        wait_job(self.stack, name, all_tasks)
        add(side, APPLY_TASKS, time.time() - applied)
        self.stack.wait_stable(name)

        moment = time.time()
        self.stack.apply(self.doc(name, logic="v2"))
        new = wait_job(self.stack, name, lambda j: running(j) and j["jid"] != old["jid"])
        add(side, UPGRADE_RUNNING, time.time() - moment)
        self.verified(side, name, moment)
        self.stack.wait_stable(name)

        self.lose_jobmanager(side, name, new["jid"], lambda: None)
        self.delete_resource(name)

    def lifecycle_floor(self, name: str) -> None:
        side, add, floor = "floor", self.results.add, self.floor
        job_id = uuid.uuid4().hex
        applied = time.time()
        floor.deploy(self.doc(name), job_id)
        wait_job(self.stack, name, running)
        add(side, APPLY_RUNNING, time.time() - applied)
        wait_job(self.stack, name, all_tasks)
        add(side, APPLY_TASKS, time.time() - applied)
        wait_for(f"{name}'s first checkpoint", lambda: newest_checkpoint(self.stack, name, job_id), 120, 0.5)

        moment = time.time()
        savepoint = floor.stop_with_savepoint(name, job_id)
        floor.stop_cluster(name)
        v2_id = uuid.uuid4().hex
        floor.deploy(self.doc(name, logic="v2"), v2_id, restore=savepoint)
        wait_job(self.stack, name, lambda j: running(j) and j["jid"] == v2_id)
        add(side, UPGRADE_RUNNING, time.time() - moment)
        self.verified(side, name, moment)

        def redeploy() -> None:
            restore = newest_checkpoint(self.stack, name, v2_id)
            floor.stop_cluster(name)
            floor.deploy(self.doc(name, logic="v2"), uuid.uuid4().hex, restore=restore)

        self.lose_jobmanager(side, name, v2_id, redeploy)
        floor.delete(name)

    def lose_jobmanager(self, side: str, name: str, job_id: str, by_hand: Callable[[], None]) -> None:
        """Without HA: the JobManager pod deleted once the job has a checkpoint; until a new job RUNNING."""
        wait_for(f"a checkpoint of {name}'s job", lambda: newest_checkpoint(self.stack, name, job_id), 120, 0.5)
        (pod,) = self.stack.pods(name, "jobmanager")
        moment = time.time()
        self.stack.admin.delete(
            f"/api/v1/namespaces/{JOBS_NS}/pods/{pod['metadata']['name']}", params={"gracePeriodSeconds": "0"}
        ).raise_for_status()
        by_hand()
        wait_job(self.stack, name, lambda j: running(j) and j["jid"] != job_id)
        self.results.add(side, NO_HA, time.time() - moment)

    # -------------------------------------------------------------- HA failover

    def ha_doc(self, name: str) -> dict[str, Any]:
        return self.doc(name, ha=True, jobmanagers=2, upgrade_mode="last-state")

    def ha_flinkops(self, name: str) -> None:
        self.stack.apply(self.ha_doc(name))
        self.stack.wait_stable(name)
        job_id = self.stack.status(name)["jobStatus"]["jobId"]
        self.failover("flinkops", name, job_id)
        self.delete_resource(name)

    def ha_floor(self, name: str) -> None:
        job_id = uuid.uuid4().hex
        self.floor.deploy(self.ha_doc(name), job_id)
        wait_job(self.stack, name, running)
        wait_for(f"a checkpoint of {name}'s job", lambda: newest_checkpoint(self.stack, name, job_id), 120, 0.5)
        self.failover("floor", name, job_id)
        self.floor.delete(name)

    def failover(self, side: str, name: str, job_id: str) -> None:
        leader = leader_pod(self.stack, name)
        moment = time.time()
        if not kill_jvm(leader):
            raise RuntimeError(f"no Java process found for pod {leader['metadata']['name']}")
        wait_job(self.stack, name, lambda j: running(j) and j["jid"] == job_id and j["start-time"] > moment * 1000)
        self.results.add(side, HA_FAILOVER, time.time() - moment)

    # -------------------------------------------------------------- batch

    def batch_flinkops(self, name: str) -> None:
        self.stack.apply(self.batch_doc(name))
        wait_job(self.stack, name, running)
        seen: dict[str, float] = {}

        def ended() -> float | None:
            for job in jobs(self.stack, name):
                if job.get("state") == "FINISHED" and job.get("end-time", -1) > 0:
                    seen["end"] = job["end-time"] / 1000
            if not self.stack.pods(name):
                return time.time()
            return None

        gone = wait_for(f"{name} FINISHED and its pods gone", ended, self.batch_records / 50 + 300, POLL)
        history = self.stack.status(name).get("deploymentHistory") or [{}]
        end = seen.get("end") or (history[-1].get("endedAt") or 0) / 1000
        if not end:
            raise RuntimeError(f"{name}: no end time seen (REST or status): {history[-1]}")
        self.results.add("flinkops", BATCH, gone - end)
        self.delete_resource(name)

    def batch_floor(self, name: str) -> None:
        self.floor.deploy(self.batch_doc(name), uuid.uuid4().hex)
        job = wait_job(self.stack, name, lambda j: j.get("state") == "FINISHED", self.batch_records / 50 + 300)
        self.floor.stop_cluster(name)
        self.results.add("floor", BATCH, time.time() - job["end-time"] / 1000)
        self.floor.delete(name)


# ------------------------------------------------------------------------------------------------ resources


def usage(pid: int) -> tuple[float, float, float]:
    """CPU seconds (user + system), RSS and peak RSS (MiB) of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    memory = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            memory[key] = int(value.split()[0]) * 1024 / MIB
    return cpu, memory["VmRSS"], memory["VmHWM"]


def cpu_percent(pids: dict[str, int], window: float) -> dict[str, float]:
    before = {side: usage(pid)[0] for side, pid in pids.items()}
    started = time.monotonic()
    time.sleep(window)  # a measuring window, not a wait for a condition
    took = time.monotonic() - started
    return {side: 100 * (usage(pid)[0] - before[side]) / took for side, pid in pids.items()}


@contextlib.contextmanager
def watcher(kubeconfig: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The resource floor: this script with ``--watch-only`` (the operator's informers and nothing else)."""
    argv = [sys.executable, __file__, "--watch-only", "--kubeconfig", str(kubeconfig), "--namespace", JOBS_NS]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for("the watch-only floor to sync", lambda: "synced" in log.read_text() or proc.poll() is not None, 60)
        if proc.poll() is not None:
            raise RuntimeError(f"the watch-only floor exited: {log.read_text()[-2000:]}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def watch_only(kubeconfig: str, namespace: str) -> None:
    """The informers the operator runs (FlinkDeployments, FlinkSessionJobs, managed Deployments, JobManager
    pods, each keeping what the operator's keeps), in one namespace, and nothing else, until terminated."""
    import signal

    from flinkops.kube.client import KubeClient, load_config, object_path
    from flinkops.kube.informer import Informer, without_managed_fields
    from flinkops.runtimes.kubernetes.cached import cached_deployment, cached_jobmanager_pod

    client = KubeClient(load_config(kubeconfig=kubeconfig))
    paths = [  # what each of the operator's informers keeps of its objects, too
        (object_path("flink.apache.org/v1beta1", "flinkdeployments", namespace), None, without_managed_fields),
        (object_path("flink.apache.org/v1beta1", "flinksessionjobs", namespace), None, without_managed_fields),
        (object_path("apps/v1", "deployments", namespace), MANAGED_SELECTOR, cached_deployment),
        (object_path("v1", "pods", namespace), f"{MANAGED_SELECTOR},component=jobmanager", cached_jobmanager_pod),
    ]
    informers = [
        Informer(client, path, label_selector=selector, transform=keep).start() for path, selector, keep in paths
    ]
    if not all(i.wait_synced(60) for i in informers):
        raise SystemExit("the informers did not sync")
    print("synced", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


def measure_resources(stack: Stack, work: Path, results: Results, window: float) -> None:
    kubeconfig = work / "stack" / "operator.kubeconfig"
    with watcher(kubeconfig, work / "watch-only.log") as floor:
        pids = {"flinkops": stack.operator.proc.pid, "floor": floor.pid}
        time.sleep(5)  # settle after the watcher's own list calls
        for side, percent in cpu_percent(pids, window).items():
            results.add(side, CPU_IDLE, percent)
            results.add(side, RSS_IDLE, usage(pids[side])[1])

        names = [f"idle-{i:03d}" for i in range(DEPLOYMENTS)]

        def apply(name: str) -> None:
            doc = verifier_deployment(name, s3=stack.s3, bucket=BUCKET, host_dir=stack.host_dir)
            doc["spec"]["podTemplate"]["spec"]["nodeSelector"] = dict(PENDING_SELECTOR)
            stack.apply(doc)

        say(f"applying {DEPLOYMENTS} deployments whose pods stay Pending")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(apply, names))

        def deployed() -> bool:
            # Without a scheduler (--resources-only) the pods just wait: DEPLOYED. On the node the scheduler says
            # no node matches, and the operator reports the JobManager Unschedulable (lifecycle FAILED until a
            # node comes): its work for the deployment is done either way.
            items = [i for i in stack.admin.get(FD).json()["items"] if i["metadata"]["name"] in names]
            return len(items) == DEPLOYMENTS and all(_children_and_status_written(i) for i in items)

        wait_for(f"{DEPLOYMENTS} deployments DEPLOYED (or reported Unschedulable)", deployed, 600, 1.0)
        say(f"{DEPLOYMENTS} deployments DEPLOYED (or reported Unschedulable)")
        time.sleep(10)  # settle: the last status writes and their watch events
        for side, percent in cpu_percent(pids, window).items():
            _, rss, peak = usage(pids[side])
            results.add(side, CPU_100, percent)
            results.add(side, RSS_100, rss)
            results.add(side, PEAK_100, peak)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: stack.admin.delete(f"{FD}/{n}"), names))
        wait_for("the 100 deployments gone", lambda: not stack.admin.get(FD).json()["items"], 600, 1.0)


def _children_and_status_written(item: dict[str, Any]) -> bool:
    status = item.get("status") or {}
    return status.get("lifecycleState") == "DEPLOYED" or status.get("errorReason") == ErrorReason.UNSCHEDULABLE.value


# ------------------------------------------------------------------------------------------------ report


def _median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def report(results: Results, rounds: int, *, resources_only: bool = False) -> list[str]:
    """Print the table (with ``resources_only``, the operator's CPU and RSS rows only); return the goals missed."""
    ops, floor = results.sides["flinkops"], results.sides["floor"]
    missed = []
    if resources_only:
        print("\nThe operator's CPU and RSS on a control plane without the node, next to the floor (a watch-only")
        print("process: the same informers, no reconciling), and the reference operator 1.15.0's recorded figures.\n")
    else:
        print("\nFlink on the real dev node: flinkops next to the floor (same manifests and REST calls by hand, no")
        print(f"operator) measured in the same run, median of {rounds} round(s), and the reference operator 1.15.0's")
        print("recorded figures (two runs). Seconds unless said. A shared 2-core machine: compare within one run.\n")
    head = f"{'figure':<56} {'flinkops':>9} {'floor':>9} {'ratio':>6}  {'reference':<25} {'goal':<10}"
    print(head)
    print("-" * len(head))
    for figure in REFERENCE:
        if resources_only and figure not in RESOURCE_FIGURES:
            continue
        mine, base = _median(ops.get(figure)), _median(floor.get(figure))
        ratio = f"{mine / base:.2f}" if mine is not None and base else "-"
        goal = GOALS.get(figure)
        verdict = ""
        if goal is not None and mine is None:
            verdict = f"<= {goal:g} not measured"
        elif goal is not None and mine is not None:
            verdict = f"<= {goal:g} {'ok' if mine <= goal else 'MISSED'}"
            if mine > goal:
                missed.append(f"{figure}: {mine:.2f} > {goal:g}")
        shown = "-" if mine is None else f"{mine:.2f}"
        base_shown = "-" if base is None else f"{base:.2f}"
        print(f"{figure:<56} {shown:>9} {base_shown:>9} {ratio:>6}  {REFERENCE[figure]:<25} {verdict}")
    print("\nrounds:")
    for side, figures in results.sides.items():
        for figure, values in figures.items():
            print(f"  {side:<9} {figure:<56} {[round(v, 2) for v in values]}")
    print("\nverifier:", *results.verified, sep="\n  ")
    return missed


# ------------------------------------------------------------------------------------------------ main


@contextlib.contextmanager
def control_plane_and_node(work: Path, home: Path | None) -> Iterator[KubeCluster]:
    """A fresh control plane and the node on it (stopped after; the node's lock makes this wait while a test
    session uses the machine's node), or, with ``home``, the ones ``flinkops dev up kubernetes --node`` runs for
    that flinkops home (left running)."""
    if home is None:
        with kube_control_plane(work / "kube") as kube, kube_node(kube):
            yield kube
        return
    from flinkops.dev.kubernetes import KubeControlPlane
    from flinkops.dev.node.node import KubeNode
    from flinkops.dev.services import DevServices

    plane = KubeControlPlane(DevServices(home).data_dir("kubernetes"))
    node = KubeNode(plane, usrlib=node_image_jars(), progress=say)
    if plane.pid() is None or node.owner() != str(plane.data_dir) or not node.healthy():
        raise SystemExit(f"no dev control plane with a Ready node runs for {home}: `flinkops dev up kubernetes --node`")
    node.start()  # adopts what runs; imports the image with the verifier job (the dev image plus the test jobs)
    yield KubeCluster(plane)


def run(args: argparse.Namespace, results: Results) -> None:
    work = Path(tempfile.mkdtemp(prefix="flinkops-bench-node-"))
    (work / "stack").mkdir()
    if args.resources_only:
        say(f"work directory {work}; resources only: a control plane of its own, no node")
        with (
            kube_control_plane(work / "kube") as kube,
            node_stack(kube, work / "stack", on_node=False) as stack,
        ):
            measure_resources(stack, work, results, args.window)
        shutil.rmtree(work, ignore_errors=True)
        return
    say(f"work directory {work}; the node is one per machine: this waits while a test session uses it")
    with (
        control_plane_and_node(work, args.home) as kube,
        node_stack(kube, work / "stack") as stack,
    ):
        bench = Bench(stack, Floor(stack, work / "floor"), results, args.batch_records)
        try:
            scenarios(bench, stack, work, results, args)
        finally:  # a failed round leaves floor clusters the stack's teardown does not know
            floor_left = f"{render.MANAGED_BY_LABEL}={FLOOR_MANAGER}"
            path = f"/apis/apps/v1/namespaces/{JOBS_NS}/deployments"
            for item in stack.admin.get(path, params={"labelSelector": floor_left}).json()["items"]:
                stack.admin.delete(f"{path}/{item['metadata']['name']}")
    shutil.rmtree(work, ignore_errors=True)  # kept when a round failed: the operator's log is in it


def scenarios(bench: Bench, stack: Stack, work: Path, results: Results, args: argparse.Namespace) -> None:
    if not args.skip_resources:  # first: "idle" is a fresh operator
        measure_resources(stack, work, results, args.window)
    for i in range(args.rounds):
        sides = [("flinkops", f"ops{i}"), ("floor", f"floor{i}")]
        for side, prefix in sides if i % 2 == 0 else sides[::-1]:
            say(f"round {i + 1}/{args.rounds}: {side}")
            if side == "flinkops":
                bench.lifecycle_flinkops(prefix)
                bench.ha_flinkops(f"{prefix}-ha")
                bench.batch_flinkops(f"{prefix}-batch")
            else:
                bench.lifecycle_floor(prefix)
                bench.ha_floor(f"{prefix}-ha")
                bench.batch_floor(f"{prefix}-batch")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one round, a shorter batch job and CPU windows")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--skip-resources", action="store_true", help="no CPU/RSS measurement")
    parser.add_argument(
        "--resources-only",
        action="store_true",
        help="only the operator's CPU/RSS, on a control plane of its own without the node (pods stay Pending)",
    )
    parser.add_argument(
        "--home",
        type=Path,
        help="use the control plane and node `flinkops dev up kubernetes --node` runs for this FLINKOPS_HOME",
    )
    parser.add_argument("--watch-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.watch_only:
        watch_only(args.kubeconfig, args.namespace)
        return 0
    args.rounds = 1 if args.quick else args.rounds
    args.batch_records = 500 if args.quick else 1500
    args.window = 10.0 if args.quick else 30.0
    results = Results()
    try:
        run(args, results)
    except BaseException:
        if any(results.sides.values()):
            report(results, args.rounds, resources_only=args.resources_only)  # what was measured before the failure
        raise
    missed = report(results, args.rounds, resources_only=args.resources_only)
    if missed:
        print("\ngoals missed:", *missed, sep="\n  ")
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
