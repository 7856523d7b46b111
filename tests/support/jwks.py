"""An OpenID Connect provider whose signing keys the test turns: its discovery document and JWKS served over HTTP
on 127.0.0.1 (aiohttp, from a thread of the test process, ``support.gateway.serve``), its tokens signed here with
keys made by ``cryptography``.

``support.oidc``'s provider (``oidc-provider-mock``) has one key for its life; a rotation needs a provider that
starts signing with a new key, publishes it beside the old one or instead of it, and whose JWKS endpoint can fail.
This one does only that (no sign-in): the test says which keys the JWKS lists (``publish``), signs with any key it
made (``sign``), counts the JWKS requests (``jwks_reads``) and takes the endpoint down (``outage``).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from support.gateway import serve

__all__ = ["Outage", "RotatingProvider", "rotating_provider"]

#: How the JWKS endpoint fails: 503, or 200 with a page that is not a JWK set (a proxy's error page).
Outage = Literal["503", "not-a-jwks"]


@dataclass
class RotatingProvider:
    issuer: str = ""
    _keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    _published: tuple[str, ...] = ()
    _outage: Outage | None = None
    _reads: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def new_key(self) -> str:
        """A new RSA key (not published yet); its kid."""
        kid = uuid.uuid4().hex[:12]
        self._keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return kid

    def publish(self, *kids: str) -> None:
        """The JWKS lists these keys from now on, and only these."""
        assert all(kid in self._keys for kid in kids)
        self._published = kids

    @contextlib.contextmanager
    def outage(self, how: Outage = "503") -> Iterator[None]:
        """The JWKS endpoint fails while in the block (discovery still answers)."""
        self._outage = how
        try:
            yield
        finally:
            self._outage = None

    @property
    def published(self) -> tuple[str, ...]:
        return self._published

    @property
    def jwks_reads(self) -> int:
        """How many times the JWKS was asked for (answered or failed)."""
        with self._lock:
            return len(self._reads)

    def read_times(self) -> list[float]:
        """When the JWKS was asked for (``time.monotonic``), in order."""
        with self._lock:
            return list(self._reads)

    def sign(self, kid: str, sub: str, audience: str, *groups: str, naming: str | None = None) -> str:
        """A token for ``sub`` signed with key ``kid``; its header names that key, or ``naming``."""
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": sub, "aud": audience, "iat": now, "exp": now + 600, "groups": list(groups)}
        return jwt.encode(claims, self._keys[kid], algorithm="RS256", headers={"kid": naming or kid})

    def _jwks(self) -> dict[str, Any]:
        keys = []
        for kid in self._published:
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._keys[kid].public_key()))
            keys.append({**public, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def app(self) -> web.Application:
        async def discovery(_: web.Request) -> web.Response:
            return web.json_response(
                {
                    "issuer": self.issuer,
                    "jwks_uri": f"{self.issuer}/jwks",
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "id_token_signing_alg_values_supported": ["RS256"],
                }
            )

        async def jwks(_: web.Request) -> web.Response:
            with self._lock:
                self._reads.append(time.monotonic())
            if self._outage == "503":
                return web.Response(status=503, text="unavailable")
            if self._outage == "not-a-jwks":
                return web.Response(text="<html>maintenance</html>", content_type="text/html")
            return web.json_response(self._jwks())

        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", discovery)
        app.router.add_get("/jwks", jwks)
        return app


@contextlib.contextmanager
def rotating_provider() -> Iterator[RotatingProvider]:
    """A provider on 127.0.0.1 with one key, published."""
    provider = RotatingProvider()
    provider.publish(provider.new_key())
    with serve(provider.app()) as url:
        provider.issuer = url
        yield provider
