"""The gateway: one authenticated door to every deployment's Flink UI and REST API, at
``https://<gateway>/<namespace>/<name>/...``.

Each request, in order (the first that fails answers, and nothing reaches Flink):

1. the raw path is checked (``policy.unsafe_path``: encoded traversal and its relatives are refused, 400);
2. a request carrying an identity header (``X-Forwarded-User`` and its kin) is refused (400): only the gateway
   says who a caller is;
3. the caller is identified: a client certificate (its CN must match a ``certificateRules`` entry covering the
   deployment: a certificate the CA trusts but whose CN matches no rule is refused, 403), else a bearer token,
   else the browser's session cookie; none: 401 (a browser asking for a page is sent to sign in);
4. the call is classified and decided (``policy.decide``; 403 with the reason);
5. the deployment's REST address is looked up (404 when there is no such deployment, 503 when it is not up) and
   the request is forwarded without the caller's credentials (no ``Authorization``, no cookie) and with
   ``X-Forwarded-*`` set by the gateway.

With ``pages`` (``flinkops.web.app.behind_gateway``), the fleet page is served under ``/_fleet/``: its requests
pass the same checks of path and identity headers and the same identification (steps 1-3); the page itself decides
with the role bindings what each caller sees (``viewer``) and may do (``operator``: savepoint, suspend, resume,
rollback), through ``current_caller()``.

Every request leaves one JSON line in the audit log: when, who (subject, groups or the certificate's CN), what
(method, path, action), which deployment, allowed or denied and why, the status and the time taken.
"""

from __future__ import annotations

import contextvars
import json
import os
import secrets
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import aiohttp
from aiohttp import web

from flinkops.gateway.config import GatewayConfig
from flinkops.gateway.oidc import Claims, LoginStart, OidcProvider, TokenRejected
from flinkops.gateway.policy import Action, Decision, classify, decide, unsafe_path

__all__ = [
    "AUDIT_FIELDS",
    "PAGES_PREFIX",
    "Caller",
    "Gateway",
    "Identity",
    "Pages",
    "Upstreams",
    "current_caller",
    "ssl_context",
]

#: Returns the REST base URL of deployment (namespace, name): None when there is no such deployment, "" when it
#: exists but its JobManager is not up.
Upstreams = Callable[[str, str], Awaitable[str | None]]
#: Every deployment (namespace, name) there is, for the index page.
Listing = Callable[[], Awaitable[list[tuple[str, str]]]]

#: Adds pages of flinkops' own to the gateway's application (the fleet page, ``flinkops.web``), all under
#: ``PAGES_PREFIX``: the gateway identifies their callers as it does for Flink's, and while a page answers,
#: ``current_caller()`` is who called and what the role bindings allow them.
Pages = Callable[[web.Application], None]
PAGES_PREFIX = "/_fleet"

SESSION_COOKIE = "flinkops_session"
AUDIT_FIELDS = (
    "time", "remote", "method", "path", "namespace", "name", "auth", "subject", "groups", "cn", "action",
    "allowed", "reason", "status", "ms",
)  # fmt: skip
#: Headers only the gateway may set: a caller sending one is refused.
IDENTITY_HEADERS = frozenset(
    h.lower()
    for h in (
        "X-Forwarded-User", "X-Forwarded-Groups", "X-Forwarded-Email", "X-Forwarded-Preferred-Username",
        "X-Remote-User", "X-Remote-Group", "Remote-User", "X-Auth-Request-User", "X-Auth-Request-Email",
        "X-Auth-Request-Groups", "X-User", "X-Authenticated-User", "X-Client-Cert", "X-SSL-Client-Cert",
        "X-Client-Cert-CN",
    )
)  # fmt: skip
_HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
     "transfer-encoding", "upgrade", "host", "content-length")
)  # fmt: skip
_NOT_FORWARDED = _HOP_BY_HOP | {"authorization", "cookie", "forwarded", "x-forwarded-for", "x-forwarded-host",
                                "x-forwarded-proto", "x-forwarded-prefix", "x-real-ip"}  # fmt: skip
