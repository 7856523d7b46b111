"""cert-manager's own CustomResourceDefinitions (Certificate, Issuer, ClusterIssuer), so a real API server can
check the chart's cert-manager objects against cert-manager's real schema.

The CRDs are plain YAML in cert-manager's Go module (``deploy/crds``), which the Go module proxy serves; ``go mod
download`` fetches it once (about 16 MB) into the module cache. Its controller and cainjector are not
installable that way: their ``cmd/`` modules are not served for the release, so ``go`` would fall back to the
source repository, which this machine cannot reach (and should not try: ``direct`` is dropped from GOPROXY here).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

__all__ = ["CERT_MANAGER_MODULE", "CERT_MANAGER_VERSION", "cert_manager_crds"]

CERT_MANAGER_MODULE = "github.com/cert-manager/cert-manager"
CERT_MANAGER_VERSION = "v1.19.1"
_CRDS = ("cert-manager.io_certificates.yaml", "cert-manager.io_issuers.yaml", "cert-manager.io_clusterissuers.yaml")


def _proxy_only() -> dict[str, str]:
    """The environment with GOPROXY reduced to its proxies (no ``direct``: nothing but the proxy is asked)."""
    current = subprocess.run(["go", "env", "GOPROXY"], capture_output=True, text=True, check=True).stdout.strip()
    proxies = [p for p in re.split(r"[,|]", current) if p and p not in ("direct", "off")]
    if not proxies:
        raise RuntimeError(f"GOPROXY ({current!r}) names no module proxy to fetch {CERT_MANAGER_MODULE} from")
    return dict(os.environ, GOPROXY=",".join(proxies), GOFLAGS="-mod=mod", GOTOOLCHAIN="local", GOWORK="off")


def cert_manager_crds() -> list[dict[str, Any]]:
    """The three CRDs of cert-manager :data:`CERT_MANAGER_VERSION`, parsed."""
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            ["go", "mod", "download", "-json", f"{CERT_MANAGER_MODULE}@{CERT_MANAGER_VERSION}"],
            cwd=scratch,
            env=_proxy_only(),
            capture_output=True,
            text=True,
            timeout=600,
        )
    info = json.loads(done.stdout or "{}")
    if done.returncode != 0 or "Dir" not in info:
        raise RuntimeError(f"go mod download {CERT_MANAGER_MODULE}: {info.get('Error') or done.stderr[-2000:]}")
    root = Path(info["Dir"]) / "deploy" / "crds"
    return [doc for name in _CRDS for doc in yaml.safe_load_all((root / name).read_text()) if doc]
