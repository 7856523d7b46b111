"""The gateway on a real OpenID Connect provider (in-process) and real TLS with certificates from a real CA, in
front of a counting stand-in for Flink's REST API: the hostile corpus is refused and none of it reaches the
stand-in; the allowed callers get through; every request is in the audit log. The same gateway in front of a real
JobManager, and a browser signing in, is tests/integration/test_gateway_live.py."""

from __future__ import annotations

import http.client
import re
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
import trustme

from flinkops.errors import InvalidInput
from flinkops.gateway.config import GatewayConfig, parse_config
from flinkops.gateway.policy import Action, classify, decide, unsafe_path
from support.gateway import Pki, RunningGateway, Upstream, counting_upstream, pki, running_gateway
from support.oidc import OidcProvider, oidc_provider, other_key

CLIENT = "flinkops-gateway"
JOB = "0123456789abcdef0123456789abcdef"
DOMAIN = "acme.com"


def settings(issuer: str, ca: Pki) -> dict[str, Any]:
    return {
        "listen": "127.0.0.1:0",
        "tls": {"cert": str(ca.server_cert), "key": str(ca.server_key), "clientCA": str(ca.ca_file)},
        "oidc": {"issuer": issuer, "clientId": CLIENT, "clientSecret": "s3", "audience": ["api://flinkops"]},
        "certificateRules": [
            {"name": "external", "regex": re.escape(DOMAIN) + r":([0-9a-z_-]+).*"},
            {"name": "internal", "exact": f"{DOMAIN}.app-1", "namespace": "ads"},
        ],
        "roles": [
            {"subjects": ["group:flink-admins"], "role": "admin"},
            {"subjects": ["group:ads-operators", "cert:internal"], "role": "operator", "namespace": "ads"},
            {"subjects": ["group:ads-viewers", "cert:external:billing"], "role": "viewer", "namespace": "ads"},
        ],
        "jars": [{"subjects": ["group:jar-publishers"]}],
    }


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with oidc_provider() as running:
        yield running


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return pki(tmp_path_factory.mktemp("pki"))


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


def tls(ca: Pki, cert: tuple[str, str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.ca_file))
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


def client(ca: Pki, cert: tuple[str, str] | None = None) -> httpx.Client:
    return httpx.Client(verify=tls(ca, cert), timeout=10, follow_redirects=False)


def raw_request(url: str, context: ssl.SSLContext, method: str, target: str, headers: dict[str, str]) -> int:
    """The request exactly as written (no client-side normalizing of the path); its status, 0 when the TLS
    handshake refused the caller."""
    parsed = urlsplit(url)
    connection = http.client.HTTPSConnection(parsed.hostname or "", parsed.port, context=context, timeout=10)
    try:
        connection.request(method, target, body=b"{}", headers={"Content-Type": "application/json", **headers})
        return connection.getresponse().status
    except (ssl.SSLError, ConnectionError):
        return 0
    finally:
        connection.close()


def token(provider: OidcProvider, sub: str, *groups: str, audience: str = CLIENT, **extra: Any) -> str:
    return provider.sign(provider.claims(sub, audience, groups=list(groups), **extra))


# ------------------------------------------------------------------ the hostile corpus


