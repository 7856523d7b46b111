"""The Kubernetes API by REST path, on lightkube's connection: verbs, server-side apply, watch, error translation.

lightkube (``flinkops.kube.config`` reads kubeconfigs and service accounts with it) sets up what the hand-written
client used to: the TLS context (CA, client certificates as files or data, ``insecure-skip-tls-verify``) and the
httpx2 client's authentication (bearer tokens; token files, read again when the API server answers 401, as
rotated service-account tokens need). Exec credential plugins (tokens or certificates, cached until they expire)
and ``oidc`` id-tokens come from ``flinkops.kube.credentials``.

What stays here is small and is flinkops' own contract: objects are addressed by REST path (``object_path``) and
are plain dicts, so the watch cache and every caller need no generated classes; a watch ends after
``timeout_seconds`` and passes BOOKMARK events on (lightkube's typed watch reconnects forever and asks for no
bookmarks, which the informer's resync and resume need); a token bucket limits the request rate; requests are
counted by verb and status for the operator's metrics.

Every failure leaves this module as a ``flinkops.errors`` type, decided by the HTTP status and the Status
object's ``reason`` field, never by message text: 404 → ``NotFound``, 409 → ``Conflict`` (``AlreadyExists`` for
a create), 410 → ``Expired`` (a watch must re-list), 400/422 → ``KubeRejected``, 401/403 → ``KubeForbidden``,
429/5xx and transport errors → ``KubeUnavailable`` (temporary). Credentials that cannot be had raise
``KubeCredentialsError`` (invalid input: the CLI exits 2 naming the kubeconfig file and user).

Called by: ``stores.kubernetes``, ``runtimes.kubernetes``, ``kube.informer``, ``kube.leader``, the operator
process and the CLI's Kubernetes target.
Invariant: credentials never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import base64
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import msgspec
from lightkube.config.client_adapter import BearerAuth, user_auth, verify_cluster
from lightkube.config.models import User
from lightkube.core.exceptions import ConfigError

from flinkops.errors import Conflict, NotFound, PermanentError, TemporaryError
from flinkops.kube.config import (
    KubeConfig,
    KubeCredentialsError,
    in_cluster_config,
    load_config,
    load_kubeconfig,
)
from flinkops.kube.credentials import Credential, ExecAuth, ExecPlugin, oidc_token

__all__ = [
    "FIELD_MANAGER",
    "AlreadyExists",
    "Expired",
    "KubeClient",
    "KubeConfig",
    "KubeCredentialsError",
    "KubeForbidden",
    "KubeRejected",
    "KubeUnavailable",
    "in_cluster_config",
    "load_config",
    "load_kubeconfig",
    "object_path",
    "parse_time",
    "rfc3339_now",
]

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


class KubeClient:
    """Blocking calls to one API server. Thread-safe (httpx2's client is); one per process is enough.

    ``requests`` counts calls by (verb, HTTP status) for the operator's metrics and the benchmarks.
    ``transport`` replaces the network (tests pass an ``httpx2.MockTransport``).
    """

    def __init__(
        self,
        config: KubeConfig,
        *,
        timeout: float = 30.0,
        qps: float = 50.0,
        burst: int = 100,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self._timeout = httpx2.Timeout(timeout, connect=min(timeout, 10.0))
        self._transport = transport
        self._bucket = _TokenBucket(qps, burst)
        self.requests: Counter[tuple[str, int]] = Counter()
        self._count_lock = threading.Lock()
        self._build_lock = threading.Lock()
        self.exec_plugin = ExecPlugin(config) if config.exec else None
        self._certificate: Credential | None = None  # an exec plugin's client certificate in use
        self._http = self._connect()

    def __repr__(self) -> str:
        return f"KubeClient({self.config.server!r}, context={self.config.context!r})"

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def namespace(self) -> str:
        return self.config.namespace

    # ------------------------------------------------------------------ connection

    def _connect(self) -> httpx2.Client:
        """An httpx2 client with lightkube's TLS context and authentication for this config's user."""
        settings = self.config.settings
        user = settings.user or User()
        auth: httpx2.Auth | None
        if self.exec_plugin is not None:
            credential = self.exec_plugin.credential()
            auth = ExecAuth(self.exec_plugin) if credential.token else None
            self._certificate = credential if credential.cert_pem else None
            if credential.cert_pem and credential.key_pem:
                user = msgspec.structs.replace(
                    user,
                    exec=None,
                    client_cert=None,
                    client_key=None,
                    client_cert_data=base64.b64encode(credential.cert_pem.encode()).decode(),
                    client_key_data=base64.b64encode(credential.key_pem.encode()).decode(),
                )
        elif self.config.auth_provider:
            auth = BearerAuth(oidc_token(self.config))
        else:
            if user.token_file and not self.config.in_cluster:
                # lightkube reads a token file at the first request; a missing one is a broken kubeconfig, said
                # now (a service account's token, mounted by the kubelet, is read again when it rotates).
                token_file = Path(settings.abs_file(user.token_file))
                if not token_file.is_file():
                    raise self.config.credentials_error(f"the tokenFile {token_file} does not exist")
            auth = user_auth(user)
        try:
            verify = verify_cluster(settings.cluster, user, settings.abs_file)
        except (OSError, ValueError, ssl.SSLError, ConfigError) as exc:
            # ValueError: certificate data that is not base64; the messages name files, never key material
            raise self.config.credentials_error(f"cannot set up TLS for {self.config.server}: {exc}") from exc
        return httpx2.Client(
            base_url=self.config.server,
            verify=verify,
            auth=auth,
            timeout=self._timeout,
            headers={"Accept": "application/json", "User-Agent": "flinkops"},
            limits=httpx2.Limits(max_connections=32, max_keepalive_connections=16),
            transport=self._transport,
        )

    def _client(self) -> httpx2.Client:
        """The current connection; a new one when the exec plugin's client certificate has been replaced."""
        used = self._certificate
        if used is not None and self.exec_plugin is not None and self.exec_plugin.credential() is not used:
            with self._build_lock:
                if self._certificate is used:
                    self._http = self._connect()  # the old one's open streams finish on their own
        return self._http

    def _refused(self, response: httpx2.Response) -> bool:
        """After a 401 with a plugin's certificate: drop it so the next connection runs the plugin again.
        True when the request is worth one more try."""
        used = self._certificate
        if response.status_code != 401 or used is None or self.exec_plugin is None:
            return False
        self.exec_plugin.invalidate(used)
        return True

    def verify(self) -> None:
        """Ask the API server something any authenticated user may read (``/api``): ``KubeCredentialsError``
        naming the kubeconfig file and user when it refuses the credentials (or they cannot be had),
        ``KubeUnavailable`` when it does not answer. The operator calls it once at start."""
        try:
            self._call("GET", "/api")
        except KubeForbidden as exc:
            raise self.config.credentials_error(f"the API server at {self.config.server} refused them: {exc}") from exc

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
            "PATCH", path, content=msgspec.json.encode(body), content_type="application/apply-patch+yaml", params=params
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
        self,
        path: str,
        *,
        resource_version: str,
        timeout_seconds: int = 300,
        label_selector: str | None = None,
        field_selector: str | None = None,
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
        if field_selector:
            params["fieldSelector"] = field_selector
        self._bucket.take()
        timeout = httpx2.Timeout(timeout_seconds + 30.0, connect=10.0)
        try:
            with self._client().stream("GET", path, params=params, timeout=timeout) as response:
                self._count("WATCH", response.status_code)
                if response.status_code >= 400:
                    response.read()
                    self._refused(response)
                    self._raise(response, "WATCH", path)
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    event = msgspec.json.decode(line)
                    kind, obj = event.get("type", ""), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            raise Expired(f"watch of {path} expired: {obj.get('message', '')}")
                        raise KubeUnavailable(f"watch of {path} failed: {obj.get('message', '')}")
                    yield kind, obj
        except httpx2.TransportError as exc:
            raise KubeUnavailable(f"watch of {path} on {self.config.server} broke: {type(exc).__name__}") from exc
        except (msgspec.DecodeError, AttributeError) as exc:
            raise KubeUnavailable(f"watch of {path} sent something that is not a watch event") from exc
        except ConfigError as exc:
            raise self.config.credentials_error(str(exc)) from exc

    def request_counts(self) -> dict[tuple[str, int], int]:
        with self._count_lock:
            return dict(self.requests)

    # ------------------------------------------------------------------ plumbing

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
        headers: dict[str, str] = {}
        if json_body is not None:
            content = msgspec.json.encode(json_body)
            content_type = content_type or "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            self._bucket.take()
            try:
                response = self._client().request(method, path, params=params, content=content, headers=headers)
            except httpx2.TransportError as exc:
                self._count(method, 0)
                raise KubeUnavailable(
                    f"{method} {path}: the API server at {self.config.server} did not answer ({type(exc).__name__})"
                ) from exc
            except ConfigError as exc:  # lightkube's token file auth: the file is gone
                raise self.config.credentials_error(str(exc)) from exc
            self._count(method, response.status_code)
            if not (attempt == 1 and self._refused(response)):
                break
        if response.status_code >= 400:
            self._raise(response, method, path)
        if not response.content:
            return {}
        try:
            data = msgspec.json.decode(response.content)
        except msgspec.DecodeError as exc:
            raise KubeUnavailable(f"{method} {path}: the API server answered something that is not JSON") from exc
        return data if isinstance(data, dict) else {"items": data}

    @staticmethod
    def _raise(response: httpx2.Response, method: str, path: str) -> None:
        code = response.status_code
        reason, message = "", response.text[:500]
        try:
            status = msgspec.json.decode(response.content)
            if isinstance(status, dict):
                reason, message = str(status.get("reason") or ""), str(status.get("message") or message)
        except msgspec.DecodeError:
            pass  # not a Status object: the status code alone decides
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
