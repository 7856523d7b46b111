"""Run ``flinkops operator run`` as a real process against the test API server, as a chosen identity.

``service_account_kubeconfig`` writes a kubeconfig that authenticates with a ServiceAccount token from the
TokenRequest API, so the operator runs with exactly the RBAC the Helm chart grants, not as an admin.
``OperatorProcess`` starts the operator with its own log file, waits until ``/healthz`` answers, reads
``/metrics``, stops it by pid (SIGTERM, or SIGKILL to play a crash) and starts it again (``restart``).
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from flinkops.dev.process import free_port

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.2) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def service_account_kubeconfig(
    admin: httpx.Client, server: str, ca_file: Path, namespace: str, account: str, into: Path
) -> Path:
    """A kubeconfig for ServiceAccount ``namespace/account`` (a one-hour token from the TokenRequest API)."""
    response = admin.post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}},
    )
    response.raise_for_status()
    token = response.json()["status"]["token"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "test",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_file.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": "test", "user": account, "namespace": namespace}}],
        "current-context": account,
    }
    into.write_text(yaml.safe_dump(config))
    into.chmod(0o600)
    return into


def sample_deployment(name: str, *, mode: str = "stateless", image: str = "flink:2.2.1-java17") -> dict[str, Any]:
    """A small application FlinkDeployment (the distribution's example jar, inside the image) for the operator's
    tests and benchmark: valid on Kubernetes, cheap to render, independent of any data plane."""
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name},
        "spec": {
            "image": image,
            "flinkVersion": "v2_2",
            "serviceAccount": "flink",
            "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"},
            "jobManager": {"resource": {"memory": "1024m", "cpu": 0.5}},
            "taskManager": {"resource": {"memory": "1024m", "cpu": 0.5}},
            "job": {
                "jarURI": "local:///opt/flink/examples/streaming/StateMachineExample.jar",
                "parallelism": 2,
                "upgradeMode": mode,
            },
        },
    }


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: Path,
        log_file: Path,
        *,
        namespaces: Sequence[str],
        lease_namespace: str,
        identity: str,
        lease_name: str = "flinkops-leader",
        lease_duration: float = 6.0,
        leader_election: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.log_file = log_file
        args = [
            sys.executable, "-m", "flinkops", "operator", "run",
            "--kubeconfig", str(kubeconfig),
            "--lease-namespace", lease_namespace,
            "--lease-name", lease_name,
            "--lease-duration", str(lease_duration),
            "--http-address", "127.0.0.1",
            "--http-port", str(self.port),
            "--log-format", "json",
            "--leader-election" if leader_election else "--no-leader-election",
        ]  # fmt: skip
        for namespace in namespaces:
            args += ["--namespace", namespace]
        environment = {**os.environ, "POD_NAME": identity, **(env or {})}
        environment.pop("KUBECONFIG", None)
        self.identity = identity
        self._command = (args, environment)
        self._start()

    def _start(self) -> None:
        args, environment = self._command
        with self.log_file.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=environment)
        wait_for(f"operator {self.identity} /healthz", self._healthy, timeout=30)

    def restart(self) -> None:
        """Start the operator again after it exited (``kill``, ``stop``), as a restarted pod would: the same
        command line, identity, HTTP port and log file."""
        if self.proc.poll() is None:
            raise AssertionError(f"operator {self.identity} is still running")
        self._start()

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"operator {self.identity} exited with {self.proc.returncode}:\n{self.log()}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200
        return False

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text

    def metric(self, name: str) -> float | None:
        """The value of an unlabelled metric, or the sum of a labelled one."""
        total, seen = 0.0, False
        for line in self.metrics().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
                seen = True
        return total if seen else None

    def is_leader(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return self.metric("flinkops_leader") == 1.0
        return False

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")[-6000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return int(self.proc.returncode)

    def wait_exit(self, timeout: float) -> int:
        return int(self.proc.wait(timeout=timeout))
