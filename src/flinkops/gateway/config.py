"""The gateway's settings (``gateway.yaml``): where it listens, its TLS, who may come in (OpenID Connect, client
certificates matched by CN rules) and what each may do (role bindings per namespace or deployment).

Example::

    listen: 127.0.0.1:8443
    tls:
      cert: /etc/flinkops/gateway.pem
      key: /etc/flinkops/gateway-key.pem
      clientCA: /etc/flinkops/clients-ca.pem   # asks callers for a certificate (mTLS); optional
    oidc:
      issuer: https://acme.okta.com/oauth2/default
      clientId: flinkops-gateway
      clientSecretFile: /etc/flinkops/oidc-secret
      groupsClaim: groups
    certificateRules:
      - name: external
        regex: 'acme\\.com:([0-9a-z_-]+).*'
      - name: internal
        exact: acme.com.app-1
        namespace: ads
    roles:
      - subjects: [group:flink-admins]
        role: admin
      - subjects: [group:ads-engineers, cert:internal]
        role: operator
        namespace: ads
      - subjects: [group:everyone]
        role: viewer
    jars:
      - subjects: [group:flink-admins]

A subject is ``group:<name>`` (a group in the token's groups claim), ``user:<sub>`` (the token's subject),
``cert:<rule>`` (a client certificate whose CN matched that rule) or ``cert:<rule>:<identity>`` (and whose
rule's first capture group was ``identity``). Bad settings raise ``InvalidInput`` with each field's path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from flinkops.api.loader import yaml_path
from flinkops.errors import InvalidInput, Problem

__all__ = [
    "ROLES",
    "CertificateRule",
    "GatewayConfig",
    "JarRule",
    "OidcSettings",
    "Role",
    "RoleBinding",
    "TlsSettings",
    "load_config",
]

Role = Literal["viewer", "operator", "admin"]
#: Each role may do what the ones before it may.
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
_SUBJECT = re.compile(r"^(group|user|cert):[^\s]+$")


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class TlsSettings(_Model):
    cert: Path
    key: Path
    #: CA bundle that signs the callers' certificates: set, the gateway asks every caller for one (optional for
    #: browsers, which sign in with OpenID Connect instead) and checks it against ``certificateRules``.
    client_ca: Path | None = Field(default=None, alias="clientCA")


class OidcSettings(_Model):
    issuer: str
    client_id: str
    client_secret: str | None = None
    client_secret_file: Path | None = None
    #: The ``aud`` bearer tokens must carry (API clients); ID tokens from the browser login carry ``clientId``.
    audience: list[str] = Field(default_factory=list)
    groups_claim: str = "groups"
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    #: Where the provider sends the browser back; default: this gateway's ``/_auth/callback`` as the browser
    #: reached it.
    redirect_url: str | None = None
    #: How long a browser session lasts at most.
    session_seconds: int = Field(default=8 * 3600, gt=0)
    #: Clock skew allowed on ``exp``/``nbf``/``iat``.
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    #: The least time between two reads of the provider's JWKS (a token naming a key not known yet makes the
    #: gateway read it again, then waits for the next read allowed when one was just made).
    jwks_min_interval_seconds: float = Field(default=10.0, gt=0, le=300)

    @field_validator("issuer")
    @classmethod
    def _issuer_is_a_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be the provider's issuer URL (https://...)")
        return value  # compared exactly with each token's iss, as OpenID Connect requires

    @model_validator(mode="after")
    def _one_secret(self) -> OidcSettings:
        if self.client_secret is not None and self.client_secret_file is not None:
            raise ValueError("give clientSecret or clientSecretFile, not both")
        return self

    def secret(self) -> str | None:
        if self.client_secret_file is not None:
            return self.client_secret_file.read_text().strip()
        return self.client_secret

    def audiences(self) -> list[str]:
        return [self.client_id, *self.audience]


class _Scoped(_Model):
    #: Where the rule applies: one namespace, one deployment (by name) in it, or (neither) everywhere.
    namespace: str | None = None
    deployment: str | None = None

    @model_validator(mode="after")
    def _deployment_needs_namespace(self) -> _Scoped:
        if self.deployment is not None and self.namespace is None:
            raise ValueError("deployment needs namespace (a deployment is namespace/name)")
        return self

    def covers(self, namespace: str, name: str) -> bool:
        return (self.namespace is None or self.namespace == namespace) and (
            self.deployment is None or self.deployment == name
        )


class CertificateRule(_Scoped):
    """A client certificate's subject CN that is let in: ``regex`` (matched whole; its first group, if any, names
    the calling service) or ``exact``."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    regex: str | None = None
    exact: str | None = None

    @model_validator(mode="after")
    def _one_match(self) -> CertificateRule:
        if (self.regex is None) == (self.exact is None):
            raise ValueError("give exactly one of regex and exact")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from None
        return self

    def identify(self, cn: str) -> str | None:
        """The subject for ``cn`` under this rule (``cert:<rule>[:<identity>]``), or None if it does not match."""
        if self.exact is not None:
            return f"cert:{self.name}" if cn == self.exact else None
        assert self.regex is not None
        matched = re.fullmatch(self.regex, cn)
        if matched is None:
            return None
        return f"cert:{self.name}:{matched.group(1)}" if matched.groups() and matched.group(1) else f"cert:{self.name}"


