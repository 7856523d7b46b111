"""A real Kubernetes node for the dev control plane: containerd, kubelet, kube-scheduler, kube-proxy and CoreDNS
on a bridge that the tool creates and fences, and a Flink image built without a registry.

Modules: ``binaries`` (what runs and where it comes from), ``config`` (the configuration files, pure text),
``host`` (the host settings the node changes and their restoration), ``oci`` (an OCI image archive packer),
``image`` (the Flink and pause images), ``node`` (start, stop and status of the node). Kept import-light: the
names load only when used.

Called by: :mod:`flinkops.dev.services` (``flinkops dev up kubernetes --node``), ``scripts/prefetch.py`` and
the tests' ``tests/support/kube.py``.
"""
