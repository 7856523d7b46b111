"""Which target the CLI works on: the local store (default) or a Kubernetes API server.

``--context NAME`` (a kubeconfig context) or ``FLINKOPS_TARGET=kubernetes`` (the current context) make ``apply``,
``get``, ``describe``, ``delete``, ``suspend``, ``resume``, ``savepoint`` and the other commands that read or
change resources work on the API server's custom resources; the operator there does the reconciling, so no
local controller is started. Commands that only make sense for local clusters (``logs``, ``plan``,
``controller ...``) refuse with a pointer to the Kubernetes way.

The target itself (store and adapters) is the service layer's (``flinkops.service.target``); this module only
remembers what the global options chose.

Called by: ``cli.app`` (its global options) and the commands.
"""

from __future__ import annotations

import os

from flinkops.errors import InvalidInput, Problem
from flinkops.service.target import KubernetesTarget, LocalTarget, Target
from flinkops.service.target import local_only as _local_only
from flinkops.settings import default_home

__all__ = ["choose", "current", "kubernetes", "local", "local_only"]

TARGET_ENV = "FLINKOPS_TARGET"
_chosen: dict[str, str | None] = {"context": None, "kubeconfig": None}
_current: list[Target] = []


def choose(context: str | None, kubeconfig: str | None) -> None:
    _chosen["context"], _chosen["kubeconfig"] = context, kubeconfig
    _current.clear()
    value = os.environ.get(TARGET_ENV, "").strip().lower()
    if value not in ("", "local", "kubernetes"):
        raise InvalidInput([Problem(TARGET_ENV, f"{value!r} is neither local nor kubernetes")])


def kubernetes() -> bool:
    return bool(_chosen["context"] or _chosen["kubeconfig"]) or os.environ.get(TARGET_ENV, "").lower() == "kubernetes"


def current() -> Target:
    """The chosen target (one per command run)."""
    if not _current:
        home = default_home()
        chosen = (
            KubernetesTarget(_chosen["context"], _chosen["kubeconfig"], home) if kubernetes() else LocalTarget(home)
        )
        _current.append(chosen)
    return _current[0]


def local() -> LocalTarget:
    """The local target, for commands about this machine's controller daemon."""
    found = current()
    return found if isinstance(found, LocalTarget) else LocalTarget(default_home())


def local_only(command: str, instead: str) -> None:
    """Refuse ``command`` on a Kubernetes target (exit 2), saying what to use there."""
    _local_only(current(), command, instead)
