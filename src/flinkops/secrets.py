"""Resolve secret references (``api.secrets``) on the local target: the controller's environment, files, and
Vault/OpenBao KV version 2 through ``hvac``.

Vault access, read when a ``vault:`` reference is first resolved:

* ``VAULT_ADDR`` (or ``BAO_ADDR``), ``VAULT_CACERT``, ``VAULT_NAMESPACE``;
* token auth (default): ``VAULT_TOKEN`` (or ``BAO_TOKEN``), else the token file ``~/.vault-token``;
* Kubernetes auth: ``FLINKOPS_VAULT_AUTH=kubernetes`` with ``FLINKOPS_VAULT_ROLE``, the auth mount
  ``FLINKOPS_VAULT_AUTH_MOUNT`` (default ``kubernetes``) and the service account token read from
  ``FLINKOPS_VAULT_JWT_FILE`` (default the in-cluster ``/var/run/secrets/kubernetes.io/serviceaccount/token``).

Called by ``provisioning.local`` when it prepares a cluster's processes (and their replacements).

Invariants: a resolved value is returned to the caller and nowhere else: no log line, exception message or repr
here contains one (errors name the reference, which is not secret, and say what to do). A secret that cannot be
had is a ``SecretUnavailable`` (permanent: the spec or the store must change) or a ``TemporaryError`` (Vault did
not answer), never a start with an empty value.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from flinkops.api.secrets import SecretRef
from flinkops.errors import PermanentError, TemporaryError

__all__ = ["SecretResolver", "SecretUnavailable"]

_SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
_MAX_FILE_BYTES = 1 << 20


class SecretUnavailable(PermanentError):
    """A referenced secret cannot be read: missing, forbidden, or the access to its store is not configured."""


class SecretResolver:
    """Reads the values of references; one Vault client (and login) per resolver, made on first use."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self._vault: Any = None
        self._lock = threading.Lock()

    def resolve_all(self, refs: Iterable[SecretRef]) -> dict[str, str]:
        """``{ref.env_name: value}`` for every reference (each read once)."""
        values: dict[str, str] = {}
        for ref in refs:
            if ref.env_name not in values:
                values[ref.env_name] = self.resolve(ref)
        return values

    def resolve(self, ref: SecretRef) -> str:
        if ref.scheme == "env":
            value = self.environ.get(ref.name)
            if value is None:
                raise SecretUnavailable(f"{ref}: the controller's environment has no {ref.name}; export it")
            return value
        if ref.scheme == "file":
            return self._file(ref)
        if ref.scheme == "vault":
            return self._vault_value(ref)
        raise SecretUnavailable(
            f"{ref}: Kubernetes Secrets are read by the kubelet for pods on the Kubernetes target, not locally"
        )

    # ------------------------------------------------------------------ files

    @staticmethod
    def _file(ref: SecretRef) -> str:
        path = Path(ref.path)
        try:
            with path.open("rb") as handle:
                data = handle.read(_MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            raise SecretUnavailable(f"{ref}: no such file; create it (readable by the controller)") from None
        except OSError as exc:
            raise SecretUnavailable(f"{ref}: cannot read the file: {exc.strerror}") from None
        if len(data) > _MAX_FILE_BYTES:
            raise SecretUnavailable(f"{ref}: the file is larger than 1 MiB; is it the right one?")
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise SecretUnavailable(f"{ref}: the file is not UTF-8 text") from None
        return text[:-1] if text.endswith("\n") else text

    # ------------------------------------------------------------------ Vault / OpenBao

    def _vault_value(self, ref: SecretRef) -> str:
        import hvac.exceptions
        import requests

        client = self._client(ref)
        try:
            response = client.secrets.kv.v2.read_secret_version(
                path=ref.path, mount_point=ref.mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            raise SecretUnavailable(
                f"{ref}: no such secret at {ref.mount}/{ref.path} (a KV version 2 mount '{ref.mount}'?); "
                "write it, e.g. 'bao kv put -mount=<mount> <path> <key>=...'"
            ) from None
        except hvac.exceptions.Forbidden:
            raise SecretUnavailable(
                f"{ref}: the Vault token may not read {ref.mount}/{ref.path}; grant it a policy with read on "
                f"{ref.mount}/data/{ref.path}"
            ) from None
        except hvac.exceptions.VaultError as exc:
            raise SecretUnavailable(f"{ref}: Vault refused the read ({type(exc).__name__})") from None
        except requests.exceptions.RequestException as exc:
            raise TemporaryError(f"{ref}: Vault at {self._address()} did not answer ({type(exc).__name__})") from None
        data = ((response or {}).get("data") or {}).get("data") or {}
        if ref.key not in data:
            raise SecretUnavailable(f"{ref}: the secret {ref.mount}/{ref.path} has no key '{ref.key}'")
        value = data[ref.key]
        if not isinstance(value, str):
            raise SecretUnavailable(f"{ref}: the value of '{ref.key}' is not a string")
        return value

    def _address(self) -> str:
        return self.environ.get("VAULT_ADDR") or self.environ.get("BAO_ADDR") or ""

    def _client(self, ref: SecretRef) -> Any:
        with self._lock:
            if self._vault is None:
                self._vault = self._login(ref)
            return self._vault

    def _login(self, ref: SecretRef) -> Any:
        import hvac
        import hvac.exceptions
        import requests

        env = self.environ
        address = self._address()
        if not address:
            raise SecretUnavailable(f"{ref}: set VAULT_ADDR (and a token or Kubernetes auth) for the controller")
        verify: bool | str = env.get("VAULT_CACERT") or True
        client = hvac.Client(url=address, verify=verify, namespace=env.get("VAULT_NAMESPACE") or None)
        method = env.get("FLINKOPS_VAULT_AUTH", "token").strip().lower() or "token"
        try:
            if method == "kubernetes":
                role = env.get("FLINKOPS_VAULT_ROLE", "")
                if not role:
                    raise SecretUnavailable(f"{ref}: Kubernetes auth needs FLINKOPS_VAULT_ROLE (the Vault role)")
                jwt_file = env.get("FLINKOPS_VAULT_JWT_FILE") or _SA_TOKEN
                try:
                    jwt = Path(jwt_file).read_text().strip()
                except OSError as exc:
                    raise SecretUnavailable(
                        f"{ref}: cannot read the service account token {jwt_file}: {exc.strerror}"
                    ) from None
                mount = env.get("FLINKOPS_VAULT_AUTH_MOUNT") or "kubernetes"
                client.auth.kubernetes.login(role, jwt, mount_point=mount)
            elif method == "token":
                token = env.get("VAULT_TOKEN") or env.get("BAO_TOKEN") or _token_file()
                if not token:
                    raise SecretUnavailable(f"{ref}: no Vault token: set VAULT_TOKEN or log in ('bao login')")
                client.token = token
            else:
                raise SecretUnavailable(f"FLINKOPS_VAULT_AUTH={method!r}: expected 'token' or 'kubernetes'")
            if not client.is_authenticated():
                raise SecretUnavailable(f"{ref}: Vault at {address} does not accept the token; renew it")
        except hvac.exceptions.VaultError as exc:
            raise SecretUnavailable(f"{ref}: Vault login ({method}) refused ({type(exc).__name__})") from None
        except requests.exceptions.RequestException as exc:
            raise TemporaryError(f"{ref}: Vault at {address} did not answer ({type(exc).__name__})") from None
        return client


def _token_file() -> str:
    try:
        return (Path.home() / ".vault-token").read_text().strip()
    except OSError:
        return ""
