"""The gateway's test settings and its hostile corpus, shared by the fast tests (a stand-in for Flink) and the live
ones (a real JobManager behind a counting relay)."""

from __future__ import annotations

import http.client
import re
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import trustme

from support.gateway import Pki
from support.oidc import OidcProvider, other_key

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
