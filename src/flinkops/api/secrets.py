"""Secret references in a spec: ``${secret:<scheme>:<target>}`` instead of the secret itself.

A ``flinkConfiguration`` value, or the end of a job argument, may name where a secret lives instead of holding it:

* ``${secret:env:NAME}``: the variable ``NAME`` of the controller's environment (local target);
* ``${secret:file:/absolute/path}``: the whole file, one trailing newline dropped (local target);
* ``${secret:vault:<mount>/<path>#<key>}``: the field ``key`` of a Vault/OpenBao KV version 2 secret (local target);
* ``${secret:k8s:<secret-name>/<key>}``: a key of a Kubernetes Secret in the resource's namespace (Kubernetes
  target: the kubelet reads it for the pods; the operator never does).

Where a reference may stand is decided by what Flink itself prints, since a resolved value reaches Flink as a
``-D`` dynamic property or a program argument of the JVM (nothing else carries a value into Flink without a file):
Flink logs every program argument at start and every dynamic property as it loads it, and masks only those whose
text contains one of its sensitive words (``GlobalConfiguration.SENSITIVE_KEYS``: password, secret, token, ...).
So a ``flinkConfiguration`` reference is accepted only for a key Flink masks, and a job argument only in the one-
argument form ``--name=${secret:...}`` whose ``--name=`` part contains such a word (Flink then masks the whole
argument). Anything else would leak the value into Flink's own log and is refused with what to do instead. With
high availability Flink also persists the job's configuration (dynamic properties included, job arguments not) in
``high-availability.storageDir``, so ``flinkConfiguration`` references are refused there too.

Called by ``api.validation`` (problems with field paths), ``core.lint`` (a reference is not a literal secret), the
provisioners (which references to resolve) and the local launcher (substitution at the last moment).

Invariants: pure (no I/O); nothing here ever holds a resolved value except :func:`substitute`'s result.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "ALL_SCHEMES",
    "ENV_PREFIX",
    "KUBERNETES_SCHEMES",
    "LOCAL_SCHEMES",
    "SecretRef",
    "arg_references",
    "config_references",
    "flink_masks",
    "parse_reference",
    "reference_problems",
    "substitute",
]

ALL_SCHEMES = ("env", "file", "vault", "k8s")
LOCAL_SCHEMES = frozenset({"env", "file", "vault"})
KUBERNETES_SCHEMES = frozenset({"k8s"})
#: Resolved values travel to the launcher in the process environment under ``ENV_PREFIX<digest>``.
ENV_PREFIX = "FLINKOPS_SECRET_"

# GlobalConfiguration.SENSITIVE_KEYS of Flink 2.2 (also 1.18-1.20): an argument or key containing one is masked.
_FLINK_SENSITIVE = (
    "password",
    "secret",
    "fs.azure.account.key",
    "apikey",
    "api-key",
    "auth-params",
    "service-key",
    "token",
    "basic-auth",
    "jaas.config",
    "http-headers",
)
_MARK = "${secret:"
_WHOLE = re.compile(r"^\$\{secret:(?P<body>[^}]*)\}$")
_IN_ARG = re.compile(r"^(?P<prefix>.*?)\$\{secret:(?P<body>[^}]*)\}$", re.DOTALL)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_K8S_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_VAULT_PART = re.compile(r"^[A-Za-z0-9_.@-]+$")
_SYNTAX = (
    "write ${secret:env:NAME}, ${secret:file:/absolute/path}, ${secret:vault:<mount>/<path>#<key>} or "
    "${secret:k8s:<secret-name>/<key>}"
)


@dataclass(frozen=True)
class SecretRef:
    """A parsed reference. ``location`` is everything after the scheme; the other fields split it per scheme."""

    scheme: str
    location: str
    name: str = ""  # env: the variable; k8s: the Secret
    path: str = ""  # file: the file; vault: the secret's path under the mount
    mount: str = ""  # vault: the KV v2 mount
    key: str = ""  # vault, k8s: the field of the secret

    @property
    def text(self) -> str:
        return f"${{secret:{self.scheme}:{self.location}}}"

    @property
    def env_name(self) -> str:
        """The process-environment variable the resolved value travels in (not secret: a digest of the text)."""
        return ENV_PREFIX + hashlib.sha256(self.text.encode()).hexdigest()[:16].upper()

    def __str__(self) -> str:
        return self.text


def flink_masks(text: str) -> bool:
    """Whether Flink masks ``text`` (a key, a ``-Dkey=value`` or a program argument) in its logs and REST API."""
    lowered = text.lower()
    return any(word in lowered for word in _FLINK_SENSITIVE)


def parse_reference(text: str) -> SecretRef:
    """``text`` (a whole ``${secret:...}``) parsed; ``ValueError`` with what is wrong when it is malformed."""
    match = _WHOLE.match(text.strip())
    if match is None:
        raise ValueError(f"not a secret reference; {_SYNTAX}")
    scheme, sep, location = match.group("body").partition(":")
    if not sep or scheme not in ALL_SCHEMES:
        raise ValueError(f"unknown secret scheme {scheme!r}; {_SYNTAX}")
    if scheme == "env":
        if not _ENV_NAME.match(location):
            raise ValueError(f"{location!r} is not an environment variable name (letters, digits, _)")
        return SecretRef(scheme, location, name=location)
    if scheme == "file":
        if not location.startswith("/") or "\x00" in location:
            raise ValueError(f"{location!r}: a secret file must be an absolute path")
        return SecretRef(scheme, location, path=location)
    if scheme == "vault":
        where, sep, key = location.partition("#")
        mount, _, path = where.partition("/")
        parts = [mount, *path.split("/")] if path else []
        if not sep or not key or not parts or not all(_VAULT_PART.match(p) for p in parts):
            raise ValueError(f"{location!r}: expected <mount>/<path>#<key>, e.g. secret/payments/kafka#password")
        return SecretRef(scheme, location, mount=mount, path=path, key=key)
    secret, sep, key = location.partition("/")
    if not sep or not _K8S_NAME.match(secret) or len(secret) > 253 or not _K8S_KEY.match(key):
        raise ValueError(f"{location!r}: expected <secret-name>/<key> of a Secret in the resource's namespace")
    return SecretRef(scheme, location, name=secret, key=key)


def config_references(conf: Mapping[str, str]) -> dict[str, SecretRef]:
    """The well-formed references among ``conf``'s values, by key (malformed ones are validation's business)."""
    found: dict[str, SecretRef] = {}
    for key, value in conf.items():
        if isinstance(value, str) and _MARK in value:
            try:
                found[key] = parse_reference(value)
            except ValueError:
                continue
    return found


def arg_references(args: Sequence[str]) -> dict[int, SecretRef]:
    """The well-formed references at the end of job arguments, by argument index."""
    found: dict[int, SecretRef] = {}
    for index, arg in enumerate(args):
        match = _IN_ARG.match(arg) if _MARK in arg else None
        if match is not None:
            try:
                found[index] = parse_reference("${secret:" + match.group("body") + "}")
            except ValueError:
                continue
    return found


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``text`` with its reference (whole value, or the end of a job argument) replaced by its resolved value, looked
    up in ``values`` by :attr:`SecretRef.env_name`; ``KeyError`` naming the reference when it was not resolved."""
    match = _IN_ARG.match(text) if _MARK in text else None
    if match is None:
        return text
    ref = parse_reference("${secret:" + match.group("body") + "}")
    if ref.env_name not in values:
        raise KeyError(ref.text)
    return match.group("prefix") + values[ref.env_name]


