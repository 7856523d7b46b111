"""The Kubernetes API over HTTPS (httpx): configuration, CRUD, server-side apply, watch, and error translation.

One ``KubeClient`` per process talks to one API server. Configuration comes from a kubeconfig file (``KUBECONFIG``
or ``~/.kube/config``, a chosen context) or, inside a pod, from the service account files. Client certificates,
bearer tokens and token files (re-read, as bound service-account tokens rotate) are supported; exec credential
plugins are not (a clear error says so).

Every failure leaves this module as a ``flinkops.errors`` type, decided by the HTTP status and the Status
object's ``reason`` field, never by message text: 404 → ``NotFound``, 409 → ``Conflict`` (``AlreadyExists`` for
a create), 410 → ``Expired`` (a watch must re-list), 400/422 → ``KubeRejected``, 401/403 → ``KubeForbidden``,
429/5xx and transport errors → ``KubeUnavailable`` (temporary). A token bucket limits the request rate so a
controller with thousands of resources cannot flood the API server.

Called by: ``stores.kubernetes``, ``runtimes.kubernetes``, the operator process and the CLI's Kubernetes target.
Invariant: credentials never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml

from flinkops.errors import Conflict, InvalidInput, NotFound, PermanentError, Problem, TemporaryError

__all__ = [
    "AlreadyExists",
    "Expired",
    "KubeClient",
    "KubeConfig",
    "KubeForbidden",
    "KubeRejected",
    "KubeUnavailable",
    "load_config",
    "object_path",
    "parse_time",
    "rfc3339_now",
]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_TOKEN_REREAD_SECONDS = 60.0
FIELD_MANAGER = "flinkops"


class KubeUnavailable(TemporaryError):
    """The API server did not answer, timed out, or asked to slow down (429) or failed (5xx)."""


class Expired(TemporaryError):
    """A watch or list continuation is too old (410 Gone): list again."""


class AlreadyExists(Conflict):
    """A create found an object of that name."""


class KubeRejected(PermanentError):
    """The API server refused the request as invalid (400, 422): ``message`` is its reason."""


class KubeForbidden(PermanentError):
    """The API server refused the credentials (401) or the permission (403)."""


# ------------------------------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class KubeConfig:
    """Where the API server is and how to authenticate. ``repr`` never shows secrets."""

    server: str
    namespace: str = "default"
    context: str = ""
    ca_file: str | None = None
    ca_data: bytes | None = field(default=None, repr=False)
    insecure: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: bytes | None = field(default=None, repr=False)
    key_data: bytes | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    in_cluster: bool = False


def _bad(path: str, message: str, hint: str = "") -> InvalidInput:
    return InvalidInput([Problem(path, message, hint)])


def _data(entry: Mapping[str, Any], key: str, where: str) -> bytes | None:
    value = entry.get(f"{key}-data")
    if not value:
        return None
    try:
        return base64.b64decode(value)
    except ValueError as exc:
        raise _bad(f"{where}.{key}-data", "is not valid base64") from exc


def _relative(base: Path, value: str | None) -> str | None:
    if not value:
        return None
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base.parent / path)


def load_kubeconfig(path: Path, context: str | None = None) -> KubeConfig:
    """The connection a kubeconfig file describes for ``context`` (default: its current-context)."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise _bad(str(path), f"cannot read the kubeconfig: {exc.strerror}", "set KUBECONFIG or --kubeconfig") from exc
    except yaml.YAMLError as exc:
        raise _bad(str(path), f"is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise _bad(str(path), "is not a kubeconfig (expected a mapping)")
    name = context or doc.get("current-context") or ""
    contexts = {c.get("name"): c.get("context") or {} for c in doc.get("contexts") or [] if isinstance(c, dict)}
    if name not in contexts:
        known = ", ".join(sorted(str(n) for n in contexts)) or "none"
        raise _bad(
            f"{path}: contexts",
            f"no context named {name!r}" if name else "no context chosen and no current-context set",
            f"known contexts: {known}; pick one with --context NAME",
        )
    ctx = contexts[name]
    clusters = {c.get("name"): c.get("cluster") or {} for c in doc.get("clusters") or [] if isinstance(c, dict)}
    users = {u.get("name"): u.get("user") or {} for u in doc.get("users") or [] if isinstance(u, dict)}
    cluster = clusters.get(ctx.get("cluster"))
    if cluster is None or not cluster.get("server"):
        raise _bad(f"{path}: contexts[{name}].cluster", f"cluster {ctx.get('cluster')!r} is missing or has no server")
    user = users.get(ctx.get("user"), {})
    if user.get("exec") or user.get("auth-provider"):
        raise _bad(
            f"{path}: users[{ctx.get('user')}]",
            "uses an exec or auth-provider credential plugin, which flinkops does not run",
            "use a context with a token, a token file or a client certificate",
        )
    where = f"{path}: users[{ctx.get('user')}]"
    return KubeConfig(
        server=str(cluster["server"]).rstrip("/"),
        namespace=str(ctx.get("namespace") or "default"),
        context=str(name),
        ca_file=_relative(path, cluster.get("certificate-authority")),
        ca_data=_data(cluster, "certificate-authority", f"{path}: clusters[{ctx.get('cluster')}]"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        cert_file=_relative(path, user.get("client-certificate")),
        key_file=_relative(path, user.get("client-key")),
        cert_data=_data(user, "client-certificate", where),
        key_data=_data(user, "client-key", where),
        token=user.get("token") or None,
        token_file=_relative(path, user.get("tokenFile")),
    )


def in_cluster_config() -> KubeConfig:
    """The pod's own service account, as every in-cluster client finds it."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise _bad("KUBERNETES_SERVICE_HOST", "is not set: not running inside a pod", "pass --context or KUBECONFIG")
    namespace = "default"
    with contextlib.suppress(OSError):
        namespace = (SERVICE_ACCOUNT_DIR / "namespace").read_text().strip() or namespace
    server_host = f"[{host}]" if ":" in host else host
    return KubeConfig(
        server=f"https://{server_host}:{port}",
        namespace=namespace,
        context="in-cluster",
        ca_file=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
        token_file=str(SERVICE_ACCOUNT_DIR / "token"),
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


# ------------------------------------------------------------------------------------------ paths and times


def rfc3339_now() -> str:
    """Now, as Kubernetes writes times (``2026-01-02T03:04:05Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> float:
    """Epoch seconds of a Kubernetes time (``creationTimestamp``, an Event's ``lastTimestamp``); 0 if absent."""
    if not text:
        return 0.0
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def object_path(
    api_version: str,
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """The REST path of a collection or an object: ``/api/v1/namespaces/ns/configmaps/x`` and
    ``/apis/apps/v1/namespaces/ns/deployments``."""
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if namespace:
        base += f"/namespaces/{quote(namespace, safe='')}"
    base += f"/{plural}"
    if name:
        base += f"/{quote(name, safe='')}"
    if subresource:
        base += f"/{subresource}"
    return base


# ------------------------------------------------------------------------------------------ the client


class _TokenBucket:
    """At most ``qps`` requests per second on average, ``burst`` at once."""

    def __init__(self, qps: float, burst: int) -> None:
        self.qps, self.burst = qps, burst
        self.tokens = float(burst)
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> None:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.qps)
            self.last = now
            self.tokens -= 1
            wait = -self.tokens / self.qps if self.tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)  # the bucket is I/O pacing of this client, not controller logic


def _ssl_context(config: KubeConfig) -> ssl.SSLContext | bool:
    if config.insecure:
        return False
    ctx = ssl.create_default_context(cafile=config.ca_file, cadata=config.ca_data.decode() if config.ca_data else None)
    if config.cert_file and config.key_file:
        ctx.load_cert_chain(config.cert_file, config.key_file)
    elif config.cert_data and config.key_data:
        # The ssl module loads a key pair from files only: write them to a private directory, load, delete.
        with tempfile.TemporaryDirectory(prefix="flinkops-kube-") as tmp:
            cert, key = Path(tmp) / "client.crt", Path(tmp) / "client.key"
            for path, data in ((cert, config.cert_data), (key, config.key_data)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
            ctx.load_cert_chain(str(cert), str(key))
    return ctx


class KubeClient:
    """Blocking calls to one API server. Thread-safe (httpx's client is); one per process is enough.

    ``requests`` counts calls by (verb, HTTP status) for the operator's metrics and the benchmarks.
    """

    def __init__(
        self,
        config: KubeConfig,
        *,
        timeout: float = 30.0,
        qps: float = 50.0,
        burst: int = 100,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self._token: str | None = config.token
        self._token_read = 0.0
        self._bucket = _TokenBucket(qps, burst)
        self.requests: Counter[tuple[str, int]] = Counter()
        self._count_lock = threading.Lock()
        try:
            verify = _ssl_context(config)
        except (OSError, ssl.SSLError) as exc:
            raise PermanentError(f"cannot set up TLS for {config.server}: {exc}") from exc
        self._http = httpx.Client(
            base_url=config.server,
            verify=verify,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"Accept": "application/json", "User-Agent": "flinkops"},
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            transport=transport,  # tests pass an httpx.MockTransport
        )

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def namespace(self) -> str:
        return self.config.namespace

    # ------------------------------------------------------------------ verbs

    def get(self, path: str) -> dict[str, Any] | None:
        """The object at ``path``, or None when it does not exist."""
        try:
            return self._call("GET", path)
        except NotFound:
            return None

    def list(
        self,
        path: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """The whole collection (continuation pages followed); ``metadata.resourceVersion`` is the list's."""
        params: dict[str, str] = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if resource_version is not None:
            params["resourceVersion"] = resource_version
        params["limit"] = str(limit or 500)
        items: list[dict[str, Any]] = []
        while True:
            page = self._call("GET", path, params=params)
            items.extend(page.get("items") or [])
            cont = (page.get("metadata") or {}).get("continue")
            if not cont:
                page["items"] = items
                return page
            params = {**params, "continue": cont}
            params.pop("resourceVersion", None)

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", path, json_body=body, params={"fieldManager": FIELD_MANAGER})

    def replace(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT: conditional on ``body.metadata.resourceVersion`` when it is set (409 → ``Conflict``)."""
        return self._call("PUT", path, json_body=body, params={"fieldManager": FIELD_MANAGER})

    def patch(self, path: str, body: Any, *, kind: str = "merge") -> dict[str, Any]:
        """``kind``: ``merge`` (RFC 7386), ``json`` (RFC 6902 operations) or ``strategic``."""
        content = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "strategic": "application/strategic-merge-patch+json",
        }[kind]
        return self._call("PATCH", path, json_body=body, content_type=content, params={"fieldManager": FIELD_MANAGER})

    def apply(
        self, path: str, body: Mapping[str, Any], *, force: bool = True, dry_run: bool = False, strict: bool = False
    ) -> dict[str, Any]:
        """Server-side apply of ``body`` to the object at ``path`` (created if missing) as field manager
        ``flinkops``. ``strict`` makes the server reject unknown fields instead of dropping them."""
        params = {"fieldManager": FIELD_MANAGER, "force": "true" if force else "false"}
        if dry_run:
            params["dryRun"] = "All"
        if strict:
            params["fieldValidation"] = "Strict"
        return self._call(
            "PATCH", path, content=json.dumps(body).encode(), content_type="application/apply-patch+yaml", params=params
        )

    def delete(
        self, path: str, *, propagation: str | None = "Background", uid: str | None = None
    ) -> dict[str, Any] | None:
        """Delete; None when it was already gone. ``uid`` makes it conditional on that incarnation."""
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            body["propagationPolicy"] = propagation
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            return self._call("DELETE", path, json_body=body)
        except NotFound:
            return None

    def watch(
        self, path: str, *, resource_version: str, timeout_seconds: int = 300, label_selector: str | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(type, object) pairs from ``resource_version`` on, until the server ends the watch after
        ``timeout_seconds``. BOOKMARK events carry only a newer ``metadata.resourceVersion``. An ``ERROR`` event
        with code 410 raises ``Expired``: list again."""
        params = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        if label_selector:
            params["labelSelector"] = label_selector
        self._bucket.take()
        timeout = httpx.Timeout(timeout_seconds + 30.0, connect=10.0)
        try:
            with self._http.stream("GET", path, params=params, headers=self._auth(), timeout=timeout) as response:
                self._count("WATCH", response.status_code)
                if response.status_code >= 400:
                    response.read()
                    self._raise(response, "WATCH", path)
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind, obj = event.get("type", ""), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            raise Expired(f"watch of {path} expired: {obj.get('message', '')}")
                        raise KubeUnavailable(f"watch of {path} failed: {obj.get('message', '')}")
                    yield kind, obj
        except httpx.TransportError as exc:
            raise KubeUnavailable(f"watch of {path} on {self.config.server} broke: {type(exc).__name__}") from exc
        except json.JSONDecodeError as exc:
            raise KubeUnavailable(f"watch of {path} sent something that is not JSON") from exc

    def request_counts(self) -> dict[tuple[str, int], int]:
        with self._count_lock:
            return dict(self.requests)

    # ------------------------------------------------------------------ plumbing

    def _auth(self) -> dict[str, str]:
        if self.config.token_file and time.monotonic() - self._token_read > _TOKEN_REREAD_SECONDS:
            try:
                self._token = Path(self.config.token_file).read_text().strip()
                self._token_read = time.monotonic()
            except OSError as exc:
                raise PermanentError(f"cannot read the token file {self.config.token_file}: {exc.strerror}") from exc
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def _count(self, verb: str, code: int) -> None:
        with self._count_lock:
            self.requests[(verb, code)] += 1

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        headers = self._auth()
        if json_body is not None:
            content = json.dumps(json_body).encode()
            content_type = content_type or "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        self._bucket.take()
        try:
            response = self._http.request(method, path, params=params, content=content, headers=headers)
        except httpx.TransportError as exc:
            self._count(method, 0)
            raise KubeUnavailable(
                f"{method} {path}: the API server at {self.config.server} did not answer ({type(exc).__name__})"
            ) from exc
        self._count(method, response.status_code)
        if response.status_code >= 400:
            self._raise(response, method, path)
        if not response.content:
            return {}
        try:
            data = response.json()
        except ValueError as exc:
            raise KubeUnavailable(f"{method} {path}: the API server answered something that is not JSON") from exc
        return data if isinstance(data, dict) else {"items": data}

    @staticmethod
    def _raise(response: httpx.Response, method: str, path: str) -> None:
        code = response.status_code
        reason, message = "", response.text[:500]
        with contextlib.suppress(ValueError, AttributeError):
            status = response.json()
            reason, message = str(status.get("reason") or ""), str(status.get("message") or message)
        text = f"{method} {path} -> HTTP {code}: {message}"
        if code == 404:
            raise NotFound(text)
        if code == 409:
            raise (AlreadyExists if reason == "AlreadyExists" else Conflict)(text)
        if code == 410:
            raise Expired(text)
        if code in (401, 403):
            raise KubeForbidden(text)
        if code in (400, 422):
            raise KubeRejected(text)
        raise KubeUnavailable(text)
