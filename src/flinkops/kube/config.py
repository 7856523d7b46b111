"""Where the API server is and how to authenticate: a kubeconfig context, or the pod's own service account.

The file is read with lightkube's kubeconfig models (``lightkube.config``): clusters, users, contexts, paths
relative to the file, certificate data, the in-cluster service account. This module adds what a CLI user needs
when something is wrong (the known contexts, the file and user at fault) and keeps the raw ``exec`` and
``auth-provider`` sections, which lightkube's models cut short (``interactiveMode``, ``provideClusterInfo``).

Lookup as kubectl's: ``--kubeconfig``, else the first file of ``KUBECONFIG``, else ``~/.kube/config``; inside a
pod, with none of them and no context chosen, the service account's token, CA and namespace.

Called by: ``kube.client`` (``KubeClient`` builds its connection from a ``KubeConfig``), the operator command and
the CLI's Kubernetes target (``load_config``).
Invariant: a ``KubeConfig``'s repr, and every error raised here, name files, contexts and users, never a
credential.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import yaml
from lightkube.config.kubeconfig import KubeConfig as LightkubeConfig
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core.exceptions import ConfigError

from flinkops.errors import InvalidInput, Problem

__all__ = [
    "SERVICE_ACCOUNT_DIR",
    "KubeConfig",
    "KubeCredentialsError",
    "in_cluster_config",
    "load_config",
    "load_kubeconfig",
]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's: kubeconfigs carry long base64 strings


class KubeCredentialsError(InvalidInput):
    """The credentials a kubeconfig user names cannot be had: an exec plugin that fails, is missing or prints
    something else than an ExecCredential, an auth provider flinkops cannot use, an unreadable token file.
    The problem's path names the kubeconfig file and the user; the CLI exits 2."""


@dataclass(frozen=True)
class KubeConfig:
    """One resolved context. ``settings`` is lightkube's view of it (cluster, user, TLS material): never shown."""

    server: str
    settings: SingleConfig = field(repr=False, compare=False)
    namespace: str = "default"
    context: str = ""
    user: str = ""
    source: str = ""  # the kubeconfig file, or the service account directory
    in_cluster: bool = False
    exec: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    auth_provider: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def where(self) -> str:
        """The user's place in its file, for error messages: ``/home/me/.kube/config: users[eks-admin]``."""
        return f"{self.source}: users[{self.user}]" if self.user else self.source

    def credentials_error(self, message: str, hint: str = "") -> KubeCredentialsError:
        return KubeCredentialsError([Problem(self.where, message, hint)])


def _bad(path: str, message: str, hint: str = "") -> InvalidInput:
    return InvalidInput([Problem(path, message, hint)])


def _named(doc: Mapping[str, Any], section: str, key: str) -> dict[str, Mapping[str, Any]]:
    entries = doc.get(section) or []
    return (
        {str(e.get("name")): e.get(key) or {} for e in entries if isinstance(e, Mapping)}
        if isinstance(entries, list)
        else {}
    )