class _Subjects(_Scoped):
    subjects: list[str] = Field(min_length=1)

    @field_validator("subjects")
    @classmethod
    def _subject_form(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _SUBJECT.match(value):
                raise ValueError(f"{value!r} is not group:<name>, user:<sub> or cert:<rule>[:<identity>]")
        return values

    def names(self, subjects: frozenset[str]) -> bool:
        return any(s in subjects for s in self.subjects)


class RoleBinding(_Subjects):
    role: Role


class JarRule(_Subjects):
    """Who may upload and run jars (``POST /jars/upload``, ``/jars/<id>/run``, ``POST /jobs``): nobody unless a rule
    says so, admins included."""


class GatewayConfig(_Model):
    listen: str = "127.0.0.1:8443"
    tls: TlsSettings | None = None
    oidc: OidcSettings | None = None
    certificate_rules: list[CertificateRule] = Field(default_factory=list)
    roles: list[RoleBinding] = Field(default_factory=list)
    jars: list[JarRule] = Field(default_factory=list)
    #: One JSON line per request; default ``<FLINKOPS_HOME>/gateway/audit.log``.
    audit_log: Path | None = None
    #: Plain HTTP is for a gateway behind a TLS-terminating proxy on the same host only; it is refused otherwise.
    allow_plain_http: bool = False

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError("must be host:port, e.g. 127.0.0.1:8443")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> GatewayConfig:
        if self.tls is None and not self.allow_plain_http:
            raise ValueError("tls is required (cert and key); allowPlainHttp: true only behind a local TLS proxy")
        if self.certificate_rules and (self.tls is None or self.tls.client_ca is None):
            raise ValueError("certificateRules need tls.clientCA (the CA that signs the callers' certificates)")
        if self.oidc is None and not self.certificate_rules:
            raise ValueError("nobody could sign in: configure oidc, certificateRules, or both")
        names = [r.name for r in self.certificate_rules]
        if len(names) != len(set(names)):
            raise ValueError("certificateRules: each rule needs its own name")
        return self

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


def load_config(path: Path) -> GatewayConfig:
    """Read and check ``path`` (``InvalidInput``: every problem with its field path)."""
    source = str(path)
    try:
        data: Any = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InvalidInput([Problem("", f"cannot read it: {exc.strerror}", "", source)]) from None
    except yaml.YAMLError as exc:
        raise InvalidInput([Problem("", f"not YAML: {exc}", "", source)]) from None
    return parse_config(data, source)


def parse_config(data: Any, source: str = "gateway.yaml") -> GatewayConfig:
    if not isinstance(data, dict):
        raise InvalidInput([Problem("", "must be a mapping of settings", "see `flinkops gateway --help`", source)])
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = yaml_path(*error["loc"]) if error["loc"] else ""
            message = error["msg"].removeprefix("Value error, ")
            problems.append(Problem(where, message, "", source))
        raise InvalidInput(problems) from None
