"""A real OpenID Connect provider for the gateway's tests: ``oidc-provider-mock`` (PyPI; an authlib-based provider
with discovery, JWKS, the authorization code flow with PKCE, an ID token signed RS256, and a sign-in form where a
person types who they are), served by werkzeug on 127.0.0.1 in a thread of the test process.

Chosen over building Dex or Keycloak: it installs with the test dependencies in seconds, runs in-process (no
binary to build or JVM to start on two cores), and is a real provider on the wire: the gateway reads its discovery
and JWKS over HTTP and redeems real codes. In the process the tests can also sign tokens with the provider's own
key (``sign``), which is how the hostile corpus makes tokens that verify but are expired, early, for another
audience or from another issuer.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import werkzeug.serving
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["OidcProvider", "oidc_provider"]


@dataclass
class OidcProvider:
    issuer: str
    _private_pem: bytes
    _kid: str

    def set_user(self, sub: str, **claims: Any) -> None:
        """What the provider says about ``sub`` (e.g. ``groups=["ads"]``) in its tokens from now on."""
        httpx.put(f"{self.issuer}/users/{sub}", json=claims, timeout=10).raise_for_status()

    def sign(
        self, claims: dict[str, Any], *, key: bytes | None = None, kid: str | None = None, alg: str = "RS256"
    ) -> str:
        """A JWT with ``claims`` signed with the provider's own key (or ``key``)."""
        return jwt.encode(claims, key or self._private_pem, algorithm=alg, headers={"kid": kid or self._kid})

    def claims(self, sub: str, audience: str, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": self.issuer, "sub": sub, "aud": audience, "iat": now, "exp": now + 600, **extra}

    def id_token(self, client_id: str, sub: str, redirect_uri: str = "http://127.0.0.1/cb") -> str:
        """An ID token for ``sub`` the way an API client gets one: the code flow driven over HTTP (the sign-in form
        posted as a person would), then the code redeemed at the token endpoint."""
        with httpx.Client(timeout=10, follow_redirects=False) as http:
            params = {
                "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                "scope": "openid profile email", "state": uuid.uuid4().hex, "nonce": uuid.uuid4().hex,
            }  # fmt: skip
            form = http.post(f"{self.issuer}/oauth2/authorize", params=params, data={"sub": sub})
            assert form.status_code == 302, form.text
            code = parse_qs(urlsplit(form.headers["Location"]).query)["code"][0]
            token = http.post(
                f"{self.issuer}/oauth2/token",
                data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                      "client_id": client_id, "client_secret": "any"},
            )  # fmt: skip
            token.raise_for_status()
            return str(token.json()["id_token"])


def other_key() -> bytes:
    """A private key the provider never published (forged signatures)."""
    from cryptography.hazmat.primitives import serialization

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@contextlib.contextmanager
def oidc_provider() -> Iterator[OidcProvider]:
    import logging

    import flask
    from oidc_provider_mock import app as provider_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = provider_app()
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    issuer = f"http://127.0.0.1:{server.server_port}"
    try:
        with app.test_request_context(base_url=issuer):
            app.preprocess_request()
            jwk = flask.g.oidc_provider_mock_storage.jwk
            pem = jwk.as_pem(is_private=True)
            kid = jwk.as_dict()["kid"]
        discovery = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
        assert discovery["issuer"] == issuer, discovery["issuer"]
        assert re.match(r"^[\w-]+$", kid)
        yield OidcProvider(issuer, pem, kid)
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