def reference_problems(
    conf: Mapping[str, str],
    args: Sequence[str],
    *,
    session_job: bool = False,
    ha: bool = False,
    schemes: Collection[str] | None = None,
    target: str = "",
) -> list[tuple[str, str, str]]:
    """(path, message, hint) for every malformed or unsafe reference in ``conf`` and ``args``. ``ha``: the resource
    runs with high availability; ``schemes``: those the target resolves (None: any), ``target`` names it in messages."""
    problems: list[tuple[str, str, str]] = []

    def check(path: str, text: str) -> SecretRef | None:
        try:
            ref = parse_reference(text)
        except ValueError as exc:
            problems.append((path, f"malformed secret reference: {exc}", _SYNTAX))
            return None
        if schemes is not None and ref.scheme not in schemes:
            problems.append((path, f"'{ref.scheme}:' secrets are not resolved on {target}", _scheme_hint(ref)))
            return None
        return ref

    for key in sorted(conf):
        value = conf[key]
        if not isinstance(value, str) or _MARK not in value:
            continue
        path = f"spec.flinkConfiguration.{key}"
        if session_job:
            problems.append((path, "secret references are not supported in a FlinkSessionJob", _SESSION_HINT))
            continue
        if check(path, value) is None:
            continue
        if ha:
            problems.append(
                (
                    path,
                    "with high availability Flink writes the job's configuration, values included, into "
                    "high-availability.storageDir (its submittedExecutionPlan files)",
                    "pass the secret as a job argument '--<name>=${secret:...}' (not persisted there) or let the job "
                    "read it itself",
                )
            )
        elif not flink_masks(key):
            problems.append(
                (
                    path,
                    f"Flink logs the value of '{key}' at start (it masks only keys containing one of "
                    f"{', '.join(_FLINK_SENSITIVE)}), so a secret here would leak into its log",
                    "keep secrets in keys Flink treats as sensitive, or let the job read the secret itself",
                )
            )
    for index, arg in enumerate(args):
        if _MARK not in arg:
            continue
        path = f"spec.job.args[{index}]"
        match = _IN_ARG.match(arg)
        if match is None:
            problems.append((path, "a secret reference must end the argument", _ARG_HINT))
            continue
        if session_job:
            problems.append((path, "secret references are not supported in a FlinkSessionJob", _SESSION_HINT))
            continue
        if check(path, "${secret:" + match.group("body") + "}") is None:
            continue
        if not flink_masks(match.group("prefix")):
            problems.append(
                (
                    path,
                    "Flink logs the program arguments of the job at start and masks only an argument that contains "
                    "a word such as 'password', 'secret' or 'token': this one would leak the secret",
                    _ARG_HINT,
                )
            )
    return problems


_ARG_HINT = (
    "give the secret in one argument whose name contains password, secret or token, e.g. "
    "'--kafka-password=${secret:vault:secret/payments/kafka#password}', or have the job read it from a file or "
    "an environment variable"
)
_SESSION_HINT = (
    "a session job's arguments and configuration travel through Flink's REST API; put the secret on the session "
    "cluster's FlinkDeployment (a sensitive flinkConfiguration key) or have the job read it itself"
)


def _scheme_hint(ref: SecretRef) -> str:
    if ref.scheme == "k8s":
        return (
            "Kubernetes Secrets are referenced on the Kubernetes target; locally use ${secret:env:...}, "
            "${secret:file:...} or ${secret:vault:...}"
        )
    if ref.scheme == "vault":
        return (
            "the operator reads no secret store: let the pods' own identity read Vault (the Vault Agent injector's "
            "podTemplate annotations, with the job reading the injected file), or sync the secret into a Kubernetes "
            "Secret (External Secrets, Vault Secrets Operator) and reference ${secret:k8s:<secret-name>/<key>}"
        )
    return (
        "the operator's environment and files are not the pods': put the value in a Kubernetes Secret and "
        "reference ${secret:k8s:<secret-name>/<key>}"
    )
