"""``Provisioner`` adapters: ``local`` (processes on this machine) and ``pods`` (the Kubernetes operator)."""
