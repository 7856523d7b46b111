"""The fleet web page (flinkops.web) through aiohttp's test client on a store filled as a controller leaves it: what
a person sees on the overview and a detail page, a 404 page for a name that does not exist, actions behind a
confirmation, refused when the spec changed meanwhile (409) or when the form did not come from the page (CSRF,
403), and nothing written in either case."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from flinkops.core.cost import price_text
from flinkops.ports import ResourceKey
from flinkops.service import apply
from flinkops.service.cost import as_dict, cost_of, cost_report, price_column
from flinkops.service.fleet import Action
from flinkops.web.app import FleetPage
from support.fleet import NOW_MS, with_status
from support.service import TestTarget, deployment, session_cluster, session_job

KEY = ResourceKey("FlinkDeployment", "default", "fraud")
DETAIL = "/namespaces/default/flinkdeployments/fraud"


def on_page(page: FleetPage, scenario: Callable[[TestClient[Any, Any]], Awaitable[None]]) -> None:
    async def run() -> None:
        async with TestClient(TestServer(page.app())) as client:
            await scenario(client)

    asyncio.run(run())


def a_fleet(target: TestTarget) -> None:
    (applied,) = apply(target, [deployment("fraud", parallelism=4)])
    with_status(target.store(), applied.resource, checkpoint_age_s=12, savepoint_age_s=3600, restarts=2,
                error="JobManager lost <b>twice</b>")  # fmt: skip
    apply(target, [session_cluster("session"), session_job("sj", "session")])
    target.store().record_event(KEY, "Warning", "JobManagerLost", "the JobManager died; recovered from chk-3")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


def nonce(target: TestTarget) -> int | None:
    stored = target.store().get(KEY)
    assert stored is not None and stored.spec.job is not None
    return stored.spec.job.savepoint_trigger_nonce


def test_the_overview_shows_every_resource_with_its_health(target: TestTarget) -> None:
    a_fleet(target)

    async def scenario(client: TestClient[Any, Any]) -> None:
        response = await client.get("/")
        html = await response.text()
        assert response.status == 200
        for name in ("fraud", "session", "sj"):
            assert f">{name}</a>" in html
        row = html[html.index(">fraud</a>") :].split("</tr>")[0]
        assert "STABLE" in row and "RUNNING" in row
        assert ">12s<" in row  # checkpoint age
        assert "1h 00m ago" in row and "file:/state/fraud/savepoints/savepoint-a1b2c3-0123456789ab" in row
        assert '<td class="num">2</td>' in row  # restarts
        assert '<td class="num">4</td>' in row  # parallelism
        # The price so far, the figure `flinkops cost` reports (the test's clock stands still).
        stored = target.store().get(KEY)
        assert stored is not None
        price = cost_of(stored, int(target.clock.now() * 1000)).total("price")
        assert price is not None and price > 0 and f'<td class="num">{price_text(price, "USD")}</td>' in row
        assert "JobManager lost &lt;b&gt;twice&lt;/b&gt;" in row  # escaped
        assert 'href="http://127.0.0.1:8081"' in row
        assert "session job" in html and "session cluster" in html

    on_page(FleetPage(target, now_ms=lambda: NOW_MS, cost=price_column(target)), scenario)


def test_the_overview_of_an_empty_store_says_how_to_start(target: TestTarget) -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        response = await client.get("/")
        assert response.status == 200
        assert "flinkops apply -f job.yaml" in await response.text()

    on_page(FleetPage(target), scenario)


def test_a_detail_page_shows_runs_events_conditions_and_the_actions(target: TestTarget) -> None:
    a_fleet(target)

    async def scenario(client: TestClient[Any, Any]) -> None:
        response = await client.get(DETAIL)
        html = await response.text()
        assert response.status == 200
        assert "<h1>default/fraud" in html
        assert "recover" in html and "4.2 s" in html  # a run and its downtime
        assert "JobManagerLost" in html and "recovered from chk-3" in html
        assert "JobRunning" in html  # the Ready condition's reason
        assert "None: the controller has reconciled generation 1" in html
        for action in ("Savepoint…", "Suspend…", "Rollback…"):
            assert action in html
        assert "Resume…" not in html  # it runs

    on_page(FleetPage(target, now_ms=lambda: NOW_MS), scenario)


def test_a_detail_page_prices_each_run_as_flinkops_cost_does(target: TestTarget) -> None:
    a_fleet(target)
    stored = target.store().get(KEY)
    assert stored is not None
    priced = as_dict(cost_of(stored, int(target.clock.now() * 1000)))

    async def scenario(client: TestClient[Any, Any]) -> None:
        html = await (await client.get(DETAIL)).text()
        table = html[html.index('<table id="cost">') : html.index("</table>", html.index('<table id="cost">'))]
        rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
        assert len(rows) == 1 + len(priced["runs"]) + 1  # the head, a row per run, the total
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[-1], re.S)]
        total = priced["total"]
        assert cells[0] == "Total" and cells[2] == f"{total['vcpuSeconds']:.1f}", cells
        assert cells[4] == f"{total['slotSeconds']:.1f}" and cells[-1] == f"{total['price']:.4f} USD", cells

    on_page(FleetPage(target, now_ms=lambda: NOW_MS, report=cost_report(target)), scenario)

    async def without(client: TestClient[Any, Any]) -> None:
        assert "Not priced here: <code>flinkops cost fraud -n default</code>" in await (await client.get(DETAIL)).text()

    on_page(FleetPage(target, now_ms=lambda: NOW_MS), without)


def test_a_name_that_does_not_exist_is_a_404_page(target: TestTarget) -> None:
    a_fleet(target)

    async def scenario(client: TestClient[Any, Any]) -> None:
        for path in ("/namespaces/default/flinkdeployments/nope", "/namespaces/default/pods/fraud", "/nowhere"):
            response = await client.get(path)
            assert response.status == 404, path
            assert "Not found" in await response.text()
        missing = await client.get("/namespaces/default/flinkdeployments/nope")
        assert "There is no FlinkDeployment default/nope" in await missing.text()

    on_page(FleetPage(target), scenario)


async def confirmed(client: TestClient[Any, Any], action: str) -> tuple[str, str]:
    """Open the detail page, press the action's button: the CSRF token and the confirmation page."""
    token = csrf_of(await (await client.get(DETAIL)).text())
    response = await client.post(DETAIL + "/confirm", data={"action": action, "csrf": token})
    assert response.status == 200
    return token, await response.text()


