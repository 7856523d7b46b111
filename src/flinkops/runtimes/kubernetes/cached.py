"""What the runtime's informers keep of the JobManager and TaskManager Deployments and of the JobManager pods.

The runtime's caches hold every Deployment and JobManager pod flinkops manages, for as long as they exist; a
Deployment's pod template (containers, environment, volumes, the configuration's checksum) and a pod's spec are
most of each object and nothing reads them from the cache. These transforms (``Informer(transform=...)``) keep
exactly what the runtime reads from a cached object:

* a Deployment: its metadata (name, namespace, labels, the generation, job id and started-pod annotations, the
  creation time, the resourceVersion the cache orders by), ``spec.replicas``, the start gate of its pod template
  (``spec.template.spec.schedulingGates``) and its status (ready replicas);
* a JobManager pod: its metadata (the cluster label, uid, deletion and creation times), its start gate
  (``spec.schedulingGates``) and its status (container states and restarts, the scheduler's conditions, the pod
  IP the HA leader lock names).

``metadata.managedFields`` goes from both. What is read when the whole object matters (a pod's containers for a
fault's image name) is listed from the API server at that moment, never taken from the cache.

Called by: ``runtime.KubernetesRuntime.start`` (its informers). Invariant: a reader of the cache must find every
field it reads kept here (``tests/unit/test_kube_cached.py`` checks the runtime's readers on trimmed objects).
"""

from __future__ import annotations

from typing import Any

__all__ = ["cached_deployment", "cached_jobmanager_pod"]

Obj = dict[str, Any]


def _metadata(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    return {k: v for k, v in meta.items() if k != "managedFields"}


def _top(obj: Obj) -> Obj:
    kept: Obj = {k: obj[k] for k in ("apiVersion", "kind", "status") if k in obj}
    kept["metadata"] = _metadata(obj)
    return kept


def cached_deployment(obj: Obj) -> Obj:
    """What the runtime keeps of a Deployment (module docstring); ``obj`` itself is not changed."""
    spec = obj.get("spec") or {}
    kept_spec: Obj = {k: spec[k] for k in ("replicas",) if k in spec}
    gates = ((spec.get("template") or {}).get("spec") or {}).get("schedulingGates")
    if gates is not None:
        kept_spec["template"] = {"spec": {"schedulingGates": gates}}
    return {**_top(obj), "spec": kept_spec}


def cached_jobmanager_pod(obj: Obj) -> Obj:
    """What the runtime keeps of a JobManager pod (module docstring); ``obj`` itself is not changed."""
    gates = (obj.get("spec") or {}).get("schedulingGates")
    return {**_top(obj), "spec": {} if gates is None else {"schedulingGates": gates}}