_PENDING_LIMIT = 10_000
_PENDING_SECONDS = 600.0
_STREAM_OVER = 1 << 20


def ssl_context(config: GatewayConfig) -> ssl.SSLContext | None:
    """The server's TLS: TLS 1.2 or later; with ``clientCA``, callers are asked for a certificate (optional: a
    browser signs in instead) and one that does not chain to the CA ends the handshake."""
    if config.tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(config.tls.cert), str(config.tls.key))
    if config.tls.client_ca is not None:
        context.load_verify_locations(cafile=str(config.tls.client_ca))
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


@dataclass(frozen=True)
class Identity:
    auth: str  # "token", "session" or "certificate"
    subject: str
    groups: tuple[str, ...] = ()
    cn: str | None = None
    subjects: frozenset[str] = frozenset()

    @classmethod
    def of_claims(cls, auth: str, claims: Claims) -> Identity:
        subjects = frozenset({f"user:{claims.subject}", *(f"group:{g}" for g in claims.groups)})
        return cls(auth, claims.subject, claims.groups, None, subjects)


@dataclass
class _Session:
    claims: Claims
    ends_at: float


@dataclass(frozen=True)
class Caller:
    """Who called one of the gateway's own pages, and what the role bindings allow them."""

    identity: Identity
    config: GatewayConfig

    def may(self, namespace: str, name: str, action: Action) -> Decision:
        return decide(self.config, self.identity.subjects, namespace, name, action)


_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("flinkops_gateway_caller", default=None)


def current_caller() -> Caller | None:
    """The caller of the page request being answered (None outside the gateway's door to its pages)."""
    return _CALLER.get()