def test_an_action_is_confirmed_first_then_applied(target: TestTarget) -> None:
    a_fleet(target)

    async def scenario(client: TestClient[Any, Any]) -> None:
        token, page = await confirmed(client, "savepoint")
        assert "Confirm: savepoint default/fraud" in page
        assert nonce(target) is None  # the confirmation changes nothing
        basis = re.search(r'name="basis" value="([^"]+)"', page)
        assert basis is not None and basis.group(1) == "g1"
        response = await client.post(
            DETAIL + "/act", data={"action": "savepoint", "csrf": token, "basis": basis.group(1)}
        )
        assert response.status == 200 and response.url.path == DETAIL  # redirected back to the detail page
        assert "Take a savepoint of the running job now: requested" in await response.text()
        assert nonce(target) == 1

    on_page(FleetPage(target), scenario)


def test_an_action_on_a_resource_changed_since_the_confirmation_is_refused_with_409(target: TestTarget) -> None:
    a_fleet(target)

    async def scenario(client: TestClient[Any, Any]) -> None:
        token, page = await confirmed(client, "suspend")
        basis = re.search(r'name="basis" value="([^"]+)"', page)
        assert basis is not None
        apply(target, [deployment("fraud", parallelism=8)])  # a new spec meanwhile
        before = target.store().document(KEY)
        response = await client.post(DETAIL + "/act", data={"action": "suspend", "csrf": token, "basis": basis[1]})
        assert response.status == 409
        assert "changed since you confirmed" in await response.text()
        assert target.store().document(KEY) == before

    on_page(FleetPage(target), scenario)


