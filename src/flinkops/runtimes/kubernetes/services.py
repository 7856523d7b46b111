"""The Services of a Flink cluster on Kubernetes: the JobManager's internal address and its REST endpoint.

* Service ``<name>``: headless, the JobManager's RPC (6123) and blob (6124) ports, named as Flink's native
  integration names them (``jobmanager-rpc``, ``blobserver``), resolvable before the JobManager is ready;
* Service ``<name>-rest``: port 8081, type from ``kubernetes.rest-service.exposed.type`` (default ClusterIP,
  as the reference operator defaults it; ``Headless_ClusterIP`` makes it headless), annotations from
  ``kubernetes.rest-service.annotations``.

Called by: ``render.render_cluster``. Invariants: pure; both select the JobManager pods by
``names.selector_labels`` only, and their ports are the render context's fixed ports (never Flink's random 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flinkops.runtimes.kubernetes.context import RenderContext, object_metadata, parse_map
from flinkops.runtimes.kubernetes.names import Manifest, child_names, selector_labels

__all__ = ["services"]


def services(ctx: RenderContext, owner: Mapping[str, Any], generation: int) -> list[Manifest]:
    """The headless JobManager Service and the REST Service, in that order."""
    names = child_names(ctx.name, ctx.mode)
    selector = selector_labels(ctx.name, ctx.mode, "jobmanager")
    rpc, blob, rest = (int(ctx.config[k]) for k in ("jobmanager.rpc.port", "blob.server.port", "rest.port"))
    internal = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_metadata(ctx, names.service, owner, generation, component="jobmanager"),
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "None",
            "selector": selector,
            # Only Flink's own RPC and blob traffic uses this name; resolving it before the JobManager is
            # ready lets TaskManagers connect the moment it listens instead of after the next DNS refresh.
            "publishNotReadyAddresses": True,
            "ports": [
                {"name": "jobmanager-rpc", "port": rpc, "targetPort": rpc, "protocol": "TCP"},
                {"name": "blobserver", "port": blob, "targetPort": blob, "protocol": "TCP"},
            ],
        },
    }
    exposed = ctx.config.get("kubernetes.rest-service.exposed.type", "").strip() or "ClusterIP"
    rest_spec: dict[str, Any] = {
        "type": "ClusterIP" if exposed == "Headless_ClusterIP" else exposed,
        "selector": selector,
        "ports": [{"name": "rest", "port": rest, "targetPort": rest, "protocol": "TCP"}],
    }
    if exposed == "Headless_ClusterIP":
        rest_spec["clusterIP"] = "None"
    rest_meta = object_metadata(ctx, names.rest_service, owner, generation, component="jobmanager")
    rest_meta["annotations"].update(parse_map(ctx.config.get("kubernetes.rest-service.annotations")))
    return [internal, {"apiVersion": "v1", "kind": "Service", "metadata": rest_meta, "spec": rest_spec}]