def config_from_dict(doc: Mapping[str, Any], path: Path, context: str | None = None) -> KubeConfig:
    """The connection ``doc`` (a parsed kubeconfig read from ``path``) describes for ``context``."""
    name = context or str(doc.get("current-context") or "")
    contexts = _named(doc, "contexts", "context")
    if name not in contexts:
        known = ", ".join(sorted(contexts)) or "none"
        raise _bad(
            f"{path}: contexts",
            f"no context named {name!r}" if name else "no context chosen and no current-context set",
            f"known contexts: {known}; pick one with --context NAME",
        )
    ctx = contexts[name]
    cluster_name, user_name = str(ctx.get("cluster") or ""), str(ctx.get("user") or "")
    cluster = _named(doc, "clusters", "cluster").get(cluster_name)
    if not cluster or not cluster.get("server"):
        raise _bad(f"{path}: contexts[{name}].cluster", f"cluster {cluster_name!r} is missing or has no server")
    server = urlsplit(str(cluster["server"]))
    if server.scheme not in ("https", "http") or not server.hostname:
        raise _bad(
            f"{path}: clusters[{cluster_name}].server",
            f"{str(cluster['server'])!r} is not an https:// URL of an API server",
            "for example https://10.0.0.1:6443",
        )
    users = _named(doc, "users", "user")
    if user_name and user_name not in users:
        raise _bad(f"{path}: contexts[{name}].user", f"user {user_name!r} is not in the file")
    user = users.get(user_name) or {}
    # lightkube resolves the rest; only the chosen context's entries are handed over, so a malformed entry
    # elsewhere in a shared kubeconfig does not stop this one. Plugins are ours (kube.credentials).
    plain = {k: v for k, v in user.items() if k not in ("exec", "auth-provider")}
    one = {
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "users": [{"name": user_name, "user": plain}] if user_name else [],
        "contexts": [{"name": name, "context": ctx}],
        "current-context": name,
    }
    try:
        settings = LightkubeConfig.from_dict(one, fname=path).get(name)
    except (msgspec.ValidationError, ConfigError, KeyError, TypeError) as exc:
        raise _bad(f"{path}: contexts[{name}]", f"is not a valid kubeconfig entry ({exc})") from exc
    assert settings is not None  # a context name was given
    return KubeConfig(
        server=str(cluster["server"]).rstrip("/"),
        settings=settings,
        namespace=str(ctx.get("namespace") or "default"),
        context=name,
        user=user_name,
        source=str(path),
        exec=user.get("exec") or None,
        auth_provider=user.get("auth-provider") or None,
    )


def load_kubeconfig(path: Path, context: str | None = None) -> KubeConfig:
    """The connection a kubeconfig file describes for ``context`` (default: its current-context)."""
    try:
        doc = yaml.load(path.read_text(), Loader=_LOADER) or {}
    except OSError as exc:
        raise _bad(str(path), f"cannot read the kubeconfig: {exc.strerror}", "set KUBECONFIG or --kubeconfig") from exc
    except yaml.YAMLError as exc:
        raise _bad(str(path), f"is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise _bad(str(path), "is not a kubeconfig (expected a mapping)")
    return config_from_dict(doc, path, context)


def in_cluster_config(service_account: Path | None = None) -> KubeConfig:
    """The pod's own service account, as every in-cluster client finds it: ``KUBERNETES_SERVICE_HOST`` and
    ``_PORT``, and the token (re-read when the API server refuses it: the kubelet rotates it), CA and namespace
    files in ``service_account``."""
    if not os.environ.get("KUBERNETES_SERVICE_HOST"):
        raise _bad("KUBERNETES_SERVICE_HOST", "is not set: not running inside a pod", "pass --context or KUBECONFIG")
    os.environ.setdefault("KUBERNETES_SERVICE_PORT", "443")
    service_account = service_account or SERVICE_ACCOUNT_DIR
    try:
        settings = LightkubeConfig.from_service_account(service_account).get()
    except ConfigError as exc:
        raise _bad(str(service_account), f"is not a usable service account directory ({exc})") from exc
    assert settings is not None  # from_one sets the current context
    namespace = settings.namespace.strip() or "default"
    return KubeConfig(
        server=settings.cluster.server,
        settings=settings,
        namespace=namespace,
        context="in-cluster",
        source=str(service_account),
        in_cluster=True,
    )


def load_config(context: str | None = None, kubeconfig: str | None = None) -> KubeConfig:
    """``kubeconfig`` (or ``KUBECONFIG``, or ``~/.kube/config``) with ``context``; inside a pod with neither a
    context nor a kubeconfig file, the pod's service account."""
    explicit = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    path = Path(explicit).expanduser() if explicit else Path.home() / ".kube" / "config"
    if not explicit and not context and not path.exists() and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster_config()
    return load_kubeconfig(path, context)