def hostile(provider: OidcProvider, ca: Pki) -> list[tuple[str, str, str, dict[str, str], Any, int]]:
    """(what, method, path, headers, client certificate, expected status)."""
    now = int(time.time())
    viewer = token(provider, "vera", "ads-viewers")
    bearer = lambda t: {"Authorization": f"Bearer {t}"}  # noqa: E731
    base = f"/ads/conversions/jobs/{JOB}"
    other_ca = trustme.CA()
    return [
        ("no credentials", "GET", "/ads/conversions/jobs/overview", {}, None, 401),
        ("basic auth", "GET", "/ads/conversions/jobs/overview", {"Authorization": "Basic dXNlcjpwdw=="}, None, 401),
        ("expired token", "GET", "/ads/conversions/jobs/overview",
         bearer(provider.sign(provider.claims("vera", CLIENT, groups=["ads-viewers"], iat=now - 7200, exp=now - 3600))),
         None, 401),
        ("not-yet-valid token", "GET", "/ads/conversions/jobs/overview",
         bearer(token(provider, "vera", "ads-viewers", nbf=now + 3600)), None, 401),
        ("wrong issuer", "GET", "/ads/conversions/jobs/overview",
         bearer(provider.sign({**provider.claims("vera", CLIENT, groups=["ads-viewers"]), "iss": "https://evil.example"})),
         None, 401),
        ("wrong audience", "GET", "/ads/conversions/jobs/overview",
         bearer(token(provider, "vera", "ads-viewers", audience="another-app")), None, 401),
        ("alg none", "GET", "/ads/conversions/jobs/overview",
         bearer(jwt.encode(provider.claims("eve", CLIENT, groups=["flink-admins"]), None, algorithm="none")),
         None, 401),
        ("HS256 with the public key as secret", "GET", "/ads/conversions/jobs/overview",
         bearer(provider.sign(provider.claims("eve", CLIENT, groups=["flink-admins"]), key=b"x" * 32, alg="HS256")),
         None, 401),
        ("forged signature", "GET", "/ads/conversions/jobs/overview",
         bearer(provider.sign(provider.claims("eve", CLIENT, groups=["flink-admins"]), key=other_key())), None, 401),
        ("garbage token", "GET", "/ads/conversions/jobs/overview", bearer("not.a.jwt"), None, 401),
        ("groups not allowed", "GET", "/ads/conversions/jobs/overview",
         bearer(token(provider, "mallory", "marketing")), None, 403),
        ("viewer of another namespace", "GET", "/fraud/detector/jobs/overview", bearer(viewer), None, 403),
        ("viewer cancels", "PATCH", f"{base}?mode=cancel", bearer(viewer), None, 403),
        ("viewer cancels the legacy way", "GET", f"{base}/yarn-cancel", bearer(viewer), None, 403),
        ("viewer takes a savepoint", "POST", f"{base}/savepoints", bearer(viewer), None, 403),
        ("viewer stops the job", "POST", f"{base}/stop", bearer(viewer), None, 403),
        ("viewer rescales", "PUT", f"{base}/resource-requirements", bearer(viewer), None, 403),
        ("viewer uploads a jar", "POST", "/ads/conversions/jars/upload", bearer(viewer), None, 403),
        ("viewer runs a jar", "POST", "/ads/conversions/jars/abc_job.jar/run", bearer(viewer), None, 403),
        ("admin uploads a jar without a jars rule", "POST", "/ads/conversions/jars/upload",
         bearer(token(provider, "ada", "flink-admins")), None, 403),
        ("viewer shuts the cluster down", "DELETE", "/ads/conversions/cluster", bearer(viewer), None, 403),
        ("CVE-2020-17519, %2f", "GET", "/ads/conversions/jobmanager/logs/..%2f..%2f..%2fetc%2fpasswd", bearer(viewer),
         None, 400),
        ("CVE-2020-17519, %252f", "GET", "/ads/conversions/jobmanager/logs/..%252f..%252f..%252fetc%252fpasswd",
         bearer(viewer), None, 400),
        ("CVE-2020-17519, %2e%2e", "GET", "/ads/conversions/jobmanager/logs/%2e%2e/%2e%2e/etc/passwd", bearer(viewer),
         None, 400),
        ("CVE-2020-17518, upload to ../", "POST", "/ads/conversions/jars/upload/..%2f..%2ftmp%2fx", bearer(viewer),
         None, 400),
        ("backslash traversal", "GET", "/ads/conversions/jobmanager/logs/..%5c..%5cetc", bearer(viewer), None, 400),
        ("dot segments", "GET", "/ads/conversions/../fraud/detector/config", bearer(viewer), None, 400),
        ("X-Forwarded-User smuggled", "GET", "/ads/conversions/jobs/overview",
         {"X-Forwarded-User": "ada", "X-Forwarded-Groups": "flink-admins"}, None, 400),
        ("X-Forwarded-User beside a viewer's token", "DELETE", "/ads/conversions/cluster",
         {**bearer(viewer), "X-Forwarded-User": "ada"}, None, 400),
        ("trusted certificate, CN matches no rule", "GET", "/ads/conversions/jobs/overview", {},
         ca.client("intruder.example"), 403),
        ("external rule's shape, another domain", "GET", "/ads/conversions/jobs/overview", {},
         ca.client("evil.com:billing"), 403),
        ("internal rule, CN differs", "GET", "/ads/conversions/jobs/overview", {}, ca.client(f"{DOMAIN}.app-2"), 403),
        ("internal rule, another namespace", "GET", "/fraud/detector/jobs/overview", {}, ca.client(f"{DOMAIN}.app-1"),
         403),
        ("external identity without a role", "GET", "/ads/conversions/jobs/overview", {},
         ca.client(f"{DOMAIN}:payroll"), 403),
        ("external viewer takes a savepoint", "POST", f"{base}/savepoints", {}, ca.client(f"{DOMAIN}:billing"), 403),
        ("internal operator uploads a jar", "POST", "/ads/conversions/jars/upload", {}, ca.client(f"{DOMAIN}.app-1"),
         403),
        ("certificate from another CA", "GET", "/ads/conversions/jobs/overview", {},
         ca.client(f"{DOMAIN}.app-1", ca=other_ca), 0),
    ]  # fmt: skip


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
