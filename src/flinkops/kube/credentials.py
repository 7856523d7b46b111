"""Credentials of a kubeconfig user that need running code: ``exec`` plugins and the ``oidc`` auth provider.

An exec plugin (``aws eks get-token``, ``gke-gcloud-auth-plugin``, ``kubelogin get-token``, or any program) is
run the way kubectl runs it (client.authentication.k8s.io ``v1`` and ``v1beta1``): its ``args`` and ``env`` over
this process's environment; ``KUBERNETES_EXEC_INFO`` with the apiVersion, whether the session is interactive
and, with ``provideClusterInfo``, the cluster; ``interactiveMode`` ``Never`` (no terminal given), ``IfAvailable``
(the terminal when there is one; the v1beta1 default) or ``Always`` (refused without a terminal); a relative
command with a slash resolves against the kubeconfig's directory. Its ExecCredential may carry a bearer token or
a client certificate and key, and an ``expirationTimestamp``: the credential is reused until shortly before then
(without one, until the API server answers 401), so a plugin runs once per credential, not once per request.

lightkube runs exec plugins too, but only for tokens, only for v1alpha1/v1beta1, without expiry or interactive
mode: this module is what flinkops adds on top of it. ``oidc`` auth providers (kubectl's older way) work while
their ``id-token`` is valid; refreshing one is left to an exec plugin such as kubelogin.

Called by: ``kube.client`` (``ExecAuth`` is its httpx2 auth for token plugins; ``ExecPlugin`` gives it
certificates). Invariant: no credential reaches an error, a log line or a repr: errors name the kubeconfig file,
the user and the plugin's command, and quote only what the plugin wrote to stderr.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2

from flinkops.kube.config import KubeConfig

__all__ = ["Credential", "ExecAuth", "ExecPlugin", "oidc_token"]

_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
_MODES = ("Never", "IfAvailable", "Always")
_EXPIRY_SKEW = 10.0  # seconds: run the plugin again this long before its credential expires
_TIMEOUT = 120.0  # seconds a non-interactive plugin may take


@dataclass(frozen=True)
class Credential:
    """What one run of a plugin gave. ``expires`` is epoch seconds, or None (valid until refused)."""

    token: str | None = field(default=None, repr=False)
    cert_pem: str | None = field(default=None, repr=False)
    key_pem: str | None = field(default=None, repr=False)
    expires: float | None = None


def _parse_expiry(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


class ExecPlugin:
    """One kubeconfig user's exec plugin, with its current credential. Thread-safe."""

    def __init__(
        self,
        config: KubeConfig,
        *,
        terminal: Callable[[], bool] = _terminal,
    ) -> None:
        spec = dict(config.exec or {})
        self.config, self.terminal = config, terminal
        self.api_version = str(spec.get("apiVersion") or "")
        if self.api_version not in _VERSIONS:
            raise config.credentials_error(
                f"the exec plugin's apiVersion {self.api_version!r} is not supported",
                f"use {' or '.join(_VERSIONS)} (v1alpha1 was removed in Kubernetes 1.24)",
            )
        command = str(spec.get("command") or "")
        if not command:
            raise config.credentials_error("the exec plugin has no command")
        if os.sep in command:  # kubectl runs a relative command with a slash from the kubeconfig's directory
            command = str(config.settings.abs_file(command))
        self.argv = [command, *(str(a) for a in spec.get("args") or [])]
        self.env = {str(e.get("name")): str(e.get("value")) for e in spec.get("env") or [] if isinstance(e, Mapping)}
        default_mode = "IfAvailable" if self.api_version.endswith("v1beta1") else ""
        self.mode = str(spec.get("interactiveMode") or default_mode)
        if self.mode not in _MODES:
            raise config.credentials_error(
                f"the exec plugin's interactiveMode {self.mode!r} is not one of {', '.join(_MODES)}",
                "client.authentication.k8s.io/v1 requires it",
            )
        self.install_hint = str(spec.get("installHint") or "")
        self.cluster_info = bool(spec.get("provideClusterInfo"))
        self._lock = threading.Lock()
        self._current: Credential | None = None
        self.runs = 0

    @property
    def name(self) -> str:
        return os.path.basename(self.argv[0])

    # ------------------------------------------------------------------ the credential

    def credential(self) -> Credential:
        """The current credential: the cached one while it is valid, else a fresh run of the plugin."""
        with self._lock:
            current = self._current
            if current is None or (current.expires is not None and time.time() >= current.expires - _EXPIRY_SKEW):
                current = self._current = self._run()
            return current

    def invalidate(self, used: Credential) -> None:
        """The API server refused ``used`` (401): the next ``credential()`` runs the plugin again (unless another
        thread already did)."""
        with self._lock:
            if self._current is used:
                self._current = None

    # ------------------------------------------------------------------ running the plugin

    def _exec_info(self, interactive: bool) -> str:
        spec: dict[str, Any] = {"interactive": interactive}
        if self.cluster_info:
            cluster = self.config.settings.cluster
            info: dict[str, Any] = {"server": cluster.server}
            if cluster.certificate_auth_data:
                info["certificate-authority-data"] = cluster.certificate_auth_data
            elif cluster.certificate_auth:
                path = Path(self.config.settings.abs_file(cluster.certificate_auth))
                info["certificate-authority-data"] = base64.b64encode(path.read_bytes()).decode()
            if cluster.insecure:
                info["insecure-skip-tls-verify"] = True
            spec["cluster"] = info
        return json.dumps({"apiVersion": self.api_version, "kind": "ExecCredential", "spec": spec})

    def _run(self) -> Credential:
        interactive = self.mode != "Never" and self.terminal()
        if self.mode == "Always" and not interactive:
            raise self.config.credentials_error(
                f"the exec plugin {self.name!r} needs a terminal (interactiveMode: Always) and there is none",
                "run the plugin once in a terminal to log in, or use a context whose plugin is non-interactive",
            )
        env = {**os.environ, **self.env, "KUBERNETES_EXEC_INFO": self._exec_info(interactive)}
        try:
            done = subprocess.run(
                self.argv,
                env=env,
                stdin=None if interactive else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=None if interactive else subprocess.PIPE,
                timeout=None if interactive else _TIMEOUT,
                check=False,
            )
        except FileNotFoundError as exc:
            raise self.config.credentials_error(
                f"the exec plugin {self.argv[0]!r} was not found", self.install_hint or "install it or fix PATH"
            ) from exc
        except PermissionError as exc:
            raise self.config.credentials_error(f"the exec plugin {self.argv[0]!r} cannot be run") from exc
        except subprocess.TimeoutExpired as exc:
            raise self.config.credentials_error(
                f"the exec plugin {self.name!r} did not finish in {_TIMEOUT:.0f}s"
            ) from exc
        self.runs += 1
        if done.returncode != 0:
            said = (done.stderr or b"").decode(errors="replace").strip()[-500:]
            raise self.config.credentials_error(
                f"the exec plugin {self.name!r} failed (exit status {done.returncode})" + (f": {said}" if said else ""),
                self.install_hint,
            )
        return self._parse(done.stdout)

    def _parse(self, stdout: bytes) -> Credential:
        def wrong(what: str) -> Exception:
            # never quote stdout: whatever it holds may be a credential
            return self.config.credentials_error(f"the exec plugin {self.name!r} {what}")

        try:
            doc = json.loads(stdout)
        except ValueError:
            raise wrong("printed something that is not an ExecCredential (not JSON)") from None
        if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential":
            raise wrong("printed JSON that is not an ExecCredential")
        if doc.get("apiVersion") != self.api_version:
            raise wrong(f"answered with apiVersion {doc.get('apiVersion')!r}, not the {self.api_version!r} asked for")
        status = doc.get("status")
        if not isinstance(status, dict):
            raise wrong("printed an ExecCredential without a status")
        token = status.get("token") or None
        cert, key = status.get("clientCertificateData") or None, status.get("clientKeyData") or None
        if bool(cert) != bool(key):
            raise wrong("gave a client certificate without its key, or a key without its certificate")
        if not token and not cert:
            raise wrong("gave neither a token nor a client certificate")
        expires = None
        if status.get("expirationTimestamp"):
            try:
                expires = _parse_expiry(str(status["expirationTimestamp"]))
            except ValueError:
                raise wrong("gave an expirationTimestamp that is not an RFC 3339 time") from None
        return Credential(token=token, cert_pem=cert, key_pem=key, expires=expires)


