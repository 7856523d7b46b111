"""The gateway on a real OpenID Connect provider (in-process) and real TLS with certificates from a real CA, in
front of a counting stand-in for Flink's REST API: the hostile corpus is refused and none of it reaches the
stand-in; the allowed callers get through; every request is in the audit log. The same gateway in front of a real
JobManager, and a browser signing in, is tests/integration/test_gateway_live.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flinkops.errors import InvalidInput
from flinkops.gateway.config import GatewayConfig, parse_config
from flinkops.gateway.policy import Action, classify, decide, unsafe_path
from support.gateway import Pki, RunningGateway, Upstream, counting_upstream, running_gateway
from support.gateway_corpus import DOMAIN, JOB, client, hostile, raw_request, settings, tls, token
from support.oidc import OidcProvider


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with counting_upstream() as running:
        yield running


@pytest.fixture(scope="module")
def gateway(
    provider: OidcProvider, ca: Pki, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    config = parse_config(settings(provider.issuer, ca))

    async def upstreams(namespace: str, name: str) -> str | None:
        if (namespace, name) == ("ads", "conversions"):
            return upstream.url
        if (namespace, name) == ("ads", "stopped"):
            return ""
        return None

    async def listing() -> list[tuple[str, str]]:
        return [("ads", "conversions"), ("ads", "stopped"), ("fraud", "detector")]

    audit = tmp_path_factory.mktemp("gateway") / "audit.log"
    with running_gateway(config, upstreams, audit, listing=listing) as running:
        yield running


# ------------------------------------------------------------------ the hostile corpus


def test_the_hostile_corpus_is_refused_and_nothing_of_it_reaches_flink(
    gateway: RunningGateway, upstream: Upstream, provider: OidcProvider, ca: Pki
) -> None:
    provider.set_user("vera", groups=["ads-viewers"])
    before = len(upstream.seen)
    wrong: list[str] = []
    for what, method, path, headers, cert, expected in hostile(provider, ca):
        status = raw_request(gateway.url, tls(ca, cert), method, path, headers)
        if status != expected:
            wrong.append(f"{what}: {status}, expected {expected}")
    assert not wrong, "\n".join(wrong)
    assert upstream.seen[before:] == [], "a hostile request reached Flink"
    denied = [r for r in gateway.audit() if r.get("allowed") is False]
    assert len(denied) >= 30 and all(r["reason"] for r in denied)


def test_allowed_callers_get_through_without_their_credentials_reaching_flink(
    gateway: RunningGateway, upstream: Upstream, provider: OidcProvider, ca: Pki
) -> None:
    viewer = token(provider, "vera", "ads-viewers")
    operator = token(provider, "otto", "ads-operators")
    publisher = token(provider, "pia", "ads-viewers", "jar-publishers")
    calls = [
        ("viewer reads", "GET", "/ads/conversions/jobs/overview", {"Authorization": f"Bearer {viewer}"}, None),
        ("operator savepoints", "POST", f"/ads/conversions/jobs/{JOB}/savepoints",
         {"Authorization": f"Bearer {operator}"}, None),
        ("API audience", "GET", "/ads/conversions/config",
         {"Authorization": f"Bearer {token(provider, 'vera', 'ads-viewers', audience='api://flinkops')}"}, None),
        ("internal service by exact CN", "POST", f"/ads/conversions/jobs/{JOB}/stop", {}, ca.client(f"{DOMAIN}.app-1")),
        ("external service by regex", "GET", "/ads/conversions/jobs/overview", {}, ca.client(f"{DOMAIN}:billing")),
        ("a jars rule", "POST", "/ads/conversions/jars/upload", {"Authorization": f"Bearer {publisher}"}, None),
    ]  # fmt: skip
    before = len(upstream.seen)
    for what, method, path, headers, cert in calls:
        with client(ca, cert) as http:
            response = http.request(method, gateway.url + path, headers=headers, content=b"{}")
        assert response.status_code == 200, f"{what}: {response.status_code} {response.text}"
    reached = upstream.seen[before:]
    assert [(m, p) for m, p, _ in reached] == [(m, "/" + p.split("/", 3)[3]) for _, m, p, _, _ in calls]
    for _, _, headers in reached:
        names = {h.lower() for h in headers}
        assert "authorization" not in names and "cookie" not in names
        assert headers["X-Forwarded-Prefix"] == "/ads/conversions"
    allowed = [r for r in gateway.audit() if r.get("allowed") and r.get("action")]
    assert {r["subject"] for r in allowed} >= {"vera", "otto", f"{DOMAIN}.app-1", f"{DOMAIN}:billing"}
    entry = next(r for r in allowed if r["subject"] == f"{DOMAIN}.app-1")
    assert entry["cn"] == f"{DOMAIN}.app-1" and entry["auth"] == "certificate" and entry["action"] == "operate"


def test_a_deployment_that_is_missing_or_down_is_said_so_after_authorization(
    gateway: RunningGateway, provider: OidcProvider, ca: Pki
) -> None:
    admin = {"Authorization": f"Bearer {token(provider, 'ada', 'flink-admins')}"}
    with client(ca) as http:
        assert http.get(gateway.url + "/ads/stopped/jobs/overview", headers=admin).status_code == 503
        assert http.get(gateway.url + "/ads/nothing/jobs/overview", headers=admin).status_code == 404
        # Without a role there, a caller does not learn whether it exists.
        viewer = {"Authorization": f"Bearer {token(provider, 'vera', 'ads-viewers')}"}
        assert http.get(gateway.url + "/fraud/nothing/jobs/overview", headers=viewer).status_code == 403
        index = http.get(gateway.url + "/", headers=viewer)
        assert "ads/conversions" in index.text and "fraud/detector" not in index.text
        assert http.get(gateway.url + "/ads/conversions", headers=viewer).headers["Location"] == "/ads/conversions/"


def test_a_browser_without_a_session_is_sent_to_sign_in_and_back(
    gateway: RunningGateway, provider: OidcProvider, ca: Pki
) -> None:
    provider.set_user("vera", groups=["ads-viewers"])
    with client(ca) as http:
        page = http.get(gateway.url + "/ads/conversions/", headers={"Accept": "text/html"})
        assert page.status_code == 302 and page.headers["Location"].startswith("/_auth/login?rd=")
        login = http.get(gateway.url + page.headers["Location"])
        assert login.status_code == 302 and login.headers["Location"].startswith(provider.issuer)
        authorize = login.headers["Location"]
        assert "code_challenge=" in authorize and "code_challenge_method=S256" in authorize and "nonce=" in authorize
        # The person signs in at the provider's form.
        signed = http.post(authorize, data={"sub": "vera"})
        assert signed.status_code == 302
        callback = http.get(signed.headers["Location"])
        assert callback.status_code == 302 and callback.headers["Location"] == "/ads/conversions/"
        cookie = callback.headers["set-cookie"].lower()
        assert "httponly" in cookie and "secure" in cookie and "samesite=lax" in cookie
        assert http.get(gateway.url + "/ads/conversions/jobs/overview").status_code == 200
        assert http.post(gateway.url + f"/ads/conversions/jobs/{JOB}/savepoints").status_code == 403
        # The callback cannot be replayed.
        assert http.get(signed.headers["Location"]).status_code == 400
        http.get(gateway.url + "/_auth/logout")
        assert http.get(gateway.url + "/ads/conversions/jobs/overview").status_code == 401


# ------------------------------------------------------------------ pure parts


@pytest.mark.parametrize(
    ("raw", "unsafe"),
    [
        ("/ads/conversions/jobs/overview", False),
        ("/ads/conversions/jobmanager/logs/jobmanager.log", False),
        ("/ads/conversions/", False),
        ("/ads/conversions/jobmanager/logs/..%2f..%2fetc%2fpasswd", True),
        ("/ads/conversions/jobmanager/logs/..%252fetc", True),
        ("/a/b/%2E%2E/x", True),
        ("/a/b/%5c", True),
        ("/a/b/%00", True),
        ("/a/b/../c", True),
        ("/a/b/./c", True),
        ("/a//b", True),
        ("/a/b/c\\d", True),
    ],
)
def test_unsafe_paths(raw: str, unsafe: bool) -> None:
    assert (unsafe_path(raw) is not None) == unsafe


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("GET", "/jobs/overview", Action.VIEW),
        ("GET", f"/jobs/{JOB}/yarn-cancel", Action.OPERATE),
        ("PATCH", f"/jobs/{JOB}", Action.OPERATE),
        ("POST", f"/jobs/{JOB}/savepoints", Action.OPERATE),
        ("POST", f"/jobs/{JOB}/stop", Action.OPERATE),
        ("PUT", f"/jobs/{JOB}/resource-requirements", Action.OPERATE),
        ("POST", "/jars/upload", Action.JARS),
        ("POST", "/jars/x.jar/run", Action.JARS),
        ("POST", "/jobs", Action.JARS),
        ("DELETE", "/jars/x.jar", Action.JARS),
        ("DELETE", "/cluster", Action.ADMIN),
        ("POST", "/something-new", Action.ADMIN),
    ],
)
def test_each_flink_call_is_the_action_it_is(method: str, path: str, action: Action) -> None:
    assert classify(method, path) is action


def test_roles_are_per_namespace_and_deployment_and_the_highest_wins(tmp_path: Path) -> None:
    config = parse_config(
        {
            "allowPlainHttp": True,
            "certificateRules": [],
            "oidc": {"issuer": "https://idp.example", "clientId": "c"},
            "roles": [
                {"subjects": ["group:a"], "role": "viewer"},
                {"subjects": ["group:a"], "role": "operator", "namespace": "ads", "deployment": "conv"},
            ],
        }
    )
    subjects = frozenset({"group:a"})
    assert decide(config, subjects, "ads", "conv", Action.OPERATE).allowed
    assert not decide(config, subjects, "ads", "other", Action.OPERATE).allowed
    assert decide(config, subjects, "ads", "other", Action.VIEW).allowed
    assert not decide(config, frozenset({"group:b"}), "ads", "conv", Action.VIEW).allowed


def test_bad_settings_name_each_field() -> None:
    with pytest.raises(InvalidInput) as bad:
        parse_config(
            {
                "listen": "nowhere",
                "tls": {"cert": "/c.pem", "key": "/k.pem"},
                "oidc": {"issuer": "idp.example", "clientId": "c", "grups": "x"},
                "certificateRules": [{"name": "r", "regex": "("}],
                "roles": [{"subjects": ["everyone"], "role": "superuser"}],
            }
        )
    paths = {p.path for p in bad.value.problems}
    assert {"listen", "oidc.issuer", "oidc.grups", "certificateRules[0]", "roles[0].subjects", "roles[0].role"} <= paths
    with pytest.raises(InvalidInput) as bad:
        parse_config({"oidc": {"issuer": "https://idp.example", "clientId": "c"}})
    assert "tls is required" in bad.value.problems[0].message
    assert isinstance(parse_config({"allowPlainHttp": True, "oidc": {"issuer": "https://i", "clientId": "c"}}),
                      GatewayConfig)  # fmt: skip
