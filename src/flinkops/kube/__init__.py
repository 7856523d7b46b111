"""A small Kubernetes API client (httpx) shared by the Kubernetes store, the Kubernetes runtime and the operator.

See :mod:`flinkops.kube.client`. Kept import-light: nothing here loads until a Kubernetes target is used.
"""

from __future__ import annotations
