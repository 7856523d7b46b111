"""Where the CLI's resources live: the local store (default) or a Kubernetes API server.

``--context NAME`` (a kubeconfig context) or ``FLINKOPS_TARGET=kubernetes`` (the current context) make ``apply``,
``get``, ``describe``, ``delete``, ``suspend``, ``resume``, ``savepoint`` and the other commands that read or
change resources work on the API server's custom resources; the operator there does the reconciling, so no
local controller is started. Commands that only make sense for local clusters (``logs``, ``plan``,
``controller ...``) refuse with a pointer to the Kubernetes way.

Called by: ``cli.main`` (its global options) and the commands.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from flinkops.errors import InvalidInput, Problem

if TYPE_CHECKING:
    from flinkops.stores.kubernetes import KubernetesStore

__all__ = ["choose", "kube_store", "kubernetes", "local_only"]

TARGET_ENV = "FLINKOPS_TARGET"
_chosen: dict[str, str | None] = {"context": None, "kubeconfig": None}
_store: list[KubernetesStore] = []


def choose(context: str | None, kubeconfig: str | None) -> None:
    _chosen["context"], _chosen["kubeconfig"] = context, kubeconfig
    _store.clear()
    value = os.environ.get(TARGET_ENV, "").strip().lower()
    if value not in ("", "local", "kubernetes"):
        raise InvalidInput([Problem(TARGET_ENV, f"{value!r} is neither local nor kubernetes")])


def kubernetes() -> bool:
    return bool(_chosen["context"] or _chosen["kubeconfig"]) or os.environ.get(TARGET_ENV, "").lower() == "kubernetes"


def kube_store() -> KubernetesStore:
    """A direct (uncached) store on the chosen context's API server."""
    if not _store:
        from flinkops.kube.client import KubeClient, load_config
        from flinkops.stores.kubernetes import KubernetesStore

        client = KubeClient(load_config(_chosen["context"], _chosen["kubeconfig"]))
        _store.append(KubernetesStore(client, component="flinkops-cli"))
    return _store[0]


def local_only(command: str, instead: str) -> None:
    """Refuse ``command`` on a Kubernetes target (exit 2), saying what to use there."""
    if kubernetes():
        raise InvalidInput([Problem(command, "works on local clusters only", f"on Kubernetes: {instead}")])
