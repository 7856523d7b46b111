"""OpenID Connect for the gateway: the provider's discovery document and keys, token verification, and the
browser's sign-in (authorization code flow with PKCE).

* Discovery (``<issuer>/.well-known/openid-configuration``) is read at start; its ``issuer`` must be the
  configured one exactly. Okta, Entra ID, Keycloak, Dex... differ only in settings.
* Keys come from the provider's JWKS (as PyJWT's ``PyJWK``). A token signed with a key id not known yet makes the
  gateway read the JWKS again, so a provider's key rotation needs nothing from anyone. Reads are at least
  ``jwksMinIntervalSeconds`` (10 s) apart: a token arriving sooner waits for the next read allowed (one read for
  all that wait) rather than being refused, so a flood of made-up key ids costs the provider one read per
  interval and a real new key is taken up within one interval. A read that fails (the endpoint down, an answer
  that is no JWK set) keeps the keys known and counts as a read; the token is refused (401), saying so. A key the
  JWKS no longer lists is forgotten at the read, and tokens verified with it are checked again (and refused).
* A token is accepted only when its header's ``alg`` is an asymmetric algorithm the provider announces (never
  ``none``, never an HMAC that a public key could be abused as the secret of), its signature verifies, ``iss`` is
  the issuer, ``aud`` holds the client id or a configured audience, and ``exp``/``nbf``/``iat`` hold (with
  ``leewaySeconds``). Verified tokens are remembered until they expire (bounded), so a client sending the same
  bearer token does not pay a signature check each time.
* The sign-in: ``authlib``'s OAuth 2 client builds the authorization URL (``state``, ``nonce``, S256 PKCE
  challenge) and redeems the code; the ID token is verified as above plus its ``nonce``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client

from flinkops.gateway.config import OidcSettings

__all__ = ["Claims", "LoginStart", "OidcProvider", "TokenRejected"]

#: Signature algorithms a token may use: asymmetric only.
_ASYMMETRIC = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
_CACHE_SIZE = 10_000


class TokenRejected(Exception):
    """A token that is not let in; the message says why (for the audit log, never with the token)."""


@dataclass(frozen=True)
class Claims:
    subject: str
    groups: tuple[str, ...]
    expires_at: float
    raw: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class LoginStart:
    url: str
    state: str
    nonce: str
    code_verifier: str


class OidcProvider:
    """One provider, as ``settings`` name it. ``start()`` reads discovery and keys; ``close()`` ends its client."""

    def __init__(self, settings: OidcSettings, *, http: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._http = http or httpx.AsyncClient(timeout=10.0, follow_redirects=False)
        self._discovery: dict[str, Any] = {}
        self._keys: dict[str, jwt.PyJWK] = {}
        self._published: dict[str, dict[str, Any]] = {}  # each key as the JWKS lists it
        self._keys_asked_at = -math.inf  # when the JWKS was last asked for, answered or not (time.monotonic)
        self._keys_lock = asyncio.Lock()
        self._verified: OrderedDict[str, tuple[Claims, jwt.PyJWK]] = OrderedDict()

    async def start(self) -> None:
        url = f"{self.settings.issuer}/.well-known/openid-configuration"
        response = await self._http.get(url)
        response.raise_for_status()
        discovery = response.json()
        if discovery.get("issuer") != self.settings.issuer:
            raise RuntimeError(
                f"the provider at {url} says its issuer is {discovery.get('issuer')!r}, not {self.settings.issuer!r}"
            )
        self._discovery = discovery
        await self._read_keys()

    async def close(self) -> None:
        await self._http.aclose()

    @property
    def algorithms(self) -> list[str]:
        announced = self._discovery.get("id_token_signing_alg_values_supported") or ["RS256"]
        return [a for a in announced if a in _ASYMMETRIC]

    async def _read_keys(self) -> None:
        """The signing keys the JWKS lists now, replacing the ones known (a key listed as before keeps its
        ``PyJWK``, so the tokens verified with it stay remembered); nothing changes when the read fails."""
        self._keys_asked_at = time.monotonic()
        response = await self._http.get(self._discovery["jwks_uri"])
        response.raise_for_status()
        try:
            listed = response.json().get("keys")
        except (ValueError, AttributeError):
            listed = None
        if not isinstance(listed, list):
            raise ValueError("the answer is not a JWK set")
        keys: dict[str, jwt.PyJWK] = {}
        published: dict[str, dict[str, Any]] = {}
        for jwk in listed:
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or jwk.get("use") == "enc":
                continue
            kid = jwk["kid"]
            known = self._keys.get(kid)
            if known is not None and self._published.get(kid) == jwk:
                keys[kid] = known
            else:
                try:
                    keys[kid] = jwt.PyJWK(jwk)
                except jwt.PyJWTError:  # a key type or curve PyJWT cannot use: not one to verify with
                    continue
            published[kid] = jwk
        if not keys:
            raise ValueError("the JWK set holds no signing key with a kid")
        self._keys, self._published = keys, published

    async def _key(self, kid: str | None) -> jwt.PyJWK:
        if kid is None:
            if len(self._keys) == 1:
                return next(iter(self._keys.values()))
            raise TokenRejected("the token names no key (kid) and the provider has several")
        key = self._keys.get(kid)
        if key is not None:
            return key
        arrived = time.monotonic()
        async with self._keys_lock:  # first come, first served: one read serves every token waiting when it began
            if kid not in self._keys and self._keys_asked_at < arrived:
                await asyncio.sleep(self._keys_asked_at + self.settings.jwks_min_interval_seconds - time.monotonic())
                try:
                    await self._read_keys()
                except (httpx.HTTPError, ValueError) as exc:
                    raise TokenRejected(
                        f"signed with key {kid!r}, not known, and the provider's keys could not be read again: "
                        f"{str(exc) or type(exc).__name__}"
                    ) from None
        key = self._keys.get(kid)
        if key is None:
            raise TokenRejected(f"signed with key {kid!r}, which the provider does not publish")
        return key

    async def verify(self, token: str, *, audiences: list[str] | None = None, nonce: str | None = None) -> Claims:
        """The claims of ``token`` once every check holds; ``TokenRejected`` saying which did not."""
        now = time.time()
        cached, signer = self._verified.get(token, (None, None)) if nonce is None else (None, None)
        if cached is not None and signer is not None:
            if cached.expires_at + self.settings.leeway_seconds > now and self._keys.get(signer.key_id or "") is signer:
                self._verified.move_to_end(token)
                return cached
            del self._verified[token]  # expired, or its key is no longer published: checked again below
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("not a JWT") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise TokenRejected(f"signature algorithm {alg!r} is not accepted (accepted: {self.algorithms})")
        key = await self._key(header.get("kid"))
        try:
            raw = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=audiences or self.settings.audiences(),
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("not valid yet (nbf or iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("issued for another audience") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected("issued by another issuer") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("the signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(f"lacks the {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"invalid: {exc}") from None
        if nonce is not None and raw.get("nonce") != nonce:
            raise TokenRejected("the ID token's nonce is not the one this sign-in sent")
        groups = raw.get(self.settings.groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        claims = Claims(
            subject=str(raw["sub"]),
            groups=tuple(str(g) for g in groups if isinstance(g, str)),
            expires_at=float(raw["exp"]),
            raw=raw,
        )
        if nonce is None:
            self._verified[token] = (claims, key)
            if len(self._verified) > _CACHE_SIZE:
                self._verified.popitem(last=False)
        return claims

    # ------------------------------------------------------------------ the browser's sign-in

    def _client(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.settings.client_id,
            client_secret=self.settings.secret(),
            scope=" ".join(self.settings.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_post" if self.settings.secret() else "none",
        )

    def login(self, redirect_uri: str) -> LoginStart:
        """Where to send the browser to sign in, and what to remember until it comes back."""
        verifier = generate_token(64)
        nonce = generate_token(24)
        client = self._client(redirect_uri)
        url, state = client.create_authorization_url(
            self._discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        return LoginStart(url=url, state=state, nonce=nonce, code_verifier=verifier)

    async def redeem(self, code: str, start: LoginStart, redirect_uri: str) -> Claims:
        """Exchange the code for tokens and verify the ID token (``TokenRejected`` when it does not hold)."""
        async with self._client(redirect_uri) as client:
            try:
                token = await client.fetch_token(
                    self._discovery["token_endpoint"], code=code, code_verifier=start.code_verifier
                )
            except Exception as exc:  # the provider refused the code: the sign-in fails, the gateway stays up
                raise TokenRejected(f"the provider refused the code: {exc}") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise TokenRejected("the provider returned no ID token (is 'openid' among the scopes?)")
        return await self.verify(id_token, audiences=[self.settings.client_id], nonce=start.nonce)