def test_a_form_without_the_pages_csrf_token_or_from_another_origin_is_refused(target: TestTarget) -> None:
    a_fleet(target)

    async def scenario(client: TestClient[Any, Any]) -> None:
        token = csrf_of(await (await client.get(DETAIL)).text())
        form = {"action": "savepoint", "basis": "g1"}
        refused = [
            await client.post(DETAIL + "/act", data=form),  # no token
            await client.post(DETAIL + "/act", data={**form, "csrf": "x" * 43}),  # not this browser's
            await client.post(DETAIL + "/act", data={**form, "csrf": token}, headers={"Origin": "http://evil.test"}),
            await client.post(DETAIL + "/act", data={**form, "csrf": token}, headers={"Sec-Fetch-Site": "cross-site"}),
            await client.post(DETAIL + "/confirm", data={"action": "savepoint"}),
        ]
        for response in refused:
            assert response.status == 403
            assert "Refused" in await response.text()
        assert nonce(target) is None

    on_page(FleetPage(target), scenario)


def test_the_csrf_cookie_is_http_only_and_same_site_strict(target: TestTarget) -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        response = await client.get("/")
        cookie = response.headers["Set-Cookie"]
        assert "flinkops_ui_csrf=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]

    on_page(FleetPage(target), scenario)


def test_an_action_that_does_not_apply_now_is_refused_at_the_confirmation(target: TestTarget) -> None:
    a_fleet(target)

    async def scenario(client: TestClient[Any, Any]) -> None:
        token = csrf_of(await (await client.get(DETAIL)).text())
        response = await client.post(DETAIL + "/confirm", data={"action": "resume", "csrf": token})
        assert response.status == 409
        assert "resume does not apply" in await response.text()

    on_page(FleetPage(target), scenario)


def test_who_may_act_is_the_authorizers_decision(target: TestTarget) -> None:
    a_fleet(target)

    async def viewers_only(request: web.Request, key: ResourceKey, action: Action) -> str | None:
        return f"{action} needs operator; the caller is viewer"

    async def scenario(client: TestClient[Any, Any]) -> None:
        token = csrf_of(await (await client.get(DETAIL)).text())
        response = await client.post(DETAIL + "/confirm", data={"action": "savepoint", "csrf": token})
        assert response.status == 403
        assert "savepoint needs operator" in await response.text()
        response = await client.post(DETAIL + "/act", data={"action": "savepoint", "csrf": token, "basis": "g1"})
        assert response.status == 403
        assert nonce(target) is None

    on_page(FleetPage(target, authorize=viewers_only), scenario)


def test_a_page_over_some_namespaces_never_reads_the_others(target: TestTarget, monkeypatch: Any) -> None:
    """Behind the gateway on Kubernetes the page serves the gateway's namespaces only (RBAC may allow no
    others): another namespace is neither listed nor read, and its pages are 404 pages."""
    for namespace, name in (("ads", "conversions"), ("fraud", "detector")):
        d = deployment(name)
        apply(target, [d.model_copy(update={"metadata": d.metadata.model_copy(update={"namespace": namespace})})])
    read: list[str | None] = []
    documents = target.documents

    def recording(kind: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        read.append(namespace)
        return documents(kind, namespace)

    monkeypatch.setattr(target, "documents", recording)

    async def scenario(client: TestClient[Any, Any]) -> None:
        html = await (await client.get("/")).text()
        assert ">conversions</a>" in html and "detector" not in html
        assert ">conversions</a>" in await (await client.get("/?namespace=ads")).text()
        assert "detector" not in await (await client.get("/?namespace=fraud")).text()
        hidden = await client.get("/namespaces/fraud/flinkdeployments/detector")
        assert hidden.status == 404
        assert "There is no FlinkDeployment fraud/detector" in await hidden.text()

    on_page(FleetPage(target, namespaces=("ads",)), scenario)
    assert set(read) == {"ads"}
