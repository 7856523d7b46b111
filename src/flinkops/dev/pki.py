"""Certificates and kubeconfigs of the dev Kubernetes cluster, made with the ``openssl`` command.

:func:`make_pki` makes a control plane's CA, its leaf certificates and the service-account key pair in one
directory; :func:`client_certificate` signs one more client certificate with that CA later (the dev node's
kubelet, kube-proxy, kube-scheduler and CoreDNS); :func:`kubeconfig` writes the kubeconfig text that embeds a
client certificate. Every key is ECDSA P-256 (fast to make, accepted everywhere in Kubernetes).

Called by: :mod:`flinkops.dev.kubernetes` (the control plane) and :mod:`flinkops.dev.node.node` (the node's
clients). Invariants: a certificate and its key land together by rename, so a present pair is complete; keys are
mode 0600; a made PKI directory carries a ``complete`` marker and is never made twice.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from flinkops.errors import RuntimeFailure

__all__ = ["OPENSSL_HINT", "client_certificate", "kubeconfig", "make_pki"]

OPENSSL_HINT = "the `openssl` command (Debian package openssl) is needed to make the control plane's certificates"

_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = {sans}
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
"""
_DAYS = "3650"  # a dev cluster: certificates outlive it
_NEW_KEY = ("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")


def _openssl(args: Sequence[str], cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeFailure(f"cannot make certificates: {OPENSSL_HINT}, and it is not on PATH")
    proc = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60)
    if proc.returncode != 0:
        raise RuntimeFailure(f"`openssl {' '.join(args)}` failed: {proc.stderr.strip() or proc.stdout.strip()}")


def _sign_leaf(work: Path, name: str, subject: str, section: str, ca: Path, ca_key: Path) -> None:
    """``<name>.key`` and ``<name>.crt`` in ``work`` (which holds ``openssl.cnf``): a new key and a certificate
    for ``subject`` with the extensions of ``section``, signed by ``ca``."""
    _openssl([*_NEW_KEY, "-out", f"{name}.key"], work)
    _openssl(["req", "-new", "-config", "openssl.cnf", "-key", f"{name}.key", "-subj", subject,
              "-out", f"{name}.csr"], work)  # fmt: skip
    _openssl(["x509", "-req", "-in", f"{name}.csr", "-CA", str(ca), "-CAkey", str(ca_key),
              "-set_serial", f"0x{secrets.token_hex(16)}", "-days", _DAYS, "-sha256",
              "-extfile", "openssl.cnf", "-extensions", section, "-out", f"{name}.crt"], work)  # fmt: skip
    (work / f"{name}.csr").unlink()
    (work / f"{name}.key").chmod(0o600)


def make_pki(pki: Path, sans: Sequence[str], leaves: Mapping[str, tuple[str, str]]) -> None:
    """Make the CA, the ``leaves`` (name -> (subject, ``server`` or ``client``); server certificates carry the
    ``sans``) and the service-account key pair in ``pki``, once: a complete PKI has a ``complete`` marker; a
    partial one is made again from scratch, in a temporary directory renamed into place."""
    if (pki / "complete").exists():
        return
    tmp = pki.with_name(f".pki-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=0o700, parents=True)
    try:
        (tmp / "openssl.cnf").write_text(_OPENSSL_CONFIG.format(sans=", ".join(sans)))
        _openssl([*_NEW_KEY, "-out", "ca.key"], tmp)
        _openssl(["req", "-x509", "-new", "-config", "openssl.cnf", "-key", "ca.key", "-subj", "/CN=flinkops-dev-ca",
                  "-days", _DAYS, "-sha256", "-extensions", "ca", "-out", "ca.crt"], tmp)  # fmt: skip
        for name, (subject, section) in leaves.items():
            _sign_leaf(tmp, name, subject, section, Path("ca.crt"), Path("ca.key"))
        _openssl([*_NEW_KEY, "-out", "sa.key"], tmp)
        _openssl(["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"], tmp)
        for path in tmp.glob("*.key"):
            path.chmod(0o600)
        (tmp / "complete").write_text("")
        shutil.rmtree(pki, ignore_errors=True)
        os.replace(tmp, pki)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def client_certificate(pki: Path, out_dir: Path, name: str, subject: str) -> tuple[Path, Path]:
    """``out_dir/<name>.crt`` and ``.key``: a client certificate for ``subject`` (``/O=group/CN=user``) signed by
    the CA in ``pki`` (made once; an existing pair is returned as it is)."""
    cert, key = out_dir / f"{name}.crt", out_dir / f"{name}.key"
    if cert.exists() and key.exists():
        return cert, key
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    work = out_dir / f".{name}.work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700)
    try:
        (work / "openssl.cnf").write_text(_OPENSSL_CONFIG.format(sans="DNS:localhost"))  # unused by client certs
        _sign_leaf(work, "leaf", subject, "client", pki / "ca.crt", pki / "ca.key")
        os.replace(work / "leaf.key", key)
        os.replace(work / "leaf.crt", cert)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return cert, key


def kubeconfig(server: str, user: str, ca: Path, cert: Path, key: Path, *, context: str) -> str:
    """A kubeconfig with one cluster, user and context (all named ``context`` but the user), certificates
    embedded."""

    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode("ascii")

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server, "certificate-authority-data": b64(ca)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user, "namespace": "default"}}],
        "current-context": context,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)
