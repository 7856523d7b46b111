"""The Ingress of a Flink cluster on Kubernetes: ``spec.ingress`` of the FlinkDeployment, routed to its REST Service.

``spec.ingress.template`` is a URL without its scheme in which ``{{name}}`` and ``{{namespace}}`` (any case) are
replaced by the deployment's: its host becomes the rule's host (none when the template starts with ``/``), its path
the rule's path (``pathType: ImplementationSpecific``, so an ingress controller may read it as a regular
expression such as ``/{{namespace}}/{{name}}(/|$)(.*)``, as the reference operator documents), and the backend is
the REST Service ``<name>-rest`` on the REST port. ``className`` becomes ``spec.ingressClassName``; ``annotations``
and ``labels`` go on the Ingress (flinkops' own labels and generation stamp win); ``tls`` entries are copied with
the same placeholders replaced in their hosts and secret names. A template that is not a URL raises
``ValueError``, which the runtime reports as a failed deploy.

Called by: ``render.render_cluster`` (after the Deployments, as the reference operator creates it last).
Invariants: pure; the Ingress is named like the deployment and owned by it, so deleting the FlinkDeployment
deletes it, and a spec without ``ingress`` renders none (the runtime removes one an earlier spec had).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from flinkops.api.models import IngressSpec
from flinkops.runtimes.kubernetes.context import RenderContext, object_metadata
from flinkops.runtimes.kubernetes.names import Manifest, rest_service_name

__all__ = ["ingress", "ingress_url"]

_NAME = re.compile(r"\{\{\s*name\s*\}\}", re.IGNORECASE)
_NAMESPACE = re.compile(r"\{\{\s*namespace\s*\}\}", re.IGNORECASE)
_SCHEME = re.compile(r"^https?://", re.IGNORECASE)


def _fill(template: str, name: str, namespace: str) -> str:
    return _NAMESPACE.sub(namespace, _NAME.sub(name, template))


def ingress_url(template: str, name: str, namespace: str) -> tuple[str | None, str | None]:
    """(host, path) of ``template`` for the deployment ``namespace/name``; either may be None."""
    filled = _fill(template.strip(), name, namespace)
    if not filled:
        raise ValueError("spec.ingress.template is empty")
    if not _SCHEME.match(filled):
        filled = "http:" + filled if filled.startswith("/") else "http://" + filled
    parts = urllib.parse.urlsplit(filled)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"spec.ingress.template {template!r} is not a URL: {exc}") from exc
    host = parts.hostname
    if host is not None and not re.fullmatch(r"[a-z0-9*]([-a-z0-9.*]*[a-z0-9])?", host):
        raise ValueError(f"spec.ingress.template {template!r} gives {host!r}, which is not a host name")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return host or None, path or None


def _tls(entries: list[dict[str, Any]] | None, name: str, namespace: str) -> list[dict[str, Any]]:
    result = []
    for entry in entries or []:
        item = dict(entry)
        if isinstance(item.get("hosts"), list):
            item["hosts"] = [_fill(str(h), name, namespace) for h in item["hosts"]]
        if isinstance(item.get("secretName"), str):
            item["secretName"] = _fill(item["secretName"], name, namespace)
        result.append(item)
    return result


def ingress(ctx: RenderContext, spec: IngressSpec | None, owner: Mapping[str, Any], generation: int) -> Manifest | None:
    """The cluster's Ingress, or None when the spec asks for none."""
    if spec is None:
        return None
    host, path = ingress_url(spec.template, ctx.name, ctx.namespace)
    backend = {"service": {"name": rest_service_name(ctx.name), "port": {"number": int(ctx.config["rest.port"])}}}
    http_path: dict[str, Any] = {"pathType": "ImplementationSpecific", "backend": backend}
    if path:
        http_path["path"] = path
    rule: dict[str, Any] = {"http": {"paths": [http_path]}}
    if host:
        rule["host"] = host
    metadata = object_metadata(ctx, ctx.name, owner, generation)
    metadata["labels"] = {**(spec.labels or {}), **metadata["labels"]}
    metadata["annotations"] = {**(spec.annotations or {}), **metadata["annotations"]}
    body: dict[str, Any] = {"rules": [rule]}
    if spec.class_name:
        body["ingressClassName"] = spec.class_name
    tls = _tls(spec.tls, ctx.name, ctx.namespace)
    if tls:
        body["tls"] = tls
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata, "spec": body}
