"""cert-manager's own CustomResourceDefinitions (Certificate, Issuer, ClusterIssuer), so a real API server can
check the chart's cert-manager objects against cert-manager's real schema.

The CRDs are plain YAML in cert-manager's Go module (``deploy/crds``), which the Go module proxy serves; ``go mod
download`` fetches it once (about 16 MB) into the module cache. Its controller and cainjector are not
installable that way: their ``cmd/`` modules are not served for the release, so ``go`` would fall back to the
source repository, which this machine cannot reach (and does not try:
``flinkops.artifacts.go.go_environment`` drops ``direct`` from GOPROXY).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from flinkops.artifacts.go import go_environment

__all__ = ["CERT_MANAGER_MODULE", "CERT_MANAGER_VERSION", "cert_manager_crds"]

CERT_MANAGER_MODULE = "github.com/cert-manager/cert-manager"
CERT_MANAGER_VERSION = "v1.19.1"
_CRDS = ("cert-manager.io_certificates.yaml", "cert-manager.io_issuers.yaml", "cert-manager.io_clusterissuers.yaml")


def cert_manager_crds() -> list[dict[str, Any]]:
    """The three CRDs of cert-manager :data:`CERT_MANAGER_VERSION`, parsed."""
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            ["go", "mod", "download", "-json", f"{CERT_MANAGER_MODULE}@{CERT_MANAGER_VERSION}"],
            cwd=scratch,
            env=dict(go_environment(), GOFLAGS="-mod=mod", GOWORK="off"),
            capture_output=True,
            text=True,
            timeout=600,
        )
    info = json.loads(done.stdout or "{}")
    if done.returncode != 0 or "Dir" not in info:
        raise RuntimeError(f"go mod download {CERT_MANAGER_MODULE}: {info.get('Error') or done.stderr[-2000:]}")
    root = Path(info["Dir"]) / "deploy" / "crds"
    return [doc for name in _CRDS for doc in yaml.safe_load_all((root / name).read_text()) if doc]
