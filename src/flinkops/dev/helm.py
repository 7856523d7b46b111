"""The ``helm`` binary the chart tests render ``deploy/helm/flinkops`` with, built once from the Go module proxy.

Helm publishes no binaries through a package registry, but its command is an ordinary Go main package whose
module has no ``replace`` directives, so :func:`flinkops.artifacts.go_binary` builds it with ``go install``
(under 8 minutes on 2 busy cores, once; a static ~95 MB binary cached under
``~/.cache/flinkops/go/helm-<version>/``). Rendering with the real Helm, rather than a template subset
re-implemented in Python, means the tests see exactly what ``helm install`` would send, including sprig
functions, ``fail`` and values.schema.json checks.

Called by ``scripts/prefetch.py`` (before the test suite), ``tests/support/helm.py`` and
``flinkops.dev.jobchart``; :func:`run_helm` is the one way either runs it. Invariant: the path returned is a
complete, executable binary of :data:`HELM_VERSION`.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from flinkops.artifacts import Progress, go_binary

__all__ = ["HELM_MODULE", "HELM_VERSION", "helm_binary", "run_helm"]

HELM_MODULE = "helm.sh/helm/v4/cmd/helm"
# The current major release; the chart (apiVersion v2) renders the same with Helm 3.
HELM_VERSION = "v4.3.1"


def helm_binary(*, progress: Progress | None = None) -> Path:
    """The cached ``helm`` binary, built with the local Go toolchain on first use (ArtifactError without Go)."""
    return go_binary(HELM_MODULE, HELM_VERSION, "helm", progress=progress)


def run_helm(
    binary: str | Path, args: Sequence[str], *, values_yaml: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``binary ARGS [-f values.yaml]`` in an isolated Helm home: caches, config and data in a scratch
    directory and no kubeconfig, so rendering neither reads nor changes the user's Helm repositories, plugins or
    cluster context. ``values_yaml``, if given, is written there and passed with ``-f``. Never raises on exit."""
    with tempfile.TemporaryDirectory(prefix="flinkops-helm-") as tmp:
        home = Path(tmp)
        argv = [str(binary), *args]
        if values_yaml is not None:
            values_file = home / "values.yaml"
            values_file.write_text(values_yaml)
            argv += ["-f", str(values_file)]
        env = dict(
            os.environ,
            HELM_CACHE_HOME=str(home / "cache"),
            HELM_CONFIG_HOME=str(home / "config"),
            HELM_DATA_HOME=str(home / "data"),
            KUBECONFIG=str(home / "no-kubeconfig"),
        )
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