class ExecAuth(httpx2.Auth):
    """Bearer tokens from an exec plugin; a 401 runs the plugin again and retries the request once."""

    def __init__(self, plugin: ExecPlugin) -> None:
        self.plugin = plugin

    def __repr__(self) -> str:
        return f"ExecAuth({self.plugin.name!r})"

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        used = self.plugin.credential()
        if used.token:
            request.headers["Authorization"] = f"Bearer {used.token}"
        response = yield request
        if response.status_code != 401:
            return
        self.plugin.invalidate(used)
        fresh = self.plugin.credential()
        if fresh.token and fresh.token != used.token:
            request.headers["Authorization"] = f"Bearer {fresh.token}"
            yield request


def _jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (not verified: only to know when to stop using it); None if unreadable."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def oidc_token(config: KubeConfig) -> str:
    """The ``id-token`` of an ``oidc`` auth provider while it is valid; other providers are refused."""
    provider = dict(config.auth_provider or {})
    name = str(provider.get("name") or "")
    if name != "oidc":
        raise config.credentials_error(
            f"the auth-provider {name!r} is no longer part of Kubernetes clients",
            "use the provider's exec plugin instead (gke-gcloud-auth-plugin, kubelogin)",
        )
    settings = provider.get("config") or {}
    token = str(settings.get("id-token") or "")
    expires = _jwt_expiry(token) if token else None
    if not token or (expires is not None and time.time() >= expires):
        raise config.credentials_error(
            "the oidc auth-provider has no valid id-token (flinkops does not refresh it)",
            "log in again, or use an exec plugin such as 'kubectl oidc-login get-token' (kubelogin)",
        )
    return token
