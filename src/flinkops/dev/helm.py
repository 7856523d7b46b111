"""The ``helm`` binary the chart tests render ``deploy/helm/flinkops`` with, built once from the Go module proxy.

Helm publishes no binaries through a package registry, but its command is an ordinary Go main package whose
module has no ``replace`` directives, so :func:`flinkops.artifacts.go_binary` builds it with ``go install``
(under 8 minutes on 2 busy cores, once; a static ~95 MB binary cached under
``~/.cache/flinkops/go/helm-<version>/``). Rendering with the real Helm, rather than a template subset
re-implemented in Python, means the tests see exactly what ``helm install`` would send, including sprig
functions, ``fail`` and values.schema.json checks.

Called by ``scripts/prefetch.py`` (before the test suite) and ``tests/support/helm.py``. Invariant: the path
returned is a complete, executable binary of :data:`HELM_VERSION`.
"""

from __future__ import annotations

from pathlib import Path

from flinkops.artifacts import Progress, go_binary

__all__ = ["HELM_MODULE", "HELM_VERSION", "helm_binary"]

HELM_MODULE = "helm.sh/helm/v4/cmd/helm"
# The current major release; the chart (apiVersion v2) renders the same with Helm 3.
HELM_VERSION = "v4.3.1"


def helm_binary(*, progress: Progress | None = None) -> Path:
    """The cached ``helm`` binary, built with the local Go toolchain on first use (ArtifactError without Go)."""
    return go_binary(HELM_MODULE, HELM_VERSION, "helm", progress=progress)
