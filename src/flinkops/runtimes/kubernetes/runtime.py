"""ClusterRuntime over the Kubernetes API: a Flink cluster is a set of Deployments, Services and a ConfigMap.

``deploy`` renders the objects of one cluster (``runtimes.kubernetes.render``: JobManager Deployment, in
standalone mode a TaskManager Deployment, the JobManager and REST Services, the configuration ConfigMap) and
server-side-applies them as field manager ``flinkops``, each owned by its FlinkDeployment, the JobManager
Deployment stamped with the resource generation and the job id. ``observe`` reads the JobManager Deployment
(and the TaskManager one) from a watch-fed cache (which keeps only the fields it reads: ``cached``): the
generation and job id stamped on it say what was applied, its ready replicas say whether a JobManager lives.
``delete`` removes the cluster's own objects and waits until their pods are gone, so an upgrade never runs two
JobManagers of one cluster at once.

**HA metadata.** With Kubernetes HA, Flink writes ConfigMaps of its own (named ``<cluster id>-...-config-map`` or
``...-leader``, labelled ``app=<cluster id>`` and ``type=flink-native-kubernetes``, which Flink 1.x completes with
``configmap-type=high-availability`` and Flink 2.x does not, so :func:`ha_selector` asks for the first two and the
names tell the HA ones; no owner reference, so nothing collects them) naming
every job the cluster runs and its checkpoints, and a JobManager that starts under the same cluster id recovers
those jobs. As in the local runtime, a deleted cluster leaves no HA metadata and a new cluster starts from none:
``delete`` removes them once the pods are gone (a JobManager still running could write them again), and ``deploy``
removes leftovers before it creates a JobManager Deployment that does not exist yet (a delete interrupted between
the two, or a predecessor under the same name). The controller, not Flink's HA recovery, decides what a new
deployment restores (the stopped job's newest checkpoint in storage, under a new job id): otherwise a last-state
upgrade would run the old job, recovered by Flink, next to the new one, and a deployment created again under an old
name would resurrect its predecessor's jobs. A JobManager pod that dies *inside* a running cluster is not a delete:
Kubernetes restarts it and Flink recovers its job from the metadata, as it should.

**HA failover without waiting for the lease.** When the pod watch sees a JobManager's container end (terminated,
restarted, or the pod gone), the runtime asks ``haleader.Releaser`` whether the dead process held Flink's leader
lock; if it provably did, the lock is released under a resourceVersion precondition, and the standby leads at its
next try instead of after the 15 s lease (the rules are in ``haleader``).

**A JobManager without HA runs its job once** (``pods.START_GATE``). The JobManager pods of an application
cluster without HA are created behind a scheduling gate; the runtime lifts it for the first pod of the
Deployment's generation only, after recording that pod's uid on the Deployment (annotation
:data:`STARTED_POD_ANNOTATION`, ``<generation>/<uid>``). When that pod is gone or terminating, or its container
was restarted (the restarted container waits instead of starting Flink), ``observe`` reports the JobManager
dead, and the controller redeploys from the newest checkpoint; a pod the ReplicaSet made in its place stays
gated until the cluster is replaced. A watch on the JobManager pods lifts the gate and wakes the controller as
soon as a JobManager pod changes.

**Reaching the REST API.** In a pod the operator reaches a JobManager at its REST Service's cluster DNS name
(``http://<name>-rest.<namespace>.svc:8081``, :data:`REST_ADDRESS_DNS`, the default). An operator running outside
the cluster (a workstation, or the dev node's host) cannot resolve that name; with :data:`REST_ADDRESS_CLUSTER_IP`
it uses the Service's ClusterIP instead, read from the API (the address kube-proxy answers on every node, the
host's too). The ClusterIP is taken from the Service the runtime applies and kept until the cluster is deleted.

**Faults Flink cannot report.** While a pod of the cluster is not ready, ``observe`` lists the cluster's pods and
reads what keeps them from running Flink (``faults.py``: an image not on the node, a pod no node can take, a
container that keeps exiting, one that cannot be created) into ``ClusterObservation.fault``; the controller records
it and touches nothing. The pod watch wakes the controller when such a reason appears on a JobManager pod.

Kubernetes replaces dead pods itself, so ``replace_missing_processes`` has nothing to do, and logs are read with
``kubectl logs`` (``log_files`` is empty).

Called by: the operator (``controller.operator``) through the ``ClusterRuntime`` port.
Invariant: only objects labelled ``app.kubernetes.io/managed-by=flinkops`` are ever changed or deleted, and,
while no pod of the cluster runs, the HA ConfigMaps Flink labelled with the cluster's id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from flinkops.errors import ClusterFault, NotFound, RuntimeFailure, TemporaryError
from flinkops.kube.client import KubeClient, KubeForbidden, object_path, parse_time
from flinkops.kube.informer import Informer
from flinkops.ports import ClusterKey, ClusterObservation, ClusterRequest
from flinkops.runtimes.kubernetes import render
from flinkops.runtimes.kubernetes.cached import cached_deployment, cached_jobmanager_pod
from flinkops.runtimes.kubernetes.faults import cluster_fault, pod_signature
from flinkops.runtimes.kubernetes.haleader import Releaser
from flinkops.runtimes.kubernetes.pods import has_start_gate

__all__ = [
    "MANAGED_SELECTOR",
    "REST_ADDRESSES",
    "REST_ADDRESS_CLUSTER_IP",
    "REST_ADDRESS_DNS",
    "STARTED_POD_ANNOTATION",
    "KubernetesRuntime",
    "ha_selector",
    "is_ha_config_map_name",
]

log = logging.getLogger("flinkops.runtime")

MANAGED_SELECTOR = "app.kubernetes.io/managed-by=flinkops"
_DELETE_TIMEOUT = 120.0
_PLURALS = {
    ("apps/v1", "Deployment"): "deployments",
    ("v1", "Service"): "services",
    ("v1", "ConfigMap"): "configmaps",
    ("networking.k8s.io/v1", "Ingress"): "ingresses",
}
_INGRESSES = ("networking.k8s.io/v1", "ingresses")
_REST_PORT = 8081
#: How the operator addresses a JobManager's REST API (module docstring): the Service's cluster DNS name, or
#: its ClusterIP read from the API (an operator outside the cluster).
REST_ADDRESS_DNS = "service-dns"
REST_ADDRESS_CLUSTER_IP = "cluster-ip"
REST_ADDRESSES = (REST_ADDRESS_DNS, REST_ADDRESS_CLUSTER_IP)
#: On a gated JobManager Deployment: ``<generation>/<pod uid>`` of the pod whose start gate was lifted.
STARTED_POD_ANNOTATION = "flinkops.io/jobmanager-pod"
_JOBMANAGER_PODS = f"{MANAGED_SELECTOR},component=jobmanager"

Obj = dict[str, Any]


def ha_selector(name: str) -> str:
    """The label selector of the HA ConfigMaps Flink writes for the cluster ``name`` (its cluster id): the labels
    every Flink version puts on them (``KubernetesUtils.getCommonLabels``; 1.x adds ``configmap-type``, 2.x does
    not), flinkops' own ConfigMaps excluded. :func:`is_ha_config_map_name` tells the HA ones among what it finds."""
    return f"{render.CLUSTER_LABEL}={name},type=flink-native-kubernetes,!{render.MANAGED_BY_LABEL}"


