"""Kubernetes access on lightkube: configuration and credentials (``config``, ``credentials``), REST calls by path
(``client``), a watch cache (``informer``) and leader election (``leader``), shared by the Kubernetes store, the
Kubernetes runtime, the operator and the CLI's Kubernetes target.

Kept import-light: nothing here loads until a Kubernetes target is used.
"""

from __future__ import annotations
