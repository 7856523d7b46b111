"""The gateway in front of a real Flink JobManager on the local runtime, with a real OpenID Connect provider, a real
CA and a real browser.

* ``<home>/gateway.yaml`` makes the controller daemon start the gateway beside itself; through it a viewer reads the
  running job from Flink's REST API, an anonymous caller gets nothing, and each request is in the audit log.
* The hostile corpus (tests/unit/test_gateway.py) against the same real JobManager, through a relay that counts
  what reaches it: none of it does, while the allowed calls do.
* Chromium (Debian's, driven by Playwright) opens the Flink UI through the gateway, is sent to the provider's
  sign-in form, signs in as a person would, comes back and sees the Flink dashboard with the running job; the
  screenshot is kept in ``.test-artifacts/``.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from flinkops.gateway.config import parse_config
from integration.flinkops_cli import Flinkops, application
from support.gateway import Pki, counting_relay, running_gateway
from support.gateway_corpus import hostile, raw_request, settings, tls, token
from support.oidc import OidcProvider
from support.testjobs import COUNTING_JOB, testjobs_jar

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / ".test-artifacts"
NAME = "conversions"
NAMESPACE = "ads"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def gated(
    tmp_path_factory: pytest.TempPathFactory, provider: OidcProvider, ca: Pki
) -> Iterator[tuple[Flinkops, str, str]]:
    """(the CLI on a home with a gateway, the gateway's URL, the JobManager's REST URL), one running job."""
    home = tmp_path_factory.mktemp("home")
    port = free_port()
    config = {**settings(provider.issuer, ca), "listen": f"127.0.0.1:{port}"}
    (home / "gateway.yaml").write_text(yaml.safe_dump(config))
    cli = Flinkops(home)
    checked = cli.run("gateway", "check")
    assert checked.code == 0 and "operator ads: group:ads-operators, cert:internal" in checked.stdout, checked
    cli.ok("controller", "start")
    try:
        job = application(
            home,
            NAME,
            testjobs_jar(),
            COUNTING_JOB,
            ["--rate", "50", "--keys", "4"],
            {"web.refresh-interval": "500 ms"},
        )
        text = json.loads(job.read_text())
        text["metadata"]["namespace"] = NAMESPACE
        job.write_text(json.dumps(text))
        cli.ok("apply", "-f", str(job))
        resource = cli.wait_for(
            NAME,
            lambda r: bool(r) and r.get("status", {}).get("lifecycleState") == "STABLE",
            what="STABLE",
            namespace=NAMESPACE,
        )
        assert resource is not None
        rest = resource["status"]["clusterInfo"]["rest-url"]
        yield cli, f"https://127.0.0.1:{port}", rest
    finally:
        cli.run("controller", "stop")
        cli.kill_everything()


def test_the_controller_starts_the_gateway_and_it_lets_in_only_whom_the_settings_say(
    gated: tuple[Flinkops, str, str], provider: OidcProvider, ca: Pki
) -> None:
    cli, gateway, rest = gated
    viewer = {"Authorization": f"Bearer {token(provider, 'vera', 'ads-viewers')}"}
    with httpx.Client(verify=tls(ca), timeout=10) as http:
        deadline = time.monotonic() + 30
        while True:  # the daemon's gateway reads the provider's discovery as it starts
            try:
                anonymous = http.get(f"{gateway}/{NAMESPACE}/{NAME}/jobs/overview")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, (cli.home / "gateway.log").read_text()
                time.sleep(0.2)
        assert anonymous.status_code == 401
        jobs = http.get(f"{gateway}/{NAMESPACE}/{NAME}/jobs/overview", headers=viewer)
        assert jobs.status_code == 200, jobs.text
        assert [j["state"] for j in jobs.json()["jobs"]] == ["RUNNING"]
        assert [j["jid"] for j in jobs.json()["jobs"]] == [
            j["jid"] for j in httpx.get(f"{rest}/jobs/overview").json()["jobs"]
        ]
        job_id = jobs.json()["jobs"][0]["jid"]
        refused = http.patch(f"{gateway}/{NAMESPACE}/{NAME}/jobs/{job_id}?mode=cancel", headers=viewer)
        assert refused.status_code == 403
    assert httpx.get(f"{rest}/jobs/{job_id}").json()["state"] == "RUNNING", "a viewer's cancel reached Flink"
    audit = [json.loads(line) for line in (cli.home / "gateway" / "audit.log").read_text().splitlines()]
    anonymous_line, read, cancel = audit[-3:]
    assert (anonymous_line["allowed"], anonymous_line["reason"], anonymous_line["status"]) == (
        False, "no credentials", 401,
    )  # fmt: skip
    assert (read["subject"], read["groups"], read["action"], read["allowed"], read["status"]) == (
        "vera", ["ads-viewers"], "view", True, 200,
    )  # fmt: skip
    assert (read["namespace"], read["name"], read["auth"]) == (NAMESPACE, NAME, "token")
    assert (cancel["action"], cancel["allowed"], cancel["status"]) == ("operate", False, 403)
    assert "viewer" in cancel["reason"]


def test_the_hostile_corpus_never_reaches_the_jobmanager(
    gated: tuple[Flinkops, str, str], provider: OidcProvider, ca: Pki, tmp_path: Path
) -> None:
    _, _, rest = gated
    config = parse_config(settings(provider.issuer, ca))
    with counting_relay(rest) as relay:

        async def upstreams(namespace: str, name: str) -> str | None:
            return relay.url if (namespace, name) == (NAMESPACE, NAME) else None

        with running_gateway(config, upstreams, tmp_path / "audit.log") as gateway:
            wrong = []
            for what, method, path, headers, cert, expected in hostile(provider, ca):
                status = raw_request(gateway.url, tls(ca, cert), method, path, headers)
                if status != expected:
                    wrong.append(f"{what}: {status}, expected {expected}")
            assert not wrong, "\n".join(wrong)
            assert relay.seen == [], f"{len(relay.seen)} hostile request(s) reached the JobManager"
            # The allowed ones do reach it: the count above is not blind.
            operator = {"Authorization": f"Bearer {token(provider, 'otto', 'ads-operators')}"}
            internal = tls(ca, ca.client("acme.com.app-1"))
            status = raw_request(gateway.url, internal, "GET", f"/{NAMESPACE}/{NAME}/jobs/overview", {})
            assert status == 200
            assert raw_request(gateway.url, tls(ca), "GET", f"/{NAMESPACE}/{NAME}/config", operator) == 200
            assert [path for _, path, _ in relay.seen] == ["/jobs/overview", "/config"]


def _chromium_flags() -> list[str]:
    return [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    ]  # fmt: skip


def test_a_person_signs_in_through_the_provider_and_sees_the_flink_dashboard(
    gated: tuple[Flinkops, str, str], provider: OidcProvider, ca: Pki
) -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "Debian's chromium is needed (scripts/bootstrap.sh installs it)"
    from playwright.sync_api import sync_playwright

    _, gateway, rest = gated
    provider.set_user("vera", groups=["ads-viewers"], name="Vera Viewer")
    job_name = httpx.get(f"{rest}/jobs/overview").json()["jobs"][0]["name"]
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=_chromium_flags())
        try:
            page = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 900}).new_page()
            page.goto(f"{gateway}/{NAMESPACE}/{NAME}/")
            assert page.url.startswith(provider.issuer), f"not sent to sign in: {page.url}"
            page.fill("input[name=sub]", "vera")
            page.get_by_role("button", name="Authorize", exact=True).click()
            page.wait_for_url(f"{gateway}/{NAMESPACE}/{NAME}/**", timeout=30_000)
            page.get_by_text(job_name).first.wait_for(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "gateway-flink-dashboard.png"), full_page=True)
            cookies = {c["name"]: c for c in page.context.cookies()}
            session = cookies["flinkops_session"]
            assert session["httpOnly"] and session["secure"]
        finally:
            browser.close()