class _Denied(Exception):
    def __init__(self, status: int, reason: str, identity: Identity | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.identity = status, reason, identity


class Gateway:
    """The gateway's web application over ``upstreams`` (where each deployment's REST API is)."""

    def __init__(
        self,
        config: GatewayConfig,
        upstreams: Upstreams,
        *,
        audit_log: Path,
        oidc: OidcProvider | None = None,
        listing: Listing | None = None,
        pages: Pages | None = None,
    ) -> None:
        self.config = config
        self.upstreams = upstreams
        self.listing = listing
        self.pages = pages
        self.oidc = oidc
        audit_log.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(audit_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._audit: TextIO = os.fdopen(fd, "a", buffering=1)
        self._sessions: dict[str, _Session] = {}
        self._pending: OrderedDict[str, tuple[LoginStart, str, float]] = OrderedDict()
        self._client: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ life cycle

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 2**20)
        if self.pages is not None:
            app.middlewares.append(self._pages_door)
            self.pages(app)  # their routes come before the catch-all below
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _: web.Application) -> None:
        self._client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=300),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        if self.oidc is not None:
            await self.oidc.start()

    async def _stop(self, _: web.Application) -> None:
        if self._client is not None:
            await self._client.close()
        if self.oidc is not None:
            await self.oidc.close()
        self._audit.close()

    # ------------------------------------------------------------------ one request

    @staticmethod
    def _record(request: web.Request, **known: Any) -> dict[str, Any]:
        """The start of a request's audit line: when, from where, what."""
        return {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "remote": request.remote,
            "method": request.method,
            "path": request.raw_path[:2048],
            **known,
        }

    def _denied(self, request: web.Request, record: dict[str, Any], denied: _Denied) -> web.StreamResponse:
        record.update(allowed=False, reason=denied.reason)
        if denied.identity is not None:
            self._who(record, denied.identity)
        return self._refusal(request, denied)

    def _audited(
        self,
        record: dict[str, Any],
        started: float,
        response: web.StreamResponse,
        redirect: web.HTTPException | None,
    ) -> web.StreamResponse:
        """Write the request's audit line (its status and time) and answer: the response, or the redirect raised
        (aiohttp sends an ``HTTPException`` raised from a handler)."""
        record["status"] = response.status
        record["ms"] = round((time.perf_counter() - started) * 1000, 2)
        self._audit.write(json.dumps(record, separators=(",", ":")) + "\n")
        if redirect is not None:
            raise redirect
        return response

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        record = self._record(request)
        redirect: web.HTTPException | None = None
        try:
            response: web.StreamResponse = await self._handle(request, record)
            record.setdefault("allowed", True)
        except web.HTTPException as exc:  # a redirect (sign-in, trailing slash)
            record.setdefault("allowed", True)
            response = redirect = exc
        except _Denied as denied:
            response = self._denied(request, record, denied)
        return self._audited(record, started, response, redirect)

    @web.middleware
    async def _pages_door(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """The door to the gateway's own pages: the same checks of the path and of identity headers, the same
        identification (401, or a browser sent to sign in), one audit line per request; what a caller may do on a
        page is the page's decision, with ``request[CALLER]``."""
        raw_path = request.raw_path.partition("?")[0]
        if raw_path != PAGES_PREFIX and not raw_path.startswith(PAGES_PREFIX + "/"):
            return await handler(request)
        started = time.perf_counter()
        record = self._record(request, action="page")
        for field in ("namespace", "name"):
            if field in request.match_info:
                record[field] = request.match_info[field]
        redirect: web.HTTPException | None = None
        try:
            why = unsafe_path(raw_path)
            if why is not None:
                raise _Denied(400, why)
            smuggled = sorted(h for h in request.headers if h.lower() in IDENTITY_HEADERS)
            if smuggled:
                raise _Denied(400, f"identity header {smuggled[0]} sent by the client")
            identity = await self._identify(request, None, None)
            self._who(record, identity)
            token = _CALLER.set(Caller(identity, self.config))
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # a redirect after an action
                response = redirect = exc
            finally:
                _CALLER.reset(token)
            record["allowed"] = response.status < 400
            if response.status >= 400:
                record["reason"] = response.reason
        except _Denied as denied:
            response = self._denied(request, record, denied)
        return self._audited(record, started, response, redirect)

    async def _handle(self, request: web.Request, record: dict[str, Any]) -> web.StreamResponse:
        raw_path = request.raw_path.partition("?")[0]
        why = unsafe_path(raw_path)
        if why is not None:
            raise _Denied(400, why)
        smuggled = sorted(h for h in request.headers if h.lower() in IDENTITY_HEADERS)
        if smuggled:
            raise _Denied(400, f"identity header {smuggled[0]} sent by the client")
        if raw_path.startswith("/_auth/"):
            return await self._auth(request, raw_path, record)
        parts = raw_path.split("/", 3)
        if raw_path == "/" or len(parts) < 3 or not parts[2]:
            identity = await self._identify(request, None, None)
            self._who(record, identity)
            return await self._index(identity)
        namespace, name = parts[1], parts[2]
        record.update(namespace=namespace, name=name)
        identity = await self._identify(request, namespace, name)
        self._who(record, identity)
        if len(parts) == 3:  # /ns/name: the UI's relative links need the trailing slash
            raise web.HTTPFound(f"/{quote(namespace)}/{quote(name)}/")
        tail = "/" + parts[3]
        action = classify(request.method, tail)
        record["action"] = action.value
        decision = decide(self.config, identity.subjects, namespace, name, action)
        record["reason"] = decision.reason
        if not decision.allowed:
            raise _Denied(403, decision.reason, identity)
        upstream = await self.upstreams(namespace, name)
        if upstream is None:
            raise _Denied(404, f"no deployment {namespace}/{name}", identity)
        if not upstream:
            raise _Denied(503, f"{namespace}/{name} has no JobManager up", identity)
        return await self._forward(request, upstream, tail, f"/{namespace}/{name}")

    @staticmethod
    def _who(record: dict[str, Any], identity: Identity) -> None:
        record.update(auth=identity.auth, subject=identity.subject)
        if identity.groups:
            record["groups"] = list(identity.groups)
        if identity.cn is not None:
            record["cn"] = identity.cn

    # ------------------------------------------------------------------ who is calling

    async def _identify(self, request: web.Request, namespace: str | None, name: str | None) -> Identity:
        cert = request.transport.get_extra_info("peercert") if request.transport is not None else None
        if cert:
            return self._by_certificate(cert, namespace, name)
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise _Denied(401, f"{scheme or 'an'} authorization is not accepted; send a bearer token")
            if self.oidc is None:
                raise _Denied(401, "bearer tokens are not accepted here (no oidc settings)")
            try:
                claims = await self.oidc.verify(token.strip())
            except TokenRejected as exc:
                raise _Denied(401, f"token rejected: {exc}") from None
            return Identity.of_claims("token", claims)
        sid = request.cookies.get(SESSION_COOKIE)
        session = self._sessions.get(sid) if sid else None
        if session is not None:
            if session.ends_at > time.time():
                return Identity.of_claims("session", session.claims)
            self._sessions.pop(sid or "", None)
        raise _Denied(401, "no credentials")

    def _by_certificate(self, cert: dict[str, Any], namespace: str | None, name: str | None) -> Identity:
        cn = next((value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"), None)
        if cn is None:
            raise _Denied(403, "the client certificate has no CN")
        subjects = {
            subject
            for rule in self.config.certificate_rules
            if namespace is None or name is None or rule.covers(namespace, name)
            if (subject := rule.identify(cn)) is not None
        }
        if not subjects:
            where = f" for {namespace}/{name}" if namespace else ""
            identity = Identity("certificate", cn, cn=cn)
            raise _Denied(403, f"certificate CN {cn!r} matches no certificate rule{where}", identity)
        # cert:<rule>:<identity> also counts as cert:<rule>
        subjects |= {":".join(s.split(":")[:2]) for s in subjects}
        return Identity("certificate", cn, (), cn, frozenset(subjects))

    # ------------------------------------------------------------------ signing in (browsers)

    def _redirect_uri(self, request: web.Request) -> str:
        if self.oidc is not None and self.oidc.settings.redirect_url:
            return self.oidc.settings.redirect_url
        return f"{request.scheme}://{request.host}/_auth/callback"

    async def _auth(self, request: web.Request, raw_path: str, record: dict[str, Any]) -> web.StreamResponse:
        if self.oidc is None:
            raise _Denied(404, "sign-in needs oidc settings")
        if raw_path == "/_auth/login":
            back = request.query.get("rd", "/")
            if not back.startswith("/") or back.startswith("//") or unsafe_path(back.partition("?")[0]):
                back = "/"
            start = self.oidc.login(self._redirect_uri(request))
            self._pending[start.state] = (start, back, time.monotonic())
            while len(self._pending) > _PENDING_LIMIT:
                self._pending.popitem(last=False)
            record["reason"] = "sign-in started"
            raise web.HTTPFound(start.url)
        if raw_path == "/_auth/callback":
            pending = self._pending.pop(request.query.get("state", ""), None)
            if pending is None or time.monotonic() - pending[2] > _PENDING_SECONDS:
                raise _Denied(400, "unknown or expired sign-in (state); start again")
            if "error" in request.query:
                raise _Denied(401, f"the provider refused the sign-in: {request.query['error']}")
            start, back, _ = pending
            try:
                claims = await self.oidc.redeem(request.query.get("code", ""), start, self._redirect_uri(request))
            except TokenRejected as exc:
                raise _Denied(401, f"sign-in failed: {exc}") from None
            identity = Identity.of_claims("session", claims)
            self._who(record, identity)
            record["reason"] = "signed in"
            sid = secrets.token_urlsafe(32)
            ends_at = min(time.time() + self.oidc.settings.session_seconds, max(claims.expires_at, time.time()))
            self._sessions[sid] = _Session(claims, ends_at)
            response = web.HTTPFound(back)
            response.set_cookie(
                SESSION_COOKIE, sid, httponly=True, secure=request.secure, samesite="Lax", path="/",
                max_age=max(1, int(ends_at - time.time())),
            )  # fmt: skip
            raise response
        if raw_path == "/_auth/logout":
            self._sessions.pop(request.cookies.get(SESSION_COOKIE) or "", None)
            gone = web.HTTPFound("/")
            gone.del_cookie(SESSION_COOKIE, path="/")
            raise gone
        raise _Denied(404, "no such page")

    def _refusal(self, request: web.Request, denied: _Denied) -> web.StreamResponse:
        wants_page = request.method == "GET" and "text/html" in request.headers.get("Accept", "")
        if denied.status == 401 and wants_page and self.oidc is not None:
            target = request.raw_path if unsafe_path(request.raw_path.partition("?")[0]) is None else "/"
            return web.Response(status=302, headers={"Location": f"/_auth/login?rd={quote(target, safe='')}"})
        body = {"errors": [f"{denied.status} {denied.reason}"]}
        headers = {"WWW-Authenticate": 'Bearer realm="flinkops"'} if denied.status == 401 else None
        return web.json_response(body, status=denied.status, headers=headers)

    # ------------------------------------------------------------------ pages and forwarding

    async def _index(self, identity: Identity) -> web.StreamResponse:
        visible = []
        for namespace, name in sorted(await self.listing()) if self.listing is not None else []:
            if decide(self.config, identity.subjects, namespace, name, Action.VIEW).allowed:
                visible.append((namespace, name))
        items = "".join(
            f'<li><a href="/{quote(ns)}/{quote(n)}/">{escape(ns)}/{escape(n)}</a></li>' for ns, n in visible
        )
        fleet = f'<p><a href="{PAGES_PREFIX}/">The fleet page</a></p>' if self.pages is not None else ""
        html = (
            "<!doctype html><html><head><meta charset='utf-8'><title>flinkops gateway</title></head><body>"
            f"<h1>Flink deployments</h1><p>Signed in as {escape(identity.subject)}</p>{fleet}"
            f"<ul>{items or '<li>none you may see</li>'}</ul></body></html>"
        )
        return web.Response(text=html, content_type="text/html")

    async def _forward(self, request: web.Request, upstream: str, tail: str, prefix: str) -> web.StreamResponse:
        assert self._client is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        headers["X-Forwarded-For"] = request.remote or ""
        headers["X-Forwarded-Proto"] = request.scheme
        headers["X-Forwarded-Host"] = request.host
        headers["X-Forwarded-Prefix"] = prefix
        query = request.raw_path.partition("?")[2]
        url = upstream.rstrip("/") + tail + (f"?{query}" if query else "")
        # Read whole (within client_max_size) and sent with its length: Flink's REST server takes no chunked bodies.
        body = await request.read() if request.can_read_body else None
        try:
            async with self._client.request(
                request.method, url, headers=headers, data=body, allow_redirects=False
            ) as upstream_response:
                out_headers = {
                    k: v for k, v in upstream_response.headers.items() if k.lower() not in _HOP_BY_HOP
                    and k.lower() != "set-cookie"
                }  # fmt: skip
                location = out_headers.get("Location")
                if location and location.startswith("/"):
                    out_headers["Location"] = prefix + location
                length = upstream_response.content_length
                if length is not None and length <= _STREAM_OVER:
                    data = await upstream_response.read()
                    return web.Response(body=data, status=upstream_response.status, headers=out_headers)
                response = web.StreamResponse(status=upstream_response.status, headers=out_headers)
                await response.prepare(request)
                async for chunk in upstream_response.content.iter_chunked(64 * 1024):
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            return web.json_response({"errors": [f"502 the JobManager did not answer: {exc}"]}, status=502)
