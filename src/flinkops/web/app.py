"""The fleet page's aiohttp application: routes, CSRF protection, the confirmation of actions, error pages.

Routes (under ``prefix``, empty when served alone):

* ``GET /``: the overview (``?namespace=`` narrows it); ``GET /static/refresh.js``: the optional live refresh;
* ``GET /namespaces/{namespace}/{flinkdeployments|flinksessionjobs}/{name}``: the detail page (404 page when
  there is no such resource);
* ``POST .../confirm`` (form: ``action``): the confirmation page, which carries what the person confirms (the
  spec generation, and for a rollback the spec it puts back: ``service.fleet.basis``);
* ``POST .../act`` (form: ``action``, ``basis``): the action, refused with a 409 page (nothing written) when the
  resource changed since the confirmation.

Every POST must carry the CSRF token of the browser's ``flinkops_ui_csrf`` cookie (``SameSite=Strict``,
``HttpOnly``; set by any page) in its form, and a request whose ``Origin`` is not this page's own, or that the
browser marks ``Sec-Fetch-Site: cross-site``, is refused (403).

``authorize`` decides who may act: alone on 127.0.0.1 everybody who reaches the page may (the machine's user);
behind the gateway it is the gateway's role check. Reading the store runs in worker threads, never in the loop.

Called by: the CLI (``flinkops ui``), tests, benchmarks/fleet_page.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web

from flinkops.errors import Conflict, FlinkopsError, InvalidInput, NotFound
from flinkops.ports import ResourceKey
from flinkops.ports.flink import JobFigures
from flinkops.service.fleet import (
    ACTIONS,
    Action,
    CostHook,
    ReportHook,
    Row,
    act,
    actions_for,
    basis,
    detail,
    find,
    row_of,
    rows,
)
from flinkops.service.target import Target
from flinkops.web.live import LiveWatch

__all__ = ["CSRF_COOKIE", "Authorizer", "FleetPage", "Viewer", "age", "behind_gateway", "detail_path"]

log = logging.getLogger("flinkops.web")

CSRF_COOKIE = "flinkops_ui_csrf"
#: Why ``request`` may not take ``action`` on ``key`` (a refusal shown on a 403 page), or None when it may.
Authorizer = Callable[[web.Request, ResourceKey, Action], Awaitable[str | None]]
#: Whether ``request``'s caller may see resource (namespace, name) at all (others are left out, or a 404 page).
Viewer = Callable[[web.Request, str, str], bool]
_PLURAL = {"FlinkDeployment": "flinkdeployments", "FlinkSessionJob": "flinksessionjobs"}
_KIND_OF = {plural: kind for kind, plural in _PLURAL.items()}
_VERBS = {
    "savepoint": "Take a savepoint of the running job now",
    "suspend": "Suspend the job (stopped with a savepoint; its cluster is released; the spec is kept)",
    "resume": "Resume the suspended job from its newest state",
    "rollback": "Roll back to the last stable spec (the job keeps its state)",
}


def age(seconds: float | None) -> str:
    """``42s``, ``3m 05s``, ``2h 07m``, ``4d 03h``; ``—`` when unknown."""
    if seconds is None:
        return "—"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def _when(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def detail_path(kind: str, namespace: str, name: str) -> str:
    return f"/namespaces/{quote(namespace, safe='')}/{_PLURAL[kind]}/{quote(name, safe='')}"


async def _everybody(request: web.Request, key: ResourceKey, action: Action) -> str | None:
    return None


def _all_of_it(request: web.Request, namespace: str, name: str) -> bool:
    return True


@dataclass(frozen=True)
class _Page:
    status: int
    template: str
    context: dict[str, Any]


class FleetPage:
    """The fleet page over ``target``. ``now_ms`` is the clock ages are measured against (the target's)."""

    def __init__(
        self,
        target: Target,
        *,
        prefix: str = "",
        authorize: Authorizer = _everybody,
        may_view: Viewer = _all_of_it,
        cost: CostHook | None = None,
        report: ReportHook | None = None,
        refresh_seconds: float = 5.0,
        now_ms: Callable[[], int] | None = None,
        watch: LiveWatch | None = None,
        ui_link: Callable[[Row], str | None] | None = None,
        namespaces: Sequence[str] = (),
    ) -> None:
        self.target = target
        self.prefix = prefix.rstrip("/")
        self.authorize = authorize
        self.may_view = may_view
        #: the namespaces shown (empty: every one); others are never read (a gateway may read only its own)
        self.namespaces = tuple(namespaces)
        self.cost = cost
        #: a deployment page's cost section: its runs priced, as ``flinkops cost NAME`` reports them
        self.report = report
        self.refresh_seconds = refresh_seconds
        self.now_ms = now_ms or (lambda: int(target.clock.now() * 1000))
        self.watch = watch
        self._watching: asyncio.Task[None] | None = None
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("flinkops.web", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        link = ui_link or (lambda row: row.flink_ui)
        self.env.globals.update(
            age=age, when=_when, detail_path=detail_path, prefix=self.prefix, verbs=_VERBS, ui_link=link
        )
        self._script = (resources.files("flinkops.web") / "static" / "refresh.js").read_bytes()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        self.attach(app)
        return app

    def attach(self, app: web.Application) -> None:
        """Add the page's routes (under ``prefix``) and its background work to ``app``."""
        self.add_routes(app.router)
        if self.watch is not None:
            app.on_startup.append(self._start_watching)
            app.on_cleanup.append(self._stop_watching)

    # ------------------------------------------------------------------ the jobs' live figures, in the background

    async def _start_watching(self, _: web.Application) -> None:
        self._watching = asyncio.create_task(self._watch_loop())

    async def _stop_watching(self, _: web.Application) -> None:
        if self._watching is not None:
            self._watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watching
        if self.watch is not None:
            self.watch.close()

    async def _watch_loop(self) -> None:
        assert self.watch is not None
        while True:
            try:
                found = await asyncio.to_thread(self._rows, None)
                await asyncio.to_thread(self.watch.refresh, found)
            except (FlinkopsError, OSError) as exc:  # the store is busy or gone: next round
                log.warning("live figures not refreshed: %s", exc)
            await asyncio.sleep(self.refresh_seconds)

    def _rows(self, namespace: str | None) -> list[Row]:
        """The rows of ``namespace`` (every served one when None), never reading a namespace not served."""
        if not self.namespaces:
            return rows(self.target, namespace, cost=self.cost)
        wanted = [namespace] if namespace is not None else list(self.namespaces)
        return [r for ns in wanted if ns in self.namespaces for r in rows(self.target, ns, cost=self.cost)]

    def _live(self, found: list[Row]) -> list[Row]:
        return self.watch.apply(found) if self.watch is not None else found

    def _figures(self, row: Row) -> JobFigures | None:
        return self.watch.figures(row) if self.watch is not None else None

    def add_routes(self, router: web.UrlDispatcher) -> None:
        p = self.prefix
        one = p + "/namespaces/{namespace}/{plural}/{name}"
        if p:
            router.add_get(p, self._to_overview)
        router.add_get(p + "/", self.overview)
        router.add_get(p + "/static/refresh.js", self.script)
        router.add_get(one, self.show)
        router.add_post(one + "/confirm", self.confirm)
        router.add_post(one + "/act", self.act)
        router.add_route("*", p + "/{tail:.*}", self.unknown)

    # ------------------------------------------------------------------ rendering

    def _render(self, request: web.Request, page: _Page) -> web.Response:
        token = request.cookies.get(CSRF_COOKIE) or ""
        fresh = len(token) < 32
        if fresh:
            token = secrets.token_urlsafe(32)
        html = self.env.get_template(page.template).render(csrf=token, **page.context)
        response = web.Response(text=html, status=page.status, content_type="text/html")
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self'; connect-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
        response.headers["Referrer-Policy"] = "same-origin"
        if fresh:
            response.set_cookie(CSRF_COOKIE, token, path=self.prefix or "/", httponly=True, samesite="Strict")
        return response

    def _message(
        self, request: web.Request, status: int, title: str, message: str, back: str | None = None
    ) -> web.Response:
        context = {"title": title, "message": message, "back": back, "code": status}
        return self._render(request, _Page(status, "message.html", context))

    # ------------------------------------------------------------------ pages

    async def overview(self, request: web.Request) -> web.Response:
        namespace = request.query.get("namespace") or None
        found = self._live(await asyncio.to_thread(self._rows, namespace))
        found = [r for r in found if self.may_view(request, r.namespace, r.name)]
        counts: dict[str, int] = {}
        for row in found:
            counts[row.lifecycle] = counts.get(row.lifecycle, 0) + 1
        context = {
            "title": "Fleet",
            "rows": found,
            "counts": sorted(counts.items()),
            "namespace": namespace,
            "now_ms": self.now_ms(),
            "refresh_ms": int(self.refresh_seconds * 1000),
            "generated": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(self.now_ms() / 1000)),
        }
        return self._render(request, _Page(200, "overview.html", context))

    async def _to_overview(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(self.prefix + "/")

    async def script(self, request: web.Request) -> web.Response:
        return web.Response(body=self._script, content_type="text/javascript", headers={"Cache-Control": "max-age=60"})

    async def unknown(self, request: web.Request) -> web.Response:
        return self._message(request, 404, "Not found", f"There is no page at {request.path}.", self.prefix + "/")

    def _key(self, request: web.Request) -> ResourceKey | None:
        """The resource the address names; None for an unknown kind or one the caller may not see (a 404 page,
        the same as for a name that does not exist)."""
        kind = _KIND_OF.get(request.match_info["plural"])
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        if kind is None or (self.namespaces and namespace not in self.namespaces):
            return None
        if not self.may_view(request, namespace, name):
            return None
        return ResourceKey(kind, namespace, name)

    def _missing(self, request: web.Request, key: ResourceKey | None) -> web.Response:
        info = request.match_info
        # The same words whether it does not exist or the caller may not see it.
        what = f"{_KIND_OF.get(info['plural'], info['plural'])} {info['namespace']}/{info['name']}"
        return self._message(request, 404, "Not found", f"There is no {what}.", self.prefix + "/")

    async def show(self, request: web.Request) -> web.Response:
        key = self._key(request)
        if key is None:
            return self._missing(request, key)
        try:
            found = await asyncio.to_thread(
                detail, self.target, key.name, key.namespace, key.kind, cost=self.cost, with_plan=True
            )
        except NotFound:
            return self._missing(request, key)
        found = dataclasses.replace(found, row=self._live([found.row])[0])
        context = {
            "title": f"{key.namespace}/{key.name}",
            "d": found,
            "row": found.row,
            "cost": self.report(found.document, self._figures(found.row)) if self.report is not None else None,
            "now_ms": self.now_ms(),
            "done": request.query.get("done") if request.query.get("done") in ACTIONS else None,
        }
        return self._render(request, _Page(200, "detail.html", context))

    # ------------------------------------------------------------------ actions

    async def _checked(self, request: web.Request) -> tuple[ResourceKey, Action, dict[str, str]] | web.Response:
        """The resource, the action and the form of an action request, or the refusal to answer with."""
        form = {k: str(v) for k, v in (await request.post()).items()}
        why = self._cross_site(request, form)
        if why is not None:
            return self._message(request, 403, "Refused", why)
        key = self._key(request)
        if key is None:
            return self._missing(request, key)
        action = form.get("action", "")
        if action not in ACTIONS:
            return self._message(request, 400, "Bad request", f"unknown action {action!r}")
        refusal = await self.authorize(request, key, action)
        if refusal is not None:
            return self._message(request, 403, "Not allowed", refusal, self._back(key))
        return key, action, form

    def _cross_site(self, request: web.Request, form: dict[str, str]) -> str | None:
        if request.headers.get("Sec-Fetch-Site", "same-origin") == "cross-site":
            return "a form sent from another site (Sec-Fetch-Site: cross-site)"
        origin = request.headers.get("Origin")
        if origin is not None and origin != "null" and urlsplit(origin).netloc != request.host:
            return f"a form sent from another origin ({origin})"
        cookie = request.cookies.get(CSRF_COOKIE, "")
        sent = form.get("csrf", "")
        if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
            return "the form's CSRF token does not match this browser's: reload the page and try again"
        return None

    def _back(self, key: ResourceKey) -> str:
        return self.prefix + detail_path(key.kind, key.namespace, key.name)

    async def confirm(self, request: web.Request) -> web.Response:
        checked = await self._checked(request)
        if isinstance(checked, web.Response):
            return checked
        key, action, _ = checked
        try:
            document = await asyncio.to_thread(find, self.target, key.name, key.namespace, key.kind)
        except NotFound:
            return self._missing(request, key)
        row: Row = row_of(document)
        if action not in actions_for(row):
            text = f"{action} does not apply to {key.kind} {key.namespace}/{key.name} now ({row.lifecycle})."
            return self._message(request, 409, "Not now", text, self._back(key))
        context = {
            "title": f"Confirm {action}",
            "row": row,
            "action": action,
            "basis": basis(document, action),
            "back": self._back(key),
            "now_ms": self.now_ms(),
        }
        return self._render(request, _Page(200, "confirm.html", context))

    async def act(self, request: web.Request) -> web.Response:
        checked = await self._checked(request)
        if isinstance(checked, web.Response):
            return checked
        key, action, form = checked
        try:
            await asyncio.to_thread(act, self.target, key, action, form.get("basis", ""))
        except NotFound as exc:
            return self._message(request, 404, "Not found", str(exc), self.prefix + "/")
        except Conflict as exc:
            return self._message(request, 409, "Changed meanwhile", str(exc), self._back(key))
        except InvalidInput as exc:
            text = "; ".join(p.render() for p in exc.problems)
            return self._message(request, 409, "Not now", text, self._back(key))
        except FlinkopsError as exc:
            return self._message(request, 409, "Not done", str(exc), self._back(key))
        # Post/redirect/get: reloading the page that follows does not send the action again. Only the action's
        # name travels in the address (the page says what it means): no text of the link's is shown as is.
        raise web.HTTPSeeOther(self._back(key) + "?done=" + action)


def behind_gateway(
    target: Target, cost: CostHook | None = None, namespaces: Sequence[str] = (), report: ReportHook | None = None
) -> Callable[[web.Application], None]:
    """The fleet page for the gateway (``Gateway(pages=...)``), under its ``PAGES_PREFIX``, over the gateway's
    ``namespaces`` (empty: every one): a caller sees the resources a role binding lets them view, and takes
    actions where it makes them an operator (or admin), the role that may take savepoints and stop jobs through
    the gateway."""
    from flinkops.gateway.policy import Action as Needs
    from flinkops.gateway.server import PAGES_PREFIX, current_caller

    async def authorize(request: web.Request, key: ResourceKey, action: Action) -> str | None:
        caller = current_caller()
        if caller is None:  # not through the gateway's door: nobody acts
            return "the caller is not known"
        decision = caller.may(key.namespace, key.name, Needs.OPERATE)
        return None if decision.allowed else f"{action} on {key.namespace}/{key.name}: {decision.reason}"

    def may_view(request: web.Request, namespace: str, name: str) -> bool:
        caller = current_caller()
        return caller is not None and caller.may(namespace, name, Needs.VIEW).allowed

    def through_the_gateway(row: Row) -> str | None:
        """The Flink UI as the gateway serves it (the JobManager's own address is not reachable from outside)."""
        return f"/{quote(row.namespace, safe='')}/{quote(row.name, safe='')}/" if row.flink_ui else None

    page = FleetPage(
        target,
        prefix=PAGES_PREFIX,
        authorize=authorize,
        may_view=may_view,
        cost=cost,
        report=report,
        watch=LiveWatch(target),
        ui_link=through_the_gateway,
        namespaces=namespaces,
    )
    return page.attach