def is_ha_config_map_name(cluster: str, name: str) -> bool:
    """Whether ``name`` is one Flink gives the HA ConfigMaps of ``cluster``."""
    return name.startswith(f"{cluster}-") and name.endswith(("-config-map", "-leader"))


def manifest_path(manifest: Mapping[str, Any]) -> str:
    api_version, kind = str(manifest.get("apiVersion")), str(manifest.get("kind"))
    plural = _PLURALS.get((api_version, kind))
    if plural is None:
        raise RuntimeFailure(f"flinkops does not manage {api_version} {kind} objects")
    meta = manifest.get("metadata") or {}
    return object_path(api_version, plural, meta.get("namespace"), meta.get("name"))


def _template_gated(deployment: Obj) -> bool:
    """The Deployment's pod template carries the start-once gate (its cluster starts its JobManager once)."""
    return has_start_gate(((deployment.get("spec") or {}).get("template") or {}).get("spec"))


def _started_pod(jm: Obj, generation: int | None) -> str | None:
    """The uid of the JobManager pod started for ``generation`` (recorded on the Deployment), if any."""
    recorded = str(((jm.get("metadata") or {}).get("annotations") or {}).get(STARTED_POD_ANNOTATION) or "")
    stamped, _, uid = recorded.partition("/")
    return uid if uid and stamped == str(generation) else None


def _main_container_status(pod: Obj) -> Obj | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == render.MAIN_CONTAINER:
            found: Obj = status
            return found
    return None


def _service_dns_url(key: ClusterKey) -> str:
    return f"http://{render.rest_service_name(key.name)}.{key.namespace}.svc:{_REST_PORT}"


def _ready(deployment: Obj | None) -> tuple[int, int]:
    if deployment is None:
        return 0, 0
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    replicas = spec.get("replicas")
    return int(status.get("readyReplicas") or 0), int(replicas) if replicas is not None else 1


class KubernetesRuntime:
    """``rest_address`` says how the controller reaches a cluster's REST API (:data:`REST_ADDRESSES`; in a pod the
    default, the REST Service's cluster DNS name, is right); ``rest_url``, when given, builds the address instead."""

    elastic_sessions = False  # native mode grows session clusters itself; standalone ones keep their replicas

    def __init__(
        self,
        client: KubeClient,
        namespaces: Sequence[str] = (),
        *,
        resync: float = 300.0,
        wakeup: threading.Event | None = None,
        rest_url: Callable[[ClusterKey], str | None] | None = None,
        rest_address: str = REST_ADDRESS_DNS,
    ) -> None:
        if rest_address not in REST_ADDRESSES:
            raise ValueError(f"rest_address must be one of {REST_ADDRESSES}, not {rest_address!r}")
        self.client = client
        self.namespaces = tuple(namespaces)
        self.resync = resync
        self.wakeup = wakeup
        self.rest_url: Callable[[ClusterKey], str | None] = rest_url or (
            self._cluster_ip_url if rest_address == REST_ADDRESS_CLUSTER_IP else _service_dns_url
        )
        self._cluster_ips: dict[ClusterKey, str] = {}
        self._pod_informers: dict[str, Informer] = {}
        self._gate_lock = threading.Lock()
        self._pods_seen: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._informers: dict[str, Informer] = {}
        self._lock = threading.Lock()
        self._changed: set[ClusterKey] = set()
        self._ready_seen: dict[ClusterKey, tuple[int, int]] = {}
        self.leader_locks = Releaser(client)

    # ------------------------------------------------------------------ cache

    def start(self) -> None:
        for namespace in self.namespaces or ("",):
            informer = Informer(
                self.client,
                object_path("apps/v1", "deployments", namespace or None),
                label_selector=MANAGED_SELECTOR,
                on_change=self._on_change,
                resync=self.resync,
                name=f"deployments@{namespace or '*'}",
                transform=cached_deployment,
            )
            self._informers[namespace] = informer.start()
            pods = Informer(
                self.client,
                object_path("v1", "pods", namespace or None),
                label_selector=_JOBMANAGER_PODS,
                on_change=self._on_pod_change,
                resync=self.resync,
                name=f"jobmanager-pods@{namespace or '*'}",
                transform=cached_jobmanager_pod,
            )
            self._pod_informers[namespace] = pods.start()

    def wait_synced(self, timeout: float) -> bool:
        informers = [*self._informers.values(), *self._pod_informers.values()]
        return all(i.wait_synced(timeout) for i in informers)

    def stop(self) -> None:
        for informer in [*self._informers.values(), *self._pod_informers.values()]:
            informer.stop()

    def _informer(self, namespace: str) -> Informer | None:
        informer = self._informers.get(namespace) or self._informers.get("")
        return informer if informer is not None and informer.synced else None

    def _on_change(self, type_: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        name = labels.get(render.CLUSTER_LABEL)
        if not name:
            return
        key = ClusterKey(str(meta.get("namespace") or ""), str(name))
        ready = (-1, -1) if type_ == "DELETED" else _ready(obj)
        with self._lock:
            if self._ready_seen.get(key) == ready:
                return
            self._ready_seen[key] = ready
            self._changed.add(key)
        if self.wakeup is not None:
            self.wakeup.set()

    def _on_pod_change(self, type_: str, pod: Obj) -> None:
        """A JobManager pod appeared, changed or went: lift a start gate that is due, and wake the controller when
        the pod's life changed (created, deleted, terminating, restarted, ready or not)."""
        meta = pod.get("metadata") or {}
        name = (meta.get("labels") or {}).get(render.CLUSTER_LABEL)
        if not name:
            return
        key = ClusterKey(str(meta.get("namespace") or ""), str(name))
        main = _main_container_status(pod)
        state = sorted(((main or {}).get("state") or {}).keys())
        seen = (
            type_ == "DELETED",
            meta.get("deletionTimestamp") is not None,
            has_start_gate(pod.get("spec")),
            (main or {}).get("restartCount"),
            (main or {}).get("ready"),
            pod_signature(pod),
            state,
        )
        pod_key = (key.namespace, str(meta.get("name")))
        with self._lock:
            if self._pods_seen.get(pod_key) == seen:
                return
            if type_ == "DELETED":
                self._pods_seen.pop(pod_key, None)
            else:
                self._pods_seen[pod_key] = seen
            self._changed.add(key)
        if seen[2] and type_ != "DELETED":
            try:
                self._lift_start_gate(key, self._jobmanager_pods(key))
            except (NotFound, TemporaryError, RuntimeFailure) as exc:
                log.warning("%s: could not start the JobManager pod yet: %s", key, exc)
        if type_ == "DELETED":
            self.leader_locks.forget_pod(key.namespace, key.name, pod)
        if type_ == "DELETED" or state != ["running"] or (main or {}).get("lastState"):
            self.leader_locks.check(key.namespace, key.name, self._jobmanager_pods(key))
        if self.wakeup is not None:
            self.wakeup.set()

    def _jobmanager_pods(self, key: ClusterKey) -> list[Obj]:
        informer = self._pod_informers.get(key.namespace) or self._pod_informers.get("")
        if informer is not None and informer.synced:
            return [
                p
                for p in informer.objects()
                if (p.get("metadata") or {}).get("namespace") == key.namespace
                and ((p.get("metadata") or {}).get("labels") or {}).get(render.CLUSTER_LABEL) == key.name
            ]
        selector = f"{render.CLUSTER_LABEL}={key.name},component=jobmanager"
        items: list[Obj] = (
            self.client.list(object_path("v1", "pods", key.namespace), label_selector=selector).get("items") or []
        )
        return items

    def _lift_start_gate(self, key: ClusterKey, pods: Sequence[Obj]) -> None:
        """Start the first gated JobManager pod of the Deployment's generation, once: its uid is written to the
        Deployment before the gate goes, so a pod started before can always be told from one that never was. The
        Deployment is read under the lock: the pod watch and a pass may both come here, and the one that comes
        second must see the start the first recorded (a copy read before would start a second pod)."""
        with self._gate_lock:
            jm = self._deployment(key.namespace, render.jobmanager_name(key.name))
            if jm is None or not _template_gated(jm):
                return
            generation = render.generation_of(jm)
            if _started_pod(jm, generation) is not None:
                return
            waiting = sorted(
                (
                    p
                    for p in pods
                    if has_start_gate(p.get("spec"))
                    and (p.get("metadata") or {}).get("deletionTimestamp") is None
                    and render.generation_of(p) == generation
                ),
                key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""),
            )
            if not waiting:
                return
            pod_meta = waiting[0]["metadata"]
            path = object_path("apps/v1", "deployments", key.namespace, render.jobmanager_name(key.name))
            stamp = {"metadata": {"annotations": {STARTED_POD_ANNOTATION: f"{generation}/{pod_meta['uid']}"}}}
            written = self.client.patch(path, stamp)
            informer = self._informer(key.namespace)
            if informer is not None:
                informer.remember(written)
            pod_path = object_path("v1", "pods", key.namespace, pod_meta["name"])
            self.client.patch(pod_path, {"spec": {"schedulingGates": None}})
            log.info("%s: started JobManager pod %s (generation %s)", key, pod_meta["name"], generation)

    def _jobmanager_lost(self, key: ClusterKey, jm: Obj) -> bool:
        """A gated cluster's JobManager is lost: the pod started for this generation is gone or terminating,
        or its container was restarted (and waits). Lifts the start gate when it is due."""
        if not _template_gated(jm):
            return False
        pods = self._jobmanager_pods(key)
        started = _started_pod(jm, render.generation_of(jm))
        if started is None:
            self._lift_start_gate(key, pods)
            return False
        for pod in pods:
            meta = pod.get("metadata") or {}
            if meta.get("uid") == started:
                main = _main_container_status(pod) or {}
                return meta.get("deletionTimestamp") is not None or int(main.get("restartCount") or 0) > 0
        return True

    def _deployment(self, namespace: str, name: str) -> Obj | None:
        informer = self._informer(namespace)
        if informer is not None:
            return informer.get(namespace, name)
        return self.client.get(object_path("apps/v1", "deployments", namespace, name))

    # ------------------------------------------------------------------ ClusterRuntime

    def deploy(self, request: ClusterRequest) -> ClusterObservation:
        try:
            manifests = render.render_request(request)
        except ValueError as exc:
            raise RuntimeFailure(f"{request.key}: {exc}") from exc
        key = request.key
        jobmanager = object_path("apps/v1", "deployments", key.namespace, render.jobmanager_name(key.name))
        if self.client.get(jobmanager) is None:
            self._remove_ha_metadata(key)  # a new cluster starts from none (module docstring)
        for manifest in manifests:
            written = self.client.apply(manifest_path(manifest), manifest)
            self._remember_cluster_ip(key, written)
            if written.get("kind") == "Deployment":
                informer = self._informer(request.key.namespace)
                if informer is not None:
                    informer.remember(written)
        if not any(m.get("kind") == "Ingress" for m in manifests):
            self._remove_ingress(key)  # an earlier spec had one
        log.info("%s: applied %d objects for generation %d", request.key, len(manifests), request.generation)
        observed = self.observe(request.key)
        if observed is None:
            raise TemporaryError(f"{request.key}: the JobManager Deployment is not there right after it was applied")
        return observed

    def observe(self, key: ClusterKey) -> ClusterObservation | None:
        jm = self._deployment(key.namespace, render.jobmanager_name(key.name))
        if jm is None:
            return None
        tm = self._deployment(key.namespace, render.taskmanager_name(key.name))
        annotations = (jm.get("metadata") or {}).get("annotations") or {}
        jm_ready, jm_expected = _ready(jm)
        tm_ready, tm_expected = _ready(tm)
        generation = render.generation_of(jm)
        # Kubernetes restarts and replaces the pods of a Deployment itself: its pods count as alive (a pod that
        # is only starting, or pulling its image, must not look like a dead JobManager to be redeployed). Whether
        # a JobManager answers is what ``rest_url`` says: it is set once a JobManager pod is ready.
        lost = self._jobmanager_lost(key, jm)
        if lost:
            log.warning("%s: the JobManager pod of this cluster (no HA) is gone or restarted", key)
        return ClusterObservation(
            key=key,
            generation=generation if generation is not None else 0,
            jobmanagers_alive=0 if lost else jm_expected,
            jobmanagers_expected=jm_expected,
            taskmanagers_alive=tm_expected if tm is not None else 0,
            taskmanagers_expected=tm_expected if tm is not None else 0,
            rest_url=self.rest_url(key) if jm_ready > 0 and not lost else None,
            job_id=annotations.get(render.JOB_ID_ANNOTATION) or None,
            started_at=parse_time((jm.get("metadata") or {}).get("creationTimestamp")),
            fault=self._fault(key, jm) if lost or jm_ready < jm_expected or tm_ready < tm_expected else None,
        )

    def _fault(self, key: ClusterKey, jm: Obj) -> ClusterFault | None:
        """What is wrong with the cluster's pods (``faults.py``), read while one of them is not ready; None when
        nothing is, or the pods cannot be listed this time (the next pass reads them again)."""
        selector = f"{render.CLUSTER_LABEL}={key.name},component in (jobmanager,taskmanager)"
        try:
            pods = self.client.list(object_path("v1", "pods", key.namespace), label_selector=selector)
        except (TemporaryError, KubeForbidden) as exc:
            log.debug("%s: could not list the cluster's pods: %s", key, exc)
            return None
        start_once = _template_gated(jm)
        fault = cluster_fault(pods.get("items") or [], start_once=start_once)
        if fault is not None:
            log.debug("%s: %s", key, fault.message)  # the controller records it (status, event) once
        return fault

    def prepare(self, request: ClusterRequest) -> str | None:
        """Pre-started upgrades are a local runtime feature for now: the upgrade runs in the usual order."""
        return "pre-starting the next cluster is not supported on Kubernetes yet"

    def delete(self, key: ClusterKey, *, keep_prepared: bool = False) -> None:
        # ``keep_prepared`` is ignored: this runtime never prepares a cluster.
        selector = f"{MANAGED_SELECTOR},{render.CLUSTER_LABEL}={key.name}"
        self._remove_ingress(key)
        for api_version, plural in (("apps/v1", "deployments"), ("v1", "services"), ("v1", "configmaps")):
            path = object_path(api_version, plural, key.namespace)
            for item in self.client.list(path, label_selector=selector).get("items") or []:
                name = item["metadata"]["name"]
                self.client.delete(object_path(api_version, plural, key.namespace, name), propagation="Foreground")
        informer = self._informer(key.namespace)
        if informer is not None:
            for name in (render.jobmanager_name(key.name), render.taskmanager_name(key.name)):
                informer.forget(key.namespace, name)
        with self._lock:
            self._cluster_ips.pop(key, None)
        self._wait_gone(key, selector)
        self.leader_locks.forget_cluster(key.namespace, key.name)
        self._remove_ha_metadata(key)

    # ------------------------------------------------------------------ REST address

    def _remember_cluster_ip(self, key: ClusterKey, written: Obj) -> None:
        meta, spec = written.get("metadata") or {}, written.get("spec") or {}
        if written.get("kind") == "Service" and meta.get("name") == render.rest_service_name(key.name):
            address = spec.get("clusterIP")
            if address and address != "None":
                with self._lock:
                    self._cluster_ips[key] = str(address)

    def _cluster_ip_url(self, key: ClusterKey) -> str | None:
        """``http://<ClusterIP>:8081`` of the cluster's REST Service (read once from the API, then kept); None
        while the Service has no ClusterIP."""
        with self._lock:
            address = self._cluster_ips.get(key)
        if address is None:
            path = object_path("v1", "services", key.namespace, render.rest_service_name(key.name))
            found = self.client.get(path)
            if found is None:
                return None
            self._remember_cluster_ip(key, found)
            with self._lock:
                address = self._cluster_ips.get(key)
        return f"http://{address}:{_REST_PORT}" if address else None

    def _remove_ingress(self, key: ClusterKey) -> None:
        """Delete the cluster's Ingress if flinkops made one. An operator without rights on Ingresses (a Role of
        its own making) cannot have made one: that is not an error."""
        path = object_path(*_INGRESSES, key.namespace, render.jobmanager_name(key.name))
        try:
            found = self.client.get(path)
        except KubeForbidden:
            return
        labels = ((found or {}).get("metadata") or {}).get("labels") or {}
        if labels.get(render.MANAGED_BY_LABEL) == "flinkops" and labels.get(render.CLUSTER_LABEL) == key.name:
            self.client.delete(path, propagation=None)

    def _remove_ha_metadata(self, key: ClusterKey) -> None:
        """Delete the HA ConfigMaps Flink wrote for the cluster (none of its pods runs any more)."""
        path = object_path("v1", "configmaps", key.namespace)
        items = self.client.list(path, label_selector=ha_selector(key.name)).get("items") or []
        names = sorted(str(item["metadata"]["name"]) for item in items)
        for name in (n for n in names if is_ha_config_map_name(key.name, n)):
            self.client.delete(object_path("v1", "configmaps", key.namespace, name), propagation=None)
            log.info("%s: removed Flink's HA ConfigMap %s", key, name)

    def _wait_gone(self, key: ClusterKey, selector: str) -> None:
        """Until the cluster's Deployments and pods are gone: a new JobManager must never meet an old one."""
        deadline = time.monotonic() + _DELETE_TIMEOUT
        pod_selector = f"{render.CLUSTER_LABEL}={key.name}"
        while True:
            deployments = self.client.list(
                object_path("apps/v1", "deployments", key.namespace), label_selector=selector
            )
            pods = self.client.list(object_path("v1", "pods", key.namespace), label_selector=pod_selector)
            left = len(deployments.get("items") or []) + len(pods.get("items") or [])
            if left == 0:
                return
            if time.monotonic() > deadline:
                raise TemporaryError(
                    f"{key}: {left} Deployment(s)/pod(s) still terminating after {_DELETE_TIMEOUT:.0f}s"
                )
            time.sleep(0.25)  # the runtime's own wait for an effect to finish, not controller pacing

    def scale_taskmanagers(
        self, key: ClusterKey, count: int, environment: Mapping[str, str] | None = None, *, stop: Sequence[int] = ()
    ) -> int:
        # ``stop`` is not used: a Deployment's replicas cannot be chosen one by one (and no elastic_sessions here).
        tm = self._deployment(key.namespace, render.taskmanager_name(key.name))
        if tm is None:
            return 0  # native mode: Flink's resource manager asks for TaskManager pods itself
        _, before = _ready(tm)
        if before == count:
            return 0
        path = object_path("apps/v1", "deployments", key.namespace, render.taskmanager_name(key.name))
        try:
            self.client.patch(path, {"spec": {"replicas": count}})
        except NotFound:
            return 0
        return count - before

    def changed_clusters(self) -> Sequence[ClusterKey]:
        with self._lock:
            changed, self._changed = self._changed, set()
        return sorted(changed, key=str)

    def replace_missing_processes(self, key: ClusterKey, environment: Mapping[str, str] | None = None) -> int:
        return 0  # Deployments replace their pods

    def log_files(self, key: ClusterKey, component: str | None = None) -> Sequence[Path]:
        return ()
